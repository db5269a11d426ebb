//! Remote Docker hosts over SSH against a real sshd (the shared one from
//! `scripts/services.sh`, or a private one a test stops, restarts and re-keys): the
//! `ssh_host_setup` wizard with a generated key, an imported key and a password; resuming
//! after a restart; a changed host key refused and audited; every Docker feature on the SSH
//! host; lists across hosts that report a dead host without waiting for it; no secret in a
//! dump of the database or of the event stream.

mod docker_over_ssh;
mod host_keys;
mod secrets;
mod wizard;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::containers::docker;

/// A request as the admin: its status and JSON body (`null` if there is none).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = app
        .request(method, path, Some(&app.admin_token), body)
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A request as the admin that must succeed; its JSON body.
async fn ok(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, body) = call(app, method.clone(), path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {body}");
    body
}

/// Whether sealed secret `id` is still stored.
async fn secret_exists(app: &TestApp, id: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sealed_secrets WHERE id = $1::uuid)")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn shared_sshd_port() -> u16 {
    std::env::var("DCP_TEST_SSHD_PORT")
        .expect("DCP_TEST_SSHD_PORT is not set: run scripts/services.sh")
        .parse()
        .unwrap()
}

fn shared_fingerprint() -> String {
    key_fingerprint(std::path::Path::new(
        &std::env::var("DCP_TEST_SSH_HOST_KEY").expect("DCP_TEST_SSH_HOST_KEY is not set"),
    ))
}

fn url_for(port: u16) -> String {
    format!("ssh://{}@127.0.0.1:{port}", ssh_user())
}

/// A host name no other test uses: `prefix-` and eight random hex digits.
fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// An `ssh_host_setup` wizard of the admin's, walked step by step through its endpoints.
struct Wizard<'a> {
    app: &'a TestApp,
    id: String,
}

impl Wizard<'_> {
    fn path(&self, action: &str) -> String {
        format!("/api/v1/wizards/{}/{action}", self.id)
    }

    /// `action` on the wizard, whatever the answer.
    async fn call(&self, method: Method, action: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(self.app, method, &self.path(action), body).await
    }

    /// `action` on the wizard, which must succeed.
    async fn ok(&self, method: Method, action: &str, body: Option<Value>) -> Value {
        ok(self.app, method, &self.path(action), body).await
    }

    /// Submits `step_data` for the current step, whatever the answer.
    async fn try_submit(&self, step_data: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, "step", Some(json!({ "step_data": step_data })))
            .await
    }

    /// Submits `step_data` for the current step, which must be accepted.
    async fn submit(&self, step_data: Value) -> Value {
        self.ok(Method::PUT, "step", Some(json!({ "step_data": step_data })))
            .await
    }

    /// Moves to the next step, which must be allowed.
    async fn next(&self) -> Value {
        self.ok(Method::POST, "next", None).await
    }

    /// Runs the current step's test, which must answer (passed or not).
    async fn run_test(&self, body: Option<Value>) -> Value {
        self.ok(Method::POST, "test", body).await
    }
}

/// Starts a wizard and fills in the connection step.
async fn start_wizard<'a>(app: &'a TestApp, name: &str, port: u16) -> Wizard<'a> {
    let (status, wizard) = call(
        app,
        Method::POST,
        "/api/v1/wizards/start",
        Some(json!({"wizard_type": "ssh_host_setup", "metadata": {"opened_from": "tests"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{wizard}");
    assert_eq!(wizard["total_steps"], 5);
    assert_eq!(wizard["step_name"], "connection");
    let wizard = Wizard {
        app,
        id: wizard["id"].as_str().unwrap().to_string(),
    };
    wizard
        .submit(json!({"connection_name": name, "host_url": url_for(port)}))
        .await;
    let moved = wizard.next().await;
    assert_eq!(moved["step_name"], "authentication");
    wizard
}

/// Starts a wizard, fills in the connection and `credentials`, and moves to the SSH test.
async fn with_credentials<'a>(
    app: &'a TestApp,
    name: &str,
    port: u16,
    credentials: Value,
) -> Wizard<'a> {
    let wizard = start_wizard(app, name, port).await;
    wizard.submit(credentials).await;
    wizard.next().await;
    wizard
}

/// From the SSH test to completion; returns the completion.
async fn finish_wizard(wizard: &Wizard<'_>, fingerprint: &str) -> Value {
    let tested = wizard
        .run_test(Some(json!({"test_type": "ssh_connection"})))
        .await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["details"]["fingerprint"], fingerprint, "{tested}");
    // A wrong confirmation is refused, naming the field.
    let (status, refused) = wizard
        .try_submit(json!({"confirm_fingerprint": "SHA256:not-the-key"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "confirm_fingerprint");
    wizard
        .submit(json!({"confirm_fingerprint": fingerprint}))
        .await;
    // Again, now to the confirmed key only: a password is sent to it at last.
    let tested = wizard.run_test(None).await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["details"]["authenticated"], true, "{tested}");
    let moved = wizard.next().await;
    assert_eq!(moved["step_name"], "docker_test");
    // Not before the Docker test has passed.
    let (status, refused) = wizard.call(Method::POST, "next", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["details"]["step"], "docker_test");
    let tested = wizard.run_test(None).await;
    assert_eq!(tested["passed"], true, "{tested}");
    let local_version = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(tested["details"]["version"], local_version.as_str());
    assert!(tested["details"]["api_version"].is_string(), "{tested}");
    wizard.next().await;
    wizard.submit(json!({"tags": ["test", "ssh"]})).await;
    let done = wizard.ok(Method::POST, "complete", None).await;
    assert_eq!(done["wizard"]["status"], "completed", "{done}");
    assert_eq!(done["result"]["check"]["reachable"], true, "{done}");
    done
}
