//! Acting on containers: every lifecycle operation checked against Docker and recorded in
//! the history, operations and audit log; interrupted operations settled at the next start.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

fn container_state(id: &str) -> String {
    docker(&["inspect", "--format", "{{.State.Status}}", id])
}

/// Every operation through the API, checked against `docker inspect`, with its history and
/// audit entries; viewers cannot act.
#[tokio::test]
async fn the_lifecycle_through_the_api_is_recorded() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("ops", "operator").await;
    let (_, viewer) = app.user_with_token("looker", "viewer").await;
    let run = Containers::new();
    let id = run.start("life", &[]);
    let refused = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/containers/{id}/stop"),
            Some(&viewer),
            None,
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_eq!(container_state(&id), "running");

    every_action_reaches_docker_and_is_an_operation(&app, &operator, &viewer, &id).await;
    a_rename_and_a_forced_remove_reach_docker(&app, &operator, &id, &run).await;
    let (history, failed_op) = the_history_survives_the_container(&app, &viewer, &id).await;
    the_refused_delete_is_a_failed_operation_and_every_verb_is_audited(
        &app, &viewer, &history, &failed_op,
    )
    .await;
}

/// Each action answers with its outcome and operation, and Docker shows its effect;
/// starting a running container is not an error (Docker: nothing to do).
async fn every_action_reaches_docker_and_is_an_operation(
    app: &TestApp,
    operator: &str,
    viewer: &str,
    id: &str,
) {
    let post = |path: String, body: Option<Value>| async move {
        app.request(reqwest::Method::POST, &path, Some(operator), body)
            .await
    };
    for (action, body, expected) in [
        ("stop", Some(serde_json::json!({"timeout": 0})), "exited"),
        ("start", None, "running"),
        ("pause", None, "paused"),
        ("unpause", None, "running"),
        (
            "restart",
            Some(serde_json::json!({"timeout": 0})),
            "running",
        ),
        (
            "kill",
            Some(serde_json::json!({"signal": "SIGKILL"})),
            "exited",
        ),
    ] {
        let response = post(format!("/api/v1/containers/{}/{action}", &id[..12]), body).await;
        assert_eq!(response.status(), StatusCode::OK, "{action}");
        assert!(response.headers().get("x-dcp-position").is_some());
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["status"], "succeeded", "{action}");
        assert_eq!(outcome["operation"], action);
        assert_eq!(outcome["container_id"], id);
        assert_eq!(container_state(id), expected, "after {action}");
        let operation = app
            .get_json_at(
                &format!(
                    "/api/v1/operations/{}",
                    outcome["operation_id"].as_str().unwrap()
                ),
                viewer,
                outcome["position"].as_i64().unwrap(),
            )
            .await;
        assert_eq!(operation["status"], "succeeded", "{operation}");
        assert_eq!(operation["host"], "local", "{operation}");
        assert_eq!(operation["action"], format!("container.{action}"));
        assert!(operation["duration_ms"].as_i64().unwrap() >= 0);
    }
    assert_eq!(
        post(format!("/api/v1/containers/{id}/start"), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        post(format!("/api/v1/containers/{id}/start"), None)
            .await
            .status(),
        StatusCode::OK
    );
}

/// A rename reaches Docker (a bad name does not); a running container is not removed
/// without force: Docker refuses, and that is recorded.
async fn a_rename_and_a_forced_remove_reach_docker(
    app: &TestApp,
    operator: &str,
    id: &str,
    run: &Containers,
) {
    let post = |path: String, body: Option<Value>| async move {
        app.request(reqwest::Method::POST, &path, Some(operator), body)
            .await
    };
    let renamed = format!("renamed-{}", &run.run[..8]);
    let response = post(
        format!("/api/v1/containers/{id}/rename"),
        Some(serde_json::json!({"name": renamed})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        docker(&["inspect", "--format", "{{.Name}}", id]),
        format!("/{renamed}")
    );
    let bad = post(
        format!("/api/v1/containers/{id}/rename"),
        Some(serde_json::json!({"name": "-bad"})),
    )
    .await;
    assert_error(bad, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let refused = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/containers/{renamed}"),
            Some(operator),
            None,
        )
        .await;
    assert_error(refused, StatusCode::CONFLICT, "CONFLICT").await;
    let removed = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/containers/{renamed}?force=true"),
            Some(operator),
            None,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let gone = Command::new("docker")
        .args(["inspect", id])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the container is gone");
}

/// The history survives the container: request and outcome of every step, with the actor.
/// Returns it, and the operation id of the refused delete.
async fn the_history_survives_the_container(
    app: &TestApp,
    viewer: &str,
    id: &str,
) -> (Value, String) {
    let history = app
        .get_json(&format!("/api/v1/containers/{id}/history"), viewer)
        .await;
    let types = event_types(&history);
    assert_eq!(types[0], "ContainerDiscovered");
    for expected in [
        "ContainerStopRequested",
        "ContainerStopped",
        "ContainerPaused",
        "ContainerRestarted",
        "ContainerKilled",
        "ContainerRenamed",
        "OperationFailed",
        "ContainerRemoved",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let stop_requested = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "ContainerStopRequested")
        .unwrap();
    assert_eq!(stop_requested["actor_username"], "ops");
    assert!(stop_requested["operation_id"].is_string());
    let failed = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "OperationFailed")
        .unwrap();
    assert_eq!(failed["data"]["operation"], "delete");
    assert_eq!(failed["data"]["code"], "CONFLICT");

    let failed_op = failed["operation_id"].as_str().unwrap().to_string();
    (history, failed_op)
}

