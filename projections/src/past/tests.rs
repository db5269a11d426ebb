//! Folding a container's history, and diffs between two of its moments.

use super::diff::at_path;
use super::*;
use chrono::Utc;
use serde_json::json;

fn event(position: i64, event_type: &str, fields: Value, actor: &str) -> StoredEvent {
    StoredEvent {
        global_position: position,
        transaction_id: position as u64,
        event_id: Uuid::now_v7(),
        aggregate_type: "container".into(),
        aggregate_id: "c1".into(),
        sequence: position,
        event_type: event_type.into(),
        event_version: "1".into(),
        payload: json!({ event_type: fields }),
        metadata: json!({"actor_username": actor, "actor_role": "operator", "operation_id": "op"}),
        recorded_at: Utc::now(),
    }
}

fn history() -> Vec<StoredEvent> {
    let op = Uuid::now_v7();
    let at = Utc::now();
    vec![
        event(
            1,
            "ContainerCreateRequested",
            json!({"op_id": op, "host": "local", "requested_at": at,
                "spec": {"image": "busybox:latest", "name": "web", "env": {"MODE": "a", "KEEP": "1"},
                    "command": ["sleep", "60"], "start": null, "labels": {"app.tier": "front"}}}),
            "alice",
        ),
        event(
            2,
            "ContainerCreated",
            json!({"op_id": op, "host": "local", "docker_id": "d1", "name": "web",
                "image_id": "sha256:1", "created_at": at}),
            "alice",
        ),
        event(
            3,
            "ContainerRenameRequested",
            json!({"op_id": op, "name": "api", "requested_at": at}),
            "bob",
        ),
        event(
            4,
            "ContainerRenamed",
            json!({"op_id": op, "from": "web", "to": "api", "renamed_at": at}),
            "bob",
        ),
        event(
            5,
            "ContainerRecreateRequested",
            json!({"op_id": op, "requested_at": at,
                "spec": {"image": "busybox:latest", "name": "api", "env": {"MODE": "b", "KEEP": "1"},
                    "command": ["sleep", "60"], "labels": {"app.tier": "front"}}}),
            "carol",
        ),
        event(
            6,
            "ContainerRecreated",
            json!({"op_id": op, "previous_docker_id": "d1", "docker_id": "d2",
                "image_id": "sha256:1", "running": true, "recreated_at": at}),
            "carol",
        ),
    ]
}

#[test]
fn a_container_is_folded_into_its_configuration_and_status() {
    let events = history();
    let state = fold("container", &events[..2]).unwrap().to_json();
    assert_eq!(state["name"], "web");
    assert_eq!(state["status"], "created");
    assert_eq!(state["docker_id"], "d1");
    assert_eq!(state["image_id"], "sha256:1");
    assert_eq!(state["config"]["env"]["MODE"], "a");
    assert_eq!(state["config"]["command"], json!(["sleep", "60"]));
    assert!(state["config"].get("name").is_none());
    assert!(state["config"].get("start").is_none());
    assert_eq!(state["pending_operation"], Value::Null);

    let pending = fold("container", &events[..3]).unwrap().to_json();
    assert_eq!(pending["pending_operation"]["action"], "rename");

    let state = fold("container", &events).unwrap().to_json();
    assert_eq!(state["name"], "api");
    assert_eq!(state["status"], "running");
    assert_eq!(state["docker_id"], "d2");
    assert_eq!(state["config"]["env"]["MODE"], "b");
}

#[test]
fn a_diff_names_exactly_the_changed_fields_and_their_events() {
    let events = history();
    let diff = diff("container", &events[..2], &events[2..]).unwrap();
    let fields: Vec<&str> = diff.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["config.env.MODE", "docker_id", "name", "status"],
        "{:#?}",
        diff.changes
    );
    let name = &diff.changes[2];
    assert_eq!(
        (name.from.clone(), name.to.clone()),
        (json!("web"), json!("api"))
    );
    assert_eq!(name.events, vec![4]);
    let env = &diff.changes[0];
    assert_eq!((env.from.clone(), env.to.clone()), (json!("a"), json!("b")));
    assert_eq!(env.events, vec![6]);
    // Every event is listed with its actor; the pending operation comes and goes.
    assert_eq!(diff.events.len(), 4);
    assert_eq!(diff.events[0].actor.username.as_deref(), Some("bob"));
    assert_eq!(diff.events[0].changed, vec!["pending_operation"]);
    assert_eq!(diff.events[3].actor.username.as_deref(), Some("carol"));
    assert!(diff.events[3]
        .changed
        .contains(&"config.env.MODE".to_string()));
}

#[test]
fn paths_with_dotted_keys_resolve() {
    let before = json!({"config": {"labels": {"app.tier": "front"}}});
    let after = json!({"config": {"labels": {"app.tier": "back"}}});
    let paths = changed_paths(&before, &after);
    assert_eq!(paths, vec!["config.labels.app.tier"]);
    assert_eq!(at_path(&after, &paths[0]), json!("back"));
    assert_eq!(at_path(&after, "config.missing"), Value::Null);
}
