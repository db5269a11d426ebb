//! Container operations over HTTP: start, stop, restart, kill, pause, unpause, rename,
//! delete, and a container's history. Each operation is recorded before and after Docker
//! performs it (see [`crate::operations`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dcp_aggregates::container::ContainerAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::containers::{engine_facts, host_of, policy_refusal, valid_reference, HostQuery};
use super::context::RequestContext;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::Auth;
use super::extract::{ApiJson, ApiPath, ApiQuery, OptionalApiJson};
use super::positions::Positioned;
use super::AppState;
use crate::commands::CommandMeta;
use crate::docker::policy::{self, CreateContainerRequest};
use crate::operations::{resolve, run_action, OperationOutcome};
use dcp_aggregates::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(kill))
        .routes(routes!(pause))
        .routes(routes!(unpause))
        .routes(routes!(rename))
        .routes(routes!(delete_container))
        .routes(routes!(recreate))
        .routes(routes!(history))
}

fn check_reference(reference: &str) -> ApiResult<()> {
    if valid_reference(reference) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "id",
            "a container id, id prefix or name",
        ))
    }
}

async fn act(
    state: &AppState,
    meta: &CommandMeta,
    reference: &str,
    host: &Option<String>,
    action: ContainerAction,
) -> ApiResult<Response> {
    check_reference(reference)?;
    let host = host_of(state, host)?;
    let target = resolve(state, &host, reference, meta).await?;
    let outcome = run_action(state, &target, action, meta).await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}

/// No body, or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopOptions {
    /// Seconds to wait before killing (0–600; default Docker's, 10).
    pub timeout: Option<u32>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillOptions {
    /// Signal name or number (default `SIGKILL`).
    pub signal: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: String,
}

/// A handler for `POST /api/v1/containers/{id}/<action>`: an optional JSON body of type
/// `$options` (absent: its default) turned into the action by `$to_action`.
macro_rules! container_action {
    ($handler:ident, $path:literal, $summary:literal, $options:ty, $to_action:expr) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "containers",
            params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
            request_body(content = $options, description = "optional"),
            responses((status = 200, body = OperationOutcome), (status = 404), (status = 409), (status = 502), (status = 503)))]
        async fn $handler(
            State(state): State<AppState>,
            meta: CommandMeta,
            ApiPath(reference): ApiPath<String>,
            ApiQuery(query): ApiQuery<HostQuery>,
            OptionalApiJson(body): OptionalApiJson<$options>,
        ) -> ApiResult<Response> {
            let to_action: fn($options) -> ContainerAction = $to_action;
            let action = to_action(body.unwrap_or_default());
            act(&state, &meta, &reference, &query.host, action).await
        }
    };
}

container_action!(
    start,
    "/api/v1/containers/{id}/start",
    "Start a container.",
    NoOptions,
    |_| ContainerAction::Start
);
container_action!(
    pause,
    "/api/v1/containers/{id}/pause",
    "Pause a container.",
    NoOptions,
    |_| ContainerAction::Pause
);
container_action!(
    unpause,
    "/api/v1/containers/{id}/unpause",
    "Unpause a container.",
    NoOptions,
    |_| ContainerAction::Unpause
);
container_action!(
    stop,
    "/api/v1/containers/{id}/stop",
    "Stop a container.",
    StopOptions,
    |o| ContainerAction::Stop { timeout: o.timeout }
);
container_action!(
    restart,
    "/api/v1/containers/{id}/restart",
    "Restart a container.",
    StopOptions,
    |o| { ContainerAction::Restart { timeout: o.timeout } }
);
container_action!(
    kill,
    "/api/v1/containers/{id}/kill",
    "Send a signal to a container (default SIGKILL).",
    KillOptions,
    |o| {
        ContainerAction::Kill {
            signal: o.signal.unwrap_or_else(|| "SIGKILL".into()),
        }
    }
);

