//! Shared helpers of the integration tests: a fresh database per test on the services'
//! PostgreSQL, and an in-process server on a free port.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use dcp::app::Application;
use dcp::config::Settings;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The PostgreSQL server that `scripts/services.sh` started.
pub fn server_url() -> String {
    std::env::var("DCP_TEST_DATABASE_URL").expect(
        "DCP_TEST_DATABASE_URL is not set: run `scripts/services.sh` and `source /tmp/dcp-services/env` (scripts/test does both)",
    )
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let mut conn = PgConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL server");
    let name = format!("dcp_test_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let (base, _) = server.rsplit_once('/').expect("URL with a database name");
    format!("{base}/{name}")
}

/// A fresh, migrated database and a pool on it.
pub async fn migrated_pool() -> PgPool {
    let url = fresh_database().await;
    let pool = dcp::db::connect(url.parse().unwrap(), 16).await.unwrap();
    dcp::db::migrate(&pool).await.unwrap();
    pool
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dcp-test-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running server with an admin signed in.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub pool: PgPool,
    pub database_url: String,
    pub admin_token: String,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database_url = fresh_database().await;
    spawn_app_on(database_url, configure).await
}

/// Starts a server on an existing database (a restart, or a second replica).
pub async fn spawn_app_on(database_url: String, configure: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("RUST_LOG").is_some() {
        dcp::telemetry::init();
    }
    let mut settings = Settings::for_tests(&database_url, temp_dir());
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("build the application");
    let address = format!("http://{}", app.address());
    let pool = app.pool().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut test_app = TestApp {
        address,
        client,
        pool,
        database_url,
        admin_token: String::new(),
        shutdown,
        server: Some(server),
    };
    test_app.admin_token = test_app.login_ok("admin", ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    test_app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Any request, with an optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("user-agent", "dcp-tests/1.0");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request failed")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    /// GET `path` and parse the JSON body (whatever the status).
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    /// GET `path` once the read models have applied `position` (read-your-writes).
    pub async fn get_json_at(&self, path: &str, token: &str, position: i64) -> Value {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .header("x-dcp-min-position", position.to_string())
            .send()
            .await
            .expect("request failed")
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// Logs in and returns the token response; panics on failure.
    pub async fn login_ok(&self, username: &str, password: &str) -> Value {
        let response = self.login(username, password).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "login of {username} failed: {body}");
        body
    }

    /// Creates a user (as admin) with `must_change_password: false` and returns it.
    pub async fn create_user(&self, username: &str, role: &str, password: &str) -> Value {
        let response = self
            .post(
                "/api/v1/users",
                &self.admin_token,
                json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "full_name": format!("{username} Test"),
                    "role": role,
                    "password": password,
                    "must_change_password": false,
                }),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "create {username}: {body}");
        body
    }

    /// Creates a user and logs it in; returns (user, access token).
    pub async fn user_with_token(&self, username: &str, role: &str) -> (Value, String) {
        let password = format!("{username}-password-123");
        let user = self.create_user(username, role, &password).await;
        let token = self.login_ok(username, &password).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (user, token)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Asserts the documented error format and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({actual}): {text}"));
    assert_eq!(actual, status, "unexpected status; body {body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["details"].is_object(), "{body}");
    assert_eq!(
        body["request_id"].as_str(),
        request_id.as_deref(),
        "request id must match the header"
    );
    body
}

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
