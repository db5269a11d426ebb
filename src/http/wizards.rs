//! `/api/v1/wizards`: guided setups that can be paused and resumed; the work is the wizards
//! service's ([`crate::wizards`]). A user sees only their own wizards.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use dcp_aggregates::wizard::WizardCommand;
use dcp_projections::past::WizardState;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, OptionalApiJson};
use super::positions::{settle_request, Positioned};
use crate::commands::CommandMeta;
use crate::read_models::WIZARDS;
use crate::wizards::{
    CompletionView, GeneratedKey, Shown, StartWizardRequest, StepRequest, TestOutcome, TestRequest,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_wizard))
        .routes(routes!(list_wizards))
        .routes(routes!(get_wizard))
        .routes(routes!(submit_step))
        .routes(routes!(next_step))
        .routes(routes!(previous_step))
        .routes(routes!(test_step))
        .routes(routes!(complete_wizard))
        .routes(routes!(cancel_wizard))
        .routes(routes!(generate_ssh_key))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GenerateKeyQuery {
    /// The key's comment (e.g. `dcp@host`), at most 128 printable characters.
    pub comment: Option<String>,
}

fn shown((position, wizard): Shown) -> Response {
    Positioned(position, ApiJson(wizard)).into_response()
}

/// Start a wizard (`ssh_host_setup`: admins).
#[utoipa::path(post, path = "/api/v1/wizards/start", tag = "wizards", request_body = StartWizardRequest,
    responses((status = 201, body = WizardState), (status = 400), (status = 403)))]
async fn start_wizard(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiJson(request): ApiJson<StartWizardRequest>,
) -> ApiResult<Response> {
    let (id, (position, wizard)) = state.wizards.start(&principal, request, &meta).await?;
    Ok(Positioned(
        position,
        (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/api/v1/wizards/{id}"))],
            ApiJson(wizard),
        ),
    )
    .into_response())
}

/// The caller's wizards in progress (to resume), newest first.
#[utoipa::path(get, path = "/api/v1/wizards", tag = "wizards",
    responses((status = 200, body = [WizardState])))]
async fn list_wizards(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> ApiResult<ApiJson<Vec<WizardState>>> {
    settle_request(&state.reads, &headers, WIZARDS).await?;
    Ok(ApiJson(state.wizards.list(&principal).await?))
}

/// One of the caller's wizards.
#[utoipa::path(get, path = "/api/v1/wizards/{id}", tag = "wizards",
    params(("id" = Uuid, Path)), responses((status = 200, body = WizardState), (status = 404)))]
async fn get_wizard(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<WizardState>> {
    Ok(ApiJson(state.wizards.owned(&principal, id).await?))
}

/// Submit the current step's data (checked by the step).
#[utoipa::path(put, path = "/api/v1/wizards/{id}/step", tag = "wizards", params(("id" = Uuid, Path)),
    request_body = StepRequest,
    responses((status = 200, body = WizardState), (status = 400), (status = 404), (status = 409)))]
async fn submit_step(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<StepRequest>,
) -> ApiResult<Response> {
    let submitted = state
        .wizards
        .submit_step(&principal, id, request.step_data, &meta)
        .await?;
    Ok(shown(submitted))
}

/// Go to the next step (refused while the current step is incomplete or its test has not
/// passed).
#[utoipa::path(post, path = "/api/v1/wizards/{id}/next", tag = "wizards", params(("id" = Uuid, Path)),
    responses((status = 200, body = WizardState), (status = 404), (status = 409)))]
async fn next_step(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let next = WizardCommand::Next { at: Utc::now() };
    Ok(shown(
        state.wizards.navigate(&principal, id, next, &meta).await?,
    ))
}

/// Go back one step (its data is kept).
#[utoipa::path(post, path = "/api/v1/wizards/{id}/previous", tag = "wizards", params(("id" = Uuid, Path)),
    responses((status = 200, body = WizardState), (status = 404), (status = 409)))]
async fn previous_step(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let previous = WizardCommand::Previous { at: Utc::now() };
    Ok(shown(
        state
            .wizards
            .navigate(&principal, id, previous, &meta)
            .await?,
    ))
}

/// Run the current step's test (SSH connection, or Docker through SSH). A failed test is a
/// 200 with `passed: false` and the reason; it is recorded like a passed one.
#[utoipa::path(post, path = "/api/v1/wizards/{id}/test", tag = "wizards", params(("id" = Uuid, Path)),
    request_body(content = Option<TestRequest>),
    responses((status = 200, body = TestOutcome), (status = 400), (status = 404), (status = 409)))]
async fn test_step(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
    OptionalApiJson(request): OptionalApiJson<TestRequest>,
) -> ApiResult<Response> {
    let test_type = request.and_then(|r| r.test_type);
    let (position, outcome) = state
        .wizards
        .test_step(&principal, id, test_type, &meta)
        .await?;
    Ok(Positioned(position, ApiJson(outcome)).into_response())
}

/// Complete the wizard: the host is registered `setup_pending`, then checked (and `active`
/// when the check passes). Completing twice is refused.
#[utoipa::path(post, path = "/api/v1/wizards/{id}/complete", tag = "wizards", params(("id" = Uuid, Path)),
    responses((status = 200, body = CompletionView), (status = 404), (status = 409)))]
async fn complete_wizard(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let (position, completion) = state.wizards.complete(&principal, id, &meta).await?;
    Ok(Positioned(position, ApiJson(completion)).into_response())
}

/// Cancel the wizard; the credentials it sealed are forgotten.
#[utoipa::path(post, path = "/api/v1/wizards/{id}/cancel", tag = "wizards", params(("id" = Uuid, Path)),
    responses((status = 200, body = WizardState), (status = 404), (status = 409)))]
async fn cancel_wizard(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    Ok(shown(state.wizards.cancel(&principal, id, &meta).await?))
}

/// Generate an ED25519 key pair for a host. The private key is sealed and never returned;
/// add `public_key` to the host's `authorized_keys` and give `key_id` to the
/// authentication step.
#[utoipa::path(post, path = "/api/v1/wizards/generate-ssh-key", tag = "wizards", params(GenerateKeyQuery),
    responses((status = 201, body = GeneratedKey), (status = 400)))]
async fn generate_ssh_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<GenerateKeyQuery>,
) -> ApiResult<Response> {
    let key = state
        .wizards
        .generate_key(&principal, query.comment)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(key)).into_response())
}
