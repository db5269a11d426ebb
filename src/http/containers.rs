//! `/api/v1/containers`: containers live from each Docker engine.
//!
//! Lists ask Docker for the state now (status and label filters run in Docker; name and
//! image filters here) and page the result; a container is addressed by full id, unique
//! id prefix or name, as with the docker CLI.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::context::RequestContext;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::Positioned;
use super::AppState;
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::docker::policy::{self, CreateContainerRequest, PolicyError};
use crate::docker::{DockerError, LOCAL_HOST};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_containers, create_container))
        .routes(routes!(get_container))
}

/// Container states Docker reports, in the `status` filter's vocabulary.
pub const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A published or exposed port.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PortView {
    pub ip: Option<String>,
    pub private_port: u16,
    pub public_port: Option<u16>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: Option<String>,
}

/// A container as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContainerView {
    pub host: String,
    pub id: String,
    /// The first 12 characters of the id.
    pub short_id: String,
    /// The primary name, without the leading `/`.
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: String,
    pub created_at: Option<DateTime<Utc>>,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `removing` or `dead`.
    pub state: String,
    /// Docker's human status, e.g. `Up 5 minutes`.
    pub status: String,
    pub ports: Vec<PortView>,
    pub labels: BTreeMap<String, String>,
    /// What dcp knows about it; absent for a container dcp has not seen yet.
    pub platform: Option<PlatformView>,
}

/// The platform's record of a container (the `containers` read model).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PlatformView {
    /// The container's aggregate id (its history's key).
    pub aggregate_id: String,
    /// `dcp` (created through dcp) or `docker` (found on the engine).
    pub origin: String,
    pub created_by: Option<uuid::Uuid>,
    pub created_by_name: Option<String>,
    /// When dcp created it or first saw it.
    pub known_since: DateTime<Utc>,
    /// The last operation through dcp, e.g. `container.stop`.
    pub last_action: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub last_status: Option<String>,
    pub last_operation_id: Option<uuid::Uuid>,
    pub last_at: Option<DateTime<Utc>>,
    pub last_by_name: Option<String>,
}

/// Projections read by the container list and inspect.
pub const CONTAINERS: &[&str] = &["containers"];

/// The platform records of `docker_ids` on `host`.
async fn platform_records(
    state: &AppState,
    host: &str,
    docker_ids: Vec<String>,
) -> ApiResult<HashMap<String, PlatformView>> {
    if docker_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(sqlx::query_as::<_, PlatformRow>(
        "SELECT docker_id, aggregate_id, origin, created_by, created_by_name, known_since, last_action, last_status, \
         last_operation_id, last_at, last_by_name FROM containers WHERE host = $1 AND docker_id = ANY($2)",
    )
    .bind(host)
    .bind(docker_ids)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|row| (row.docker_id.clone(), row.into()))
    .collect())
}

#[derive(sqlx::FromRow)]
struct PlatformRow {
    docker_id: String,
    aggregate_id: String,
    origin: String,
    created_by: Option<uuid::Uuid>,
    created_by_name: Option<String>,
    known_since: DateTime<Utc>,
    last_action: Option<String>,
    last_status: Option<String>,
    last_operation_id: Option<uuid::Uuid>,
    last_at: Option<DateTime<Utc>>,
    last_by_name: Option<String>,
}

impl From<PlatformRow> for PlatformView {
    fn from(row: PlatformRow) -> Self {
        PlatformView {
            aggregate_id: row.aggregate_id,
            origin: row.origin,
            created_by: row.created_by,
            created_by_name: row.created_by_name,
            known_since: row.known_since,
            last_action: row.last_action,
            last_status: row.last_status,
            last_operation_id: row.last_operation_id,
            last_at: row.last_at,
            last_by_name: row.last_by_name,
        }
    }
}

