//! Remote Docker hosts over SSH against a real sshd (the shared one from
//! `scripts/services.sh`, or a private one a test stops, restarts and re-keys): the
//! `ssh_host_setup` wizard with a generated key, an imported key and a password; resuming
//! after a restart; a changed host key refused and audited; every Docker feature on the SSH
//! host; lists across hosts that report a dead host without waiting for it; no secret in a
//! dump of the database or of the event stream.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;
use crate::containers::{docker, test_image, Containers};
use crate::realtime::{connect, next_json, read_until, ticket, until_type};

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

/// Starts a wizard and fills in the connection step; returns its id.
async fn start_wizard(app: &TestApp, name: &str, port: u16) -> String {
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
    let id = wizard["id"].as_str().unwrap().to_string();
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/wizards/{id}/step"),
        Some(json!({"step_data": {"connection_name": name, "host_url": url_for(port)}})),
    )
    .await;
    let wizard = ok(
        app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    assert_eq!(wizard["step_name"], "authentication");
    id
}

/// Starts a wizard, fills in the connection and `credentials`, and moves to the SSH test.
async fn with_credentials(app: &TestApp, name: &str, port: u16, credentials: Value) -> String {
    let id = start_wizard(app, name, port).await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/wizards/{id}/step"),
        Some(json!({ "step_data": credentials })),
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    id
}

