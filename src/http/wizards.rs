//! `/api/v1/wizards`: guided setups that can be paused and resumed (event-sourced, so a
//! wizard is where it was after a restart). A user sees only their own wizards.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use dcp_aggregates::wizard::{Wizard, WizardCommand, WizardType};
use dcp_projections::past::WizardState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, OptionalApiJson};
use super::positions::Positioned;
use super::AppState;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;
use crate::wizards::{self as service, wizard_error, Completion, WIZARDS};

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartWizardRequest {
    /// `ssh_host_setup`.
    pub wizard_type: String,
    /// Data for the first step, submitted at once (optional).
    #[schema(value_type = Option<Object>)]
    pub initial_state: Option<Map<String, Value>>,
    /// The caller's notes on the wizard (kept with it, at most 4 KiB).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// The current step's data. Connection: `connection_name`, `host_url`
    /// (`ssh://user@host[:port]`). Authentication: `method` = `generated_key` with `key_id`,
    /// `imported_key` with `private_key` (and `passphrase`), or `password` with `password`
    /// (keys and passwords are sealed at once; only their id is kept). SSH test:
    /// `confirm_fingerprint` (the fingerprint the test showed). Confirmation: `tags`.
    #[schema(value_type = Object)]
    pub step_data: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// `ssh_connection` (SSH test step) or `docker_api` (Docker test step); optional.
    pub test_type: Option<String>,
}

/// A step test's outcome with the wizard after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestOutcome {
    pub passed: bool,
    /// What the test found: the host key and its fingerprint, the engine's version, or
    /// the error (`error`, `error_kind`).
    #[schema(value_type = Object)]
    pub details: Value,
    pub wizard: WizardState,
}

/// A completed wizard with what it made.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionView {
    pub wizard: WizardState,
    pub result: Completion,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedKey {
    /// The sealed key's id: give it as `key_id` in the authentication step.
    pub key_id: Uuid,
    /// The line to add to the host's `~/.ssh/authorized_keys`.
    pub public_key: String,
    pub fingerprint: String,
    pub algorithm: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GenerateKeyQuery {
    /// The key's comment (e.g. `dcp@host`), at most 128 printable characters.
    pub comment: Option<String>,
}

/// The wizard as the read model shows it once it has applied `cursor`.
async fn view(
    state: &AppState,
    id: Uuid,
    cursor: Option<dcp_projections::LogCursor>,
) -> ApiResult<(Option<i64>, WizardState)> {
    let position = state.settle(cursor, WIZARDS).await?;
    let row: Option<(sqlx::types::Json<WizardState>,)> =
        sqlx::query_as("SELECT doc FROM wizards WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    match row {
        Some((doc,)) => Ok((position, doc.0)),
        None => service::current(state, id).await.map(|w| (position, w)),
    }
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
    let wizard_type = match request.wizard_type.as_str() {
        "ssh_host_setup" => WizardType::SshHostSetup,
        _ => {
            return Err(ApiError::validation(
                "wizard_type",
                "unknown wizard type: expected ssh_host_setup",
            ))
        }
    };
    // The first step's data is checked before anything is recorded.
    if let Some(initial) = request.initial_state.as_ref().filter(|m| !m.is_empty()) {
        let first = wizard_type.steps()[0].name;
        wizard_type
            .validate(first, initial, &Default::default())
            .map_err(|error| wizard_error(CommandError::Rejected(error)))?;
        if let Some(name) = initial.get("connection_name").and_then(Value::as_str) {
            if service::name_taken(&state, name, None).await? {
                return Err(
                    ApiError::conflict(format!("a host named '{name}' already exists"))
                        .with_field("connection_name"),
                );
            }
        }
    }
    let id = Uuid::now_v7();
    let mut cursor = state
        .commands
        .execute::<Wizard>(
            &id.to_string(),
            WizardCommand::Start {
                wizard_id: id,
                wizard_type,
                user_id: principal.user_id,
                metadata: request.metadata.unwrap_or_default(),
                at: Utc::now(),
            },
            &meta,
        )
        .await
        .map_err(wizard_error)?;
    if let Some(initial) = request.initial_state.filter(|m| !m.is_empty()) {
        let wizard = service::current(&state, id).await?;
        let (data, writes) =
            service::prepare_step(&state, &principal, &wizard, Value::Object(initial)).await?;
        cursor = submit(&state, id, data, writes, &meta).await?.or(cursor);
    }
    let (position, wizard) = view(&state, id, cursor).await?;
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

async fn submit(
    state: &AppState,
    id: Uuid,
    data: Value,
    writes: Vec<SideWrite>,
    meta: &CommandMeta,
) -> ApiResult<Option<dcp_projections::LogCursor>> {
    state
        .commands
        .execute_with::<Wizard>(
            &id.to_string(),
            WizardCommand::SubmitStep {
                data,
                at: Utc::now(),
            },
            meta,
            writes,
        )
        .await
        .map_err(wizard_error)
}

/// The caller's wizards in progress (to resume), newest first.
#[utoipa::path(get, path = "/api/v1/wizards", tag = "wizards",
    responses((status = 200, body = [WizardState])))]
