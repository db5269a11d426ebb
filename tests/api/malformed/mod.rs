//! Malformed input on every route: a 4xx in the documented format, never a 500.
//!
//! The cases are tables: each names the request, the status and code it must get, and the
//! field the error must name. Groups of rejected writes check afterwards that nothing was
//! written (events, read model, handles, credentials).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// Every route that takes a body, a path parameter or query parameters, and so has cases
/// here. A test checks it against the OpenAPI document, so a new such route must be added.
const COVERED_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/password"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
    ("GET", "/api/v1/audit-logs"),
    ("POST", "/api/v1/audit-logs/verify"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/containers"),
    ("POST", "/api/v1/containers"),
    ("GET", "/api/v1/containers/{id}"),
    ("DELETE", "/api/v1/containers/{id}"),
    ("GET", "/api/v1/containers/{id}/history"),
    ("POST", "/api/v1/containers/{id}/start"),
    ("POST", "/api/v1/containers/{id}/stop"),
    ("POST", "/api/v1/containers/{id}/restart"),
    ("POST", "/api/v1/containers/{id}/kill"),
    ("POST", "/api/v1/containers/{id}/pause"),
    ("POST", "/api/v1/containers/{id}/unpause"),
    ("POST", "/api/v1/containers/{id}/rename"),
    ("POST", "/api/v1/containers/{id}/recreate"),
    ("GET", "/api/v1/operations/{id}"),
    ("GET", "/api/v1/images"),
    ("POST", "/api/v1/images/pull"),
    ("DELETE", "/api/v1/images/{id}"),
    ("GET", "/api/v1/volumes"),
    ("POST", "/api/v1/volumes"),
    ("DELETE", "/api/v1/volumes/{name}"),
    ("GET", "/api/v1/networks"),
    ("POST", "/api/v1/networks"),
    ("DELETE", "/api/v1/networks/{id}"),
    ("POST", "/api/v1/networks/{id}/connect"),
    ("POST", "/api/v1/networks/{id}/disconnect"),
    ("POST", "/api/v1/ws-tickets"),
    ("GET", "/api/v1/users/{id}/state"),
    ("GET", "/api/v1/users/{id}/diff"),
    ("GET", "/api/v1/containers/{id}/state"),
    ("GET", "/api/v1/containers/{id}/diff"),
    ("GET", "/api/v1/images/{id}/state"),
    ("GET", "/api/v1/images/{id}/diff"),
    ("GET", "/api/v1/volumes/{name}/state"),
    ("GET", "/api/v1/volumes/{name}/diff"),
    ("GET", "/api/v1/networks/{id}/state"),
    ("GET", "/api/v1/networks/{id}/diff"),
    ("POST", "/api/v1/hosts"),
    ("GET", "/api/v1/hosts/{id}"),
    ("PATCH", "/api/v1/hosts/{id}"),
    ("DELETE", "/api/v1/hosts/{id}"),
    ("POST", "/api/v1/hosts/{id}/test"),
    ("GET", "/api/v1/hosts/{id}/state"),
    ("GET", "/api/v1/hosts/{id}/diff"),
    ("POST", "/api/v1/wizards/start"),
    ("POST", "/api/v1/wizards/generate-ssh-key"),
    ("GET", "/api/v1/wizards/{id}"),
    ("PUT", "/api/v1/wizards/{id}/step"),
    ("POST", "/api/v1/wizards/{id}/next"),
    ("POST", "/api/v1/wizards/{id}/previous"),
    ("POST", "/api/v1/wizards/{id}/test"),
    ("POST", "/api/v1/wizards/{id}/complete"),
    ("POST", "/api/v1/wizards/{id}/cancel"),
];

const JSON: Option<&str> = Some("application/json");

/// One rejected request and what it must get.
struct Case {
    name: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    status: StatusCode,
    code: &'static str,
    /// `Some(name)`: `error.field` must be `name`; `None`: not checked.
    field: Option<&'static str>,
}

/// A case that expects a 400 VALIDATION_ERROR until told otherwise.
fn case(name: impl Into<String>, method: Method, path: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        content_type: None,
        body: None,
        headers: Vec::new(),
        status: StatusCode::BAD_REQUEST,
        code: "VALIDATION_ERROR",
        field: None,
    }
}

impl Case {
    fn json(self, body: &Value) -> Case {
        self.raw(JSON, body.to_string())
    }

