//! Issuing tokens and ending sessions: the token response and refresh cookie, the
//! revocation of a user's sessions, the recording of failed logins, and the errors that
//! go with them.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand, LoginFailure};
use dcp_aggregates::session::{RevocationReason, Session, SessionCommand};
use uuid::Uuid;

use crate::commands::{CommandBus, CommandError, CommandMeta};
use crate::http::error::{ApiError, ApiResult, ErrorCode};
use crate::http::extract::ApiJson;
use crate::http::positions::Positioned;
use crate::http::users::UserView;
use crate::http::AppState;

use super::{TokenResponse, REFRESH_COOKIE};

pub(super) fn refresh_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
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

pub(super) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A request header by which a client (the browser UI) asks for the refresh token in the
/// HttpOnly cookie only, not in the response body.
pub const COOKIE_ONLY_HEADER: &str = "x-dcp-refresh-cookie-only";

pub(super) fn token_response(
    state: &AppState,
    headers: &HeaderMap,
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
    let cookie_only = headers.contains_key(COOKIE_ONLY_HEADER);
    let body = TokenResponse {
        access_token,
        refresh_token: (!cookie_only).then_some(refresh_token),
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl().as_secs(),
        user,
    };
    Ok(Positioned(position, ([(header::SET_COOKIE, cookie)], ApiJson(body))).into_response())
}

pub(super) async fn record_failed_login(
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
pub(super) fn busy() -> ApiError {
    rate_limited(std::time::Duration::from_secs(1))
}

pub(super) fn rate_limited(wait: std::time::Duration) -> ApiError {
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
    pool: &sqlx::PgPool,
    commands: &CommandBus,
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
    .fetch_all(pool)
    .await?;
    let mut last = None;
    for session_id in open {
        let command = SessionCommand::Revoke {
            reason,
            at: Utc::now(),
        };
        match commands
            .execute::<Session>(&session_id.to_string(), command, meta)
            .await
        {
            Ok(cursor) => last = last.max(cursor),
            // Ended meanwhile (a logout): nothing left to do.
            Err(CommandError::Rejected(_)) => {}
            Err(other) => return Err(ApiError::from(other)),
        }
    }
    // Tokens of sessions the read model has not shown yet are spent too.
    sqlx::query("UPDATE refresh_tokens SET used_at = now(), spent_by = 'revocation' WHERE user_id = $1 AND used_at IS NULL AND session_id IS DISTINCT FROM $2")
        .bind(user_id)
        .bind(except)
        .execute(pool)
        .await?;
    Ok(last)
}