/// From the SSH test to completion; returns the completion.
async fn finish_wizard(app: &TestApp, id: &str, fingerprint: &str) -> Value {
    let path = |action: &str| format!("/api/v1/wizards/{id}/{action}");
    let tested = ok(
        app,
        Method::POST,
        &path("test"),
        Some(json!({"test_type": "ssh_connection"})),
    )
    .await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["details"]["fingerprint"], fingerprint, "{tested}");
    // A wrong confirmation is refused, naming the field.
    let (status, refused) = call(
        app,
        Method::PUT,
        &path("step"),
        Some(json!({"step_data": {"confirm_fingerprint": "SHA256:not-the-key"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "confirm_fingerprint");
    ok(
        app,
        Method::PUT,
        &path("step"),
        Some(json!({"step_data": {"confirm_fingerprint": fingerprint}})),
    )
    .await;
    // Again, now to the confirmed key only: a password is sent to it at last.
    let tested = ok(app, Method::POST, &path("test"), None).await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["details"]["authenticated"], true, "{tested}");
    let wizard = ok(app, Method::POST, &path("next"), None).await;
    assert_eq!(wizard["step_name"], "docker_test");
    // Not before the Docker test has passed.
    let (status, refused) = call(app, Method::POST, &path("next"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["details"]["step"], "docker_test");
    let tested = ok(app, Method::POST, &path("test"), None).await;
    assert_eq!(tested["passed"], true, "{tested}");
    let local_version = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert_eq!(tested["details"]["version"], local_version.as_str());
    assert!(tested["details"]["api_version"].is_string(), "{tested}");
    ok(app, Method::POST, &path("next"), None).await;
    ok(
        app,
        Method::PUT,
        &path("step"),
        Some(json!({"step_data": {"tags": ["test", "ssh"]}})),
    )
    .await;
    let done = ok(app, Method::POST, &path("complete"), None).await;
    assert_eq!(done["wizard"]["status"], "completed", "{done}");
    assert_eq!(done["result"]["check"]["reachable"], true, "{done}");
    done
}

#[tokio::test]
async fn the_wizard_adds_a_host_with_a_generated_key_and_every_docker_feature_works_on_it() {
    let app = spawn_app().await;
    let name = format!("gen-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let id = start_wizard(&app, &name, shared_sshd_port()).await;
    let path = |action: &str| format!("/api/v1/wizards/{id}/{action}");

    // Previous keeps the data; next again.
    let back = ok(&app, Method::POST, &path("previous"), None).await;
    assert_eq!(back["step_name"], "connection");
    assert_eq!(back["steps"][0]["data"]["connection_name"], name.as_str());
    let (status, _) = call(&app, Method::POST, &path("previous"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "at the first step");
    ok(&app, Method::POST, &path("next"), None).await;
    // Authentication is incomplete: next is refused.
    let (status, refused) = call(&app, Method::POST, &path("next"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["details"]["step"], "authentication");

    let (status, key) = call(
        &app,
        Method::POST,
        "/api/v1/wizards/generate-ssh-key?comment=dcp@tests",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let public_key = key["public_key"].as_str().unwrap();
    assert!(public_key.starts_with("ssh-ed25519 ") && public_key.ends_with(" dcp@tests"));
    assert!(!key.to_string().contains("PRIVATE KEY"), "{key}");
    authorize_key(public_key);
    let wizard = ok(
        &app,
        Method::PUT,
        &path("step"),
        Some(json!({"step_data": {"method": "generated_key", "key_id": key["key_id"]}})),
    )
    .await;
    assert_eq!(wizard["steps"][1]["data"]["public_key"], public_key);
    assert_eq!(wizard["steps"][1]["data"]["secret_id"], key["key_id"]);
    ok(&app, Method::POST, &path("next"), None).await;
    // The SSH test must pass before next.
    let (status, _) = call(&app, Method::POST, &path("next"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let done = finish_wizard(&app, &id, &shared_fingerprint()).await;
    let host_id = done["result"]["host_id"].as_str().unwrap().to_string();
    // The key now belongs to that host: another wizard cannot take it.
    let other = start_wizard(&app, &format!("{name}-again"), shared_sshd_port()).await;
    let (status, refused) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/wizards/{other}/step"),
        Some(json!({"step_data": {"method": "generated_key", "key_id": key["key_id"]}})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["field"], "key_id");
    // Completing twice is refused, and so is anything else on a finished wizard.
    let (status, again) = call(&app, Method::POST, &path("complete"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, _) = call(&app, Method::POST, &path("cancel"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Finished wizards are not offered for resuming.
    let open = ok(&app, Method::GET, "/api/v1/wizards", None).await;
    assert!(!open.to_string().contains(&id), "{open}");

    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{name}"), None).await;
    assert_eq!(host["id"], host_id.as_str());
    assert_eq!(host["status"], "active", "{host}");
    assert_eq!(host["ssh"]["fingerprint"], shared_fingerprint());
    assert_eq!(host["ssh"]["auth_method"], "generated_key");
    assert_eq!(host["ssh"]["tags"], json!(["test", "ssh"]));
    assert!(host["liveness"]["last_seen"].is_string(), "{host}");
    // Everyone reads hosts; only admins change them.
    let (_, viewer) = app.user_with_token("hostviewer", "viewer").await;
    let hosts = app.get_json("/api/v1/hosts", &viewer).await;
    assert_eq!(hosts[0]["id"], "local");
    assert!(hosts.to_string().contains(&host_id));
    let refused = app
        .request(
            Method::PATCH,
            &format!("/api/v1/hosts/{host_id}"),
            Some(&viewer),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // The container lifecycle on the SSH host (by name), recorded as that host's.
    let run = Containers::new();
    let container = format!("over-ssh-{}", &run.run[..8]);
    let (status, created) = call(
        &app,
        Method::POST,
        &format!("/api/v1/containers?host={name}"),
        Some(json!({
            "image": test_image(),
            "name": container,
            "command": ["sh", "-c", "echo hello-from-ssh; while :; do sleep 1; done"],
            "labels": {"test.dcp-run": run.run},
            "memory_bytes": 67108864,
            "start": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["host"], host_id.as_str());
    assert_eq!(created["started"], true);
    let docker_id = created["container_id"].as_str().unwrap().to_string();
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &docker_id]),
        "true"
    );
    for (action, body) in [
        ("stop", Some(json!({"timeout": 0}))),
        ("start", None),
        ("restart", Some(json!({"timeout": 0}))),
    ] {
        let outcome = ok(
            &app,
            Method::POST,
            &format!("/api/v1/containers/{container}/{action}?host={host_id}"),
            body,
        )
        .await;
        assert_eq!(outcome["status"], "succeeded", "{action}: {outcome}");
    }
    let inspect = ok(
        &app,
        Method::GET,
        &format!("/api/v1/containers/{container}?host={name}"),
        None,
    )
    .await;
    assert_eq!(inspect["host"], host_id.as_str());

    // Logs, stats and exec over SSH.
    let logs = ticket(
        &app,
        &app.admin_token,
        json!({"purpose": "container.logs", "resource_id": container}),
    )
    .await;
    let mut socket = connect(
        &app,
        &format!("/ws/containers/{container}/logs?host={host_id}&tail=all&follow=false"),
        Some(&logs),
        None,
    )
    .await
    .unwrap();
    let lines = until_type(&mut socket, "end").await;
    assert!(
        lines.iter().any(|m| m["data"]
            .as_str()
            .is_some_and(|d| d.contains("hello-from-ssh"))),
        "{lines:?}"
    );
    let stats = ticket(
        &app,
        &app.admin_token,
        json!({"purpose": "container.stats", "resource_id": container}),
    )
    .await;
    let mut socket = connect(
        &app,
        &format!("/ws/containers/{container}/stats?host={host_id}"),
        Some(&stats),
        None,
    )
    .await
    .unwrap();
    let _ = next_json(&mut socket).await;
    let sample = next_json(&mut socket).await;
    assert_eq!(sample["type"], "stats", "{sample}");
    assert_eq!(sample["memory"]["limit"], 64 * 1024 * 1024, "{sample}");
    let exec = ticket(
        &app,
        &app.admin_token,
        json!({"purpose": "container.exec", "resource_id": container}),
    )
    .await;
    let mut terminal = connect(
        &app,
        &format!("/ws/containers/{container}/exec?host={host_id}&cols=80&rows=24"),
        Some(&exec),
        None,
    )
    .await
    .unwrap();
    assert_eq!(next_json(&mut terminal).await["type"], "started");
    terminal
        .send(Message::Binary("echo over''ssh\n".into()))
        .await
        .unwrap();
    read_until(&mut terminal, "overssh\r\n").await;
    drop(terminal);

    // One list across local and the SSH host (the same engine here, so the container is
    // listed once per host).
    let list = ok(
        &app,
        Method::GET,
        &format!("/api/v1/containers?name={container}"),
        None,
    )
    .await;
    let hosts: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["host"].as_str().unwrap())
        .collect();
    assert!(
        hosts.contains(&"local") && hosts.contains(&host_id.as_str()),
        "{list}"
    );
    assert!(
        list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "ok"),
        "{list}"
    );
    let over_ssh = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["host"] == host_id.as_str())
        .unwrap();
    assert_eq!(over_ssh["platform"]["origin"], "dcp", "{over_ssh}");
    for resource in ["images", "volumes", "networks"] {
        let list = ok(&app, Method::GET, &format!("/api/v1/{resource}"), None).await;
        assert!(
            list["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["host"] == host_id.as_str() && h["status"] == "ok"),
            "{resource}: {list}"
        );
        // The engine has images and networks (it may have no volume).
        if resource != "volumes" {
            assert!(
                list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["host"] == host_id.as_str()),
                "{resource}: {list}"
            );
        }
    }
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/containers/{container}?host={host_id}&force=true"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(docker(&["ps", "-aq", "--filter", &format!("id={docker_id}")]).is_empty());

    // Images, volumes and networks on the SSH host, as recorded operations.
    {
        use crate::resources::{docker_ok, seed_registry_image, wait_for_operation, Leftovers};
        let registry =
            std::env::var("DCP_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55000".into());
        let repository = format!("{registry}/dcp-test/ssh-pull-{}", &run.run[..8]);
        let reference = seed_registry_image(&repository, "1");
        let volume = format!("ssh-volume-{}", &run.run[..8]);
        let network = format!("ssh-network-{}", &run.run[..8]);
        let _leftovers = Leftovers {
            volumes: vec![volume.clone()],
            networks: vec![network.clone()],
            images: vec![reference.clone()],
        };
        let (status, accepted) = call(
            &app,
            Method::POST,
            "/api/v1/images/pull",
            Some(json!({"image": repository, "tag": "1", "host": name})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let pulled = wait_for_operation(&app, &accepted).await;
        assert_eq!(pulled["status"], "succeeded", "{pulled}");
        assert_eq!(pulled["host"], host_id.as_str(), "{pulled}");
        assert!(docker_ok(&["image", "inspect", &reference]));
        let (status, created) = call(
            &app,
            Method::POST,
            &format!("/api/v1/volumes?host={name}"),
            Some(json!({"name": volume})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert!(docker_ok(&["volume", "inspect", &volume]));
        let (status, created) = call(
            &app,
            Method::POST,
            &format!("/api/v1/networks?host={name}"),
            Some(json!({"name": network})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert!(docker_ok(&["network", "inspect", &network]));
        for path in [
            format!("/api/v1/networks/{network}?host={name}"),
            format!("/api/v1/volumes/{volume}?host={name}"),
        ] {
            let (status, removed) = call(&app, Method::DELETE, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {removed}");
        }
        assert!(!docker_ok(&["volume", "inspect", &volume]));
    }

    // All of it went through one SSH connection.
    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(host["ssh_handshakes"], 1, "{host}");

    // The host's history: registered, then active.
    let history = ok(
        &app,
        Method::GET,
        &format!("/api/v1/hosts/{name}/diff?from=0"),
        None,
    )
    .await;
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types[..2],
        ["HostRegistered", "HostStatusChanged"],
        "{history}"
    );

    // Removing the host forgets its key; its containers stay.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/hosts/{host_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!secret_exists(&app, key["key_id"].as_str().unwrap()).await);
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/containers?host={host_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_imported_key_and_a_password_set_up_hosts_and_bad_ones_fail_the_test_clearly() {
    let app = spawn_app().await;
    let dir = temp_dir();
    let key_file = ssh_keygen(&dir, "imported", "a passphrase");
    authorize_key(&std::fs::read_to_string(dir.join("imported.pub")).unwrap());
    let private_key = std::fs::read_to_string(&key_file).unwrap();

    // Imported key: a wrong passphrase is a 400 naming the field; the right one works.
    let name = format!("imp-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let id = start_wizard(&app, &name, shared_sshd_port()).await;
    let step = format!("/api/v1/wizards/{id}/step");
    let (status, refused) = call(
        &app,
        Method::PUT,
        &step,
        Some(json!({"step_data": {"method": "imported_key", "private_key": private_key, "passphrase": "wrong"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "private_key");
    let wizard = ok(
        &app,
        Method::PUT,
        &step,
        Some(json!({"step_data": {"method": "imported_key", "private_key": private_key, "passphrase": "a passphrase"}})),
    )
    .await;
    assert!(!wizard.to_string().contains("PRIVATE KEY"), "{wizard}");
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    finish_wizard(&app, &id, &shared_fingerprint()).await;

    // Password: a wrong one fails the SSH test with a clear reason (not a 500), and the
    // step cannot be passed; the right one works.
    let name = format!("pw-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let id = start_wizard(&app, &name, shared_sshd_port()).await;
    let step = format!("/api/v1/wizards/{id}/step");
    ok(
        &app,
        Method::PUT,
        &step,
        Some(json!({"step_data": {"method": "password", "password": "not-the-password"}})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    // The first test only reads the host key: no password goes to an unconfirmed key.
    let test_path = format!("/api/v1/wizards/{id}/test");
    let tested = ok(&app, Method::POST, &test_path, None).await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["details"]["authenticated"], false, "{tested}");
    assert_eq!(tested["details"]["fingerprint"], shared_fingerprint());
    ok(
        &app,
        Method::PUT,
        &step,
        Some(json!({"step_data": {"confirm_fingerprint": shared_fingerprint()}})),
    )
    .await;
    let (status, refused) = call(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "not logged in yet: {refused}");
    let tested = ok(&app, Method::POST, &test_path, None).await;
    assert_eq!(tested["passed"], false, "{tested}");
    assert_eq!(
        tested["details"]["error_kind"], "authentication_failed",
        "{tested}"
    );
    assert!(tested["details"]["error"]
        .as_str()
        .unwrap()
        .contains("refused"));
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Back to authentication, the right password; the wrong one's seal is forgotten.
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/previous"),
        None,
    )
    .await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM sealed_secrets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    ok(
        &app,
        Method::PUT,
        &step,
        Some(json!({"step_data": {"method": "password", "password": ssh_password()}})),
    )
    .await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM sealed_secrets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after, before, "one sealed, the replaced one forgotten");
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    let done = finish_wizard(&app, &id, &shared_fingerprint()).await;
    let host_id = done["result"]["host_id"].as_str().unwrap();
    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(host["ssh"]["auth_method"], "password");

    // An unreachable port fails the SSH test clearly.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = format!(
        "nowhere-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let id = start_wizard(&app, &name, closed).await;
    ok(
        &app,
        Method::PUT,
        &format!("/api/v1/wizards/{id}/step"),
        Some(json!({"step_data": {"method": "password", "password": "whatever"}})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    let tested = ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/test"),
        None,
    )
    .await;
    assert_eq!(tested["passed"], false, "{tested}");
    assert_eq!(tested["details"]["error_kind"], "unreachable", "{tested}");
    // The wrong test for the step is named.
    let (status, refused) = call(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/test"),
        Some(json!({"test_type": "docker_api"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "test_type");
    // Cancelling forgets the password it sealed.
    let secret: uuid::Uuid = ok(&app, Method::GET, &format!("/api/v1/wizards/{id}"), None).await
        ["steps"][1]["data"]["secret_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let cancelled = ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(!secret_exists(&app, &secret.to_string()).await);
    // Another admin does not see (or touch) this admin's wizards.
    let (_, other) = app.user_with_token("otheradmin", "admin").await;
    let response = app.get(&format!("/api/v1/wizards/{id}"), &other).await;
    assert_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // Operators cannot start one.
    let (_, operator) = app.user_with_token("wizop", "operator").await;
    let response = app
        .request(
            Method::POST,
            "/api/v1/wizards/start",
            Some(&operator),
            Some(json!({"wizard_type": "ssh_host_setup"})),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}

#[tokio::test]
async fn a_wizard_resumes_after_a_restart() {
    let key = base64_key();
    let database_url = fresh_database().await;
    let with_key = |settings: &mut dcp::config::Settings| {
        settings.master_key = Some(secrecy::SecretString::from(key.clone()));
    };
    let app = spawn_app_on(database_url.clone(), with_key).await;
    let name = format!("resume-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let id = start_wizard(&app, &name, shared_sshd_port()).await;
    ok(
        &app,
        Method::PUT,
        &format!("/api/v1/wizards/{id}/step"),
        Some(json!({"step_data": {"method": "password", "password": ssh_password()}})),
    )
    .await;
    app.stop().await;

    let app = spawn_app_on(database_url, with_key).await;
    let open = ok(&app, Method::GET, "/api/v1/wizards", None).await;
    let wizard = open
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == id.as_str())
        .expect("the wizard is offered for resuming")
        .clone();
    assert_eq!(wizard["step_name"], "authentication");
    assert_eq!(wizard["metadata"]["opened_from"], "tests");
    assert_eq!(wizard["steps"][0]["data"]["connection_name"], name.as_str());
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/wizards/{id}/next"),
        None,
    )
    .await;
    finish_wizard(&app, &id, &shared_fingerprint()).await;
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// Registers the private sshd as a host through `POST /api/v1/hosts`, pinned to its key.
async fn register_private(app: &TestApp, sshd: &TestSshd, name: &str) -> String {
    let (status, created) = call(
        app,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({
            "name": name,
            "url": url_for(sshd.port),
            "auth": {"method": "password", "password": ssh_password()},
            "host_key": format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key_line()),
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["check"]["reachable"], true, "{created}");
    assert_eq!(created["host"]["status"], "active", "{created}");
    assert_eq!(created["host"]["ssh"]["fingerprint"], sshd.fingerprint());
    created["host"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_audited_and_a_dead_host_does_not_hold_up_lists() {
    let app = spawn_app().await;
    let mut sshd = TestSshd::start();
    let name = format!("keyed-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let host_id = register_private(&app, &sshd, &name).await;
    let list = ok(&app, Method::GET, "/api/v1/containers?all=true", None).await;
    assert_eq!(list["hosts"].as_array().unwrap().len(), 2, "{list}");
    // Added by fingerprint: a host presenting another key is refused before the password
    // is sent; the right fingerprint pins the key.
    let by_fingerprint = |name: String, fingerprint: String| {
        json!({
            "name": name,
            "url": url_for(sshd.port),
            "auth": {"method": "password", "password": ssh_password()},
            "host_key_fingerprint": fingerprint,
        })
    };
    let (status, refused) = call(
        &app,
        Method::POST,
        "/api/v1/hosts",
        Some(by_fingerprint(
            format!("{name}-2"),
            "SHA256:not-this-one".into(),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "host_key_fingerprint");
    assert_eq!(
        refused["error"]["details"]["seen_fingerprint"],
        sshd.fingerprint()
    );
    let (status, second) = call(
        &app,
        Method::POST,
        "/api/v1/hosts",
        Some(by_fingerprint(format!("{name}-2"), sshd.fingerprint())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(
        second["host"]["ssh"]["host_key"].as_str().unwrap(),
        sshd.host_key_line()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/hosts/{}", second["host"]["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // sshd goes down (with its sessions): lists answer at once, the host marked unreachable.
    sshd.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let list = ok(&app, Method::GET, "/api/v1/containers?all=true", None).await;
        let took = started.elapsed();
        let answer = list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == host_id.as_str())
            .unwrap()
            .clone();
        let local = list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == "local")
            .unwrap()
            .clone();
        assert_eq!(answer["status"], "unreachable", "attempt {attempt}: {list}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(local["status"], "ok");
        assert!(
            took < Duration::from_secs(2),
            "attempt {attempt}: the list took {took:?}"
        );
    }
    let checked = ok(
        &app,
        Method::POST,
        &format!("/api/v1/hosts/{host_id}/test"),
        None,
    )
    .await;
    assert_eq!(checked["reachable"], false, "{checked}");
    assert_eq!(checked["error_kind"], "unreachable", "{checked}");
    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(host["status"], "unreachable", "{host}");

    // Back up: it recovers by itself (the back-off is at most 10 s).
    sshd.run();
    eventually(Duration::from_secs(30), || async {
        let list = ok(&app, Method::GET, "/api/v1/containers?all=true", None).await;
        list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "ok")
            .then_some(())
    })
    .await;

    // The host is reinstalled with another key: refused, and the refusal is recorded.
    sshd.stop();
    sshd.new_host_key();
    sshd.run();
    let checked = ok(
        &app,
        Method::POST,
        &format!("/api/v1/hosts/{host_id}/test"),
        None,
    )
    .await;
    assert_eq!(checked["reachable"], false, "{checked}");
    assert_eq!(checked["error_kind"], "host_key_changed", "{checked}");
    assert!(checked["error"]
        .as_str()
        .unwrap()
        .contains(&sshd.fingerprint()));
    let mismatch = eventually(Duration::from_secs(10), || async {
        let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
        host["ssh"]["key_mismatch"]["seen_fingerprint"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    assert_eq!(mismatch, sshd.fingerprint());
    let audit = ok(
        &app,
        Method::GET,
        "/api/v1/audit-logs?action=host.key_mismatch",
        None,
    )
    .await;
    assert!(audit.to_string().contains(&host_id), "{audit}");
    // Lists still answer, with the host refused.
    let list = ok(&app, Method::GET, "/api/v1/images", None).await;
    let answer = list["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(answer["status"], "unreachable", "{list}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("host key changed"));

    // The admin pins the new key: the host is active again.
    let host = ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/hosts/{host_id}"),
        Some(json!({"host_key": sshd.host_key_line()})),
    )
    .await;
    assert_eq!(host["status"], "active", "{host}");
    assert_eq!(host["ssh"]["fingerprint"], sshd.fingerprint());
    assert!(host["ssh"]["key_mismatch"].is_null());
    // Disabled: left out of lists, and refused by name.
    let host = ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/hosts/{host_id}"),
        Some(json!({"enabled": false, "tags": ["parked"]})),
    )
    .await;
    assert_eq!(host["status"], "disabled");
    let list = ok(&app, Method::GET, "/api/v1/networks", None).await;
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1, "{list}");
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/volumes?host={name}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // A name is unique.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({
            "name": name,
            "url": url_for(sshd.port),
            "auth": {"method": "password", "password": "x"},
            "host_key": sshd.host_key_line(),
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["field"], "name");
}

#[tokio::test]
async fn no_private_key_or_password_reaches_the_database_dump_or_the_event_stream() {
    let nats = Nats::start();
    let url = nats.url();
    let app = spawn_app_with(|settings| settings.nats_url = Some(url.clone())).await;
    let dir = temp_dir();
    let key_file = ssh_keygen(&dir, "dumped", "");
    authorize_key(&std::fs::read_to_string(dir.join("dumped.pub")).unwrap());
    let private_key = std::fs::read_to_string(&key_file).unwrap();
    let password = ssh_password();

    let name = format!(
        "dump-key-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let id = with_credentials(
        &app,
        &name,
        shared_sshd_port(),
        json!({"method": "imported_key", "private_key": private_key}),
    )
    .await;
    finish_wizard(&app, &id, &shared_fingerprint()).await;
    let name = format!(
        "dump-pw-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let id = with_credentials(
        &app,
        &name,
        shared_sshd_port(),
        json!({"method": "password", "password": password}),
    )
    .await;
    finish_wizard(&app, &id, &shared_fingerprint()).await;
    let (status, generated) =
        call(&app, Method::POST, "/api/v1/wizards/generate-ssh-key", None).await;
    assert_eq!(status, StatusCode::CREATED);

    // What must not appear: the password, the key's text and its base64 body lines.
    let key_lines: Vec<&str> = private_key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    assert!(!key_lines.is_empty());
    let leaks = |text: &str| -> Vec<String> {
        let mut found = Vec::new();
        if text.contains(&password) {
            found.push("the password".to_string());
        }
        if text.contains("PRIVATE KEY") {
            found.push("a private key header".to_string());
        }
        for line in &key_lines {
            if text.contains(line) {
                found.push(format!("a key line {line}"));
            }
        }
        found
    };

    // The whole database, as pg_dump writes it.
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut versions| versions.next())
        .and_then(|v| v.ok())
        .map(|v| v.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "pg_dump".into());
    let dump = std::process::Command::new(pg_dump)
        .arg("--no-owner")
        .arg(&app.database_url)
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(dump.contains("HostRegistered"), "the dump holds the events");
    assert!(dump.contains("sealed_secrets"), "and the sealed secrets");
    assert_eq!(leaks(&dump), Vec::<String>::new(), "in the database dump");
    // The generated key is in the dump only sealed, under its id.
    assert!(dump.contains(generated["key_id"].as_str().unwrap()));

    // The whole event stream on NATS.
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = eventually(Duration::from_secs(10), || {
        let js = js.clone();
        async move { js.get_stream("DCP_EVENTS").await.ok() }
    })
    .await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen = 0i64;
    let mut all = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < events {
        assert!(
            Instant::now() < deadline,
            "{seen} of {events} events on the stream"
        );
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        use futures_util::StreamExt;
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            all.push_str(&String::from_utf8_lossy(&message.payload));
            all.push('\n');
            seen += 1;
            let _ = message.ack().await;
        }
    }
    assert!(all.contains("HostRegistered") && all.contains("StepDataSubmitted"));
    assert_eq!(leaks(&all), Vec::<String>::new(), "in the event stream");
}

#[tokio::test]
async fn docker_events_on_an_ssh_host_are_followed_through_ssh() {
    let app = spawn_app_with(|settings| settings.watch_docker_events = true).await;
    let name = format!(
        "watched-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({
            "name": name,
            "url": url_for(shared_sshd_port()),
            "auth": {"method": "password", "password": ssh_password()},
            "host_key": std::fs::read_to_string(std::env::var("DCP_TEST_SSH_HOST_KEY").unwrap()).unwrap(),
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let host_id = created["host"]["id"].as_str().unwrap().to_string();
    // The host's watcher starts (it stores where it resumes) over the SSH connection.
    eventually(Duration::from_secs(20), || async {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT time_nano FROM docker_event_cursors WHERE host = $1")
                .bind(&host_id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        cursor.map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A container started outside dcp is recorded on the SSH host, as Docker's doing.
    let run = Containers::new();
    let docker_id = run.start("outside", &[]);
    let recorded = eventually(Duration::from_secs(30), || async {
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT e.event_type, e.metadata::jsonb FROM events e JOIN container_ids c \
             ON e.aggregate_type = 'container' AND e.aggregate_id = c.aggregate_id::text \
             WHERE c.host = $1 AND c.docker_id = $2 ORDER BY e.sequence",
        )
        .bind(&host_id)
        .bind(&docker_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        rows.iter()
            .any(|(event_type, _)| event_type == "ContainerObserved")
            .then_some(rows)
    })
    .await;
    assert!(
        recorded
            .iter()
            .all(|(_, metadata)| metadata["actor_kind"] == "docker"),
        "{recorded:?}"
    );
    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(
        host["ssh_handshakes"], 1,
        "the watcher shares the pooled connection: {host}"
    );
}
