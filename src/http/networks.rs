//! `/api/v1/networks`: networks live from each Docker engine.

use std::collections::BTreeMap;

use axum::extract::State;
use bollard::query_parameters::ListNetworksOptions;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::containers::host_of;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery};
use super::volumes::HostOnlyQuery;
use super::AppState;
use crate::docker::DockerError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_networks))
}

/// A network as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NetworkView {
    pub host: String,
    pub id: String,
    pub name: String,
    pub driver: Option<String>,
    pub scope: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    /// As Docker reports it (RFC 3339).
    pub created_at: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// List networks.
#[utoipa::path(get, path = "/api/v1/networks", tag = "networks", params(HostOnlyQuery),
    responses((status = 200, body = [NetworkView]), (status = 502), (status = 503)))]
async fn list_networks(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostOnlyQuery>,
) -> ApiResult<ApiJson<Vec<NetworkView>>> {
    let host = host_of(&state, &query.host)?;
    let docker = state.docker.client(&host)?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions::default()))
        .await
        .map_err(|error| DockerError::from_bollard(&host, error))?;
    let mut views: Vec<NetworkView> = networks
        .into_iter()
        .map(|network| NetworkView {
            host: host.clone(),
            id: network.id.unwrap_or_default(),
            name: network.name.unwrap_or_default(),
            driver: network.driver,
            scope: network.scope,
            internal: network.internal.unwrap_or(false),
            attachable: network.attachable.unwrap_or(false),
            created_at: network.created.map(|t| t.to_string()),
            labels: network.labels.unwrap_or_default().into_iter().collect(),
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ApiJson(views))
}
