//! `/api/v1/volumes`: volumes live from each Docker engine, creation and removal; the work
//! is the resources service's ([`crate::resources`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::containers::HostQuery;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::Positioned;
use crate::commands::CommandMeta;
use crate::denials::Refused;
use crate::docker::resource_policy::CreateVolumeRequest;
use crate::resources::{ResourceOutcome, VolumeList};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_volumes, create_volume))
        .routes(routes!(delete_volume))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HostOnlyQuery {
    /// The Docker host (id or name); default: every host at once.
    pub host: Option<String>,
}

/// List volumes.
#[utoipa::path(get, path = "/api/v1/volumes", tag = "volumes", params(HostOnlyQuery),
    responses((status = 200, body = VolumeList), (status = 502), (status = 503)))]
async fn list_volumes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostOnlyQuery>,
) -> ApiResult<ApiJson<VolumeList>> {
    Ok(ApiJson(
        state.resources.list_volumes(query.host.as_deref()).await?,
    ))
}

/// Create a volume. Operators get plain `local` volumes (or tmpfs ones); driver options
/// that mount a host path or device, and volume plugins, need an admin with
/// `allow_privileged` and a `reason`.
#[utoipa::path(post, path = "/api/v1/volumes", tag = "volumes", params(HostQuery), request_body = CreateVolumeRequest,
    responses((status = 201, body = ResourceOutcome), (status = 400), (status = 403), (status = 409), (status = 502), (status = 503)))]
async fn create_volume(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateVolumeRequest>,
) -> ApiResult<Response> {
    let route = Refused::of("POST", "/api/v1/volumes");
    let outcome = state
        .resources
        .create_volume(&principal, query.host.as_deref(), request, &meta, route)
        .await?;
    let location = format!("/api/v1/volumes/{}", outcome.resource);
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteVolumeQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
    /// Remove it even if Docker would refuse (default false).
    pub force: Option<bool>,
    /// Why: required from admins removing a volume the platform protects (audited).
    pub reason: Option<String>,
}

/// Remove a volume (one the platform protects: admins only, with a reason).
#[utoipa::path(delete, path = "/api/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path), DeleteVolumeQuery),
    responses((status = 200, body = ResourceOutcome), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_volume(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteVolumeQuery>,
) -> ApiResult<Response> {
    let outcome = state
        .resources
        .remove_volume(
            &principal,
            (query.host.as_deref(), &name),
            query.force.unwrap_or(false),
            &meta.with_reason(query.reason.as_deref()),
            Refused::of("DELETE", "/api/v1/volumes/{name}"),
        )
        .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}