/// The refused delete is a failed operation in the operations read model; the audit log
/// has one action per verb, with the outcome in the details.
async fn the_refused_delete_is_a_failed_operation_and_every_verb_is_audited(
    app: &TestApp,
    viewer: &str,
    history: &Value,
    failed_op: &str,
) {
    let last_position = history.as_array().unwrap().last().unwrap()["global_position"]
        .as_i64()
        .unwrap();
    let operation = app
        .get_json_at(
            &format!("/api/v1/operations/{failed_op}"),
            viewer,
            last_position,
        )
        .await;
    assert_eq!(operation["status"], "failed", "{operation}");
    assert_eq!(operation["action"], "container.delete");
    assert_eq!(operation["error_code"], "CONFLICT");
    assert!(operation["error_message"].as_str().unwrap().len() > 3);
    let last = history.as_array().unwrap().last().unwrap()["global_position"]
        .as_i64()
        .unwrap();
    let audit = app
        .get_json_at(
            "/api/v1/audit-logs?resource_type=container&limit=1000",
            &app.admin_token,
            last,
        )
        .await;
    let entries = audit["items"].as_array().unwrap();
    for (action, outcome) in [
        ("container.stop", "requested"),
        ("container.stop", "succeeded"),
        ("container.delete", "failed"),
        ("container.delete", "succeeded"),
        ("container.rename", "succeeded"),
    ] {
        assert!(
            entries.iter().any(|e| e["action"] == action
                && e["details"]["outcome"] == outcome
                && e["username"] == "ops"),
            "no {action} {outcome} entry"
        );
    }
}

/// The server stops between a request and its outcome: at the next start the operation is
/// settled from what Docker shows (done, or failed as interrupted), never left pending.
#[tokio::test]
async fn interrupted_operations_are_settled_at_the_next_start() {
    use dcp::commands::{CommandBus, CommandMeta};
    use dcp_aggregates::container::{Container, ContainerAction, ContainerCommand};

    let app = spawn_app().await;
    let run = Containers::new();
    let stopped = run.start("was-stopping", &[]);
    let idle = run.start("was-starting", &[]);
    docker(&["stop", "-t", "0", &idle]);
    // dcp knows both containers (discovered on first use).
    for id in [&stopped, &idle] {
        app.get_json(
            &format!("/api/v1/containers/{id}/history"),
            &app.admin_token,
        )
        .await;
    }
    let aggregate = |docker_id: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, uuid::Uuid>(
                "SELECT aggregate_id FROM container_ids WHERE docker_id = $1",
            )
            .bind(docker_id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let bus = CommandBus::new(app.pool.clone());
    let (stop_op, start_op) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let request = |op_id, action| ContainerCommand::Request {
        op_id,
        action,
        at: chrono::Utc::now(),
    };
    bus.execute::<Container>(
        &aggregate(stopped.clone()).await.to_string(),
        request(stop_op, ContainerAction::Stop { timeout: Some(0) }),
        &CommandMeta::system(),
    )
    .await
    .unwrap();
    bus.execute::<Container>(
        &aggregate(idle.clone()).await.to_string(),
        request(start_op, ContainerAction::Start),
        &CommandMeta::system(),
    )
    .await
    .unwrap();
    // Docker performed the stop before the "crash"; the start never happened.
    docker(&["stop", "-t", "0", &stopped]);
    let database_url = app.database_url.clone();
    app.stop().await;

    let restarted = spawn_app_on(database_url, |settings| {
        settings.operation_settle_after_secs = 0
    })
    .await;
    let history = |id: String| {
        let app = &restarted;
        async move {
            app.get_json(
                &format!("/api/v1/containers/{id}/history"),
                &app.admin_token,
            )
            .await
        }
    };
    // The reconciler runs in the background: wait until both are settled.
    let settled = |id: String| {
        let history = &history;
        async move {
            let h = history(id).await;
            let last = h.as_array().unwrap().last().unwrap()["event_type"]
                .as_str()
                .unwrap()
                .to_string();
            (!last.ends_with("Requested")).then_some(())
        }
    };
    eventually(std::time::Duration::from_secs(20), || {
        settled(stopped.clone())
    })
    .await;
    eventually(std::time::Duration::from_secs(20), || settled(idle.clone())).await;
    let stop_history = history(stopped.clone()).await;
    let last = stop_history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "ContainerStopped", "{stop_history}");
    assert_eq!(last["operation_id"], stop_op.to_string());
    assert_eq!(last["actor_kind"], "reconciler");
    let start_history = history(idle.clone()).await;
    let last = start_history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "OperationFailed", "{start_history}");
    assert_eq!(last["data"]["code"], "INTERRUPTED");
    assert_eq!(last["data"]["operation"], "start");
    // Nothing is pending any more: the container takes new operations.
    let response = restarted
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/containers/{idle}/start"),
            Some(&restarted.admin_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}
