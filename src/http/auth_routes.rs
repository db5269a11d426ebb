//! `/api/v1/auth`: login, refresh (rotating), logout, the current user, password change.
//!
//! Logins and their failures are events (`Session` and `AccessAttempt` aggregates), so
//! the audit log shows attempts as well as successes. The refresh token is returned in
//! the body and in an HttpOnly cookie scoped to `/api/v1/auth`.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand, LoginFailure};
use dcp_aggregates::session::{RevocationReason, Session, SessionCommand, SessionError};
use dcp_aggregates::user::{User, UserCommand};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::context::RequestContext;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{ApiJson, Auth, OptionalApiJson};
use super::positions::{Positioned, SESSIONS, USERS};
use super::users::{find_user, user_command_error, UserView};
use super::AppState;
use crate::auth::password::check_policy;
use crate::auth::refresh::{self, Redemption};
use crate::auth::throttle::client_key;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;

/// Name of the refresh token cookie.
pub const REFRESH_COOKIE: &str = "dcp_refresh";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh_tokens))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email.
    pub username: Option<String>,
    /// Email (alternative to `username`).
    pub email: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserView,
}

fn session_error(error: CommandError<SessionError>) -> ApiError {
    match error {
        CommandError::Rejected(SessionError::NotFound | SessionError::AlreadyEnded) => {
            ApiError::new(
                ErrorCode::TokenInvalid,
                "the session has ended; log in again",
            )
        }
        CommandError::Rejected(other) => ApiError::internal(anyhow::anyhow!(other)),
        CommandError::Conflict => ApiError::conflict("the session changed at the same time; retry"),
        CommandError::Unavailable(e) => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable",
        )
        .with_source(e),
        CommandError::Other(e) => ApiError::internal(e),
    }
}

fn refresh_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let secure = if state.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; Path=/api/v1/auth; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn token_response(
    state: &AppState,
    user: UserView,
    session_id: Uuid,
    refresh_token: String,
    position: Option<i64>,
) -> ApiResult<Response> {
    let access_token = state.tokens.issue(user.id, session_id)?;
    let cookie = refresh_cookie(
        state,
        &refresh_token,
        state.settings.session_ttl().as_secs() as i64,
    );
    let body = TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl().as_secs(),
        user,
    };
    Ok(Positioned(position, ([(header::SET_COOKIE, cookie)], ApiJson(body))).into_response())
}

async fn record_failed_login(
    state: &AppState,
    meta: &CommandMeta,
    login: &str,
    user_id: Option<Uuid>,
    reason: LoginFailure,
) {
    let command = AccessAttemptCommand::RecordFailedLogin {
        login: login.to_string(),
        user_id,
        reason,
        at: Utc::now(),
    };
    let id = Uuid::now_v7().to_string();
    if let Err(error) = state
        .commands
        .execute::<AccessAttempt>(&id, command, meta)
        .await
    {
        tracing::error!(%error, "Failed to record a failed login");
    }
}

/// Another attempt for the same account (or too many from one client) is in progress.
fn busy() -> ApiError {
    rate_limited(std::time::Duration::from_secs(1))
}

fn rate_limited(wait: std::time::Duration) -> ApiError {
    // Rounded up: a client that waits this long is let through.
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut error = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many failed logins; retry in {seconds} s"),
    )
    .with_details(serde_json::json!({ "retry_after": seconds }));
    error.retry_after = Some(seconds);
    error
}

/// Ends every open session of `user_id` (but `except`) and spends their refresh tokens.
/// Returns the cursor of the last revocation, for read-your-writes.
pub async fn revoke_sessions(
    state: &AppState,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: RevocationReason,
    meta: &CommandMeta,
) -> ApiResult<Option<dcp_projections::LogCursor>> {
    let open: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND id IS DISTINCT FROM $2",
    )
    .bind(user_id)
    .bind(except)
    .fetch_all(&state.pool)
    .await?;
    let mut last = None;
    for session_id in open {
        let command = SessionCommand::Revoke {
            reason,
            at: Utc::now(),
        };
        match state
            .commands
            .execute::<Session>(&session_id.to_string(), command, meta)
            .await
        {
            Ok(cursor) => last = last.max(cursor),
            // Ended meanwhile (a logout): nothing left to do.
            Err(CommandError::Rejected(_)) => {}
            Err(other) => return Err(session_error(other)),
        }
    }
    // Tokens of sessions the read model has not shown yet are spent too.
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL AND session_id IS DISTINCT FROM $2")
        .bind(user_id)
        .bind(except)
        .execute(&state.pool)
        .await?;
    Ok(last)
}

/// Log in with username (or email) and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "wrong credentials"),
              (status = 429, description = "too many failed logins (Retry-After)")))]
