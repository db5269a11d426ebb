//! `/api/v1/volumes`: volumes live from each Docker engine.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bollard::query_parameters::ListVolumesOptions;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::containers::{host_of, policy_refusal, HostQuery};
use super::context::RequestContext;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::Positioned;
use super::AppState;
use crate::commands::CommandMeta;
use crate::docker::resource_policy::{check_volume, CreateVolumeRequest};
use crate::docker::DockerError;
use crate::resources::ResourceOutcome;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_volumes, create_volume))
        .routes(routes!(delete_volume))
}

/// A volume as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VolumeView {
    pub host: String,
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    /// `local` or `global`.
    pub scope: Option<String>,
    /// As Docker reports it (RFC 3339).
    pub created_at: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Volumes, with how each host answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct VolumeList {
    pub items: Vec<VolumeView>,
    /// Without `host`, every host is listed at once; one that failed is `unreachable` here.
    pub hosts: Vec<crate::docker::fanout::HostAnswer>,
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
    let host = crate::docker::fanout::hosts_of(&state, &query.host)?;
    let (mut views, hosts) =
        crate::docker::fanout::list_on(&state, host, |host, docker| async move {
            let listed = docker
                .list_volumes(Some(ListVolumesOptions::default()))
                .await
                .map_err(|error| DockerError::from_bollard(&host, error))?;
            Ok(listed
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|volume| VolumeView {
                    host: host.clone(),
                    name: volume.name,
                    driver: volume.driver,
                    mountpoint: volume.mountpoint,
                    scope: volume.scope.map(|s| s.to_string()),
                    created_at: volume.created_at.map(|t| t.to_string()),
                    labels: volume.labels.into_iter().collect(),
                })
                .collect::<Vec<_>>())
        })
        .await?;
    views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.host.cmp(&b.host)));
    Ok(ApiJson(VolumeList {
        items: views,
        hosts,
    }))
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
    context: RequestContext,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateVolumeRequest>,
) -> ApiResult<Response> {
    let host = host_of(&state, &query.host)?;
    let spec = match check_volume(request, principal.role) {
        Ok(spec) => spec,
        Err(refused) => {
            return Err(
                policy_refusal(&state, &principal, &context, "/api/v1/volumes", refused).await,
            )
        }
    };
    let outcome = crate::resources::create_volume(&state, &host, spec, &meta).await?;
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
}

/// Remove a volume.
#[utoipa::path(delete, path = "/api/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path), DeleteVolumeQuery),
    responses((status = 200, body = ResourceOutcome), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_volume(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteVolumeQuery>,
) -> ApiResult<Response> {
    if dcp_aggregates::operation::validate_name("name", &name).is_err() {
        return Err(ApiError::validation("name", "a volume name"));
    }
    let host = host_of(&state, &query.host)?;
    let outcome =
        crate::resources::remove_volume(&state, &host, &name, query.force.unwrap_or(false), &meta)
            .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}
