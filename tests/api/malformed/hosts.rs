//! Malformed input on the hosts and wizards routes: 4xx naming the field, and nothing
//! written (no event, no sealed secret) by a refused request.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

async fn counts(app: &TestApp) -> (i64, i64) {
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let secrets: i64 = sqlx::query_scalar("SELECT count(*) FROM sealed_secrets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (events, secrets)
}

fn shared_host_key() -> String {
    std::fs::read_to_string(
        std::env::var("DCP_TEST_SSH_HOST_KEY").expect("DCP_TEST_SSH_HOST_KEY is not set"),
    )
    .unwrap()
}

fn shared_url() -> String {
    format!(
        "ssh://{}@127.0.0.1:{}",
        ssh_user(),
        std::env::var("DCP_TEST_SSHD_PORT").expect("DCP_TEST_SSHD_PORT is not set")
    )
}

#[tokio::test]
async fn host_requests_are_validated_and_refusals_write_nothing() {
    let app = spawn_app().await;
    let valid = json!({
        "name": "valid-host",
        "url": shared_url(),
        "auth": {"method": "password", "password": ssh_password()},
        "host_key": shared_host_key(),
    });
    let post = |name: &str| case(format!("POST hosts: {name}"), Method::POST, "/api/v1/hosts");
    let before = counts(&app).await;
    let mut cases = body_cases(Method::POST, "/api/v1/hosts", &valid);
    cases.extend([
        post("empty name").json(&with(&valid, "name", json!(""))).invalid("name"),
        post("reserved name").json(&with(&valid, "name", json!("local"))).invalid("name"),
        post("name with a newline")
            .json(&with(&valid, "name", json!("a\nb")))
            .invalid("name"),
        post("http url").json(&with(&valid, "url", json!("http://x"))).invalid("url"),
        post("option as user")
            .json(&with(&valid, "url", json!("ssh://-oProxyCommand=x@h")))
            .invalid("url"),
        post("missing url").json(&with(&valid, "url", Value::Null)).invalid("url"),
        post("unknown auth method")
            .json(&with(&valid, "auth", json!({"method": "telnet"})))
            .invalid("auth.method"),
        post("password missing")
            .json(&with(&valid, "auth", json!({"method": "password"})))
            .invalid("auth.password"),
        post("empty password")
            .json(&with(&valid, "auth", json!({"method": "password", "password": ""})))
            .invalid("auth.password"),
        post("not a private key")
            .json(&with(
                &valid,
                "auth",
                json!({"method": "imported_key", "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n"}),
            ))
            .invalid("auth.private_key"),
        post("unknown auth field")
            .json(&with(
                &valid,
                "auth",
                json!({"method": "password", "password": "x", "agent": true}),
            ))
            .invalid("auth.agent"),
        post("no host key").json(&with(&valid, "host_key", Value::Null)).invalid("host_key"),
        post("garbage host key")
            .json(&with(&valid, "host_key", json!("ssh-ed25519 not-base64!")))
            .invalid("host_key"),
        post("bad tags")
            .json(&with(&valid, "tags", json!(["has space"])))
            .invalid("tags"),
        post("tags not a list")
            .json(&with(&valid, "tags", json!("prod")))
            .invalid("tags"),
    ]);
    let get = |path: &str| case(format!("GET {path}"), Method::GET, path);
    cases.extend([
        get("/api/v1/hosts/no-such-host").expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        get("/api/v1/hosts/no-such-host/state").expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        get("/api/v1/hosts/no-such-host/state?at=noon").invalid("at"),
        get("/api/v1/hosts/no-such-host/diff").invalid("from"),
        get("/api/v1/hosts/no-such-host/diff?from=1&x=1").invalid("x"),
        case(
            "test unknown",
            Method::POST,
            "/api/v1/hosts/no-such-host/test",
        )
        .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        case(
            "delete unknown",
            Method::DELETE,
            "/api/v1/hosts/no-such-host",
        )
        .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        case("patch unknown", Method::PATCH, "/api/v1/hosts/no-such-host")
            .json(&json!({"tags": []}))
            .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        case("patch local", Method::PATCH, "/api/v1/hosts/local")
            .json(&json!({"tags": []}))
            .expect(StatusCode::CONFLICT, "CONFLICT", None),
        case("delete local", Method::DELETE, "/api/v1/hosts/local").expect(
            StatusCode::CONFLICT,
            "CONFLICT",
            None,
        ),
        get("/api/v1/containers?host=no-such-host").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
    ]);
    run_cases(&app, Some(&app.admin_token), cases).await;
    assert_eq!(counts(&app).await, before, "refused requests wrote nothing");

    // A real host, then bad changes to it.
    let response = app
        .request(
            Method::POST,
            "/api/v1/hosts",
            Some(&app.admin_token),
            Some(valid),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["host"]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/hosts/{id}");
    let patch = |name: &str| case(format!("PATCH host: {name}"), Method::PATCH, path.clone());
    let before = counts(&app).await;
    let mut cases = body_cases(Method::PATCH, &path, &json!({"tags": ["a"]}));
    cases.extend([
        patch("bad name")
            .json(&json!({"name": " padded"}))
            .invalid("name"),
        patch("bad tags")
            .json(&json!({"tags": ["a b"]}))
            .invalid("tags"),
        patch("enabled not a bool")
            .json(&json!({"enabled": "no"}))
            .invalid("enabled"),
        patch("bad host key")
            .json(&json!({"host_key": "nope"}))
            .invalid("host_key"),
        patch("bad credentials")
            .json(&json!({"auth": {"method": "password", "password": ""}}))
            .invalid("auth.password"),
        patch("name taken")
            .json(&json!({"name": "LOCAL"}))
            .invalid("name"),
    ]);
    run_cases(&app, Some(&app.admin_token), cases).await;
    assert_eq!(counts(&app).await, before, "refused changes wrote nothing");
}

#[tokio::test]
async fn wizard_requests_are_validated_and_refusals_write_nothing() {
    let app = spawn_app().await;
    starting_and_addressing_wizards_is_validated(&app).await;

    // Step data, step by step, on a real wizard.
    let response = app
        .request(
            Method::POST,
            "/api/v1/wizards/start",
            Some(&app.admin_token),
            Some(json!({"wizard_type": "ssh_host_setup"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let wizard: Value = response.json().await.unwrap();
    let id = wizard["id"].as_str().unwrap().to_string();
    the_connection_step_is_validated(&app, &id).await;
    the_authentication_step_is_validated(&app, &id).await;
}

/// A `PUT …/step` case with `data` as the step data.
fn step_case(id: &str, name: &str, data: Value) -> Case {
    case(
        format!("step: {name}"),
        Method::PUT,
        format!("/api/v1/wizards/{id}/step"),
    )
    .json(&json!({"step_data": data}))
}

/// Starting a wizard, a wizard's id, and the key generator's parameters.
async fn starting_and_addressing_wizards_is_validated(app: &TestApp) {
    let valid = json!({"wizard_type": "ssh_host_setup"});
    let start = |name: &str| {
        case(
            format!("start: {name}"),
            Method::POST,
            "/api/v1/wizards/start",
        )
    };
    let before = counts(app).await;
    let mut cases = body_cases(Method::POST, "/api/v1/wizards/start", &valid);
    cases.extend([
        start("unknown type")
            .json(&json!({"wizard_type": "swarm_init"}))
            .invalid("wizard_type"),
        start("metadata over 4 KiB")
            .json(&json!({"wizard_type": "ssh_host_setup", "metadata": {"x": "y".repeat(5000)}}))
            .invalid("metadata"),
        start("metadata not an object")
            .json(&json!({"wizard_type": "ssh_host_setup", "metadata": [1]}))
            .invalid("metadata"),
        start("bad initial state")
            .json(&json!({"wizard_type": "ssh_host_setup", "initial_state": {"host_url": "x"}}))
            .invalid("connection_name"),
    ]);
    let unknown = uuid::Uuid::new_v4();
    for (method, action) in [
        (Method::GET, ""),
        (Method::POST, "/next"),
        (Method::POST, "/previous"),
        (Method::POST, "/test"),
        (Method::POST, "/complete"),
        (Method::POST, "/cancel"),
    ] {
        cases.push(
            case(
                format!("{method} bad wizard id{action}"),
                method.clone(),
                format!("/api/v1/wizards/not-a-uuid{action}"),
            )
            .invalid("id"),
        );
        cases.push(
            case(
                format!("{method} unknown wizard{action}"),
                method.clone(),
                format!("/api/v1/wizards/{unknown}{action}"),
            )
            .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        );
    }
    cases.extend([
        case(
            "key comment with a space",
            Method::POST,
            "/api/v1/wizards/generate-ssh-key?comment=a%20b",
        )
        .invalid("comment"),
        case(
            "key with an unknown parameter",
            Method::POST,
            "/api/v1/wizards/generate-ssh-key?bits=4096",
        )
        .invalid("bits"),
    ]);
    run_cases(app, Some(&app.admin_token), cases).await;
    assert_eq!(counts(app).await, before, "refused requests wrote nothing");
}

/// The connection step's data, and the actions a wizard at its first step refuses.
async fn the_connection_step_is_validated(app: &TestApp, id: &str) {
    let step = format!("/api/v1/wizards/{id}/step");
    let put = |name: &str, data: Value| step_case(id, name, data);
    let before = counts(app).await;
    let mut cases = body_cases(Method::PUT, &step, &json!({"step_data": {}}));
    cases.extend([
        put("not an object", json!([1])).invalid("step_data"),
        put("no name", json!({"host_url": shared_url()})).invalid("connection_name"),
        put(
            "padded name",
            json!({"connection_name": " x", "host_url": shared_url()}),
        )
        .invalid("connection_name"),
        put(
            "reserved name",
            json!({"connection_name": "local", "host_url": shared_url()}),
        )
        .invalid("connection_name"),
        put(
            "bad url",
            json!({"connection_name": "x", "host_url": "ssh://a@b;rm"}),
        )
        .invalid("host_url"),
        put(
            "port zero",
            json!({"connection_name": "x", "host_url": "ssh://a@b:0"}),
        )
        .invalid("host_url"),
        put(
            "unknown field",
            json!({"connection_name": "x", "host_url": shared_url(), "port": 1}),
        )
        .invalid("port"),
        case(
            "next with an empty step",
            Method::POST,
            format!("/api/v1/wizards/{id}/next"),
        )
        .expect(StatusCode::CONFLICT, "CONFLICT", None),
        case(
            "test without a test",
            Method::POST,
            format!("/api/v1/wizards/{id}/test"),
        )
        .json(&json!({"test_type": 5}))
        .invalid("test_type"),
        case(
            "test with an unknown field",
            Method::POST,
            format!("/api/v1/wizards/{id}/test"),
        )
        .json(&json!({"kind": "ssh"}))
        .invalid("kind"),
        case(
            "test on a step without one",
            Method::POST,
            format!("/api/v1/wizards/{id}/test"),
        )
        .expect(StatusCode::CONFLICT, "CONFLICT", None),
        case(
            "complete at the first step",
            Method::POST,
            format!("/api/v1/wizards/{id}/complete"),
        )
        .expect(StatusCode::CONFLICT, "CONFLICT", None),
    ]);
    run_cases(app, Some(&app.admin_token), cases).await;
    assert_eq!(counts(app).await, before, "refused steps wrote nothing");
}

/// The authentication step's data: refused credentials are not sealed.
async fn the_authentication_step_is_validated(app: &TestApp, id: &str) {
    let step = format!("/api/v1/wizards/{id}/step");
    let put = |name: &str, data: Value| step_case(id, name, data);
    // The authentication step.
    for request in
        [json!({"step_data": {"connection_name": "malformed", "host_url": shared_url()}})]
    {
        let response = app
            .request(Method::PUT, &step, Some(&app.admin_token), Some(request))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/wizards/{id}/next"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let before = counts(app).await;
    let cases = vec![
        put("unknown method", json!({"method": "telnet"})).invalid("method"),
        put(
            "generated key without id",
            json!({"method": "generated_key"}),
        )
        .invalid("key_id"),
        put(
            "generated key not a uuid",
            json!({"method": "generated_key", "key_id": "x"}),
        )
        .invalid("key_id"),
        put(
            "someone else's or no key",
            json!({"method": "generated_key", "key_id": uuid::Uuid::new_v4()}),
        )
        .invalid("key_id"),
        put(
            "not a key",
            json!({"method": "imported_key", "private_key": "hello"}),
        )
        .invalid("private_key"),
        put("no key", json!({"method": "imported_key"})).invalid("private_key"),
        put(
            "empty password",
            json!({"method": "password", "password": ""}),
        )
        .invalid("password"),
        put(
            "password not text",
            json!({"method": "password", "password": 5}),
        )
        .invalid("password"),
        put(
            "password and key",
            json!({"method": "password", "password": "x", "private_key": "y"}),
        )
        .invalid("private_key"),
        put(
            "a secret id instead of a secret",
            json!({"method": "password", "secret_id": uuid::Uuid::new_v4()}),
        )
        .invalid("secret_id"),
    ];
    run_cases(app, Some(&app.admin_token), cases).await;
    assert_eq!(
        counts(app).await,
        before,
        "refused credentials were not sealed"
    );
}
