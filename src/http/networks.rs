//! `/api/v1/networks`: networks live from each Docker engine.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bollard::query_parameters::ListNetworksOptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::containers::{host_of, policy_refusal, valid_reference, HostQuery};
use super::context::RequestContext;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::positions::Positioned;
use super::volumes::HostOnlyQuery;
use super::AppState;
use crate::commands::CommandMeta;
use crate::docker::resource_policy::{check_network, CreateNetworkRequest};
use crate::docker::DockerError;
use crate::resources::ResourceOutcome;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_networks, create_network))
        .routes(routes!(delete_network))
        .routes(routes!(connect))
        .routes(routes!(disconnect))
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

/// Networks, with how each host answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkList {
    pub items: Vec<NetworkView>,
    /// Without `host`, every host is listed at once; one that failed is `unreachable` here.
    pub hosts: Vec<crate::docker::fanout::HostAnswer>,
}

/// List networks.
#[utoipa::path(get, path = "/api/v1/networks", tag = "networks", params(HostOnlyQuery),
    responses((status = 200, body = NetworkList), (status = 502), (status = 503)))]
async fn list_networks(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostOnlyQuery>,
) -> ApiResult<ApiJson<NetworkList>> {
    let host = crate::docker::fanout::hosts_of(&state, &query.host)?;
    let (networks, hosts) =
        crate::docker::fanout::list_on(&state, host, |host, docker| async move {
            let networks = docker
                .list_networks(Some(ListNetworksOptions::default()))
                .await
                .map_err(|error| DockerError::from_bollard(&host, error))?;
            Ok(networks
                .into_iter()
                .map(|n| (host.clone(), n))
                .collect::<Vec<_>>())
        })
        .await?;
    let mut views: Vec<NetworkView> = networks
        .into_iter()
        .map(|(host, network)| NetworkView {
            host,
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
    views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.host.cmp(&b.host)));
    Ok(ApiJson(NetworkList {
        items: views,
        hosts,
    }))
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
    context: RequestContext,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<CreateNetworkRequest>,
) -> ApiResult<Response> {
    let host = host_of(&state, &query.host)?;
    let spec = match check_network(request, principal.role) {
        Ok(spec) => spec,
        Err(refused) => {
            return Err(
                policy_refusal(&state, &principal, &context, "/api/v1/networks", refused).await,
            )
        }
    };
    let outcome = crate::resources::create_network(&state, &host, spec, &meta).await?;
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

fn check_network_reference(reference: &str) -> ApiResult<()> {
    if valid_reference(reference) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "id",
            "a network id, id prefix or name",
        ))
    }
}

/// Remove a network (not Docker's own `bridge`, `host`, `none`).
#[utoipa::path(delete, path = "/api/v1/networks/{id}", tag = "networks",
    params(("id" = String, Path, description = "id, id prefix or name"), HostQuery),
    responses((status = 200, body = ResourceOutcome), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn delete_network(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
) -> ApiResult<Response> {
    check_network_reference(&reference)?;
    let host = host_of(&state, &query.host)?;
    let outcome = crate::resources::remove_network(&state, &host, &reference, &meta).await?;
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
}

/// `POST /api/v1/networks/{id}/disconnect`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    /// The container: full id, unique id prefix or name.
    pub container: String,
    /// Disconnect even if the container is not running cleanly (default false).
    pub force: Option<bool>,
}

/// Connecting a container to a network other than a plain `bridge` one (`macvlan`,
/// `ipvlan`, overlay, plugins) reaches beyond the host's container bridge: admins only, as
/// for creating a container on it.
fn network_reach(
    role: dcp_aggregates::Role,
    network: &crate::resources::FoundNetwork,
) -> Result<(), crate::docker::policy::PolicyError> {
    if network.driver == "bridge" || role == dcp_aggregates::Role::Admin {
        return Ok(());
    }
    Err(crate::docker::policy::PolicyError::Forbidden {
        field: "id".into(),
        message: format!(
            "'{}' is a {} network: only admins connect containers to networks other than bridge ones",
            network.name, network.driver
        ),
    })
}