async fn list_wizards(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: axum::http::HeaderMap,
) -> ApiResult<ApiJson<Vec<WizardState>>> {
    state.settle_request(&headers, WIZARDS).await?;
    let rows: Vec<(sqlx::types::Json<WizardState>,)> = sqlx::query_as(
        "SELECT doc FROM wizards WHERE user_id = $1 AND status = 'in_progress' ORDER BY updated_at DESC LIMIT 100",
    )
    .bind(principal.user_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ApiJson(rows.into_iter().map(|(doc,)| doc.0).collect()))
}

/// One of the caller's wizards.
#[utoipa::path(get, path = "/api/v1/wizards/{id}", tag = "wizards",
    params(("id" = Uuid, Path)), responses((status = 200, body = WizardState), (status = 404)))]
async fn get_wizard(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<WizardState>> {
    service::owned(&state, &principal, id).await.map(ApiJson)
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
    let wizard = service::owned(&state, &principal, id).await?;
    if wizard.status != "in_progress" {
        return Err(ApiError::conflict(format!(
            "the wizard is {}, no longer in progress",
            wizard.status
        )));
    }
    let (data, writes) =
        service::prepare_step(&state, &principal, &wizard, request.step_data).await?;
    let cursor = submit(&state, id, data, writes, &meta).await?;
    let (position, wizard) = view(&state, id, cursor).await?;
    Ok(Positioned(position, ApiJson(wizard)).into_response())
}

async fn navigate(
    state: AppState,
    principal: crate::auth::principal::Principal,
    meta: CommandMeta,
    id: Uuid,
    command: WizardCommand,
) -> ApiResult<Response> {
    service::owned(&state, &principal, id).await?;
    let cursor = state
        .commands
        .execute::<Wizard>(&id.to_string(), command, &meta)
        .await
        .map_err(wizard_error)?;
    let (position, wizard) = view(&state, id, cursor).await?;
    Ok(Positioned(position, ApiJson(wizard)).into_response())
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
    navigate(
        state,
        principal,
        meta,
        id,
        WizardCommand::Next { at: Utc::now() },
    )
    .await
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
    navigate(
        state,
        principal,
        meta,
        id,
        WizardCommand::Previous { at: Utc::now() },
    )
    .await
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
    let wizard = service::owned(&state, &principal, id).await?;
    if wizard.status != "in_progress" {
        return Err(ApiError::conflict(format!(
            "the wizard is {}, no longer in progress",
            wizard.status
        )));
    }
    if let Some(test_type) = request.and_then(|r| r.test_type) {
        let expected = match wizard.step_name.as_str() {
            "ssh_test" => "ssh_connection",
            "docker_test" => "docker_api",
            _ => "",
        };
        if test_type != expected {
            return Err(ApiError::validation(
                "test_type",
                format!(
                    "step '{}' has {}",
                    wizard.step_name,
                    if expected.is_empty() {
                        "no test".to_string()
                    } else {
                        format!("the test '{expected}'")
                    }
                ),
            ));
        }
    }
    let (passed, details) = service::run_test(&state, &wizard).await?;
    let cursor = state
        .commands
        .execute::<Wizard>(
            &id.to_string(),
            WizardCommand::RecordTest {
                passed,
                details: details.clone(),
                at: Utc::now(),
            },
            &meta,
        )
        .await
        .map_err(wizard_error)?;
    let (position, wizard) = view(&state, id, cursor).await?;
    Ok(Positioned(
        position,
        ApiJson(TestOutcome {
            passed,
            details,
            wizard,
        }),
    )
    .into_response())
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
    let wizard = service::owned(&state, &principal, id).await?;
    let (result, cursor) = service::complete(&state, &wizard, &meta).await?;
    let (position, wizard) = view(&state, id, cursor).await?;
    Ok(Positioned(position, ApiJson(CompletionView { wizard, result })).into_response())
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
    let wizard = service::owned(&state, &principal, id).await?;
    let secrets = service::wizard_secrets(&wizard);
    let writes = if secrets.is_empty() {
        vec![]
    } else {
        vec![SideWrite::ForgetSecrets { ids: secrets }]
    };
    let cursor = state
        .commands
        .execute_with::<Wizard>(
            &id.to_string(),
            WizardCommand::Cancel { at: Utc::now() },
            &meta,
            writes,
        )
        .await
        .map_err(wizard_error)?;
    let (position, wizard) = view(&state, id, cursor).await?;
    Ok(Positioned(position, ApiJson(wizard)).into_response())
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
    let comment = query
        .comment
        .unwrap_or_else(|| format!("dcp-{}", principal.username));
    if comment.chars().count() > 128 || comment.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::validation(
            "comment",
            "at most 128 printable characters without spaces",
        ));
    }
    let (key_id, public_key, fingerprint) =
        service::generate_key(&state, &principal, &comment).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(GeneratedKey {
            key_id,
            public_key,
            fingerprint,
            algorithm: "ssh-ed25519".into(),
        }),
    )
        .into_response())
}