fn view(host: &str, summary: bollard::models::ContainerSummary) -> ContainerView {
    let id = summary.id.unwrap_or_default();
    let name = summary
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let enum_text = |value: Option<String>| value.unwrap_or_default();
    ContainerView {
        host: host.to_string(),
        short_id: id.chars().take(12).collect(),
        id,
        name,
        image: summary.image.unwrap_or_default(),
        image_id: summary.image_id.unwrap_or_default(),
        command: summary.command.unwrap_or_default(),
        created_at: summary.created.and_then(|t| DateTime::from_timestamp(t, 0)),
        state: enum_text(summary.state.map(|s| s.to_string())),
        status: summary.status.unwrap_or_default(),
        ports: summary
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| PortView {
                ip: p.ip,
                private_port: p.private_port,
                public_port: p.public_port,
                protocol: p.typ.map(|t| t.to_string()),
            })
            .collect(),
        labels: summary.labels.unwrap_or_default().into_iter().collect(),
        platform: None,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContainerListQuery {
    /// The Docker host (id or name); default: every host at once.
    pub host: Option<String>,
    /// Include stopped containers (default false, like `docker ps`).
    pub all: Option<bool>,
    /// Only containers in these states (comma-separated: created, restarting, running,
    /// removing, paused, exited, dead). Implies `all`.
    pub status: Option<String>,
    /// Case-insensitive part of the name.
    pub name: Option<String>,
    /// `key` or `key=value`, comma-separated; all must match.
    pub label: Option<String>,
    /// Case-insensitive part of the image reference.
    pub image: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<usize>,
    /// Rows to skip.
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContainerList {
    pub items: Vec<ContainerView>,
    /// Matching containers in all pages.
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    /// How each host answered (without `host`, every host is listed at once; a host that
    /// failed or did not answer in time is `unreachable` here and adds no items).
    pub hosts: Vec<crate::docker::fanout::HostAnswer>,
}

fn comma_list(value: &Option<String>) -> Vec<String> {
    value
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// The id of the host a request names by id or name (default `local`), if dcp knows it
/// and it is enabled.
pub fn host_of(state: &AppState, host: &Option<String>) -> ApiResult<String> {
    let wanted = host.clone().unwrap_or_else(|| LOCAL_HOST.to_string());
    let id = state
        .hosts
        .resolve(&wanted)
        .ok_or(DockerError::UnknownHost(wanted))?;
    state.docker.client(&id)?;
    Ok(id)
}

/// List containers.
#[utoipa::path(get, path = "/api/v1/containers", tag = "containers", params(ContainerListQuery),
    responses((status = 200, body = ContainerList), (status = 502), (status = 503)))]
async fn list_containers(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ContainerListQuery>,
) -> ApiResult<ApiJson<ContainerList>> {
    state.settle_request(&headers, CONTAINERS).await?;
    let host = crate::docker::fanout::hosts_of(&state, &query.host)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    let offset = query.offset.unwrap_or(0);
    let statuses = comma_list(&query.status);
    if let Some(bad) = statuses.iter().find(|s| !STATES.contains(&s.as_str())) {
        return Err(ApiError::validation(
            "status",
            format!(
                "unknown state '{bad}': expected one of {}",
                STATES.join(", ")
            ),
        ));
    }
    let labels = comma_list(&query.label);
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if !statuses.is_empty() {
        filters.insert("status".into(), statuses.clone());
    }
    if !labels.is_empty() {
        filters.insert("label".into(), labels);
    }
    let options = ListContainersOptions {
        all: query.all.unwrap_or(false) || !statuses.is_empty(),
        filters: (!filters.is_empty()).then_some(filters),
        ..Default::default()
    };
    let (listed, hosts) = crate::docker::fanout::list_on(&state, host, |host, docker| {
        let options = options.clone();
        async move {
            let summaries = docker
                .list_containers(Some(options))
                .await
                .map_err(|error| DockerError::from_bollard(&host, error))?;
            Ok(summaries
                .into_iter()
                .map(|summary| view(&host, summary))
                .collect::<Vec<_>>())
        }
    })
    .await?;
    let name = query.name.as_deref().map(str::to_lowercase);
    let image = query.image.as_deref().map(str::to_lowercase);
    let mut items: Vec<ContainerView> = listed
        .into_iter()
        .filter(|c| {
            name.as_deref()
                .is_none_or(|n| c.name.to_lowercase().contains(n))
        })
        .filter(|c| {
            image
                .as_deref()
                .is_none_or(|i| c.image.to_lowercase().contains(i))
        })
        .collect();
    // Newest first, then by name: a stable order for paging.
    items.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    let total = items.len();
    let mut items: Vec<ContainerView> = items.into_iter().skip(offset).take(limit).collect();
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in &items {
        by_host
            .entry(item.host.clone())
            .or_default()
            .push(item.id.clone());
    }
    let mut records = HashMap::new();
    for (host, ids) in by_host {
        for (id, record) in platform_records(&state, &host, ids).await? {
            records.insert((host.clone(), id), record);
        }
    }
    for item in &mut items {
        item.platform = records.remove(&(item.host.clone(), item.id.clone()));
    }
    Ok(ApiJson(ContainerList {
        items,
        total,
        limit,
        offset,
        hosts,
    }))
}

/// A container reference: a full id, a unique id prefix or a name.
pub fn valid_reference(reference: &str) -> bool {
    let mut chars = reference.chars();
    (1..=255).contains(&reference.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HostQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
}

/// One container, as `docker inspect` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContainerDetail {
    pub host: String,
    pub id: String,
    pub name: String,
    /// Docker's inspect document, unchanged.
    #[schema(value_type = Object)]
    pub inspect: serde_json::Value,
    /// What dcp knows about it; absent for a container dcp has not seen yet.
    pub platform: Option<PlatformView>,
}

/// Inspect a container by id, id prefix or name.
#[utoipa::path(get, path = "/api/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
    responses((status = 200, body = ContainerDetail), (status = 404), (status = 502), (status = 503)))]