#[allow(clippy::too_many_arguments)]
async fn attach(
    state: &AppState,
    principal: &crate::auth::principal::Principal,
    context: &RequestContext,
    meta: &CommandMeta,
    reference: &str,
    host: &Option<String>,
    container: &str,
    connect: Option<Vec<String>>,
    force: bool,
) -> ApiResult<Response> {
    check_network_reference(reference)?;
    if !valid_reference(container) {
        return Err(ApiError::validation(
            "container",
            "a container id, id prefix or name",
        ));
    }
    if let Some(aliases) = &connect {
        if aliases.len() > 32 {
            return Err(ApiError::validation("aliases", "at most 32 aliases"));
        }
        if let Some(bad) = aliases
            .iter()
            .find(|a| dcp_aggregates::operation::validate_name("aliases", a).is_err())
        {
            return Err(ApiError::validation(
                "aliases",
                format!("'{bad}' is not a valid alias (letters, digits, '_', '.', '-')"),
            ));
        }
    }
    let host = host_of(state, host)?;
    // The network first: a refused or impossible request records nothing (not even the
    // discovery of the container).
    let network = crate::resources::find_network(state, &host, reference).await?;
    if connect.is_some() {
        let route = "/api/v1/networks/{id}/connect";
        if let Err(refused) = network_reach(principal.role, &network) {
            return Err(policy_refusal(state, principal, context, route, refused).await);
        }
    }
    let target = crate::operations::resolve(state, &host, container, meta)
        .await
        .map_err(|error| match error.field {
            None if error.code == super::error::ErrorCode::NotFound => {
                error.with_field("container")
            }
            _ => error,
        })?;
    let outcome =
        crate::resources::attach_network(state, &host, network, &target, connect, force, meta)
            .await?;
    Ok(Positioned(outcome.position, ApiJson(outcome)).into_response())
}

/// Connect a container to a network (to one other than a `bridge` network: admins only).
#[utoipa::path(post, path = "/api/v1/networks/{id}/connect", tag = "networks",
    params(("id" = String, Path, description = "id, id prefix or name"), HostQuery), request_body = ConnectRequest,
    responses((status = 200, body = ResourceOutcome), (status = 400), (status = 403), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn connect(
    State(state): State<AppState>,
    Auth(principal): Auth,
    context: RequestContext,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<ConnectRequest>,
) -> ApiResult<Response> {
    let aliases = request.aliases.unwrap_or_default();
    attach(
        &state,
        &principal,
        &context,
        &meta,
        &reference,
        &query.host,
        &request.container,
        Some(aliases),
        false,
    )
    .await
}

/// Disconnect a container from a network.
#[utoipa::path(post, path = "/api/v1/networks/{id}/disconnect", tag = "networks",
    params(("id" = String, Path, description = "id, id prefix or name"), HostQuery), request_body = DisconnectRequest,
    responses((status = 200, body = ResourceOutcome), (status = 400), (status = 404), (status = 409), (status = 502), (status = 503)))]
async fn disconnect(
    State(state): State<AppState>,
    Auth(principal): Auth,
    context: RequestContext,
    meta: CommandMeta,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<HostQuery>,
    ApiJson(request): ApiJson<DisconnectRequest>,
) -> ApiResult<Response> {
    let force = request.force.unwrap_or(false);
    attach(
        &state,
        &principal,
        &context,
        &meta,
        &reference,
        &query.host,
        &request.container,
        None,
        force,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::network_reach;
    use crate::resources::FoundNetwork;
    use dcp_aggregates::Role;

    #[test]
    fn only_bridge_networks_are_open_to_operators() {
        let network = |driver: &str| FoundNetwork {
            id: "n".into(),
            name: "net".into(),
            driver: driver.into(),
        };
        assert!(network_reach(Role::Operator, &network("bridge")).is_ok());
        for driver in ["macvlan", "ipvlan", "overlay", "weave"] {
            assert!(
                network_reach(Role::Operator, &network(driver)).is_err(),
                "{driver}"
            );
            assert!(
                network_reach(Role::Admin, &network(driver)).is_ok(),
                "{driver}"
            );
        }
    }
}
