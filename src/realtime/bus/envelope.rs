//! The envelope every event travels in on the bus: a documented, versioned JSON object.
//!
//! ```json
//! {
//!   "envelope_version": 1,
//!   "event_id": "0192…",            // unique: dedupe on it
//!   "global_position": 1234,          // the event's place in the global log
//!   "type": "ContainerStarted",
//!   "event_version": "1",
//!   "aggregate": {"type": "container", "id": "0192…", "sequence": 7},
//!   "time": "2026-11-26T15:04:05.123Z",
//!   "actor": {"id": "…", "username": "ops", "role": "operator", "kind": null},
//!   "operation_id": "0192…",          // Docker operations
//!   "request_id": "…",
//!   "data": { … }                     // the event's fields
//! }
//! ```
//!
//! No secret ever enters an event; values that may be secrets in a user's own data
//! (container environment values, volume driver options) are replaced by `"<redacted>"`. Client addresses and
//! user agents stay in the audit log.

use chrono::{DateTime, Utc};
use dcp_projections::{metadata, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The shape version of [`Envelope`]; a change that removes or renames a field bumps it.
pub const ENVELOPE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelope {
    pub envelope_version: u32,
    pub event_id: Uuid,
    pub global_position: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub event_version: String,
    pub aggregate: AggregateRef,
    pub time: DateTime<Utc>,
    pub actor: Actor,
    pub operation_id: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AggregateRef {
    #[serde(rename = "type")]
    pub aggregate_type: String,
    pub id: String,
    pub sequence: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub id: Option<String>,
    pub username: Option<String>,
    pub role: Option<String>,
    /// `system`, `reconciler`, `docker` for what the platform or Docker did by itself.
    pub kind: Option<String>,
}

/// Replaces every value that may be a secret (environment values, volume driver options)
/// with `<redacted>`, for everyone: the bus carries events to integrations and sockets alike.
pub fn redact(data: &mut Value) {
    crate::auth::redaction::redact(data);
}

impl Envelope {
    pub fn from_event(event: &StoredEvent) -> Self {
        let mut data = event
            .payload
            .get(&event.event_type)
            .cloned()
            .unwrap_or_else(|| event.payload.clone());
        redact(&mut data);
        let meta = |key: &str| event.meta(key).map(str::to_string);
        Envelope {
            envelope_version: ENVELOPE_VERSION,
            event_id: event.event_id,
            global_position: event.global_position,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            aggregate: AggregateRef {
                aggregate_type: event.aggregate_type.clone(),
                id: event.aggregate_id.clone(),
                sequence: event.sequence,
            },
            time: event.recorded_at,
            actor: Actor {
                id: meta(metadata::ACTOR_ID),
                username: meta(metadata::ACTOR_USERNAME),
                role: meta(metadata::ACTOR_ROLE),
                kind: meta(metadata::ACTOR_KIND),
            },
            operation_id: meta(metadata::OPERATION_ID),
            request_id: meta(metadata::REQUEST_ID),
            data,
        }
    }

    /// `dcp.events.<aggregate_type>.<aggregate_id>.<event_type>`; characters NATS gives a
    /// meaning to (`.`, `*`, `>`, spaces) are replaced by `_`.
    pub fn subject(&self) -> String {
        let token = |text: &str| {
            text.chars()
                .map(|c| match c {
                    '.' | '*' | '>' => '_',
                    c if c.is_whitespace() => '_',
                    c => c,
                })
                .collect::<String>()
        };
        format!(
            "dcp.events.{}.{}.{}",
            token(&self.aggregate.aggregate_type),
            token(&self.aggregate.id),
            token(&self.event_type)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(payload: Value) -> StoredEvent {
        StoredEvent {
            global_position: 42,
            transaction_id: 7,
            event_id: Uuid::from_u128(5),
            aggregate_type: "container".into(),
            aggregate_id: "agg.1".into(),
            sequence: 1,
            event_type: "ContainerCreateRequested".into(),
            event_version: "1".into(),
            payload,
            metadata: json!({"actor_id": "u1", "actor_username": "ops", "actor_role": "operator",
                "client_ip": "10.0.0.1", "user_agent": "curl", "operation_id": "op1", "request_id": "r1"}),
            recorded_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn an_envelope_carries_the_event_without_secrets() {
        let event = stored(json!({"ContainerCreateRequested": {
            "op_id": "op1", "spec": {"image": "app", "env": {"DB_PASSWORD": "hunter2"}}}}));
        let envelope = Envelope::from_event(&event);
        assert_eq!(
            envelope.subject(),
            "dcp.events.container.agg_1.ContainerCreateRequested"
        );
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("10.0.0.1"), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["envelope_version"], 1);
        assert_eq!(value["type"], "ContainerCreateRequested");
        assert_eq!(value["aggregate"]["type"], "container");
        assert_eq!(value["actor"]["username"], "ops");
        assert_eq!(value["operation_id"], "op1");
        assert_eq!(value["data"]["spec"]["env"]["DB_PASSWORD"], "<redacted>");
        assert_eq!(value["global_position"], 42);
        let back: Envelope = serde_json::from_value(value).unwrap();
        assert_eq!(back, envelope);
    }
}
