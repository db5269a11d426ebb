//! `/api/v1/hosts`: the Docker hosts dcp drives; the work is the hosts service's
//! ([`crate::hosts`]). `local` (the engine dcp runs next to) is always there; remote hosts
//! are reached over SSH with a pinned host key. Everyone reads; admins add (here or through
//! the `ssh_host_setup` wizard), change and remove hosts.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, Auth};
use super::positions::{settle_request, Positioned};
use crate::commands::CommandMeta;
use crate::hosts::{CheckResult, CreateHostRequest, CreatedHost, HostView, UpdateHostRequest};
use crate::read_models::HOSTS;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hosts, create_host))
        .routes(routes!(get_host, update_host, delete_host))
        .routes(routes!(test_host))
}

/// List the hosts (`local` first).
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts",
    responses((status = 200, body = [HostView])))]
async fn list_hosts(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<ApiJson<Vec<HostView>>> {
    settle_request(&state.reads, &headers, HOSTS).await?;
    Ok(ApiJson(state.hosts.list().await?))
}

/// One host, by id or name.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path)),
    responses((status = 200, body = HostView), (status = 404)))]
async fn get_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<HostView>> {
    settle_request(&state.reads, &headers, HOSTS).await?;
    Ok(ApiJson(state.hosts.get(&id).await?))
}

/// Add a remote host (admins). It is registered `setup_pending`, then checked.
#[utoipa::path(post, path = "/api/v1/hosts", tag = "hosts", request_body = CreateHostRequest,
    responses((status = 201, body = CreatedHost), (status = 400), (status = 409)))]
async fn create_host(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiJson(request): ApiJson<CreateHostRequest>,
) -> ApiResult<Response> {
    let (created, cursor) = state.hosts.create(&principal, request, &meta).await?;
    let location = format!("/api/v1/hosts/{}", created.host.id);
    Ok(Positioned(
        cursor.map(|c| c.position),
        (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            ApiJson(created),
        ),
    )
    .into_response())
}

/// Change a host (admins): rename, retag, disable or enable, new credentials, pin a new
/// host key. New credentials or a new key are checked at once.
#[utoipa::path(patch, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path)),
    request_body = UpdateHostRequest,
    responses((status = 200, body = HostView), (status = 400), (status = 404), (status = 409)))]
async fn update_host(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<UpdateHostRequest>,
) -> ApiResult<Response> {
    let (view, cursor) = state.hosts.update(&principal, &id, request, &meta).await?;
    Ok(Positioned(cursor.map(|c| c.position), ApiJson(view)).into_response())
}

/// Remove a host (admins): dcp stops using it and forgets its credentials. Its containers
/// are left running.
#[utoipa::path(delete, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
async fn delete_host(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let cursor = state.hosts.delete(&id, &meta).await?;
    Ok(Positioned(cursor.map(|c| c.position), StatusCode::NO_CONTENT).into_response())
}

/// Check a host now: connect (ignoring a back-off), ask the engine for its version. The
/// result is recorded (`active` or `unreachable`); an unreachable host is a 200 with
/// `reachable: false` and the reason.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/test", tag = "hosts", params(("id" = String, Path)),
    responses((status = 200, body = CheckResult), (status = 404)))]
async fn test_host(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<CheckResult>> {
    Ok(ApiJson(state.hosts.test(&id, &meta).await?))
}
