//! `/api/v1/containers`: containers live from each Docker engine (list, inspect, create);
//! the work is the containers service's ([`crate::containers`]).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::{min_position, settle_request, Positioned};
use crate::commands::CommandMeta;
use crate::containers::{ContainerDetail, ContainerList, ContainerListQuery, CreateOutcome};
use crate::denials::Refused;
use crate::docker::policy::CreateContainerRequest;
use crate::read_models::CONTAINERS;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_containers, create_container))
        .routes(routes!(get_container))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HostQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
}

/// List containers.
#[utoipa::path(get, path = "/api/v1/containers", tag = "containers", params(ContainerListQuery),
    responses((status = 200, body = ContainerList), (status = 502), (status = 503)))]
async fn list_containers(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ContainerListQuery>,
) -> ApiResult<ApiJson<ContainerList>> {
    settle_request(&state.reads, &headers, CONTAINERS).await?;
    Ok(ApiJson(state.containers.list(query).await?))
}

/// Inspect a container by id, id prefix or name (environment values hidden from all but admins).
#[utoipa::path(get, path = "/api/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "full id, unique id prefix or name"), HostQuery),
    responses((status = 200, body = ContainerDetail), (status = 404), (status = 502), (status = 503)))]
async fn get_container(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
) -> ApiResult<ApiJson<ContainerDetail>> {
    let wait_for = min_position(&headers)?;
    let detail = state
        .containers
        .inspect(principal.role, query.host.as_deref(), &reference, wait_for)
        .await?;
    Ok(ApiJson(detail))
}

/// Create a container (and start it with `"start": true`). The request follows the role's
/// policy: options that reach the host are refused to operators, and need
/// `allow_privileged` and a `reason` from admins.
#[utoipa::path(post, path = "/api/v1/containers", tag = "containers", params(HostQuery), request_body = CreateContainerRequest,
    responses((status = 201, body = CreateOutcome), (status = 400), (status = 403), (status = 409), (status = 502), (status = 503)))]
async fn create_container(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateContainerRequest>,
) -> ApiResult<Response> {
    let route = Refused::of("POST", "/api/v1/containers");
    let outcome = state
        .containers
        .create(&principal, query.host.as_deref(), request, &meta, route)
        .await?;
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
