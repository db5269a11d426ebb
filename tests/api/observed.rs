//! Changes made to the engine outside dcp are observed and recorded — once, with the
//! actor `docker` — while dcp's own operations are not recorded twice, and the watcher
//! resumes where it stopped after a restart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::containers::{docker, Containers};

async fn watching_app(database_url: Option<String>) -> TestApp {
    let watch = |settings: &mut dcp::config::Settings| settings.watch_docker_events = true;
    let app = match database_url {
        Some(url) => spawn_app_on(url, watch).await,
        None => spawn_app_with(watch).await,
    };
    // The watcher has started once it has stored where it resumes.
    eventually(Duration::from_secs(20), || async {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT time_nano FROM docker_event_cursors WHERE host = 'local'")
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        cursor.map(|_| ())
    })
    .await;
    app
}

/// `(event type, Docker action, exit code, time)` of a container's recorded events.
async fn recorded(app: &TestApp, docker_id: &str) -> Vec<(String, String, Option<i64>, i64)> {
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT e.event_type, e.payload::jsonb FROM events e JOIN container_ids c \
         ON e.aggregate_type = 'container' AND e.aggregate_id = c.aggregate_id::text \
         WHERE c.host = 'local' AND c.docker_id = $1 ORDER BY e.sequence",
    )
    .bind(docker_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(event_type, payload)| {
            let fields = &payload[&event_type];
            (
                event_type.clone(),
                fields["action"].as_str().unwrap_or_default().to_string(),
                fields["exit_code"].as_i64(),
                fields["time_nano"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

fn observed_actions(events: &[(String, String, Option<i64>, i64)]) -> Vec<&str> {
    events
        .iter()
        .filter(|(event_type, ..)| event_type == "ContainerObserved")
        .map(|(_, action, ..)| action.as_str())
        .collect()
}

async fn wait_for_observed(app: &TestApp, docker_id: &str, action: &str, count: usize) {
    let deadline = Duration::from_secs(30);
    let result = tokio::time::timeout(deadline, async {
        loop {
            let events = recorded(app, docker_id).await;
            if observed_actions(&events)
                .iter()
                .filter(|a| **a == action)
                .count()
                >= count
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "{count} observed '{action}' not recorded for {docker_id}: {:?}",
        recorded(app, docker_id).await
    );
}

#[tokio::test]
async fn changes_made_outside_dcp_are_recorded_once_and_after_a_restart() {
    let app = watching_app(None).await;
    let (_, operator) = app.user_with_token("watchops", "operator").await;
    let run = Containers::new();

    changes_made_with_the_cli_are_observed_and_audited_as_dockers(&app, &operator, &run).await;
    let managed = what_dcp_does_itself_is_not_observed_again(&app, &operator, &run).await;

    // Stopped: what happens meanwhile is recorded when the watcher resumes, and the overlap
    // at the resume point is not recorded twice.
    let database_url = app.database_url.clone();
    app.stop().await;
    docker(&["kill", &managed]);
    let app = watching_app(Some(database_url)).await;
    wait_for_observed(&app, &managed, "die", 1).await;
    let events = recorded(&app, &managed).await;
    assert_eq!(
        observed_actions(&events),
        ["start", "start", "kill", "die"],
        "{events:?}"
    );
    let mut times: Vec<(i64, &str)> = events
        .iter()
        .filter(|e| e.0 == "ContainerObserved")
        .map(|e| (e.3, e.1.as_str()))
        .collect();
    let before = times.len();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), before, "an observed change was recorded twice");

    let auto_volume =
        volumes_made_with_the_cli_are_observed_and_a_creates_own_are_not(&app, &operator, &run)
            .await;
    drop(run);
    let _ = std::process::Command::new("docker")
        .args(["volume", "rm", "-f", &auto_volume])
        .output();
}

/// Created, started and killed with the docker CLI: discovered, then each change observed;
/// the list and the history show it; the audit log names Docker as the actor.
async fn changes_made_with_the_cli_are_observed_and_audited_as_dockers(
    app: &TestApp,
    operator: &str,
    run: &Containers,
) {
    let outside = run.start("outside", &[]);
    docker(&["kill", &outside]);
    wait_for_observed(app, &outside, "die", 1).await;
    let events = recorded(app, &outside).await;
    assert_eq!(events[0].0, "ContainerDiscovered", "{events:?}");
    assert_eq!(
        observed_actions(&events),
        ["start", "kill", "die"],
        "{events:?}"
    );
    let die = events.iter().find(|e| e.1 == "die").unwrap();
    assert_eq!(die.2, Some(137), "the exit code of a SIGKILL");

    // The list and the history show it; the audit log names Docker as the actor.
    let list = app
        .get_json(
            &format!("/api/v1/containers?all=true&label=test.dcp-run={}", run.run),
            operator,
        )
        .await;
    let item = &list["items"][0];
    assert_eq!(item["id"], outside.as_str());
    assert_eq!(item["platform"]["origin"], "docker", "{item}");
    let history = app
        .get_json(&format!("/api/v1/containers/{outside}/history"), operator)
        .await;
    let observed: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ContainerObserved")
        .collect();
    assert_eq!(observed.len(), 3, "{history}");
    assert!(observed.iter().all(|e| e["actor_kind"] == "docker"));
    let position = history.as_array().unwrap().last().unwrap()["global_position"]
        .as_i64()
        .unwrap();
    let audit = app
        .get_json_at(
            "/api/v1/audit-logs?action=container.observed&limit=1000",
            &app.admin_token,
            position,
        )
        .await;
    let aggregate = item["platform"]["aggregate_id"].as_str().unwrap();
    let entries: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_id"] == aggregate)
        .collect();
    assert_eq!(entries.len(), 4, "discovery and three changes: {audit}");
    assert!(entries
        .iter()
        .all(|e| e["details"]["actor_kind"] == "docker"));
    assert!(entries
        .iter()
        .any(|e| e["details"]["action"] == "die" && e["details"]["exit_code"] == 137));
}

/// What dcp does itself is recorded once, by its own operation: stopping through the API
/// makes Docker report kill, die and stop, and none of them is recorded as observed.
/// Returns the container, started again with the CLI.
async fn what_dcp_does_itself_is_not_observed_again(
    app: &TestApp,
    operator: &str,
    run: &Containers,
) -> String {
    let managed = run.start("managed", &[]);
    wait_for_observed(app, &managed, "start", 1).await;
    let stopped = app
        .request(
            Method::POST,
            &format!("/api/v1/containers/{managed}/stop"),
            Some(operator),
            Some(json!({"timeout": 0})),
        )
        .await;
    assert_eq!(stopped.status(), StatusCode::OK);
    // A start with the CLI afterwards is observed; the watcher handles events in order, so
    // by then it has judged the stop's events too.
    docker(&["start", &managed]);
    wait_for_observed(app, &managed, "start", 2).await;
    let events = recorded(app, &managed).await;
    assert_eq!(observed_actions(&events), ["start", "start"], "{events:?}");
    assert!(events.iter().any(|e| e.0 == "ContainerStopped"));
    managed
}

/// Volumes made with the CLI are observed; a named volume Docker creates for a container
/// dcp creates is part of that create, not an outside change. Returns that volume's name.
async fn volumes_made_with_the_cli_are_observed_and_a_creates_own_are_not(
    app: &TestApp,
    operator: &str,
    run: &Containers,
) -> String {
    // A named volume Docker creates for a container dcp creates is part of that create, not
    // an outside change.
    let auto_volume = format!("dcp-test-auto-{}", &run.run[..8]);
    let created = app
        .request(
            Method::POST,
            "/api/v1/containers",
            Some(operator),
            Some(json!({"image": crate::containers::test_image(),
                "labels": {"test.dcp-run": run.run},
                "volumes": [{"source": auto_volume, "target": "/data"}]})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // Volumes made with the CLI are observed (and, handled in order, tell us the watcher has
    // judged the auto-created one by then).
    let volume = format!("dcp-test-observed-{}", &run.run[..8]);
    docker(&["volume", "create", &volume]);
    docker(&["volume", "rm", &volume]);
    let volume_events = eventually(Duration::from_secs(30), || async {
        let actions: Vec<String> = sqlx::query_scalar(
            "SELECT payload::jsonb -> 'VolumeObserved' ->> 'action' FROM events \
             WHERE aggregate_type = 'volume' AND event_type = 'VolumeObserved' \
             AND payload::jsonb -> 'VolumeObserved' ->> 'name' = $1 ORDER BY sequence",
        )
        .bind(&volume)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        (actions.len() == 2).then_some(actions)
    })
    .await;
    assert_eq!(volume_events, ["create", "destroy"]);
    let auto_observed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'volume' \
         AND payload::jsonb -> 'VolumeObserved' ->> 'name' = $1",
    )
    .bind(&auto_volume)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        auto_observed, 0,
        "the create's own volume was recorded as observed"
    );
    auto_volume
}
