//! `/api/v1/networks`: networks live from each Docker engine, creation, removal, and
//! containers connected and disconnected; the work is the resources service's
//! ([`crate::resources`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::containers::HostQuery;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::Positioned;
use super::volumes::HostOnlyQuery;
use crate::commands::CommandMeta;
use crate::denials::Refused;
use crate::docker::resource_policy::CreateNetworkRequest;
use crate::resources::{Attachment, NetworkList, NetworkOnHost, ResourceOutcome};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_networks, create_network))
        .routes(routes!(delete_network))
        .routes(routes!(connect))
        .routes(routes!(disconnect))
}

/// List networks.
#[utoipa::path(get, path = "/api/v1/networks", tag = "networks", params(HostOnlyQuery),
    responses((status = 200, body = NetworkList), (status = 502), (status = 503)))]
async fn list_networks(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostOnlyQuery>,
) -> ApiResult<ApiJson<NetworkList>> {
    Ok(ApiJson(
        state.resources.list_networks(query.host.as_deref()).await?,
    ))
}

/// Create a network. Operators get `bridge` (and `overlay`) networks; `macvlan` and
/// `ipvlan`, which sit on the host's own networks, need an admin with `allow_privileged`
/// and a `reason`.
#[utoipa::path(post, path = "/api/v1/networks", tag = "networks", params(HostQuery), request_body = CreateNetworkRequest,
    responses((status = 201, body = ResourceOutcome), (status = 400), (status = 403), (status = 409), (status = 502), (status = 503)))]
async fn create_network(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateNetworkRequest>,
) -> ApiResult<Response> {
    let route = Refused::of("POST", "/api/v1/networks");
    let outcome = state
        .resources
        .create_network(&principal, query.host.as_deref(), request, &meta, route)
        .await?;
    let location = format!(
        "/api/v1/networks/{}",
        outcome.docker_id.clone().unwrap_or_default()
    );
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
pub struct DeleteNetworkQuery {
    /// The Docker host (default `local`).
    pub host: Option<String>,
    /// Why: required from admins removing a network the platform protects (audited).
    pub reason: Option<String>,
}

/// Remove a network (not Docker's own `bridge`, `host`, `none`; one the platform protects:
/// admins only, with a reason).
#[utoipa::path(delete, path = "/api/v1/networks/{id}", tag = "networks",
    params(("id" = String, Path, description = "id, id prefix or name"), DeleteNetworkQuery),
    responses((status = 200, body = ResourceOutcome), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_network(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteNetworkQuery>,
) -> ApiResult<Response> {
    let outcome = state
        .resources
        .remove_network(
            &principal,
            (query.host.as_deref(), &reference),
            &meta.with_reason(query.reason.as_deref()),
            Refused::of("DELETE", "/api/v1/networks/{id}"),
        )
        .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}

/// `POST /api/v1/networks/{id}/connect`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// The container: full id, unique id prefix or name.
    pub container: String,
    /// Extra DNS names of the container on this network.
    pub aliases: Option<Vec<String>>,
    /// Why: required from admins when the container or network is protected (audited).
    pub reason: Option<String>,
}

/// `POST /api/v1/networks/{id}/disconnect`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    /// The container: full id, unique id prefix or name.
    pub container: String,
    /// Disconnect even if the container is not running cleanly (default false).
    pub force: Option<bool>,
    /// Why: required from admins when the container or network is protected (audited).
    pub reason: Option<String>,
}

/// Connects or disconnects a container, as the resources service does.
async fn attach(
    state: &AppState,
    principal: &crate::auth::principal::Principal,
    meta: &CommandMeta,
    network: NetworkOnHost<'_>,
    container: &str,
    attachment: (Attachment, Option<&str>),
    route: Refused<'_>,
) -> ApiResult<Response> {
    let (attachment, reason) = attachment;
    let meta = meta.with_reason(reason);
    let outcome = state
        .resources
        .attach(principal, network, container, attachment, &meta, route)
        .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}

/// Connect a container to a network, as the host-reach judgement allows: operators join
/// plain `bridge` networks that are not internal, protected or an admin's (unless labelled
/// `dcp.shared=true`), with containers that reach nothing.
#[utoipa::path(post, path = "/api/v1/networks/{id}/connect", tag = "networks",
    params(("id" = String, Path, description = "id, id prefix or name"), HostQuery), request_body = ConnectRequest,
    responses((status = 200, body = ResourceOutcome), (status = 400), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn connect(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<ConnectRequest>,
) -> ApiResult<Response> {
    let aliases = request.aliases.unwrap_or_default();
    attach(
        &state,
        &principal,
        &meta,
        NetworkOnHost {
            host: query.host.as_deref(),
            reference: &reference,
        },
        &request.container,
        (Attachment::Connect { aliases }, request.reason.as_deref()),
        Refused::of("POST", "/api/v1/networks/{id}/connect"),
    )
    .await
}

/// Disconnect a container from a network.
#[utoipa::path(post, path = "/api/v1/networks/{id}/disconnect", tag = "networks",
    params(("id" = String, Path, description = "id, id prefix or name"), HostQuery), request_body = DisconnectRequest,
    responses((status = 200, body = ResourceOutcome), (status = 400), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn disconnect(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<DisconnectRequest>,
) -> ApiResult<Response> {
    let force = request.force.unwrap_or(false);
    attach(
        &state,
        &principal,
        &meta,
        NetworkOnHost {
            host: query.host.as_deref(),
            reference: &reference,
        },
        &request.container,
        (Attachment::Disconnect { force }, request.reason.as_deref()),
        Refused::of("POST", "/api/v1/networks/{id}/disconnect"),
    )
    .await
}
