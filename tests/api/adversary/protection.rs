//! The platform protects itself: what is named in `DCP_PROTECTED` or labelled
//! `dcp.protected=true` (and the volumes and networks of such a container) is out of an
//! operator's reach, and an admin acts on it only saying why, which the audit log keeps.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::containers::{docker, Containers};

#[tokio::test]
async fn operators_cannot_touch_what_the_platform_protects_and_admins_say_why() {
    let run = Containers::new();
    let short = run.run[..8].to_string();
    // Stand-ins for the compose deployment's database and data volume, named in the setting.
    let database = format!("protdb-{short}");
    let data = format!("protvol-{short}");
    let protected = format!("{database},{data}");
    let app = spawn_app_with(|settings| settings.protected = protected).await;
    let (_, operator) = app.user_with_token("mallory", "operator").await;
    let (_, viewer) = app.user_with_token("vic", "viewer").await;
    let mut made = Leftovers::new();
    let backend = made.network(&format!("backend-{short}"), &[]);
    made.volume(&data, &[]);
    let db = run.start(
        "protdb",
        &[
            "--network",
            &backend,
            "-v",
            &format!("{data}:/var/lib/data"),
        ],
    );
    let labelled = run.start("guarded", &["--label", "dcp.protected=true"]);
    let mine = run.start("mine", &[]);
    let state = |id: &str| docker(&["inspect", "--format", "{{.Name}} {{.State.Running}}", id]);
    let before = state(&db);

    for target in [&db, &labelled] {
        for (action, body) in [
            ("stop", json!({})),
            ("restart", json!({})),
            ("kill", json!({})),
            ("pause", json!({})),
            ("rename", json!({"name": format!("renamed-{short}")})),
        ] {
            refused(
                &app,
                &operator,
                (
                    Method::POST,
                    &format!("/api/v1/containers/{target}/{action}"),
                    Some(body),
                ),
                Some("id"),
            )
            .await;
        }
        refused(
            &app,
            &operator,
            (
                Method::DELETE,
                &format!("/api/v1/containers/{target}?force=true"),
                None,
            ),
            Some("id"),
        )
        .await;
        assert_eq!(exec_refused(&app, &operator, target, "").await, 403);
        for token in [&operator, &viewer] {
            let ticket = app
                .ws_ticket(token, ticket_request("container.logs", Some(target)))
                .await;
            let logs = app
                .try_socket(
                    &format!("/ws/containers/{target}/logs"),
                    Some(&ticket),
                    None,
                )
                .await;
            assert_eq!(logs.err(), Some(403), "logs of a protected container");
        }
    }
    let recreate = create_body(&database, json!({}));
    refused(
        &app,
        &operator,
        (
            Method::POST,
            &format!("/api/v1/containers/{db}/recreate"),
            Some(recreate),
        ),
        Some("id"),
    )
    .await;
    assert_eq!(state(&db), before, "the protected container is untouched");

    // Its volume and its network are protected with it.
    let thief = format!("thief-{short}");
    refused(
        &app,
        &operator,
        (
            Method::POST,
            "/api/v1/containers",
            Some(create_body(
                &thief,
                json!({"volumes": [{"source": data, "target": "/loot"}]}),
            )),
        ),
        Some("volumes"),
    )
    .await;
    refused(
        &app,
        &operator,
        (
            Method::POST,
            "/api/v1/containers",
            Some(create_body(&thief, json!({"network": backend}))),
        ),
        Some("network"),
    )
    .await;
    assert!(!exists("container", &thief));
    for (verb, body) in [
        ("connect", json!({"container": mine})),
        ("disconnect", json!({"container": db})),
    ] {
        refused(
            &app,
            &operator,
            (
                Method::POST,
                &format!("/api/v1/networks/{backend}/{verb}"),
                Some(body),
            ),
            Some(if verb == "connect" { "network" } else { "id" }),
        )
        .await;
    }
    // Nor removed (Docker would refuse while they are in use; not once the database stops).
    for path in [
        format!("/api/v1/volumes/{data}?force=true"),
        format!("/api/v1/networks/{backend}"),
    ] {
        refused(&app, &operator, (Method::DELETE, &path, None), Some("id")).await;
    }
    assert!(exists("volume", &data) && exists("network", &backend));
    // Operators cannot label their way in.
    refused(
        &app,
        &operator,
        (
            Method::POST,
            "/api/v1/containers",
            Some(create_body(
                &thief,
                json!({"labels": {"dcp.protected": "true"}}),
            )),
        ),
        Some("labels"),
    )
    .await;

    // An admin is refused without a reason, and acts with one, audited.
    refused(
        &app,
        &app.admin_token,
        (
            Method::POST,
            &format!("/api/v1/containers/{labelled}/restart"),
            Some(json!({})),
        ),
        Some("id"),
    )
    .await;
    let restarted = app
        .post(
            &format!("/api/v1/containers/{labelled}/restart"),
            &app.admin_token,
            json!({"reason": "rotating its certificate"}),
        )
        .await;
    assert_eq!(restarted.status(), StatusCode::OK);
    let position: i64 = restarted.json::<Value>().await.unwrap()["position"]
        .as_i64()
        .unwrap();
    let entries = app
        .audit_entries_at("action=container.restart&limit=10", position)
        .await;
    assert!(
        entries
            .iter()
            .any(|e| e["details"]["reason"] == "rotating its certificate"),
        "{entries:?}"
    );
    let mut shell = app
        .container_socket(
            &app.admin_token,
            &db,
            "exec",
            "reason=checking+the+database",
        )
        .await;
    assert_eq!(shell.next_json().await["type"], "started");
    // Admins label what they want protected.
    let kept = format!("kept-{short}");
    let created = app
        .post(
            "/api/v1/containers",
            &app.admin_token,
            create_body(&kept, json!({"labels": {"dcp.protected": "true"}})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    refused(
        &app,
        &operator,
        (
            Method::POST,
            &format!("/api/v1/containers/{kept}/start"),
            None,
        ),
        Some("id"),
    )
    .await;
    docker(&["rm", "-f", &kept]);
    drop(shell);
    drop(run);
}
