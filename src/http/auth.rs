//! `/api/v1/auth`: login, refresh (rotating), logout, the current user, password change;
//! the work is the accounts service's ([`crate::accounts`]). The refresh token is returned
//! in the body and in an HttpOnly cookie scoped to `/api/v1/auth`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, Auth, OptionalApiJson};
use super::positions::{settle_request, Positioned};
use crate::accounts::{
    ChangePasswordRequest, IssuedTokens, LoginRequest, RefreshRequest, UserView,
};
use crate::commands::{CommandMeta, RequestContext};
use crate::read_models::USERS;

/// Name of the refresh token cookie.
pub const REFRESH_COOKIE: &str = "dcp_refresh";

/// A request header by which a client (the browser UI) asks for the refresh token in the
/// HttpOnly cookie only, not in the response body.
pub const COOKIE_ONLY_HEADER: &str = "x-dcp-refresh-cookie-only";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh_tokens))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
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
    let issued = state.accounts.login(body, &context, &meta).await?;
    Ok(token_response(&state, &headers, issued))
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
        .or_else(|| cookie_token(&headers));
    let issued = state.accounts.refresh(token, &meta).await?;
    Ok(token_response(&state, &headers, issued))
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401)))]
async fn logout(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
) -> ApiResult<Response> {
    let position = state.accounts.logout(&principal, &meta).await?;
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
    settle_request(&state.reads, &headers, USERS).await?;
    Ok(ApiJson(state.accounts.me(&principal).await?))
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
    let (position, user) = state
        .accounts
        .change_password(&principal, body, &context, &meta)
        .await?;
    Ok(Positioned(position, ApiJson(user)))
}

/// The tokens in the body (the refresh token left out when the client asks for the cookie
/// only) and the refresh token in its cookie.
fn token_response(state: &AppState, headers: &HeaderMap, issued: IssuedTokens) -> Response {
    let cookie = refresh_cookie(state, &issued.refresh_token, issued.session_ttl as i64);
    let cookie_only = headers.contains_key(COOKIE_ONLY_HEADER);
    let body = TokenResponse {
        access_token: issued.access_token,
        refresh_token: (!cookie_only).then_some(issued.refresh_token),
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user: issued.user,
    };
    Positioned(
        issued.position,
        ([(header::SET_COOKIE, cookie)], ApiJson(body)),
    )
    .into_response()
}

fn refresh_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let secure = if state.settings.https() {
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
