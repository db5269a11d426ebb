//! Host keys: a host added by fingerprint is pinned to the key it shows; a dead host is
//! reported by lists at once and recovers by itself; a changed key is refused, audited and
//! pinned again by an admin; a disabled host is left out of lists; names are unique.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;

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
    let name = unique_name("keyed");
    let host_id = register_private(&app, &sshd, &name).await;
    let list = ok(&app, Method::GET, "/api/v1/containers?all=true", None).await;
    assert_eq!(list["hosts"].as_array().unwrap().len(), 2, "{list}");
    a_host_added_by_fingerprint_is_pinned_to_the_key_it_shows(&app, &sshd, &name).await;
    a_dead_host_is_reported_at_once_and_recovers_by_itself(&app, &mut sshd, &host_id).await;
    a_changed_key_is_refused_and_audited_until_an_admin_pins_it(&app, &mut sshd, &host_id).await;
    a_disabled_host_is_left_out_and_a_name_is_unique(&app, &sshd, &name, &host_id).await;
}

/// Added by fingerprint: a host presenting another key is refused before the password is
/// sent; the right fingerprint pins the key.
async fn a_host_added_by_fingerprint_is_pinned_to_the_key_it_shows(
    app: &TestApp,
    sshd: &TestSshd,
    name: &str,
) {
    let by_fingerprint = |name: String, fingerprint: String| {
        json!({
            "name": name,
            "url": url_for(sshd.port),
            "auth": {"method": "password", "password": ssh_password()},
            "host_key_fingerprint": fingerprint,
        })
    };
    let (status, refused) = call(
        app,
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
        app,
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
        app,
        Method::DELETE,
        &format!("/api/v1/hosts/{}", second["host"]["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// sshd goes down (with its sessions): lists answer at once, the host marked unreachable;
/// back up, it recovers by itself (the back-off is at most 10 s).
async fn a_dead_host_is_reported_at_once_and_recovers_by_itself(
    app: &TestApp,
    sshd: &mut TestSshd,
    host_id: &str,
) {
    sshd.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let list = ok(app, Method::GET, "/api/v1/containers?all=true", None).await;
        let took = started.elapsed();
        let answer = list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == host_id)
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
        app,
        Method::POST,
        &format!("/api/v1/hosts/{host_id}/test"),
        None,
    )
    .await;
    assert_eq!(checked["reachable"], false, "{checked}");
    assert_eq!(checked["error_kind"], "unreachable", "{checked}");
    let host = ok(app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(host["status"], "unreachable", "{host}");

    sshd.run();
    eventually(Duration::from_secs(30), || async {
        let list = ok(app, Method::GET, "/api/v1/containers?all=true", None).await;
        list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "ok")
            .then_some(())
    })
    .await;
}

/// The host is reinstalled with another key: refused, and the refusal is recorded; lists
/// still answer, with the host refused; the admin pins the new key and it is active again.
async fn a_changed_key_is_refused_and_audited_until_an_admin_pins_it(
    app: &TestApp,
    sshd: &mut TestSshd,
    host_id: &str,
) {
    sshd.stop();
    sshd.new_host_key();
    sshd.run();
    let checked = ok(
        app,
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
        let host = ok(app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
        host["ssh"]["key_mismatch"]["seen_fingerprint"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    assert_eq!(mismatch, sshd.fingerprint());
    let audit = ok(
        app,
        Method::GET,
        "/api/v1/audit-logs?action=host.key_mismatch",
        None,
    )
    .await;
    assert!(audit.to_string().contains(host_id), "{audit}");
    // Lists still answer, with the host refused.
    let list = ok(app, Method::GET, "/api/v1/images", None).await;
    let answer = list["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host_id)
        .unwrap()
        .clone();
    assert_eq!(answer["status"], "unreachable", "{list}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("host key changed"));

    let host = ok(
        app,
        Method::PATCH,
        &format!("/api/v1/hosts/{host_id}"),
        Some(json!({"host_key": sshd.host_key_line()})),
    )
    .await;
    assert_eq!(host["status"], "active", "{host}");
    assert_eq!(host["ssh"]["fingerprint"], sshd.fingerprint());
    assert!(host["ssh"]["key_mismatch"].is_null());
}

/// Disabled: left out of lists, and refused by name. A name is unique.
async fn a_disabled_host_is_left_out_and_a_name_is_unique(
    app: &TestApp,
    sshd: &TestSshd,
    name: &str,
    host_id: &str,
) {
    let host = ok(
        app,
        Method::PATCH,
        &format!("/api/v1/hosts/{host_id}"),
        Some(json!({"enabled": false, "tags": ["parked"]})),
    )
    .await;
    assert_eq!(host["status"], "disabled");
    let list = ok(app, Method::GET, "/api/v1/networks", None).await;
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1, "{list}");
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/v1/volumes?host={name}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = call(
        app,
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
