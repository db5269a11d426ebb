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

mod sockets;
// Not every test binary opens sockets.
#[allow(unused_imports)]
pub use sockets::*;

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

    /// The audit log entries `query` selects, read as the admin once the log has reached
    /// `position`.
    pub async fn audit_entries_at(&self, query: &str, position: i64) -> Vec<Value> {
        let page = self
            .get_json_at(
                &format!("/api/v1/audit-logs?{query}"),
                &self.admin_token,
                position,
            )
            .await;
        page["items"].as_array().expect("audit entries").clone()
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

/// The `event_type` of each event in a JSON array (a history, or a diff's `events`).
pub fn event_types(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .expect("an array of events")
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect()
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

/// Signs `username` in on the server at `base` (`http://host:port`, a server outside this
/// process) and returns the access token.
pub async fn login_at(client: &Client, base: &str, username: &str, password: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login of {username} failed: {body}"))
        .to_string()
}

/// A nats-server with JetStream on a free port, its store in a temp dir.
pub struct Nats {
    binary: String,
    port: u16,
    store: PathBuf,
    child: Option<std::process::Child>,
    /// Further arguments (credentials the server requires, say).
    extra: Vec<String>,
}

impl Nats {
    pub fn start() -> Nats {
        Nats::start_with(&[])
    }

    /// A nats-server started with `extra` arguments besides the usual ones.
    pub fn start_with(extra: &[&str]) -> Nats {
        let binary = std::env::var("DCP_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Nats {
            binary,
            port,
            store: temp_dir(),
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        nats.run();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn run(&mut self) {
        let child = std::process::Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server (scripts/services.sh installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The test SSH user and its password (from `scripts/services.sh`).
pub fn ssh_user() -> String {
    std::env::var("DCP_TEST_SSH_USER").unwrap_or_else(|_| "dcp-ssh".into())
}

pub fn ssh_password() -> String {
    let file = std::env::var("DCP_TEST_SSH_PASSWORD_FILE")
        .expect("DCP_TEST_SSH_PASSWORD_FILE is not set: run scripts/services.sh");
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

/// Lets `public_key` (an `authorized_keys` line) log in as the test SSH user.
pub fn authorize_key(public_key: &str) {
    use std::io::Write;
    let file = std::env::var("DCP_TEST_SSH_AUTHORIZED_KEYS")
        .expect("DCP_TEST_SSH_AUTHORIZED_KEYS is not set: run scripts/services.sh");
    let mut file = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    writeln!(file, "{}", public_key.trim()).unwrap();
}

/// `SHA256:…` of a public key file, as `ssh-keygen -l` prints it.
pub fn key_fingerprint(public_key_file: &std::path::Path) -> String {
    let output = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key_file)
        .output()
        .expect("run ssh-keygen");
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

/// Makes an ED25519 key pair in `dir`; returns the private key file.
pub fn ssh_keygen(dir: &std::path::Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success());
    path
}

/// A private sshd on a free port with its own host key (the shared configuration otherwise):
/// tests stop it, restart it and change its key without disturbing the shared one.
pub struct TestSshd {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<std::process::Child>,
}

impl TestSshd {
    pub fn start() -> TestSshd {
        let dir = temp_dir();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sshd = TestSshd {
            port,
            dir,
            child: None,
        };
        sshd.new_host_key();
        sshd.run();
        sshd
    }

    pub fn host_key_file(&self) -> PathBuf {
        self.dir.join("host_key")
    }

    /// The public host key line (`ssh-ed25519 AAAA… comment`).
    pub fn host_key_line(&self) -> String {
        std::fs::read_to_string(self.dir.join("host_key.pub")).unwrap()
    }

    pub fn fingerprint(&self) -> String {
        key_fingerprint(&self.dir.join("host_key.pub"))
    }

    /// Replaces the host key (takes effect at the next start).
    pub fn new_host_key(&mut self) {
        let _ = std::fs::remove_file(self.host_key_file());
        let _ = std::fs::remove_file(self.dir.join("host_key.pub"));
        ssh_keygen(&self.dir, "host_key", "");
        let shared = std::env::var("DCP_TEST_SSHD_CONFIG")
            .expect("DCP_TEST_SSHD_CONFIG is not set: run scripts/services.sh");
        let config: String = std::fs::read_to_string(shared)
            .unwrap()
            .lines()
            .map(|line| {
                if line.starts_with("HostKey ") {
                    format!("HostKey {}", self.host_key_file().display())
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(self.dir.join("sshd_config"), config + "\n").unwrap();
    }

    pub fn run(&mut self) {
        let sshd = std::env::var("DCP_TEST_SSHD").unwrap_or_else(|_| "/usr/sbin/sshd".into());
        let child = std::process::Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .args(["-p", &self.port.to_string()])
            .arg("-o")
            .arg(format!("PidFile={}", self.dir.join("sshd.pid").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sshd (scripts/services.sh installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sshd and every session it serves (as a host going down would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills `pid` and all its descendants.
pub fn kill_tree(pid: u32) {
    let output = std::process::Command::new("ps")
        .args(["-e", "-o", "pid=,ppid="])
        .output()
        .expect("run ps");
    let pairs: Vec<(u32, u32)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(pairs.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    for pid in tree {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}