async fn get_container(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
) -> ApiResult<ApiJson<ContainerDetail>> {
    if !valid_reference(&reference) {
        return Err(ApiError::validation(
            "id",
            "a container id, id prefix or name",
        ));
    }
    let host = host_of(&state, &query.host)?;
    let docker = state.docker.client(&host)?;
    let inspect = docker
        .inspect_container(&reference, None::<InspectContainerOptions>)
        .await
        .map_err(|error| match DockerError::from_bollard(&host, error) {
            // Docker answers an ambiguous prefix with 400; to the caller it names nothing.
            DockerError::Failed {
                status: 400 | 404,
                message,
            } => ApiError::not_found("container")
                .with_details(serde_json::json!({ "docker": message })),
            other => other.into(),
        })?;
    let id = inspect.id.clone().unwrap_or_default();
    let name = inspect
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let inspect = serde_json::to_value(&inspect).map_err(|e| ApiError::internal(e.into()))?;
    state.settle_request(&headers, CONTAINERS).await?;
    let platform = platform_records(&state, &host, vec![id.clone()])
        .await?
        .remove(&id);
    Ok(ApiJson(ContainerDetail {
        host,
        id,
        name,
        inspect,
        platform,
    }))
}

#[cfg(test)]
mod tests {
    use super::valid_reference;

    #[test]
    fn references_are_ids_prefixes_or_names() {
        assert!(valid_reference("3f2a"));
        assert!(valid_reference("my-app_1.web"));
        assert!(!valid_reference(""));
        assert!(!valid_reference("-flag"));
        assert!(!valid_reference("../etc"));
        assert!(!valid_reference("a/b"));
        assert!(!valid_reference(&"a".repeat(256)));
    }
}

/// Create a container (and start it with `"start": true`). The request follows the role's
/// policy: options that reach the host are refused to operators, and need
/// `allow_privileged` and a `reason` from admins.
#[utoipa::path(post, path = "/api/v1/containers", tag = "containers", params(HostQuery), request_body = CreateContainerRequest,
    responses((status = 201, body = crate::operations::CreateOutcome), (status = 400), (status = 403), (status = 409), (status = 502), (status = 503)))]