    fn raw(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Case {
        self.content_type = content_type;
        self.body = Some(body.into());
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }

    /// A 400 VALIDATION_ERROR naming `field`.
    fn invalid(self, field: &'static str) -> Case {
        self.expect(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", Some(field))
    }

    fn expect(
        mut self,
        status: StatusCode,
        code: &'static str,
        field: Option<&'static str>,
    ) -> Case {
        self.status = status;
        self.code = code;
        self.field = field;
        self
    }
}

/// Sends every case with `token` and checks status, code, format and field. All cases run;
/// the failures are reported together.
async fn run_cases(app: &TestApp, token: Option<&str>, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in &cases {
        let mut request = app
            .client
            .request(case.method.clone(), app.url(&case.path))
            .header("user-agent", "dcp-tests/1.0");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(body) = &case.body {
            request = request.body(body.clone());
        }
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                failures.push(format!("{}: request failed: {error}", case.name));
                continue;
            }
        };
        let status = response.status();
        let is_json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if status != case.status || !is_json {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            failures.push(format!(
                "{}: expected {} {} (JSON), got {status}: {text}",
                case.name, case.status, case.code
            ));
            continue;
        }
        eprintln!("case: {}", case.name);
        let body = assert_error(response, case.status, case.code).await;
        if let Some(field) = case.field {
            if body["error"]["field"] != field {
                failures.push(format!(
                    "{}: expected error.field {field:?}, got {}",
                    case.name, body["error"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// What a rejected request must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    events: i64,
    handles: i64,
    credentials: i64,
    users: Value,
}

/// Runs `cases` as the admin and asserts that no event was written (`refusal` says which).
async fn run_cases_writing_no_events(app: &TestApp, cases: Vec<Case>, refusal: &str) {
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    run_cases(app, Some(&app.admin_token), cases).await;
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_before, events_after, "{refusal}");
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let count = |table: &str| {
        let sql = format!("SELECT count(*) FROM {table}");
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let users: Value = app
        .get_json("/api/v1/users?limit=500", &app.admin_token)
        .await;
    Snapshot {
        events: count("events").await,
        handles: count("user_handles").await,
        credentials: count("credentials").await,
        users: users["items"].clone(),
    }
}

/// `base` with `key` set to `value` (or removed when `value` is null).
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut body = base.clone();
    let object = body.as_object_mut().unwrap();
    if value.is_null() {
        object.remove(key);
    } else {
        object.insert(key.to_string(), value);
    }
    body
}

/// The first key of a valid body: syntax errors placed after it come before any field check.
fn first_key(valid: &Value) -> String {
    valid.as_object().unwrap().keys().next().unwrap().clone()
}

/// Syntax and shape cases every JSON body route shares.
fn syntax_cases(method: &Method, path: &str, valid: &Value) -> Vec<Case> {
    let label = format!("{method} {path}");
    let c = |name: &str| case(format!("{label}: {name}"), method.clone(), path);
    let key = first_key(valid);
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let invalid_utf8 = [format!(r#"{{"{key}":""#).as_bytes(), b"\xff\xfe\"}"].concat();
    vec![
        c("truncated JSON").raw(JSON, format!(r#"{{"{key}":"#)),
        c("whitespace body").raw(JSON, "   "),
        c("null").raw(JSON, "null"),
        c("JSON array").raw(JSON, "[]"),
        c("JSON number").raw(JSON, "42"),
        c("JSON string").raw(JSON, r#""hello""#),
        c("JSON bool").raw(JSON, "true"),
        c("single quotes").raw(JSON, valid.to_string().replace('"', "'")),
        c("invalid UTF-8").raw(JSON, invalid_utf8),
        c("deeply nested arrays").raw(JSON, nested),
        c("unknown field")
            .json(&with(valid, "is_superuser", json!(true)))
            .invalid("is_superuser"),
    ]
}

/// Cases about what surrounds the JSON: trailing data, size and media type.
fn framing_cases(method: &Method, path: &str, valid: &Value) -> Vec<Case> {
    let label = format!("{method} {path}");
    let c = |name: &str| case(format!("{label}: {name}"), method.clone(), path);
    let valid_text = valid.to_string();
    let oversized = with(valid, "padding", json!("x".repeat(1024 * 1024 + 16)));
    let unsupported = |c: Case| {
        c.expect(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        )
    };
    vec![
        c("trailing garbage").raw(JSON, format!("{valid_text} trailing")),
        c("two objects").raw(JSON, format!("{valid_text}{valid_text}")),
        c("body over 1 MiB").json(&oversized).expect(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        unsupported(c("no content type").raw(None, valid_text.clone())),
        unsupported(c("text/plain").raw(Some("text/plain"), valid_text.clone())),
        unsupported(c("form encoded").raw(
            Some("application/x-www-form-urlencoded"),
            "username=a&password=b",
        )),
        unsupported(c("application/jsonx").raw(Some("application/jsonx"), valid_text)),
    ]
}

/// Every body case for a route that requires a JSON body.
fn body_cases(method: Method, path: &str, valid: &Value) -> Vec<Case> {
    let mut cases = syntax_cases(&method, path, valid);
    cases.push(case(format!("{method} {path}: empty body"), method.clone(), path).raw(JSON, ""));
    cases.extend(framing_cases(&method, path, valid));
    cases
}

mod bodies;
mod hosts;
mod inputs;

#[test]
fn every_route_with_input_has_malformed_input_cases() {
    let (_, document) = dcp::http::api_routes().split_for_parts();
    let document = serde_json::to_value(&document).unwrap();
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !methods.contains(&method.as_str()) {
                continue;
            }
            let takes_input = operation.get("requestBody").is_some()
                || operation["parameters"]
                    .as_array()
                    .is_some_and(|parameters| !parameters.is_empty())
                || path.contains('{');
            let method = method.to_uppercase();
            let covered = COVERED_ROUTES
                .iter()
                .any(|(m, p)| *m == method && p == path);
            if takes_input && !covered {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes with a body, path or query parameters but no malformed-input cases: {missing:?}"
    );
}
