//! Container operations over HTTP: start, stop, restart, kill, pause, unpause, rename,
//! recreate, delete, and a container's history. Each operation is recorded before and after
//! Docker performs it (see [`crate::containers`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use dcp_aggregates::container::ContainerAction;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::containers::HostQuery;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, OptionalApiJson};
use super::positions::Positioned;
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::containers::{HistoryEntry, OperationOutcome};
use crate::denials::Refused;
use crate::docker::policy::CreateContainerRequest;

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

/// One action on one container, as the caller asked for it.
struct ActionRequest<'a> {
    reference: &'a str,
    host: &'a Option<String>,
    action: ContainerAction,
    /// Why (an admin acting on a container the platform protects must say).
    reason: Option<String>,
    route: Refused<'static>,
}

async fn act(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    request: ActionRequest<'_>,
) -> ApiResult<Response> {
    let outcome = state
        .containers
        .act(
            principal,
            request.host.as_deref(),
            request.reference,
            request.action,
            &meta.with_reason(request.reason.as_deref()),
            request.route,
        )
        .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}

/// No body, `{}`, or `{"reason": …}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {
    /// Why: required from admins acting on a container the platform protects (audited).
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopOptions {
    /// Seconds to wait before killing (0–600; default Docker's, 10).
    pub timeout: Option<u32>,
    /// Why: required from admins acting on a container the platform protects (audited).
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillOptions {
    /// Signal name or number (default `SIGKILL`).
    pub signal: Option<String>,
    /// Why: required from admins acting on a container the platform protects (audited).
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: String,
    /// Why: required from admins acting on a container the platform protects (audited).
    pub reason: Option<String>,
}

/// A handler for `POST /api/v1/containers/{id}/<action>`: an optional JSON body of type
/// `$options` (absent: its default) turned into the action by `$to_action`.
macro_rules! container_action {
    ($handler:ident, $path:literal, $summary:literal, $options:ty, $to_action:expr) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "containers",
            params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
            request_body(content = $options, description = "optional"),
            responses((status = 200, body = OperationOutcome), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
        async fn $handler(
            State(state): State<AppState>,
            Auth(principal): Auth,
            meta: CommandMeta,
            ApiPath(reference): ApiPath<String>,
            ApiQuery(query): ApiQuery<HostQuery>,
            OptionalApiJson(body): OptionalApiJson<$options>,
        ) -> ApiResult<Response> {
            let to_action: fn(&$options) -> ContainerAction = $to_action;
            let body = body.unwrap_or_default();
            let request = ActionRequest {
                reference: &reference,
                host: &query.host,
                action: to_action(&body),
                reason: body.reason,
                route: Refused::of("POST", $path),
            };
            act(&state, &principal, &meta, request).await
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
            signal: o.signal.clone().unwrap_or_else(|| "SIGKILL".into()),
        }
    }
);

/// Rename a container.
#[utoipa::path(post, path = "/api/v1/containers/{id}/rename", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
    request_body = RenameRequest,
    responses((status = 200, body = OperationOutcome), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn rename(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(body): ApiJson<RenameRequest>,
) -> ApiResult<Response> {
    let request = ActionRequest {
        reference: &reference,
        host: &query.host,
        action: ContainerAction::Rename { name: body.name },
        reason: body.reason,
        route: Refused::of("POST", "/api/v1/containers/{id}/rename"),
    };
    act(&state, &principal, &meta, request).await
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
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateContainerRequest>,
) -> ApiResult<Response> {
    let route = Refused::of("POST", "/api/v1/containers/{id}/recreate");
    let outcome = state
        .containers
        .recreate(
            &principal,
            query.host.as_deref(),
            &reference,
            request,
            &meta,
            route,
        )
        .await?;
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
    /// Why: required from admins removing a container the platform protects (audited).
    pub reason: Option<String>,
}

/// Remove a container.
#[utoipa::path(delete, path = "/api/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), DeleteQuery),
    responses((status = 200, body = OperationOutcome), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_container(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    let request = ActionRequest {
        reference: &reference,
        host: &query.host,
        action: ContainerAction::Remove {
            force: query.force.unwrap_or(false),
            volumes: query.volumes.unwrap_or(false),
        },
        reason: query.reason,
        route: Refused::of("DELETE", "/api/v1/containers/{id}"),
    };
    act(&state, &principal, &meta, request).await
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
    let history = state
        .containers
        .history(principal.role, query.host.as_deref(), &reference, &meta)
        .await?;
    Ok(ApiJson(history))
}
