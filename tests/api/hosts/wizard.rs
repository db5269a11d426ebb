//! The `ssh_host_setup` wizard with an imported key and with a password: bad credentials and
//! unreachable hosts fail its tests with a clear reason, cancelling forgets what it sealed,
//! a wizard is its admin's alone, and it resumes after a restart.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn an_imported_key_and_a_password_set_up_hosts_and_bad_ones_fail_the_test_clearly() {
    let app = spawn_app().await;
    an_imported_key_needs_its_passphrase(&app).await;
    a_wrong_password_fails_the_ssh_test_and_the_right_one_works(&app).await;
    an_unreachable_port_fails_the_test_and_cancelling_forgets_the_password(&app).await;
}

/// Imported key: a wrong passphrase is a 400 naming the field; the right one works.
async fn an_imported_key_needs_its_passphrase(app: &TestApp) {
    let dir = temp_dir();
    let key_file = ssh_keygen(&dir, "imported", "a passphrase");
    authorize_key(&std::fs::read_to_string(dir.join("imported.pub")).unwrap());
    let private_key = std::fs::read_to_string(&key_file).unwrap();

    let wizard = start_wizard(app, &unique_name("imp"), shared_sshd_port()).await;
    let (status, refused) = wizard
        .try_submit(
            json!({"method": "imported_key", "private_key": private_key, "passphrase": "wrong"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "private_key");
    let submitted = wizard
        .submit(json!({"method": "imported_key", "private_key": private_key, "passphrase": "a passphrase"}))
        .await;
    assert!(
        !submitted.to_string().contains("PRIVATE KEY"),
        "{submitted}"
    );
    wizard.next().await;
    finish_wizard(&wizard, &shared_fingerprint()).await;
}

/// Password: a wrong one fails the SSH test with a clear reason (not a 500), and the step
/// cannot be passed; the right one works.
async fn a_wrong_password_fails_the_ssh_test_and_the_right_one_works(app: &TestApp) {
    let wizard = with_credentials(
        app,
        &unique_name("pw"),
        shared_sshd_port(),
        json!({"method": "password", "password": "not-the-password"}),
    )
    .await;
    // The first test only reads the host key: no password goes to an unconfirmed key.
    let tested = wizard.run_test(None).await;
    assert_eq!(tested["passed"], true, "{tested}");
    assert_eq!(tested["details"]["authenticated"], false, "{tested}");
    assert_eq!(tested["details"]["fingerprint"], shared_fingerprint());
    wizard
        .submit(json!({"confirm_fingerprint": shared_fingerprint()}))
        .await;
    let (status, refused) = wizard.call(Method::POST, "next", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "not logged in yet: {refused}");
    let tested = wizard.run_test(None).await;
    assert_eq!(tested["passed"], false, "{tested}");
    assert_eq!(
        tested["details"]["error_kind"], "authentication_failed",
        "{tested}"
    );
    assert!(tested["details"]["error"]
        .as_str()
        .unwrap()
        .contains("refused"));
    let (status, _) = wizard.call(Method::POST, "next", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Back to authentication, the right password; the wrong one's seal is forgotten.
    wizard.ok(Method::POST, "previous", None).await;
    let before = sealed_secrets(app).await;
    wizard
        .submit(json!({"method": "password", "password": ssh_password()}))
        .await;
    let after = sealed_secrets(app).await;
    assert_eq!(after, before, "one sealed, the replaced one forgotten");
    wizard.next().await;
    let done = finish_wizard(&wizard, &shared_fingerprint()).await;
    let host_id = done["result"]["host_id"].as_str().unwrap();
    let host = ok(app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(host["ssh"]["auth_method"], "password");
}

async fn sealed_secrets(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sealed_secrets")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// An unreachable port fails the SSH test clearly; the wrong test for the step is named;
/// cancelling forgets the password it sealed; a wizard is its admin's alone.
async fn an_unreachable_port_fails_the_test_and_cancelling_forgets_the_password(app: &TestApp) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wizard = with_credentials(
        app,
        &unique_name("nowhere"),
        closed,
        json!({"method": "password", "password": "whatever"}),
    )
    .await;
    let tested = wizard.run_test(None).await;
    assert_eq!(tested["passed"], false, "{tested}");
    assert_eq!(tested["details"]["error_kind"], "unreachable", "{tested}");
    let (status, refused) = wizard
        .call(
            Method::POST,
            "test",
            Some(json!({"test_type": "docker_api"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "test_type");
    let id = &wizard.id;
    let secret: uuid::Uuid = ok(app, Method::GET, &format!("/api/v1/wizards/{id}"), None).await
        ["steps"][1]["data"]["secret_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let cancelled = wizard.ok(Method::POST, "cancel", None).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(!secret_exists(app, &secret.to_string()).await);
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
    let name = unique_name("resume");
    let wizard = start_wizard(&app, &name, shared_sshd_port()).await;
    wizard
        .submit(json!({"method": "password", "password": ssh_password()}))
        .await;
    let id = wizard.id;
    app.stop().await;

    let app = spawn_app_on(database_url, with_key).await;
    let open = ok(&app, Method::GET, "/api/v1/wizards", None).await;
    let resumed = open
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == id.as_str())
        .expect("the wizard is offered for resuming")
        .clone();
    assert_eq!(resumed["step_name"], "authentication");
    assert_eq!(resumed["metadata"]["opened_from"], "tests");
    assert_eq!(
        resumed["steps"][0]["data"]["connection_name"],
        name.as_str()
    );
    let wizard = Wizard { app: &app, id };
    wizard.next().await;
    finish_wizard(&wizard, &shared_fingerprint()).await;
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}
