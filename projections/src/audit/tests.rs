//! Audit entries from events: actions, actors, the resource concerned, NUL-free text, and
//! the canonical form the hash chain covers.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use dcp_aggregates::access_attempt::{AccessAttemptEvent, LoginFailure};
use dcp_aggregates::container::ContainerEvent;
use dcp_aggregates::host::HostEvent;
use dcp_aggregates::image::ImageEvent;
use dcp_aggregates::network::NetworkEvent;
use dcp_aggregates::session::SessionEvent;
use dcp_aggregates::user::UserEvent;
use dcp_aggregates::volume::VolumeEvent;
use dcp_aggregates::wizard::WizardEvent;
use dcp_aggregates::Role;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::log::StoredEvent;

fn event(aggregate_type: &str, event_type: &str, payload: Value, metadata: Value) -> StoredEvent {
    StoredEvent {
        global_position: 42,
        transaction_id: 7,
        event_id: Uuid::from_u128(9),
        aggregate_type: aggregate_type.into(),
        aggregate_id: "agg-1".into(),
        sequence: 1,
        event_type: event_type.into(),
        event_version: "1".into(),
        payload,
        metadata,
        recorded_at: at(),
    }
}

/// `typed` as the store holds it, with the metadata `metadata`.
fn stored<E: DomainEvent + Serialize>(
    aggregate_type: &str,
    typed: E,
    metadata: Value,
) -> StoredEvent {
    let payload = serde_json::to_value(&typed).unwrap();
    event(aggregate_type, &typed.event_type(), payload, metadata)
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

const OP: Uuid = Uuid::from_u128(5);

#[test]
fn user_create_carries_actor_and_request_context() {
    let created = UserEvent::UserCreated {
        user_id: Uuid::from_u128(3),
        username: "bob".into(),
        email: "bob@example.com".into(),
        full_name: "Bob".into(),
        role: Role::Viewer,
        must_change_password: false,
        created_at: at(),
    };
    let entry = audit_entry(&stored(
        "user",
        created,
        json!({"actor_id": "00000000-0000-0000-0000-000000000001", "actor_username": "admin",
               "actor_role": "admin", "client_ip": "10.1.2.3", "user_agent": "curl/8", "request_id": "r-1"}),
    ));
    assert_eq!(entry.action, "user.create");
    assert_eq!(entry.resource_type.as_deref(), Some("user"));
    assert_eq!(entry.resource_id.as_deref(), Some("agg-1"));
    assert_eq!(entry.user_id, Some(Uuid::from_u128(1)));
    assert_eq!(entry.username.as_deref(), Some("admin"));
    assert_eq!(entry.ip_address.as_deref(), Some("10.1.2.3"));
    assert_eq!(entry.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(entry.request_id.as_deref(), Some("r-1"));
    assert_eq!(entry.details["username"], "bob");
}

#[test]
fn anonymous_failed_login_names_the_matched_user_and_drops_a_bad_ip() {
    let failed = AccessAttemptEvent::LoginFailed {
        login: "bob".into(),
        user_id: Some(Uuid::from_u128(2)),
        reason: LoginFailure::WrongPassword,
        attempted_at: at(),
    };
    let entry = audit_entry(&stored(
        "access_attempt",
        failed,
        json!({"client_ip": "not an ip"}),
    ));
    assert_eq!(entry.action, "auth.login_failed");
    assert_eq!(entry.user_id, Some(Uuid::from_u128(2)));
    assert_eq!(
        entry.resource_id.as_deref(),
        Some("00000000-0000-0000-0000-000000000002")
    );
    assert_eq!(entry.ip_address, None);
}

#[test]
fn nul_characters_never_reach_the_database() {
    let entry = audit_entry(&event(
        "access_attempt",
        "LoginFailed",
        json!({"LoginFailed": {"login": "ad\u{0}min", "nested": ["x\u{0}"]}}),
        json!({"user_agent": "ua\u{0}"}),
    ));
    assert_eq!(entry.details["login"], "admin");
    assert_eq!(entry.details["nested"][0], "x");
    assert_eq!(entry.user_agent.as_deref(), Some("ua"));
}

/// Asserts each event's action, outcome and resource type.
fn assert_actions(cases: Vec<(StoredEvent, &str, &str)>) {
    for (event, action, outcome) in cases {
        let entry = audit_entry(&event);
        let event_type = &event.event_type;
        assert_eq!(entry.action, action, "{event_type}");
        assert_eq!(entry.details["outcome"], outcome, "{event_type}");
        assert_eq!(
            entry.resource_type.as_deref(),
            Some(event.aggregate_type.as_str())
        );
    }
}

fn container(typed: ContainerEvent) -> StoredEvent {
    stored("container", typed, json!({}))
}

#[test]
fn container_operations_share_one_action_per_verb() {
    use ContainerEvent as E;
    assert_actions(vec![
        (
            container(E::ContainerStartRequested {
                op_id: OP,
                requested_at: at(),
            }),
            "container.start",
            "requested",
        ),
        (
            container(E::ContainerStarted {
                op_id: OP,
                started_at: at(),
            }),
            "container.start",
            "succeeded",
        ),
        (
            container(E::ContainerRemoveRequested {
                op_id: OP,
                force: false,
                volumes: false,
                requested_at: at(),
            }),
            "container.delete",
            "requested",
        ),
        (
            container(E::ContainerRemoved {
                op_id: OP,
                removed_at: at(),
            }),
            "container.delete",
            "succeeded",
        ),
        (
            container(E::ContainerCreated {
                op_id: OP,
                host: "local".into(),
                docker_id: "d1".into(),
                name: "web".into(),
                image_id: None,
                created_at: at(),
            }),
            "container.create",
            "succeeded",
        ),
        (
            container(E::ContainerRenamed {
                op_id: OP,
                from: "web".into(),
                to: "api".into(),
                renamed_at: at(),
            }),
            "container.rename",
            "succeeded",
        ),
        (
            container(E::OperationFailed {
                op_id: OP,
                operation: "kill".into(),
                code: "DOCKER_OPERATION_FAILED".into(),
                message: "no such process".into(),
                failed_at: at(),
            }),
            "container.kill",
            "failed",
        ),
        (
            container(E::ContainerDiscovered {
                host: "local".into(),
                docker_id: "d2".into(),
                name: "found".into(),
                image: "busybox".into(),
                state: "running".into(),
                discovered_at: at(),
            }),
            "container.observed",
            "discovered",
        ),
    ]);
}

#[test]
fn image_volume_and_network_operations_have_their_actions() {
    let observed = |action: &str| {
        (
            action.to_string(),
            1_i64,
            std::collections::BTreeMap::new(),
            at(),
        )
    };
    let (action, time_nano, attributes, observed_at) = observed("pull");
    let image_observed = ImageEvent::ImageObserved {
        host: "local".into(),
        reference: "busybox:latest".into(),
        action,
        time_nano,
        attributes,
        observed_at,
    };
    let (action, time_nano, attributes, observed_at) = observed("die");
    let container_observed = ContainerEvent::ContainerObserved {
        action,
        exit_code: Some(1),
        time_nano,
        attributes,
        observed_at,
    };
    let mut cases = image_and_volume_cases();
    cases.extend(network_cases());
    cases.push((
        stored("image", image_observed, json!({})),
        "image.observed",
        "observed",
    ));
    cases.push((
        container(container_observed),
        "container.observed",
        "observed",
    ));
    assert_actions(cases);
}

fn image_and_volume_cases() -> Vec<(StoredEvent, &'static str, &'static str)> {
    let image = |typed| stored("image", typed, json!({}));
    let volume = |typed| stored("volume", typed, json!({}));
    vec![
        (
            image(ImageEvent::ImagePullRequested {
                op_id: OP,
                host: "local".into(),
                reference: "busybox:latest".into(),
                requested_at: at(),
            }),
            "image.pull",
            "requested",
        ),
        (
            image(ImageEvent::OperationFailed {
                op_id: OP,
                operation: "pull".into(),
                code: "DOCKER_OPERATION_FAILED".into(),
                message: "not found".into(),
                failed_at: at(),
            }),
            "image.pull",
            "failed",
        ),
        (
            image(ImageEvent::ImageRemoved {
                op_id: OP,
                deleted: vec![],
                untagged: vec![],
                removed_at: at(),
            }),
            "image.delete",
            "succeeded",
        ),
        (
            volume(VolumeEvent::VolumeCreated {
                op_id: OP,
                mountpoint: "/data".into(),
                created_at: at(),
            }),
            "volume.create",
            "succeeded",
        ),
        (
            volume(VolumeEvent::VolumeRemoveRequested {
                op_id: OP,
                host: "local".into(),
                name: "data".into(),
                force: false,
                requested_at: at(),
            }),
            "volume.delete",
            "requested",
        ),
    ]
}

fn network_cases() -> Vec<(StoredEvent, &'static str, &'static str)> {
    let network = |typed| stored("network", typed, json!({}));
    vec![
        (
            network(NetworkEvent::NetworkConnectRequested {
                op_id: OP,
                host: "local".into(),
                name: "backend".into(),
                container_id: "c1".into(),
                container_name: "web".into(),
                aliases: vec![],
                requested_at: at(),
            }),
            "network.connect",
            "requested",
        ),
        (
            network(NetworkEvent::NetworkDisconnected {
                op_id: OP,
                disconnected_at: at(),
            }),
            "network.disconnect",
            "succeeded",
        ),
        (
            network(NetworkEvent::NetworkRemoved {
                op_id: OP,
                removed_at: at(),
            }),
            "network.delete",
            "succeeded",
        ),
    ]
}

#[test]
fn sessions_hosts_and_wizards_have_their_actions() {
    let user = Uuid::from_u128(4);
    let login = SessionEvent::SessionStarted {
        session_id: Uuid::from_u128(6),
        user_id: user,
        username: "ann".into(),
        expires_at: at(),
        started_at: at(),
    };
    // A login is made by nobody yet: the entry names the user the event names.
    let entry = audit_entry(&stored("session", login, json!({})));
    assert_eq!(entry.action, "auth.login");
    assert_eq!(
        (entry.user_id, entry.username.as_deref()),
        (Some(user), Some("ann"))
    );
    let disabled = HostEvent::HostDisabled { disabled_at: at() };
    assert_eq!(
        audit_entry(&stored("host", disabled, json!({}))).action,
        "host.disable"
    );
    let cancelled = WizardEvent::WizardCancelled { cancelled_at: at() };
    let entry = audit_entry(&stored("wizard", cancelled, json!({})));
    assert_eq!(entry.action, "wizard.cancel");
    assert_eq!(entry.details.get("outcome"), None);
}

#[test]
fn each_hash_covers_the_entry_and_the_one_before() {
    let entry = audit_entry(&event(
        "user",
        "UserCreated",
        json!({"UserCreated": {"username": "ann"}}),
        json!({}),
    ));
    let first = chain_hash("", &canonical(&entry));
    assert_eq!(first.len(), 64);
    assert_eq!(first, chain_hash("", &canonical(&entry)), "deterministic");
    assert_ne!(chain_hash(&first, &canonical(&entry)), first, "chained");
    let mut changed = entry.clone();
    changed.details = json!({"username": "bob"});
    assert_ne!(chain_hash("", &canonical(&changed)), first);
}

/// Stored chains were hashed over this form: it must never change by a byte. The literals
/// below were computed by the code before the typed audit (commit 19b7651), so they also
/// catch a change in what goes into an entry, not only in how it is serialised.
#[test]
fn the_canonical_form_and_hash_are_stable() {
    let mut entry = audit_entry(&event(
        "container",
        "ContainerCreateRequested",
        json!({"ContainerCreateRequested": {"op_id": "0190a000-0000-7000-8000-000000000001",
            "host": "local", "spec": {"image": "busybox", "env": {"Z": "ü\n\"q\"", "A": "1"}},
            "requested_at": "2026-01-01T00:00:00Z"}}),
        json!({"actor_id": "00000000-0000-0000-0000-000000000007", "actor_username": "ann",
            "actor_role": "admin", "client_ip": "192.0.2.1", "user_agent": "t\tab"}),
    ));
    entry.created_at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
    assert_eq!(entry.action, "container.create");
    assert_eq!(entry.details["outcome"], "requested");
    let reference = concat!(
        r#"["00000000-0000-0000-0000-000000000009",42,"00000000-0000-0000-0000-000000000007","#,
        r#""ann","admin","container.create","container","agg-1","#,
        r#"{"host":"local","op_id":"0190a000-0000-7000-8000-000000000001","outcome":"requested","#,
        r#""requested_at":"2026-01-01T00:00:00Z","#,
        r#""spec":{"env":{"A":"1","Z":"ü\n\"q\""},"image":"busybox"}},"#,
        r#""192.0.2.1","t\tab",null,"2025-11-24T16:00:00.123456Z"]"#,
    );
    assert_eq!(canonical(&entry), reference);
    assert_eq!(
        chain_hash("prev", &canonical(&entry)),
        "e759b03827428d70ac70bd4eb32bf80c21c0b5711683088f8d8a0d0361861884"
    );
    let none = AuditEntry {
        user_id: None,
        username: None,
        role: None,
        resource_type: None,
        resource_id: None,
        ip_address: None,
        user_agent: None,
        request_id: None,
        ..entry.clone()
    };
    assert!(canonical(&none).contains(",null,null,"));
}

#[test]
fn access_denied_and_unknown_events() {
    let denied = AccessAttemptEvent::AccessDenied {
        user_id: Uuid::from_u128(8),
        role: Role::Viewer,
        method: "POST".into(),
        route: "/api/v1/users".into(),
        path: "/api/v1/users".into(),
        denied_at: at(),
    };
    let denied = audit_entry(&stored("access_attempt", denied, json!({})));
    assert_eq!(denied.action, "access.denied");
    assert_eq!(denied.resource_id.as_deref(), Some("POST /api/v1/users"));
    // An event type without its own mapping still gets an entry.
    let other = audit_entry(&event("host", "HostAdded", json!({}), json!({})));
    assert_eq!(other.action, "host.host_added");
    // So does an event that does not decode (here, a start without its operation).
    let damaged = audit_entry(&event(
        "container",
        "ContainerStartRequested",
        json!({"ContainerStartRequested": {}}),
        json!({}),
    ));
    assert_eq!(damaged.action, "container.container_start_requested");
}