async fn login(
    State(state): State<AppState>,
    context: RequestContext,
    meta: CommandMeta,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let login = match (&body.username, &body.email) {
        (Some(login), None) | (None, Some(login)) => login.trim().to_string(),
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "username",
                "send either username or email, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::validation(
                "username",
                "username or email is required",
            ))
        }
    };
    if login.is_empty() || login.len() > 256 {
        return Err(ApiError::validation(
            "username",
            "username or email must be 1 to 256 characters",
        ));
    }
    if body.password.expose_secret().len() > crate::auth::password::MAX_PASSWORD_LEN {
        return Err(ApiError::validation("password", "password is too long"));
    }
    let now = Instant::now();
    let ip = context.client_ip.map(client_key);
    if let Some(wait) = ip.and_then(|ip| state.ip_throttle.check(&ip, now)) {
        return Err(rate_limited(wait));
    }
    // A few attempts at once per client, one per account: every attempt is counted before
    // the next may start, so parallel requests cannot outrun the throttle.
    let _ip_slot = match ip {
        Some(ip) => Some(state.login_ips_in_flight.try_enter(&ip).ok_or_else(busy)?),
        None => None,
    };
    let lowered = login.to_lowercase();
    let found: Option<(Uuid, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT u.id, u.username, u.role, u.is_active, c.password_hash FROM users u \
         LEFT JOIN credentials c ON c.user_id = u.id \
         WHERE lower(u.username) = $1 OR lower(u.email) = $1 ORDER BY (lower(u.username) = $1) DESC LIMIT 1",
    )
    .bind(&lowered)
    .fetch_optional(&state.pool)
    .await?;
    // Username and email of one account share one budget.
    let account_key = match &found {
        Some(user) => format!("user:{}", user.0),
        None => format!("login:{lowered}"),
    };
    if let Some(wait) = state.account_throttle.check(&account_key, now) {
        return Err(rate_limited(wait));
    }
    let _account_slot = state
        .login_accounts_in_flight
        .try_enter(&account_key)
        .ok_or_else(busy)?;
    let hash = found.as_ref().and_then(|f| f.4.as_deref());
    let password_ok = state.hasher.verify(&body.password, hash).await?;
    let failure = match &found {
        None => Some(LoginFailure::UnknownUser),
        Some(_) if !password_ok => Some(LoginFailure::WrongPassword),
        Some((_, _, _, false, _)) => Some(LoginFailure::InactiveUser),
        Some(_) => None,
    };
    if let Some(reason) = failure {
        state.account_throttle.fail(&account_key, now);
        if let Some(ip) = ip {
            state.ip_throttle.fail(&ip, now);
        }
        record_failed_login(&state, &meta, &login, found.as_ref().map(|f| f.0), reason).await;
        // One answer for every failure: a deactivated account must not confirm a guessed
        // password. The audit log keeps the real reason.
        return Err(ApiError::authentication("invalid username or password"));
    }
    let Some((user_id, username, role, _, _)) = found else {
        return Err(ApiError::authentication("invalid username or password"));
    };
    state.account_throttle.succeed(&account_key);
    let session_id = Uuid::now_v7();
    let expires_at = Utc::now() + state.settings.session_ttl();
    let command = SessionCommand::Start {
        session_id,
        user_id,
        username: username.clone(),
        expires_at,
        at: Utc::now(),
    };
    let meta = meta.acting_as(user_id, &username, &role);
    let cursor = state
        .commands
        .execute::<Session>(&session_id.to_string(), command, &meta)
        .await
        .map_err(session_error)?;
    let refresh_token = refresh::new_token();
    refresh::store(&state.pool, &refresh_token, session_id, user_id, expires_at).await?;
    let position = state.settle(cursor, SESSIONS).await?;
    let user = find_user(&state.pool, user_id)
        .await?
        .ok_or_else(|| ApiError::authentication("invalid username or password"))?;
    token_response(&state, user, session_id, refresh_token, position)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token; may be omitted when the `dcp_refresh` cookie is sent.
    pub refresh_token: Option<String>,
}

