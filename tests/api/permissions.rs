//! Permission matrix: every route × every role and anonymous.
//!
//! The matrix iterates over `PERMISSIONS`, so a route added to the table is covered at once;
//! a second test keeps the table and the OpenAPI document naming the same routes.

use std::collections::BTreeSet;
use std::time::Duration;

use dcp::http::permissions::{Access, PERMISSIONS};
use dcp_aggregates::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// Who makes a request in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Signed(Role),
}

const CALLERS: [Caller; 4] = [
    Caller::Anonymous,
    Caller::Signed(Role::Viewer),
    Caller::Signed(Role::Operator),
    Caller::Signed(Role::Admin),
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Signed(role) => role.as_str(),
        }
    }
}

/// The status an allowed caller gets from each route with the request `matrix_request` builds.
/// A route missing here is only checked for "neither 401 nor 403".
const ALLOWED_STATUS: &[(&str, &str, StatusCode)] = &[
    ("GET", "/health", StatusCode::OK),
    ("GET", "/health/live", StatusCode::OK),
    ("GET", "/health/ready", StatusCode::OK),
    ("GET", "/health/detailed", StatusCode::OK),
    ("GET", "/api/v1/openapi.json", StatusCode::OK),
    ("POST", "/api/v1/auth/login", StatusCode::OK),
    ("POST", "/api/v1/auth/refresh", StatusCode::OK),
    ("POST", "/api/v1/auth/logout", StatusCode::NO_CONTENT),
    ("GET", "/api/v1/auth/me", StatusCode::OK),
    ("POST", "/api/v1/auth/password", StatusCode::OK),
    ("GET", "/api/v1/users", StatusCode::OK),
    ("POST", "/api/v1/users", StatusCode::CREATED),
    ("GET", "/api/v1/users/{id}", StatusCode::OK),
    ("PATCH", "/api/v1/users/{id}", StatusCode::OK),
    ("DELETE", "/api/v1/users/{id}", StatusCode::NO_CONTENT),
    ("GET", "/api/v1/audit-logs", StatusCode::OK),
    ("GET", "/api/v1/events", StatusCode::OK),
];

fn allowed_status(method: &str, route: &str) -> Option<StatusCode> {
    ALLOWED_STATUS
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, status)| *status)
}

fn password_of(username: &str) -> String {
    format!("{username}-password-123")
}

/// One signed-in account per role, plus an account the public auth routes log in as.
/// Refused requests are throttled per user (30 free), so the matrix moves to new accounts
/// every [`ROUTES_PER_GENERATION`] routes.
struct Accounts {
    tokens: Vec<(Role, String)>,
    generation: usize,
}

const ROUTES_PER_GENERATION: usize = 20;

impl Accounts {
    async fn create(app: &TestApp, generation: usize) -> Accounts {
        let mut tokens = Vec::new();
        for role in Role::ALL {
            let (_, token) = app
                .user_with_token(&format!("matrix-{role}-g{generation}"), role.as_str())
                .await;
            tokens.push((role, token));
        }
        if generation == 0 {
            app.create_user("matrix-login", "viewer", &password_of("matrix-login"))
                .await;
        }
        Accounts { tokens, generation }
    }

    fn token(&self, role: Role) -> String {
        self.tokens
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, token)| token.clone())
            .unwrap()
    }
}

/// A concrete request for one cell of the matrix.
struct MatrixRequest {
    path: String,
    token: Option<String>,
    body: Option<Value>,
}

