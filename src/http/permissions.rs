//! The permission table: every route and the roles allowed on it, in one place.
//!
//! The [`authorize`] middleware runs after routing, looks the matched route up here,
//! authenticates the caller (token, then session and user looked up per request) and
//! checks the role. A route missing from the table is refused (fail closed); a test
//! checks that the table and the router name the same routes.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dcp_aggregates::Role;

use super::context::RequestContext;
use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::commands::CommandMeta;
use crate::denials::Refused;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any signed-in user, even one who must still change their password.
    SignedIn,
    /// Signed-in users with one of these roles.
    Roles(&'static [Role]),
}

const ADMIN: Access = Access::Roles(&[Role::Admin]);
const OPERATE: Access = Access::Roles(&[Role::Admin, Role::Operator]);
const VIEW: Access = Access::Roles(&[Role::Admin, Role::Operator, Role::Viewer]);

/// One row: method, route template (as in the router), access.
pub type RoutePermission = (&'static str, &'static str, Access);

/// Every route of the API.
pub const PERMISSIONS: &[RoutePermission] = &[
    ("GET", "/health", Access::Public),
    ("GET", "/health/live", Access::Public),
    ("GET", "/health/ready", Access::Public),
    ("GET", "/health/detailed", ADMIN),
    ("GET", "/metrics", ADMIN),
    ("GET", "/api/v1/openapi.json", Access::Public),
    ("POST", "/api/v1/auth/login", Access::Public),
    ("POST", "/api/v1/auth/refresh", Access::Public),
    ("POST", "/api/v1/auth/logout", Access::SignedIn),
    ("GET", "/api/v1/auth/me", Access::SignedIn),
    ("POST", "/api/v1/auth/password", Access::SignedIn),
    ("GET", "/api/v1/users", ADMIN),
    ("POST", "/api/v1/users", ADMIN),
    ("GET", "/api/v1/users/{id}", ADMIN),
    ("PATCH", "/api/v1/users/{id}", ADMIN),
    ("DELETE", "/api/v1/users/{id}", ADMIN),
    ("GET", "/api/v1/containers", VIEW),
    ("POST", "/api/v1/containers", OPERATE),
    ("GET", "/api/v1/containers/{id}", VIEW),
    ("DELETE", "/api/v1/containers/{id}", OPERATE),
    ("GET", "/api/v1/containers/{id}/history", VIEW),
    ("POST", "/api/v1/containers/{id}/start", OPERATE),
    ("POST", "/api/v1/containers/{id}/stop", OPERATE),
    ("POST", "/api/v1/containers/{id}/restart", OPERATE),
    ("POST", "/api/v1/containers/{id}/kill", OPERATE),
    ("POST", "/api/v1/containers/{id}/pause", OPERATE),
    ("POST", "/api/v1/containers/{id}/unpause", OPERATE),
    ("POST", "/api/v1/containers/{id}/rename", OPERATE),
    ("POST", "/api/v1/containers/{id}/recreate", OPERATE),
    ("GET", "/api/v1/operations/{id}", VIEW),
    ("POST", "/api/v1/ws-tickets", VIEW),
    ("GET", "/api/v1/images", VIEW),
    ("POST", "/api/v1/images/pull", OPERATE),
    ("DELETE", "/api/v1/images/{id}", OPERATE),
    ("GET", "/api/v1/volumes", VIEW),
    ("POST", "/api/v1/volumes", OPERATE),
    ("DELETE", "/api/v1/volumes/{name}", OPERATE),
    ("GET", "/api/v1/networks", VIEW),
    ("POST", "/api/v1/networks", OPERATE),
    ("DELETE", "/api/v1/networks/{id}", OPERATE),
    ("POST", "/api/v1/networks/{id}/connect", OPERATE),
    ("POST", "/api/v1/networks/{id}/disconnect", OPERATE),
    ("GET", "/api/v1/users/{id}/state", ADMIN),
    ("GET", "/api/v1/users/{id}/diff", ADMIN),
    ("GET", "/api/v1/containers/{id}/state", VIEW),
    ("GET", "/api/v1/containers/{id}/diff", VIEW),
    ("GET", "/api/v1/images/{id}/state", VIEW),
    ("GET", "/api/v1/images/{id}/diff", VIEW),
    ("GET", "/api/v1/volumes/{name}/state", VIEW),
    ("GET", "/api/v1/volumes/{name}/diff", VIEW),
    ("GET", "/api/v1/networks/{id}/state", VIEW),
    ("GET", "/api/v1/networks/{id}/diff", VIEW),
    ("GET", "/api/v1/audit-logs", ADMIN),
    ("GET", "/api/v1/audit-logs/verify", ADMIN),
    ("POST", "/api/v1/audit-logs/verify", ADMIN),
    ("GET", "/api/v1/audit-logs/checkpoint", ADMIN),
    ("GET", "/api/v1/events", ADMIN),
    ("GET", "/api/v1/hosts", VIEW),
    ("POST", "/api/v1/hosts", ADMIN),
    ("GET", "/api/v1/hosts/{id}", VIEW),
    ("PATCH", "/api/v1/hosts/{id}", ADMIN),
    ("DELETE", "/api/v1/hosts/{id}", ADMIN),
    ("POST", "/api/v1/hosts/{id}/test", ADMIN),
    ("GET", "/api/v1/hosts/{id}/state", VIEW),
    ("GET", "/api/v1/hosts/{id}/diff", VIEW),
    // The only wizard type (ssh_host_setup) is for admins.
    ("POST", "/api/v1/wizards/start", ADMIN),
    ("GET", "/api/v1/wizards", ADMIN),
    ("GET", "/api/v1/wizards/{id}", ADMIN),
    ("PUT", "/api/v1/wizards/{id}/step", ADMIN),
    ("POST", "/api/v1/wizards/{id}/next", ADMIN),
    ("POST", "/api/v1/wizards/{id}/previous", ADMIN),
    ("POST", "/api/v1/wizards/{id}/test", ADMIN),
    ("POST", "/api/v1/wizards/{id}/complete", ADMIN),
    ("POST", "/api/v1/wizards/{id}/cancel", ADMIN),
    ("POST", "/api/v1/wizards/generate-ssh-key", ADMIN),
];

