//! `/api/v1/volumes`: volumes live from each Docker engine.

use std::collections::BTreeMap;

use axum::extract::State;
use bollard::query_parameters::ListVolumesOptions;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::containers::host_of;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::docker::DockerError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_volumes))
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HostOnlyQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
}

/// List volumes.
#[utoipa::path(get, path = "/api/v1/volumes", tag = "volumes", params(HostOnlyQuery),
    responses((status = 200, body = [VolumeView]), (status = 502), (status = 503)))]
async fn list_volumes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostOnlyQuery>,
) -> ApiResult<ApiJson<Vec<VolumeView>>> {
    let host = host_of(&state, &query.host)?;
    let docker = state.docker.client(&host)?;
    let listed = docker
        .list_volumes(Some(ListVolumesOptions::default()))
        .await
        .map_err(|error| DockerError::from_bollard(&host, error))?;
    let mut views: Vec<VolumeView> = listed
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
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ApiJson(views))
}
