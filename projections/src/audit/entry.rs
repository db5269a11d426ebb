//! One audit entry per event: what it did, to which resource, by whom, from where.
//!
//! The action and the resource come from the typed event ([`Audited`]); the actor, IP,
//! user agent and request id from the metadata the server wrote; the details are the
//! event's own fields.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use dcp_aggregates::audit::Audited;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::metadata;

/// One audit entry before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub global_position: i64,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub details: Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What an entry says about its event, before the request context is added.
struct Described {
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    /// Where a Docker resource's event stands in its operation (`details.outcome`).
    outcome: Option<&'static str>,
    /// The user the event names in its own fields.
    user_id: Option<Uuid>,
    username: Option<String>,
}

/// The event's own account of itself. An event this build cannot decode (damaged, or of
/// a type a later dcp added) still gets an entry, named after its type; one of a type this
/// build knows that does not decode is also logged, since its entry lacks its usual action.
fn describe(event: &StoredEvent) -> Described {
    let own_resource = || {
        (
            event.aggregate_type.clone(),
            Some(event.aggregate_id.clone()),
        )
    };
    let typed = match event.decode_any() {
        Ok(typed) => typed,
        Err(error) => {
            tracing::warn!(position = event.global_position, event_type = %event.event_type,
                %error, "an event does not decode; its audit entry is named after its type");
            None
        }
    };
    let Some(typed) = typed else {
        let (resource_type, resource_id) = own_resource();
        return Described {
            action: format!("{}.{}", event.aggregate_type, snake_case(&event.event_type)),
            resource_type,
            resource_id,
            outcome: None,
            user_id: None,
            username: None,
        };
    };
    let audit = typed.audit_action();
    let (resource_type, resource_id) = match audit.resource.clone() {
        Some(other) => (other.resource_type.to_string(), other.resource_id),
        None => own_resource(),
    };
    Described {
        action: audit.action(),
        resource_type,
        resource_id,
        outcome: audit.outcome,
        user_id: typed.user_id(),
        username: typed.username().map(str::to_string),
    }
}

/// `SessionLoggedOut` → `session_logged_out`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// PostgreSQL text and jsonb cannot hold NUL: an event that carries one (written by an
/// older or foreign writer) must not stall the audit log, so NULs are dropped here.
fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', ""), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

fn clean(text: &str) -> String {
    text.replace('\0', "")
}
/// Builds the audit entry of one event. Pure, so it is tested without a database.
pub fn audit_entry(event: &StoredEvent) -> AuditEntry {
    let entry = raw_audit_entry(event);
    AuditEntry {
        username: entry.username.as_deref().map(clean),
        role: entry.role.as_deref().map(clean),
        action: clean(&entry.action),
        resource_type: entry.resource_type.as_deref().map(clean),
        resource_id: entry.resource_id.as_deref().map(clean),
        details: without_nul(entry.details),
        user_agent: entry.user_agent.as_deref().map(clean),
        request_id: entry.request_id.as_deref().map(clean),
        ..entry
    }
}

fn raw_audit_entry(event: &StoredEvent) -> AuditEntry {
    let described = describe(event);
    // The details are the fields as stored (cqrs-es keeps a variant as
    // `{"<event type>": {fields}}`), not the typed event serialised again: stored entries
    // were hashed over exactly these bytes, whatever wrote them.
    let mut details = event
        .payload
        .get(&event.event_type)
        .cloned()
        .unwrap_or_else(|| event.payload.clone());
    // Anonymous requests (a login) name their subject in the event instead of the metadata.
    let user_id = event
        .meta(metadata::ACTOR_ID)
        .and_then(|id| id.parse().ok())
        .or(described.user_id);
    let username = event
        .meta(metadata::ACTOR_USERNAME)
        .map(str::to_string)
        .or(described.username);
    let ip_address = event
        .meta(metadata::CLIENT_IP)
        .filter(|ip| ip.parse::<IpAddr>().is_ok())
        .map(str::to_string);
    if let Value::Object(map) = &mut details {
        if let Some(kind) = event.meta(metadata::ACTOR_KIND) {
            map.insert("actor_kind".into(), json!(kind));
        }
        if let Some(outcome) = described.outcome {
            map.insert("outcome".into(), json!(outcome));
        }
        if let Some(reason) = event.meta(metadata::REASON) {
            map.insert("reason".into(), json!(reason));
        }
    }
    AuditEntry {
        id: event.event_id,
        global_position: event.global_position,
        user_id,
        username,
        role: event.meta(metadata::ACTOR_ROLE).map(str::to_string),
        action: described.action,
        resource_type: Some(described.resource_type),
        resource_id: described.resource_id,
        details,
        ip_address,
        user_agent: event
            .meta(metadata::USER_AGENT)
            .map(|ua| ua.chars().take(1024).collect()),
        request_id: event.meta(metadata::REQUEST_ID).map(str::to_string),
        created_at: event.recorded_at,
    }
}