async fn create_container(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    context: RequestContext,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateContainerRequest>,
) -> ApiResult<Response> {
    let host = host_of(&state, &query.host)?;
    let facts = engine_facts(&state, &host, &request).await?;
    match policy::check(&request, principal.role, &facts) {
        Ok(()) => {}
        Err(refused) => {
            return Err(
                policy_refusal(&state, &principal, &context, "/api/v1/containers", refused).await,
            )
        }
    }
    let outcome = crate::operations::create_container(&state, &host, request, &meta).await?;
    let location = format!("/api/v1/containers/{}", outcome.container_id);
    Ok(Positioned(
        outcome.position,
        (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            ApiJson(outcome),
        ),
    )
    .into_response())
}

/// Looks up, on the engine, whether the request's named volumes and network reach the host.
pub(super) async fn engine_facts(
    state: &AppState,
    host: &str,
    request: &CreateContainerRequest,
) -> ApiResult<policy::EngineFacts> {
    let docker = state.docker.client(host)?;
    let mut facts = policy::EngineFacts::default();
    // Only well-formed names are looked up; the policy refuses the others.
    let named = request
        .volumes
        .iter()
        .flatten()
        .filter(|v| policy::volume_name("volumes.source", &v.source).is_ok());
    for volume in named {
        match docker.inspect_volume(&volume.source).await {
            Ok(found) => {
                // A tmpfs volume holds nothing of the host; other options can mount a
                // host path or device.
                let options: BTreeMap<String, String> = found.options.into_iter().collect();
                if found.driver != "local"
                    || !(options.is_empty() || crate::docker::resource_policy::is_tmpfs(&options))
                {
                    facts.host_backed_volumes.push(volume.source.clone());
                }
            }
            // Missing: Docker creates a plain local volume.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => return Err(DockerError::from_bollard(host, error).into()),
        }
    }
    if let Some(network) = request.network.as_deref().filter(|n| {
        !matches!(*n, "bridge" | "none" | "default" | "host") && !n.starts_with("container:")
    }) {
        match docker
            .inspect_network(
                network,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(found) => {
                if found.driver.as_deref() != Some("bridge") {
                    facts.host_attached_network = Some(network.to_string());
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(ApiError::validation(
                    "network",
                    format!("no network named '{network}'"),
                ));
            }
            Err(error) => return Err(DockerError::from_bollard(host, error).into()),
        }
    }
    Ok(facts)
}

/// The answer to a request the policy refused: 400 for a bad value; 403 for an option
/// the role may not use, which is recorded like any denied request.
pub async fn policy_refusal(
    state: &AppState,
    principal: &Principal,
    context: &RequestContext,
    route: &str,
    refused: PolicyError,
) -> ApiError {
    match refused {
        PolicyError::Invalid { field, message } => ApiError::validation(field, message),
        PolicyError::Forbidden { field, message } => {
            record_denied_create(state, principal, context, route).await;
            ApiError::forbidden(message).with_field(field)
        }
    }
}

/// Records a create refused by the policy as a denied request (`access.denied`).
pub(super) async fn record_denied_create(
    state: &AppState,
    principal: &Principal,
    context: &RequestContext,
    route: &str,
) {
    let command = AccessAttemptCommand::RecordDeniedRequest {
        user_id: principal.user_id,
        role: principal.role,
        method: "POST".into(),
        route: route.into(),
        path: route.into(),
        at: chrono::Utc::now(),
    };
    let meta = CommandMeta::from_request(context, Some(principal));
    let id = uuid::Uuid::now_v7().to_string();
    if let Err(error) = state
        .commands
        .execute::<AccessAttempt>(&id, command, &meta)
        .await
    {
        tracing::error!(%error, "Failed to record a refused container create");
    }
}
