//! Any past moment: the state of a container rebuilt from its events matches what
//! `docker inspect` showed at that moment, and a diff names exactly the fields that changed
//! and the events (with their actors) that changed them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use crate::containers::{docker, test_image, Containers};

/// `docker inspect` of a container, or `None` once it is gone.
fn inspect(id: &str) -> Option<Value> {
    let output = std::process::Command::new("docker")
        .args(["inspect", id])
        .output()
        .expect("run the docker CLI");
    if !output.status.success() {
        return None;
    }
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    Some(list[0].clone())
}

fn set_of(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The rebuilt state says what `docker inspect` said then.
fn assert_matches(state: &Value, inspect: &Value, image_env: &BTreeSet<String>, moment: &str) {
    let container = &state["state"];
    assert_eq!(
        container["name"],
        inspect["Name"].as_str().unwrap().trim_start_matches('/'),
        "{moment}: name"
    );
    assert_eq!(container["docker_id"], inspect["Id"], "{moment}: id");
    assert_eq!(
        container["image_id"], inspect["Image"],
        "{moment}: image id"
    );
    assert_eq!(
        container["image"], inspect["Config"]["Image"],
        "{moment}: image"
    );
    assert_eq!(
        container["status"], inspect["State"]["Status"],
        "{moment}: status"
    );
    let config = &container["config"];
    let env: BTreeSet<String> = config["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let shown = set_of(&inspect["Config"]["Env"]);
    assert!(env.is_subset(&shown), "{moment}: env {env:?} vs {shown:?}");
    assert!(
        shown.difference(&env).all(|var| image_env.contains(var)),
        "{moment}: env {env:?} vs {shown:?}"
    );
    assert_eq!(config["command"], inspect["Config"]["Cmd"], "{moment}: cmd");
    for (key, value) in config["labels"].as_object().unwrap() {
        assert_eq!(
            &inspect["Config"]["Labels"][key], value,
            "{moment}: label {key}"
        );
    }
    assert_eq!(
        config["restart_policy"]["name"], inspect["HostConfig"]["RestartPolicy"]["Name"],
        "{moment}: restart policy"
    );
    assert_eq!(
        config["memory_bytes"], inspect["HostConfig"]["Memory"],
        "{moment}: memory"
    );
    for port in config["ports"].as_array().unwrap() {
        let key = format!("{}/tcp", port["container_port"]);
        assert!(
            inspect["Config"]["ExposedPorts"].get(&key).is_some(),
            "{moment}: port {key}"
        );
    }
}
#[tokio::test]
async fn a_containers_past_matches_what_docker_showed_and_diffs_name_their_events() {
    let app = spawn_app().await;
    let (_, viewer) = app.user_with_token("auditor", "viewer").await;
    let run = Containers::new();
    let image_env = set_of(
        &serde_json::from_str::<Value>(&docker(&["image", "inspect", &test_image()])).unwrap()[0]
            ["Config"]["Env"],
    );
    let life = a_container_lives_and_is_deleted(&app, &run).await;
    let base = format!("/api/v1/containers/{}", life.platform_id);
    let positions = every_moment_matches_what_docker_showed(&app, &base, &life, &image_env).await;
    diffs_name_the_changed_fields_and_their_events(&app, &base, &positions, &life).await;
    viewers_see_the_variables_names_not_their_values(&app, &viewer, &base, &positions).await;
    bad_moments_are_client_errors(&app, &base, &positions).await;
}

/// What a container went through, with `docker inspect` at each moment (None once gone).
struct Life {
    platform_id: String,
    first_id: String,
    second_id: String,
    renamed: String,
    moments: Vec<(&'static str, DateTime<Utc>, Option<Value>)>,
}

/// Created and started, renamed, recreated with another environment, restarted, refused a
/// privileged recreate, deleted.
async fn a_container_lives_and_is_deleted(app: &TestApp, run: &Containers) -> Life {
    let admin = &app.admin_token;
    let name = format!("hist-{}", &run.run[..8]);

    let spec = |mode: &str| {
        json!({
            "image": test_image(),
            "command": ["sleep", "300"],
            "env": {"MODE": mode, "TOKEN": "s3cret"},
            "labels": {"test.dcp-run": run.run, "app.tier": "front"},
            "ports": [{"container_port": 8080}],
            "restart_policy": {"name": "unless-stopped"},
            "memory_bytes": 64 * 1024 * 1024,
        })
    };
    let mut moments: Vec<(&'static str, DateTime<Utc>, Option<Value>)> = Vec::new();

    // create (and start)
    let mut body = spec("a");
    body["name"] = json!(name);
    body["start"] = json!(true);
    let created = app.post("/api/v1/containers", admin, body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let first_id = created["container_id"].as_str().unwrap().to_string();
    moments.push(("created", Utc::now(), inspect(&first_id)));
    let platform_id = app
        .get_json_at(
            &format!("/api/v1/containers/{first_id}"),
            admin,
            created["position"].as_i64().unwrap(),
        )
        .await["platform"]["aggregate_id"]
        .as_str()
        .unwrap()
        .to_string();

    // rename
    let renamed = format!("{name}-renamed");
    let response = app
        .post(
            &format!("/api/v1/containers/{first_id}/rename"),
            admin,
            json!({ "name": renamed }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    moments.push(("renamed", Utc::now(), inspect(&first_id)));

    // change the environment: the container is recreated under the same name
    let response = app
        .post(
            &format!("/api/v1/containers/{renamed}/recreate"),
            admin,
            spec("b"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let recreated: Value = response.json().await.unwrap();
    let second_id = recreated["container_id"].as_str().unwrap().to_string();
    assert_ne!(second_id, first_id);
    assert!(inspect(&first_id).is_none(), "the old container is gone");
    moments.push(("env changed", Utc::now(), inspect(&second_id)));

    // restart
    let response = app
        .post(
            &format!("/api/v1/containers/{second_id}/restart"),
            admin,
            json!({"timeout": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    moments.push(("restarted", Utc::now(), inspect(&second_id)));

    // The recreate follows the role's policy like a create.
    let (_, operator) = app.user_with_token("recreator", "operator").await;
    let mut escalated = spec("c");
    escalated["privileged"] = json!(true);
    let response = app
        .post(
            &format!("/api/v1/containers/{second_id}/recreate"),
            &operator,
            escalated,
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_eq!(
        inspect(&second_id).unwrap()["State"]["Status"],
        "running",
        "a refused recreate leaves the container alone"
    );

    // delete
    let response = app
        .delete(&format!("/api/v1/containers/{second_id}?force=true"), admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    moments.push(("deleted", Utc::now(), inspect(&second_id)));

    Life {
        platform_id,
        first_id,
        second_id,
        renamed,
        moments,
    }
}

/// The state at each moment, by time and by position, matches what Docker showed; returns
/// the positions of the moments.
async fn every_moment_matches_what_docker_showed(
    app: &TestApp,
    base: &str,
    life: &Life,
    image_env: &BTreeSet<String>,
) -> Vec<i64> {
    let admin = &app.admin_token;
    let (platform_id, second_id) = (&life.platform_id, &life.second_id);
    let mut positions = Vec::new();
    for (moment, at, shown) in &life.moments {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let state = app
            .get_json(&format!("{base}/state?at={}", urlencode(&at)), admin)
            .await;
        match shown {
            Some(shown) => assert_matches(&state, shown, image_env, moment),
            None => assert_eq!(state["state"]["status"], "removed", "{moment}"),
        }
        assert_eq!(state["state"]["pending_operation"], Value::Null, "{moment}");
        // The same moment by position.
        let position = state["as_of"]["global_position"].as_i64().unwrap();
        let by_position = app
            .get_json(&format!("{base}/state?position={position}"), admin)
            .await;
        assert_eq!(by_position["state"], state["state"], "{moment}");
        positions.push(position);
    }
    // Before the container existed there is no state; the Docker id names it too.
    let before = app
        .get_json(&format!("{base}/state?position=1"), admin)
        .await;
    assert_eq!(before["state"], Value::Null);
    assert_eq!(before["as_of"], Value::Null);
    let by_docker_id = app
        .get_json(
            &format!("/api/v1/containers/{}/state", &second_id[..12]),
            admin,
        )
        .await;
    assert_eq!(by_docker_id["aggregate_id"], platform_id.as_str());

    positions
}

/// Created → env changed: the name, the Docker container and one variable changed. A
/// restart leaves the configuration as it was: no field differs, two events happened.
async fn diffs_name_the_changed_fields_and_their_events(
    app: &TestApp,
    base: &str,
    positions: &[i64],
    life: &Life,
) {
    let admin = &app.admin_token;
    let (renamed, first_id, second_id) = (&life.renamed, &life.first_id, &life.second_id);
    let diff = app
        .get_json(
            &format!("{base}/diff?from={}&to={}", positions[0], positions[2]),
            admin,
        )
        .await;
    let fields: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["config.env.MODE", "docker_id", "name"], "{diff:#}");
    let change = |field: &str| {
        diff["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field)
            .unwrap()
            .clone()
    };
    assert_eq!(change("config.env.MODE")["from"], "a");
    assert_eq!(change("config.env.MODE")["to"], "b");
    assert_eq!(change("name")["to"], renamed.as_str());
    assert_eq!(change("docker_id")["from"], first_id.as_str());
    assert_eq!(change("docker_id")["to"], second_id.as_str());
    let events = diff["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ContainerRenameRequested",
            "ContainerRenamed",
            "ContainerRecreateRequested",
            "ContainerRecreated"
        ]
    );
    for event in events {
        assert_eq!(event["actor"]["username"], "admin");
        assert_eq!(event["actor"]["role"], "admin");
        assert!(event["operation_id"].is_string());
    }
    let renamed_by = events[1]["global_position"].clone();
    assert_eq!(change("name")["events"], json!([renamed_by]));
    let recreated_by = events[3]["global_position"].clone();
    assert_eq!(change("config.env.MODE")["events"], json!([recreated_by]));

    let diff = app
        .get_json(
            &format!("{base}/diff?from={}&to={}", positions[2], positions[3]),
            admin,
        )
        .await;
    assert_eq!(diff["changes"], json!([]), "{diff:#}");
    assert_eq!(diff["events"].as_array().unwrap().len(), 2);
}

/// Viewers see the variables' names, not their values.
async fn viewers_see_the_variables_names_not_their_values(
    app: &TestApp,
    viewer: &str,
    base: &str,
    positions: &[i64],
) {
    let seen = app
        .get_json(&format!("{base}/state?position={}", positions[0]), viewer)
        .await;
    assert_eq!(seen["state"]["config"]["env"]["TOKEN"], "<redacted>");
    assert_eq!(seen["state"]["config"]["env"]["MODE"], "<redacted>");
    let diff = app
        .get_json(
            &format!("{base}/diff?from={}&to={}", positions[0], positions[2]),
            viewer,
        )
        .await;
    let env = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "config.env.MODE")
        .unwrap();
    assert_eq!(
        (&env["from"], &env["to"]),
        (&json!("<redacted>"), &json!("<redacted>"))
    );
    assert!(!diff.to_string().contains("s3cret"));
}

/// Bad moments are client errors.
async fn bad_moments_are_client_errors(app: &TestApp, base: &str, positions: &[i64]) {
    let admin = &app.admin_token;
    for (query, field) in [
        ("state?at=yesterday", "at"),
        ("state?at=5", "at"),
        ("state?position=-1", "position"),
        ("state?at=2026-01-01T00:00:00Z&position=3", "position"),
        ("diff?from=soon", "from"),
        ("diff", "from"),
    ] {
        let response = app.get(&format!("{base}/{query}"), admin).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let response = app
        .get(
            &format!("{base}/diff?from={}&to={}", positions[2], positions[0]),
            admin,
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let unknown = uuid::Uuid::new_v4();
    let response = app
        .get(&format!("/api/v1/containers/{unknown}/state"), admin)
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn users_volumes_and_networks_have_a_past_too() {
    let app = spawn_app().await;
    let admin = &app.admin_token;
    let user = app
        .create_user("historian", "viewer", "a-good-password-1")
        .await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let before_role = Utc::now();
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(admin),
            Some(json!({"role": "operator", "full_name": "Hist Orian"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let then = app
        .get_json(
            &format!(
                "/api/v1/users/{user_id}/state?at={}",
                urlencode(&before_role.to_rfc3339())
            ),
            admin,
        )
        .await;
    assert_eq!(then["state"]["role"], "viewer");
    let now = app
        .get_json(&format!("/api/v1/users/{user_id}/state"), admin)
        .await;
    assert_eq!(now["state"]["role"], "operator");
    assert_eq!(now["state"]["full_name"], "Hist Orian");
    let diff = app
        .get_json(
            &format!(
                "/api/v1/users/{user_id}/diff?from={}",
                urlencode(&before_role.to_rfc3339())
            ),
            admin,
        )
        .await;
    let fields: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["full_name", "role"], "{diff:#}");
    let response = app.get("/api/v1/users/not-a-uuid/state", admin).await;
    assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;

    let volume = format!(
        "hist-vol-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let response = app
        .post(
            "/api/v1/volumes",
            admin,
            json!({"name": volume, "labels": {"purpose": "history"}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = Utc::now();
    let response = app
        .delete(&format!("/api/v1/volumes/{volume}"), admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let then = app
        .get_json(
            &format!(
                "/api/v1/volumes/{volume}/state?at={}",
                urlencode(&created.to_rfc3339())
            ),
            admin,
        )
        .await;
    assert_eq!(then["state"]["exists"], true);
    assert_eq!(then["state"]["labels"]["purpose"], "history");
    let now = app
        .get_json(&format!("/api/v1/volumes/{volume}/state"), admin)
        .await;
    assert_eq!(now["state"]["exists"], false);

    let network = format!(
        "hist-net-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let response = app
        .post("/api/v1/networks", admin, json!({"name": network}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let state = app
        .get_json(&format!("/api/v1/networks/{network}/state"), admin)
        .await;
    assert_eq!(state["state"]["exists"], true);
    let network_id = state["state"]["network_id"].as_str().unwrap().to_string();
    let by_id = app
        .get_json(
            &format!("/api/v1/networks/{}/state", &network_id[..12]),
            admin,
        )
        .await;
    assert_eq!(by_id["aggregate_id"], state["aggregate_id"]);
    let response = app
        .delete(&format!("/api/v1/networks/{network}"), admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_failed_recreate_puts_the_container_back_as_it_was() {
    let app = spawn_app().await;
    let admin = &app.admin_token;
    let run = Containers::new();
    let name = format!("undo-{}", &run.run[..8]);
    let body = json!({"image": test_image(), "name": name, "command": ["sleep", "300"],
        "labels": {"test.dcp-run": run.run}, "start": true});
    let response = app.post("/api/v1/containers", admin, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["container_id"].as_str().unwrap().to_string();

    // The replacement cannot be made (no such image): the old container is renamed back
    // and started again, and the failure is recorded.
    let response = app
        .post(
            &format!("/api/v1/containers/{id}/recreate"),
            admin,
            json!({"image": "dcp-test/no-such-image:never", "labels": {"test.dcp-run": run.run}}),
        )
        .await;
    let error = assert_error(response, StatusCode::BAD_GATEWAY, "DOCKER_OPERATION_FAILED").await;
    assert_eq!(error["error"]["field"], "image", "{error}");
    let shown = inspect(&id).expect("the old container is still there");
    assert_eq!(shown["Name"], format!("/{name}"));
    assert_eq!(shown["State"]["Status"], "running");
    let leftovers = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=test.dcp-run={}", run.run),
    ]);
    assert_eq!(
        leftovers.lines().count(),
        1,
        "no half-made replacement is left"
    );
    let history = app
        .get_json(&format!("/api/v1/containers/{id}/history"), admin)
        .await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "OperationFailed");
    assert_eq!(last["data"]["operation"], "recreate");
    // It goes on working: the next operation acts on it.
    let response = app
        .post(
            &format!("/api/v1/containers/{id}/stop"),
            admin,
            json!({"timeout": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}
