//! `/api/v1/auth`: login, refresh (rotating), logout, the current user, password change.
//!
//! Logins and their failures are events (`Session` and `AccessAttempt` aggregates), so
//! the audit log shows attempts as well as successes. The refresh token is returned in
//! the body and in an HttpOnly cookie scoped to `/api/v1/auth`.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use dcp_aggregates::access_attempt::LoginFailure;
use dcp_aggregates::session::{RevocationReason, Session, SessionCommand};
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
use super::users::{find_user, UserView};
use super::AppState;
use crate::auth::password::check_policy;
use crate::auth::refresh::{self, Redemption};
use crate::auth::throttle::client_key;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;

mod sessions;

use sessions::{
    busy, cookie_token, rate_limited, record_failed_login, refresh_cookie, token_response,
};
pub use sessions::{revoke_sessions, COOKIE_ONLY_HEADER};

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
    /// Absent when the request sent `X-Dcp-Refresh-Cookie-Only` (the browser UI): then the
    /// token is in the HttpOnly cookie only, out of reach of the page's scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserView,
}

/// Log in with username (or email) and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    params(("X-Dcp-Refresh-Cookie-Only" = Option<String>, Header, description = "any value: the refresh token is set in the HttpOnly cookie only, not in the body (the browser UI)")),
    responses((status = 200, body = TokenResponse), (status = 401, description = "wrong credentials"),
              (status = 429, description = "too many failed logins (Retry-After)")))]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
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
        .map_err(ApiError::from)?;
    let refresh_token = refresh::new_token();
    refresh::store(&state.pool, &refresh_token, session_id, user_id, expires_at).await?;
    let position = state.settle(cursor, SESSIONS).await?;
    let user = find_user(&state.pool, user_id)
        .await?
        .ok_or_else(|| ApiError::authentication("invalid username or password"))?;
    token_response(&state, &headers, user, session_id, refresh_token, position)
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
    params(("X-Dcp-Refresh-Cookie-Only" = Option<String>, Header, description = "any value: the new refresh token is set in the HttpOnly cookie only, not in the body")),
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
    match refresh::redeem(&state.pool, &token, state.settings.refresh_reuse_grace()).await? {
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
                Err(other) => return Err(ApiError::from(other)),
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
            token_response(&state, &headers, user, session_id, token, None)
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
        .map_err(ApiError::from)?;
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
        .map_err(ApiError::from)?;
    let last = revoke_sessions(
        &state.pool,
        &state.commands,
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
