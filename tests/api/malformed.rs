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
    ("GET", "/api/v1/events"),
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

#[tokio::test]
async fn user_bodies_are_validated_and_rejections_write_nothing() {
    let app = spawn_app().await;
    let target = app
        .create_user("patch-target", "viewer", "patch-target-password-1")
        .await;
    let target_path = format!("/api/v1/users/{}", target["id"].as_str().unwrap());
    let valid = json!({
        "username": "fresh-user",
        "email": "fresh-user@example.com",
        "full_name": "Fresh User",
        "role": "viewer",
        "password": "fresh-password-123",
    });
    let valid_with = |key: &str, value: Value| with(&valid, key, value);
    let create = |name: &str| case(format!("create: {name}"), Method::POST, "/api/v1/users");
    let long = "a".repeat(10 * 1024);
    let mut cases = body_cases(Method::POST, "/api/v1/users", &valid);
    cases.extend([
        create("role is a number")
            .json(&valid_with("role", json!(5)))
            .invalid("role"),
        create("username is a number")
            .json(&valid_with("username", json!(5)))
            .invalid("username"),
        create("must_change_password is a string")
            .json(&valid_with("must_change_password", json!("yes")))
            .invalid("must_change_password"),
        create("password is an object")
            .json(&valid_with("password", json!({"value": "x"})))
            .invalid("password"),
        create("case-variant key")
            .json(&with(
                &valid_with("username", Value::Null),
                "Username",
                json!("fresh-user"),
            ))
            .invalid("Username"),
        create("duplicate key")
            .raw(
                JSON,
                r#"{"username":"dup-a","username":"dup-b","email":"dup@example.com","full_name":"Dup","role":"viewer","password":"dup-password-123"}"#,
            )
            .invalid("username"),
        create("missing username")
            .json(&valid_with("username", Value::Null))
            .invalid("username"),
        create("missing email")
            .json(&valid_with("email", Value::Null))
            .invalid("email"),
        create("missing full_name")
            .json(&valid_with("full_name", Value::Null))
            .invalid("full_name"),
        create("missing role")
            .json(&valid_with("role", Value::Null))
            .invalid("role"),
        create("missing password")
            .json(&valid_with("password", Value::Null))
            .invalid("password"),
        create("null username")
            .raw(
                JSON,
                valid.to_string().replace(r#""fresh-user""#, "null"),
            )
            .invalid("username"),
        create("10 KB username")
            .json(&valid_with("username", json!(long)))
            .invalid("username"),
        create("empty username")
            .json(&valid_with("username", json!("")))
            .invalid("username"),
        create("username with a space")
            .json(&valid_with("username", json!("fresh user")))
            .invalid("username"),
        create("username with NUL").json(&valid_with("username", json!("fresh\u{0}user"))),
        create("username with a newline")
            .json(&valid_with("username", json!("fresh\nuser")))
            .invalid("username"),
        create("unknown role")
            .json(&valid_with("role", json!("root")))
            .invalid("role"),
        create("role in capitals")
            .json(&valid_with("role", json!("Admin")))
            .invalid("role"),
        create("email without @")
            .json(&valid_with("email", json!("not-an-email")))
            .invalid("email"),
        create("email without a dotted domain")
            .json(&valid_with("email", json!("a@b")))
            .invalid("email"),
        create("email with two @")
            .json(&valid_with("email", json!("a@b@example.com")))
            .invalid("email"),
        create("10 KB email")
            .json(&valid_with("email", json!(format!("{long}@example.com"))))
            .invalid("email"),
        create("email with NUL").json(&valid_with("email", json!("fresh\u{0}@example.com"))),
        create("email with BEL")
            .json(&valid_with("email", json!("fresh\u{7}@example.com")))
            .invalid("email"),
        create("blank full_name")
            .json(&valid_with("full_name", json!("   ")))
            .invalid("full_name"),
        create("10 KB full_name")
            .json(&valid_with("full_name", json!(long)))
            .invalid("full_name"),
        create("full_name with NUL").json(&valid_with("full_name", json!("Fresh\u{0}User"))),
        create("full_name with ESC")
            .json(&valid_with("full_name", json!("Fresh \u{1b}[31mUser")))
            .invalid("full_name"),
        create("too short password")
            .json(&valid_with("password", json!("short")))
            .invalid("password"),
        create("10 KB password")
            .json(&valid_with("password", json!(long)))
            .invalid("password"),
        create("password equals username")
            .json(&valid_with("password", json!("fresh-user")))
            .invalid("password"),
        create("username taken in another case")
            .json(&with(
                &valid_with("username", json!("PATCH-TARGET")),
                "email",
                json!("other@example.com"),
            ))
            .expect(StatusCode::CONFLICT, "CONFLICT", Some("username")),
        create("email taken")
            .json(&valid_with("email", json!("patch-target@example.com")))
            .expect(StatusCode::CONFLICT, "CONFLICT", Some("email")),
    ]);

    let patch = |name: &str| case(format!("patch: {name}"), Method::PATCH, &target_path);
    cases.extend(body_cases(
        Method::PATCH,
        &target_path,
        &json!({"full_name": "Changed Name"}),
    ));
    cases.extend([
        patch("is_active is a string")
            .json(&json!({"is_active": "yes"}))
            .invalid("is_active"),
        patch("is_active is a number")
            .json(&json!({"is_active": 1}))
            .invalid("is_active"),
        patch("role is a number")
            .json(&json!({"role": 5}))
            .invalid("role"),
        patch("unknown role")
            .json(&json!({"role": "root"}))
            .invalid("role"),
        patch("username is not patchable")
            .json(&json!({"username": "renamed"}))
            .invalid("username"),
        patch("case-variant key")
            .json(&json!({"Full_Name": "Changed"}))
            .invalid("Full_Name"),
        patch("duplicate key")
            .raw(JSON, r#"{"full_name":"A Name","full_name":"B Name"}"#)
            .invalid("full_name"),
        patch("invalid email")
            .json(&json!({"email": "not-an-email"}))
            .invalid("email"),
        patch("email with NUL").json(&json!({"email": "patch\u{0}@example.com"})),
        patch("empty full_name")
            .json(&json!({"full_name": ""}))
            .invalid("full_name"),
        patch("10 KB full_name")
            .json(&json!({"full_name": long}))
            .invalid("full_name"),
        patch("full_name with NUL").json(&json!({"full_name": "Changed\u{0}Name"})),
        patch("full_name with backspaces")
            .json(&json!({"full_name": "Changed\u{8}\u{8}Name"}))
            .invalid("full_name"),
        patch("too short password")
            .json(&json!({"password": "short"}))
            .invalid("password"),
        patch("a valid change with an unknown role")
            .json(&json!({"full_name": "Half Applied", "role": "root"}))
            .invalid("role"),
        patch("a valid change with a bad email")
            .json(&json!({"full_name": "Half Applied", "email": "bad"}))
            .invalid("email"),
        patch("email taken")
            .json(&json!({"email": "admin@localhost"}))
            .expect(StatusCode::CONFLICT, "CONFLICT", Some("email")),
    ]);

    let before = snapshot(&app).await;
    run_cases(&app, Some(&app.admin_token), cases).await;
    assert_eq!(
        before,
        snapshot(&app).await,
        "a rejected request wrote something"
    );
}

#[tokio::test]
async fn auth_bodies_are_validated_and_rejections_write_nothing() {
    let app = spawn_app().await;
    let (_, user_token) = app.user_with_token("pw-user", "viewer").await;
    let current = "pw-user-password-123";
    let long = "a".repeat(10 * 1024);

    let login = |name: &str| case(format!("login: {name}"), Method::POST, "/api/v1/auth/login");
    let login_with = |username: Value| json!({"username": username, "password": ADMIN_PASSWORD});
    let login_valid = login_with(json!("admin"));
    let mut anonymous = body_cases(Method::POST, "/api/v1/auth/login", &login_valid);
    anonymous.extend([
        login("username and email")
            .json(&with(&login_valid, "email", json!("admin@localhost")))
            .invalid("username"),
        login("neither username nor email")
            .json(&json!({"password": ADMIN_PASSWORD}))
            .invalid("username"),
        login("empty username")
            .json(&login_with(json!("")))
            .invalid("username"),
        login("blank username")
            .json(&login_with(json!("   ")))
            .invalid("username"),
        login("empty email")
            .json(&json!({"email": "", "password": ADMIN_PASSWORD}))
            .invalid("username"),
        login("10 KB username")
            .json(&login_with(json!(long)))
            .invalid("username"),
        login("username is a number")
            .json(&login_with(json!(5)))
            .invalid("username"),
        login("username is an array")
            .json(&login_with(json!(["admin"])))
            .invalid("username"),
        login("missing password")
            .json(&json!({"username": "admin"}))
            .invalid("password"),
        login("null password")
            .json(&json!({"username": "admin", "password": null}))
            .invalid("password"),
        login("password is a number")
            .json(&json!({"username": "admin", "password": 5}))
            .invalid("password"),
        login("10 KB password")
            .json(&json!({"username": "admin", "password": long}))
            .invalid("password"),
        login("case-variant key")
            .json(&json!({"Username": "admin", "password": ADMIN_PASSWORD}))
            .invalid("Username"),
        login("username with NUL").json(&login_with(json!("ad\u{0}min"))),
        login("username that is only NUL").json(&login_with(json!("\u{0}"))),
        login("email with NUL")
            .json(&json!({"email": "admin\u{0}@localhost", "password": ADMIN_PASSWORD})),
        login("duplicate key")
            .raw(
                JSON,
                format!(
                    r#"{{"username":"admin","username":"other","password":"{ADMIN_PASSWORD}"}}"#
                ),
            )
            .invalid("username"),
    ]);

    let refresh = |name: &str| {
        case(
            format!("refresh: {name}"),
            Method::POST,
            "/api/v1/auth/refresh",
        )
    };
    let token_invalid = |c: Case| c.expect(StatusCode::UNAUTHORIZED, "TOKEN_INVALID", None);
    // The body is optional (the cookie may carry the token), so an empty body is a 401 below.
    // Framing cases are in `refresh_bodies_follow_the_json_body_rules`.
    anonymous.extend(syntax_cases(
        &Method::POST,
        "/api/v1/auth/refresh",
        &json!({"refresh_token": "dcp_rt_not-a-real-token"}),
    ));
    anonymous.extend([
        refresh("refresh_token is a number")
            .json(&json!({"refresh_token": 5}))
            .invalid("refresh_token"),
        refresh("case-variant key")
            .json(&json!({"Refresh_Token": "x"}))
            .invalid("Refresh_Token"),
        refresh("duplicate key")
            .raw(JSON, r#"{"refresh_token":"a","refresh_token":"b"}"#)
            .invalid("refresh_token"),
        token_invalid(refresh("empty body and no cookie").raw(JSON, "")),
        token_invalid(refresh("no body at all")),
        token_invalid(refresh("empty object").json(&json!({}))),
        token_invalid(refresh("garbage token").json(&json!({"refresh_token": "nope"}))),
        token_invalid(
            refresh("10 KB token").json(&json!({"refresh_token": format!("dcp_rt_{long}")})),
        ),
        refresh("token with NUL").json(&json!({"refresh_token": "dcp_rt_\u{0}"})),
    ]);

    let password = |name: &str| {
        case(
            format!("password: {name}"),
            Method::POST,
            "/api/v1/auth/password",
        )
    };
    let change_to =
        |new_password: Value| json!({"current_password": current, "new_password": new_password});
    let mut signed_in = body_cases(
        Method::POST,
        "/api/v1/auth/password",
        &change_to(json!("another-password-456")),
    );
    signed_in.extend([
        password("missing new_password")
            .json(&json!({"current_password": current}))
            .invalid("new_password"),
        password("missing current_password")
            .json(&json!({"new_password": "another-password-456"}))
            .invalid("current_password"),
        password("new_password is a number")
            .json(&change_to(json!(12345678)))
            .invalid("new_password"),
        password("case-variant key")
            .json(&json!({"Current_Password": current, "new_password": "another-password-456"}))
            .invalid("Current_Password"),
        password("too short new_password")
            .json(&change_to(json!("short")))
            .invalid("new_password"),
        password("10 KB new_password")
            .json(&change_to(json!(long)))
            .invalid("new_password"),
        password("new_password equals current")
            .json(&change_to(json!(current)))
            .invalid("new_password"),
        password("new_password equals username")
            .json(&change_to(json!("pw-user")))
            .invalid("new_password"),
    ]);

    let before = snapshot(&app).await;
    run_cases(&app, None, anonymous).await;
    run_cases(&app, Some(&user_token), signed_in).await;
    assert_eq!(
        before,
        snapshot(&app).await,
        "a rejected request wrote something"
    );
    // The password is unchanged and the session still valid.
    assert_eq!(
        app.get("/api/v1/auth/me", &user_token).await.status(),
        StatusCode::OK
    );
    app.login_ok("pw-user", current).await;

    // Control characters other than NUL in a login name are an unknown account (these are
    // recorded as failed logins, so they run after the snapshot).
    let unknown_account =
        |c: Case| c.expect(StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILED", None);
    run_cases(
        &app,
        None,
        vec![
            unknown_account(login("username with BEL").json(&login_with(json!("ad\u{7}min")))),
            unknown_account(
                login("email with ESC")
                    .json(&json!({"email": "ad\u{1b}min@localhost", "password": ADMIN_PASSWORD})),
            ),
        ],
    )
    .await;
}

#[tokio::test]

async fn positional_arrays_are_not_accepted_as_bodies() {
    let app = spawn_app().await;
    let target = app
        .create_user("array-target", "viewer", "array-target-password-1")
        .await;
    let target_path = format!("/api/v1/users/{}", target["id"].as_str().unwrap());
    let before = snapshot(&app).await;
    // Field order: username, email, full_name, role, password, must_change_password.
    let create = case("create: fields as an array", Method::POST, "/api/v1/users").raw(
        JSON,
        r#"["array-user","array-user@example.com","Array User","admin","array-password-123",false]"#,
    );
    // Field order: email, full_name, role, is_active, password.
    let patch = case("patch: fields as an array", Method::PATCH, target_path)
        .raw(JSON, r#"[null,"Array Name","admin",null,null]"#);
    // Field order: username, email, password (the route is public: the token is ignored).
    let login = case(
        "login: fields as an array",
        Method::POST,
        "/api/v1/auth/login",
    )
    .raw(JSON, format!(r#"["admin",null,"{ADMIN_PASSWORD}"]"#));
    run_cases(&app, Some(&app.admin_token), vec![create, patch, login]).await;
    assert_eq!(
        before,
        snapshot(&app).await,
        "an array body wrote something"
    );
}

#[tokio::test]

async fn refresh_bodies_follow_the_json_body_rules() {
    let app = spawn_app().await;
    let cases = framing_cases(
        &Method::POST,
        "/api/v1/auth/refresh",
        &json!({"refresh_token": "dcp_rt_not-a-real-token"}),
    );
    run_cases(&app, None, cases).await;
}

#[tokio::test]

async fn a_syntax_error_does_not_name_a_field_called_question_mark() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{'username':'admin'}")
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert!(body["error"]["field"].is_null(), "{body}");
}

#[tokio::test]

async fn nul_characters_in_query_filters_are_not_server_errors() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    // A filter with NUL: nothing matches (200), or a 400.
    for path in [
        "/api/v1/users?q=%00",
        "/api/v1/audit-logs?action=%00",
        "/api/v1/audit-logs?resource_type=%00",
        "/api/v1/audit-logs?resource_id=ab%00cd",
    ] {
        let response = app.get(path, &app.admin_token).await;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST => {
                assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
            }
            other => failures.push(format!("GET {path}: {other}")),
        }
    }
    // An export with such a filter must not break off after its header.
    for path in [
        "/api/v1/audit-logs?format=csv&action=%00",
        "/api/v1/audit-logs?format=ndjson&action=%00",
    ] {
        let sent = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.admin_token)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                failures.push(format!("GET {path}: the connection broke off: {error}"));
                continue;
            }
        };
        match response.status() {
            StatusCode::OK => {
                if let Err(error) = response.text().await {
                    failures.push(format!("GET {path}: 200, then the body broke off: {error}"));
                }
            }
            StatusCode::BAD_REQUEST => {
                assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
            }
            other => failures.push(format!("GET {path}: {other}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn bad_paths_unknown_routes_and_wrong_methods_are_4xx() {
    let app = spawn_app().await;
    let target = app
        .create_user("path-target", "viewer", "path-target-password-1")
        .await;
    let target_path = format!("/api/v1/users/{}", target["id"].as_str().unwrap());
    let patch_body = json!({"full_name": "Changed Name"});
    let long_id = "a".repeat(5000);
    let mut cases = Vec::new();
    for id in [
        "not-a-uuid",
        "%00",
        "%20",
        "12345",
        "00000000-0000-0000-0000-00000000000g",
        "%7B00000000-0000-0000-0000-000000000000",
        long_id.as_str(),
    ] {
        let path = format!("/api/v1/users/{id}");
        let short: String = id.chars().take(40).collect();
        cases.extend([
            case(format!("GET id {short}"), Method::GET, &path).invalid("id"),
            case(format!("PATCH id {short}"), Method::PATCH, &path)
                .json(&patch_body)
                .invalid("id"),
            case(format!("DELETE id {short}"), Method::DELETE, &path).invalid("id"),
        ]);
    }
    let not_found = |c: Case| c.expect(StatusCode::NOT_FOUND, "NOT_FOUND", None);
    let not_allowed =
        |c: Case| c.expect(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", None);
    let unknown_user = format!("/api/v1/users/{}", uuid::Uuid::new_v4());
    cases.extend([
        not_found(case("GET unknown user", Method::GET, &unknown_user)),
        not_found(case("PATCH unknown user", Method::PATCH, &unknown_user).json(&patch_body)),
        not_found(case("DELETE unknown user", Method::DELETE, &unknown_user)),
        not_found(case("unknown API route", Method::GET, "/api/v1/nope")),
        not_found(
            case("POST to an unknown API route", Method::POST, "/api/v1/nope").json(&json!({})),
        ),
        not_found(case(
            "extra segment",
            Method::GET,
            format!("{target_path}/extra"),
        )),
        not_found(case("unknown API version", Method::GET, "/api/v2/users")),
        not_found(case("bare /api", Method::GET, "/api")),
        not_found(case("unknown health check", Method::GET, "/health/nope")),
        not_found(case(
            "users with a trailing slash",
            Method::GET,
            "/api/v1/users/",
        )),
        not_allowed(case("PUT /api/v1/users", Method::PUT, "/api/v1/users").json(&json!({}))),
        not_allowed(case(
            "DELETE /api/v1/users",
            Method::DELETE,
            "/api/v1/users",
        )),
        not_allowed(case("POST /api/v1/users/{id}", Method::POST, &target_path).json(&json!({}))),
        not_allowed(case("PUT /api/v1/users/{id}", Method::PUT, &target_path).json(&json!({}))),
        not_allowed(case(
            "GET /api/v1/auth/login",
            Method::GET,
            "/api/v1/auth/login",
        )),
        not_allowed(case(
            "DELETE /api/v1/audit-logs",
            Method::DELETE,
            "/api/v1/audit-logs",
        )),
        not_allowed(case("POST /health", Method::POST, "/health")),
    ]);
    let before = snapshot(&app).await;
    run_cases(&app, Some(&app.admin_token), cases).await;
    // Without a token, routes that do not exist get the same answers, not a 401.
    run_cases(
        &app,
        None,
        vec![
            not_found(case(
                "anonymous: unknown API route",
                Method::GET,
                "/api/v1/nope",
            )),
            not_allowed(case(
                "anonymous: PUT /api/v1/users",
                Method::PUT,
                "/api/v1/users",
            )),
        ],
    )
    .await;
    assert_eq!(
        before,
        snapshot(&app).await,
        "a rejected request wrote something"
    );
    assert_eq!(
        app.get(&target_path, &app.admin_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_query_parameters_and_position_headers_are_400() {
    let app = spawn_app().await;
    let target = app
        .create_user("query-target", "viewer", "query-target-password-1")
        .await;
    let target_path = format!("/api/v1/users/{}", target["id"].as_str().unwrap());
    let get = |path: &str| case(format!("GET {path}"), Method::GET, path);
    // Values that do not parse are 400s whose message names the parameter; `error.field`
    // is only set for unknown parameters and for values checked by the handlers.
    let mut cases = vec![
        get("/api/v1/users?foo=1").invalid("foo"),
        get("/api/v1/users?Limit=10").invalid("Limit"),
        get("/api/v1/users?limit=abc"),
        get("/api/v1/users?limit=-1").invalid("limit"),
        get("/api/v1/users?limit=0").invalid("limit"),
        get("/api/v1/users?limit=100000").invalid("limit"),
        get("/api/v1/users?limit=99999999999999999999999"),
        get("/api/v1/users?limit=1.5"),
        get("/api/v1/users?limit="),
        get("/api/v1/users?limit=1&limit=2"),
        get("/api/v1/users?offset=-1").invalid("offset"),
        get("/api/v1/users?offset=abc"),
        get("/api/v1/users?role=root"),
        get("/api/v1/users?role=Admin"),
        get("/api/v1/users?active=yes"),
        get("/api/v1/audit-logs?foo=1").invalid("foo"),
        get("/api/v1/audit-logs?limit=abc"),
        get("/api/v1/audit-logs?limit=-1").invalid("limit"),
        get("/api/v1/audit-logs?limit=0").invalid("limit"),
        get("/api/v1/audit-logs?limit=100000").invalid("limit"),
        get("/api/v1/audit-logs?cursor=xyz").invalid("cursor"),
        get("/api/v1/audit-logs?cursor=-1").invalid("cursor"),
        get("/api/v1/audit-logs?cursor=0").invalid("cursor"),
        get("/api/v1/audit-logs?cursor=").invalid("cursor"),
        get("/api/v1/audit-logs?since=yesterday"),
        get("/api/v1/audit-logs?until=2024-13-45T00:00:00Z"),
        get("/api/v1/audit-logs?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z")
            .invalid("since"),
        get("/api/v1/audit-logs?user_id=not-a-uuid"),
        get("/api/v1/audit-logs?format=xml"),
        get("/api/v1/audit-logs?format=CSV"),
        get("/api/v1/audit-logs?format=csv&limit=0").invalid("limit"),
        get("/api/v1/audit-logs?format=ndjson&limit=2000000").invalid("limit"),
        get("/api/v1/events?foo=1").invalid("foo"),
        get("/api/v1/events?after=-5").invalid("after"),
        get("/api/v1/events?after=999999999").invalid("after"),
        get("/api/v1/events?after=abc"),
        get("/api/v1/events?limit=abc"),
        get("/api/v1/events?limit=-1").invalid("limit"),
        get("/api/v1/events?limit=0").invalid("limit"),
        get("/api/v1/events?limit=100000").invalid("limit"),
    ];
    for path in [
        "/api/v1/users",
        target_path.as_str(),
        "/api/v1/auth/me",
        "/api/v1/audit-logs",
    ] {
        for value in [
            "abc",
            "-1",
            "1.5",
            "",
            "999999999",
            "99999999999999999999999",
        ] {
            cases.push(
                case(
                    format!("GET {path} with x-dcp-min-position: {value:?}"),
                    Method::GET,
                    path,
                )
                .header("x-dcp-min-position", value)
                .invalid("x-dcp-min-position"),
            );
        }
    }
    let before = snapshot(&app).await;
    run_cases(&app, Some(&app.admin_token), cases).await;
    assert_eq!(before, snapshot(&app).await, "a read wrote something");
}

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