/// Rename a container.
#[utoipa::path(post, path = "/api/v1/containers/{id}/rename", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
    request_body = RenameRequest,
    responses((status = 200, body = OperationOutcome), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn rename(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(body): ApiJson<RenameRequest>,
) -> ApiResult<Response> {
    act(
        &state,
        &meta,
        &reference,
        &query.host,
        ContainerAction::Rename { name: body.name },
    )
    .await
}

/// Replace a container with one made from a new configuration (environment, image, ports,
/// mounts, limits, …), keeping its name and its history. The body is the whole desired
/// configuration, as for a create, checked by the same role policy; `name` may be left out
/// (it cannot change here), and `start` defaults to whether the container was running.
#[utoipa::path(post, path = "/api/v1/containers/{id}/recreate", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
    request_body = CreateContainerRequest,
    responses((status = 200, body = OperationOutcome), (status = 400), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn recreate(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    context: RequestContext,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateContainerRequest>,
) -> ApiResult<Response> {
    check_reference(&reference)?;
    let host = host_of(&state, &query.host)?;
    let facts = engine_facts(&state, &host, &request).await?;
    if let Err(refused) = policy::check(&request, principal.role, &facts) {
        let route = "/api/v1/containers/{id}/recreate";
        return Err(policy_refusal(&state, &principal, &context, route, refused).await);
    }
    let target = resolve(&state, &host, &reference, &meta).await?;
    let outcome = crate::recreate::recreate_container(&state, &target, request, &meta).await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
    /// Also stop a running container (default false).
    pub force: Option<bool>,
    /// Also remove its anonymous volumes (default false).
    pub volumes: Option<bool>,
}

/// Remove a container.
#[utoipa::path(delete, path = "/api/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), DeleteQuery),
    responses((status = 200, body = OperationOutcome), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_container(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    let action = ContainerAction::Remove {
        force: query.force.unwrap_or(false),
        volumes: query.volumes.unwrap_or(false),
    };
    act(&state, &meta, &reference, &query.host, action).await
}

/// One step of a container's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub global_position: i64,
    pub sequence: i64,
    /// The event, e.g. `ContainerStartRequested`.
    pub event_type: String,
    pub operation_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    /// `docker` for what Docker did or dcp observed.
    pub actor_kind: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

/// A container's events in order: who asked for what, when, and what came of it.
#[utoipa::path(get, path = "/api/v1/containers/{id}/history", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
    responses((status = 200, body = [HistoryEntry]), (status = 404)))]
async fn history(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
) -> ApiResult<ApiJson<Vec<HistoryEntry>>> {
    check_reference(&reference)?;
    let host = host_of(&state, &query.host)?;
    // Docker resolves the reference as the CLI does (exact id, name, then id prefix). A
    // removed container is gone from Docker: then its id (or a unique prefix) is looked up.
    let aggregate_id = match crate::operations::resolve(&state, &host, &reference, &meta).await {
        Ok(target) => target.aggregate_id,
        Err(error) if error.code == ErrorCode::NotFound => {
            let escaped = reference
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let known: Vec<Uuid> = sqlx::query_scalar(
                "SELECT aggregate_id FROM container_ids WHERE host = $1 AND docker_id LIKE $2 || '%' LIMIT 2",
            )
            .bind(&host)
            .bind(escaped)
            .fetch_all(&state.pool)
            .await?;
            match known.as_slice() {
                [one] => *one,
                _ => return Err(error),
            }
        }
        Err(error) => return Err(error),
    };
    let rows: Vec<(i64, i64, String, serde_json::Value, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT global_position, sequence, event_type, payload::jsonb, metadata::jsonb, recorded_at FROM events \
         WHERE aggregate_type = 'container' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(aggregate_id.to_string())
    .fetch_all(&state.pool)
    .await?;
    if rows.is_empty() {
        return Err(ApiError::not_found("container"));
    }
    // Environment values can be secrets: only admins see them.
    let redact = principal.role != Role::Admin;
    let text = |meta: &serde_json::Value, key: &str| {
        meta.get(key).and_then(|v| v.as_str()).map(str::to_string)
    };
    Ok(ApiJson(
        rows.into_iter()
            .map(
                |(global_position, sequence, event_type, payload, metadata, recorded_at)| {
                    HistoryEntry {
                        global_position,
                        sequence,
                        data: {
                            let mut data = payload.get(&event_type).cloned().unwrap_or(payload);
                            if redact {
                                crate::realtime::bus::envelope::redact(&mut data);
                            }
                            data
                        },
                        event_type,
                        operation_id: text(&metadata, "operation_id"),
                        actor_id: text(&metadata, "actor_id"),
                        actor_username: text(&metadata, "actor_username"),
                        actor_kind: text(&metadata, "actor_kind"),
                        request_id: text(&metadata, "request_id"),
                        recorded_at,
                    }
                },
            )
            .collect(),
    ))
}