/// The access rule of a route, if it is in the table.
pub fn access_for(method: &str, route: &str) -> Option<Access> {
    // HEAD is answered by the GET handler, so it follows the GET rule.
    let method = if method == "HEAD" { "GET" } else { method };
    PERMISSIONS
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, access)| *access)
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The permission middleware (a route layer: the route is known).
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        // This layer only wraps matched routes; without a route nothing is allowed.
        return ApiError::forbidden("no route matched").into_response();
    };
    tracing::Span::current().record("route", route.as_str());
    let method = request.method().as_str().to_string();
    let Some(access) = access_for(&method, &route) else {
        tracing::error!(%method, %route, "route missing from the permission table; refusing");
        return ApiError::forbidden("this route is not open to anyone").into_response();
    };
    if access == Access::Public {
        return next.run(request).await;
    }
    let principal = match state.accounts.authenticate(bearer_token(&request)).await {
        Ok(principal) => principal,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if let Access::Roles(roles) = access {
        if principal.must_change_password {
            return ApiError::new(
                ErrorCode::PasswordChangeRequired,
                "you must change your password before doing anything else (POST /api/v1/auth/password)",
            )
            .into_response();
        }
        if !roles.contains(&principal.role) {
            if let Some(seconds) = state.denials.count(&principal) {
                let mut error = ApiError::new(
                    ErrorCode::RateLimited,
                    format!("too many refused requests; retry in {seconds} s"),
                );
                error.retry_after = Some(seconds);
                return error.into_response();
            }
            let meta = match request.extensions().get::<RequestContext>() {
                Some(context) => CommandMeta::from_request(context, Some(&principal)),
                None => CommandMeta::default(),
            };
            let refused = Refused {
                method: &method,
                route: &route,
                path: request.uri().path(),
            };
            state.denials.record(&principal, &meta, refused).await;
            return ApiError::forbidden(format!(
                "your role '{}' may not {} {}",
                principal.role, method, route
            ))
            .with_details(serde_json::json!({
                "required_roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            }))
            .into_response();
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