/// Replaces every `{param}` of a route template with `value`.
fn fill_template(route: &str, value: &str) -> String {
    route
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                value
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Builds a request that succeeds when the caller is allowed, without spoiling the caller's
/// token for the rest of the matrix (logout and password change use other sessions/users).
async fn matrix_request(
    app: &TestApp,
    accounts: &Accounts,
    method: &str,
    route: &str,
    caller: Caller,
    serial: usize,
) -> MatrixRequest {
    let mut token = match caller {
        Caller::Anonymous => None,
        Caller::Signed(role) => Some(accounts.token(role)),
    };
    // A fresh target per request: not the caller, so PATCH and DELETE by an admin are legitimate.
    let path = if route.contains('{') {
        let target = app
            .create_user(
                &format!("matrix-target-{serial}"),
                "viewer",
                &password_of("matrix-target"),
            )
            .await;
        fill_template(route, target["id"].as_str().unwrap())
    } else {
        route.to_string()
    };
    let body = match (method, route) {
        ("POST", "/api/v1/auth/login") => Some(json!({
            "username": "matrix-login",
            "password": password_of("matrix-login"),
        })),
        ("POST", "/api/v1/auth/refresh") => {
            let login = app
                .login_ok("matrix-login", &password_of("matrix-login"))
                .await;
            Some(json!({ "refresh_token": login["refresh_token"] }))
        }
        ("POST", "/api/v1/auth/logout") => {
            if let Caller::Signed(role) = caller {
                let username = format!("matrix-{role}-g{}", accounts.generation);
                let login = app.login_ok(&username, &password_of(&username)).await;
                token = login["access_token"].as_str().map(str::to_string);
            }
            None
        }
        ("POST", "/api/v1/auth/password") => {
            if let Caller::Signed(role) = caller {
                let username = format!("matrix-pw-{serial}");
                let (_, fresh) = app.user_with_token(&username, role.as_str()).await;
                token = Some(fresh);
            }
            Some(json!({
                "current_password": password_of(&format!("matrix-pw-{serial}")),
                "new_password": "a-brand-new-password-9",
            }))
        }
        ("POST", "/api/v1/users") => Some(json!({
            "username": format!("matrix-new-{serial}"),
            "email": format!("matrix-new-{serial}@example.com"),
            "full_name": "Matrix New",
            "role": "viewer",
            "password": "matrix-new-password-1",
        })),
        ("PATCH", "/api/v1/users/{id}") => Some(json!({ "full_name": "Changed Name" })),
        ("POST" | "PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    };
    MatrixRequest { path, token, body }
}

/// What one caller must get on one route; `Err` says what went wrong.
async fn check_cell(
    response: reqwest::Response,
    access: Access,
    caller: Caller,
    expected_when_allowed: Option<StatusCode>,
) -> Result<(), String> {
    let status = response.status();
    let denied = match (access, caller) {
        (Access::Public, _) => None,
        (_, Caller::Anonymous) => Some((StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILED")),
        (Access::SignedIn, Caller::Signed(_)) => None,
        (Access::Roles(roles), Caller::Signed(role)) if !roles.contains(&role) => {
            Some((StatusCode::FORBIDDEN, "FORBIDDEN"))
        }
        (Access::Roles(_), Caller::Signed(_)) => None,
    };
    match (denied, expected_when_allowed) {
        (Some((expected, code)), _) if status == expected => {
            assert_error(response, expected, code).await;
            Ok(())
        }
        (Some((expected, _)), _) => Err(format!(
            "expected {expected}, got {status}: {}",
            response.text().await.unwrap_or_default()
        )),
        (None, Some(expected)) if status == expected => Ok(()),
        (None, Some(expected)) => Err(format!(
            "allowed, expected {expected}, got {status}: {}",
            response.text().await.unwrap_or_default()
        )),
        (None, None) if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN => {
            Err(format!(
                "allowed, but got {status}: {}",
                response.text().await.unwrap_or_default()
            ))
        }
        (None, None) => Ok(()),
    }
}

#[tokio::test]
async fn every_route_gives_each_role_the_status_its_permission_says() {
    let app = spawn_app().await;
    let mut accounts = Accounts::create(&app, 0).await;
    let mut serial = 0;
    let mut failures = Vec::new();
    let mut table = format!(
        "{:<7} {:<28} {:<10} {:>9} {:>6} {:>8} {:>5}\n",
        "method", "route", "access", "anonymous", "viewer", "operator", "admin"
    );
    for (index, (method, route, access)) in PERMISSIONS.iter().enumerate() {
        if index > 0 && index % ROUTES_PER_GENERATION == 0 {
            accounts = Accounts::create(&app, index / ROUTES_PER_GENERATION).await;
        }
        let access_label = match access {
            Access::Public => "public".to_string(),
            Access::SignedIn => "signed-in".to_string(),
            Access::Roles(roles) => roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut cells = Vec::new();
        for caller in CALLERS {
            serial += 1;
            let request = matrix_request(&app, &accounts, method, route, caller, serial).await;
            let response = app
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &request.path,
                    request.token.as_deref(),
                    request.body,
                )
                .await;
            let status = response.status().as_u16();
            let expected = allowed_status(method, route);
            let outcome = check_cell(response, *access, caller, expected).await;
            let mark = if outcome.is_ok() { "" } else { "!" };
            cells.push(format!("{status}{mark}"));
            if let Err(problem) = outcome {
                failures.push(format!("{method} {route} as {}: {problem}", caller.label()));
            }
        }
        table.push_str(&format!(
            "{:<7} {:<28} {:<10} {:>9} {:>6} {:>8} {:>5}\n",
            method, route, access_label, cells[0], cells[1], cells[2], cells[3]
        ));
    }
    eprintln!("permission matrix (! = unexpected):\n{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_openapi_document_and_the_permission_table_name_the_same_routes() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|operations| operations.keys())
                .filter(|key| methods.contains(&key.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let permitted: BTreeSet<(String, String)> = PERMISSIONS
        .iter()
        .map(|(method, route, _)| (method.to_string(), route.to_string()))
        .collect();
    assert_eq!(
        permitted.len(),
        PERMISSIONS.len(),
        "a route appears twice in PERMISSIONS"
    );
    let undocumented: Vec<_> = permitted.difference(&documented).collect();
    let unpermitted: Vec<_> = documented.difference(&permitted).collect();
    assert!(
        undocumented.is_empty(),
        "in PERMISSIONS but not in the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unpermitted.is_empty(),
        "in the OpenAPI document but not in PERMISSIONS: {unpermitted:?}"
    );
}

#[tokio::test]
async fn a_denied_request_is_recorded_in_the_audit_log() {
    let app = spawn_app().await;
    let (viewer, token) = app.user_with_token("denied-viewer", "viewer").await;
    let response = app.get("/api/v1/users", &token).await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let viewer_id = viewer["id"].as_str().unwrap().to_string();
    let entry = eventually(Duration::from_secs(10), || {
        let (app, viewer_id) = (&app, &viewer_id);
        async move {
            let page: Value = app
                .get("/api/v1/audit-logs?action=access.denied", &app.admin_token)
                .await
                .json()
                .await
                .ok()?;
            page["items"]
                .as_array()?
                .iter()
                .find(|item| item["user_id"].as_str() == Some(viewer_id))
                .cloned()
        }
    })
    .await;
    assert_eq!(entry["action"], "access.denied", "{entry}");
    assert_eq!(entry["username"], "denied-viewer", "{entry}");
    assert_eq!(entry["role"], "viewer", "{entry}");
    assert_eq!(entry["ip_address"], "127.0.0.1", "{entry}");
    assert_eq!(entry["user_agent"], "dcp-tests/1.0", "{entry}");
    assert_eq!(entry["resource_type"], "route", "{entry}");
    assert_eq!(entry["resource_id"], "GET /api/v1/users", "{entry}");
    assert_eq!(entry["request_id"], request_id.as_str(), "{entry}");
}