/// Trade a refresh token for new tokens. The old refresh token is spent; presenting a spent
/// token again revokes the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "optional when the cookie is sent"),
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid, expired or reused token")))]
async fn refresh_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    meta: CommandMeta,
    OptionalApiJson(body): OptionalApiJson<RefreshRequest>,
) -> ApiResult<Response> {
    let token = body
        .and_then(|body| body.refresh_token)
        .or_else(|| cookie_token(&headers))
        .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "a refresh token is required"))?;
    match refresh::redeem(&state.pool, &token).await? {
        Redemption::Invalid => Err(ApiError::new(
            ErrorCode::TokenInvalid,
            "the refresh token is invalid or expired",
        )),
        Redemption::Reused {
            session_id,
            user_id,
        } => {
            let meta = match find_user(&state.pool, user_id).await? {
                Some(user) => meta.acting_as(user_id, &user.username, &user.role),
                None => meta,
            };
            let command = SessionCommand::Revoke {
                reason: RevocationReason::RefreshTokenReuse,
                at: Utc::now(),
            };
            match state
                .commands
                .execute::<Session>(&session_id.to_string(), command, &meta)
                .await
            {
                Ok(cursor) => {
                    state.settle(cursor, SESSIONS).await?;
                }
                Err(CommandError::Rejected(_)) => {}
                Err(other) => return Err(session_error(other)),
            }
            refresh::spend_session(&state.pool, session_id).await?;
            Err(ApiError::new(
                ErrorCode::TokenInvalid,
                "this refresh token was already used: the session has been revoked; log in again",
            ))
        }
        Redemption::Rotated {
            session_id,
            user_id,
            token,
            ..
        } => {
            let principal =
                crate::auth::principal::load_principal(&state.pool, user_id, session_id).await?;
            if principal.is_err() {
                refresh::spend_session(&state.pool, session_id).await?;
                return Err(ApiError::new(
                    ErrorCode::TokenInvalid,
                    "the session has ended; log in again",
                ));
            }
            let user = find_user(&state.pool, user_id)
                .await?
                .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "the session has ended"))?;
            token_response(&state, user, session_id, token, None)
        }
    }
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401)))]
async fn logout(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
) -> ApiResult<Response> {
    let command = SessionCommand::LogOut { at: Utc::now() };
    let cursor = state
        .commands
        .execute::<Session>(&principal.session_id.to_string(), command, &meta)
        .await
        .map_err(session_error)?;
    refresh::spend_session(&state.pool, principal.session_id).await?;
    let position = state.settle(cursor, SESSIONS).await?;
    let clear = refresh_cookie(&state, "", 0);
    Ok(Positioned(
        position,
        (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]),
    )
    .into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = UserView), (status = 401)))]
async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
    Auth(principal): Auth,
) -> ApiResult<ApiJson<UserView>> {
    state.settle_request(&headers, USERS).await?;
    find_user(&state.pool, principal.user_id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::authentication("the account no longer exists"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Change your own password. Your other sessions end.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 200, body = UserView), (status = 400), (status = 401, description = "current password wrong"), (status = 429)))]
async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    context: RequestContext,
    meta: CommandMeta,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    let now = Instant::now();
    let account_key = format!("user:{}", principal.user_id);
    if let Some(wait) = state.account_throttle.check(&account_key, now) {
        return Err(rate_limited(wait));
    }
    let _account_slot = state
        .login_accounts_in_flight
        .try_enter(&account_key)
        .ok_or_else(busy)?;
    let hash: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
            .bind(principal.user_id)
            .fetch_optional(&state.pool)
            .await?;
    if body.current_password.expose_secret().len() > crate::auth::password::MAX_PASSWORD_LEN
        || !state
            .hasher
            .verify(&body.current_password, hash.as_deref())
            .await?
    {
        state.account_throttle.fail(&account_key, now);
        if let Some(ip) = context.client_ip {
            state.ip_throttle.fail(&client_key(ip), now);
        }
        return Err(ApiError::authentication("the current password is wrong")
            .with_field("current_password"));
    }
    check_policy(body.new_password.expose_secret(), &principal.username)
        .map_err(|m| ApiError::validation("new_password", m))?;
    if body.new_password.expose_secret() == body.current_password.expose_secret() {
        return Err(ApiError::validation(
            "new_password",
            "the new password must differ from the current one",
        ));
    }
    let new_hash = state.hasher.hash(&body.new_password).await?;
    // The new hash commits in the same transaction as `UserPasswordChanged`.
    let command = UserCommand::ChangePassword {
        reset_by_admin: false,
        at: Utc::now(),
    };
    let side_writes = vec![SideWrite::SetPasswordHash {
        user_id: principal.user_id,
        hash: new_hash,
    }];
    let cursor = state
        .commands
        .execute_with::<User>(&principal.user_id.to_string(), command, &meta, side_writes)
        .await
        .map_err(user_command_error)?;
    let last = revoke_sessions(
        &state,
        principal.user_id,
        Some(principal.session_id),
        RevocationReason::PasswordChanged,
        &meta,
    )
    .await?
    .max(cursor);
    let position = state.settle(cursor, USERS).await?;
    state.settle(last, SESSIONS).await?;
    let user = find_user(&state.pool, principal.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Positioned(position, ApiJson(user)))
}
