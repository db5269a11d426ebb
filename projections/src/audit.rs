//! The audit log: one entry per event, derived from the stream, so nothing acts unaudited.
//!
//! Actions are `<resource>.<action>`; actor, IP, user agent and request id come from
//! the event metadata written by the server. Entries keep the log order in `seq`.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::metadata;
use crate::runner::Projection;

/// Maintains `audit_logs` from every event.
pub struct AuditLogProjection;

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

/// The Docker operations' events: event type → (verb, phase). Every step of one
/// operation (requested, succeeded, failed) shares the audit action `<resource>.<verb>`,
/// told apart by `details.outcome`.
const OPERATION_EVENTS: &[(&str, &str, &str, &str)] = &[
    (
        "container",
        "ContainerCreateRequested",
        "create",
        "requested",
    ),
    ("container", "ContainerCreated", "create", "succeeded"),
    ("container", "ContainerStartRequested", "start", "requested"),
    ("container", "ContainerStarted", "start", "succeeded"),
    ("container", "ContainerStopRequested", "stop", "requested"),
    ("container", "ContainerStopped", "stop", "succeeded"),
    (
        "container",
        "ContainerRestartRequested",
        "restart",
        "requested",
    ),
    ("container", "ContainerRestarted", "restart", "succeeded"),
    ("container", "ContainerKillRequested", "kill", "requested"),
    ("container", "ContainerKilled", "kill", "succeeded"),
    ("container", "ContainerPauseRequested", "pause", "requested"),
    ("container", "ContainerPaused", "pause", "succeeded"),
    (
        "container",
        "ContainerUnpauseRequested",
        "unpause",
        "requested",
    ),
    ("container", "ContainerUnpaused", "unpause", "succeeded"),
    (
        "container",
        "ContainerRenameRequested",
        "rename",
        "requested",
    ),
    ("container", "ContainerRenamed", "rename", "succeeded"),
    (
        "container",
        "ContainerRemoveRequested",
        "delete",
        "requested",
    ),
    ("container", "ContainerRemoved", "delete", "succeeded"),
    (
        "container",
        "ContainerRecreateRequested",
        "recreate",
        "requested",
    ),
    ("container", "ContainerRecreated", "recreate", "succeeded"),
    ("container", "ContainerDiscovered", "observed", "discovered"),
    ("container", "ContainerObserved", "observed", "observed"),
    ("container", "ContainerExecStarted", "exec", "started"),
    ("container", "ContainerExecEnded", "exec", "ended"),
    ("image", "ImagePullRequested", "pull", "requested"),
    ("image", "ImagePulled", "pull", "succeeded"),
    ("image", "ImageRemoveRequested", "delete", "requested"),
    ("image", "ImageRemoved", "delete", "succeeded"),
    ("image", "ImageObserved", "observed", "observed"),
    ("volume", "VolumeCreateRequested", "create", "requested"),
    ("volume", "VolumeCreated", "create", "succeeded"),
    ("volume", "VolumeRemoveRequested", "delete", "requested"),
    ("volume", "VolumeRemoved", "delete", "succeeded"),
    ("volume", "VolumeObserved", "observed", "observed"),
    ("network", "NetworkCreateRequested", "create", "requested"),
    ("network", "NetworkCreated", "create", "succeeded"),
    ("network", "NetworkRemoveRequested", "delete", "requested"),
    ("network", "NetworkRemoved", "delete", "succeeded"),
    ("network", "NetworkConnectRequested", "connect", "requested"),
    ("network", "NetworkConnected", "connect", "succeeded"),
    (
        "network",
        "NetworkDisconnectRequested",
        "disconnect",
        "requested",
    ),
    ("network", "NetworkDisconnected", "disconnect", "succeeded"),
    ("network", "NetworkObserved", "observed", "observed"),
];

/// The resource types whose events are Docker operations.
pub const OPERATION_RESOURCES: &[&str] = &["container", "image", "volume", "network"];

/// A Docker operation event's audit action and phase (`requested`, `succeeded`, `failed`,
/// `observed`, `discovered`); also used by the operations read model.
pub fn operation_event(
    aggregate_type: &str,
    event_type: &str,
    fields: &Value,
) -> Option<(String, &'static str)> {
    if !OPERATION_RESOURCES.contains(&aggregate_type) {
        return None;
    }
    if event_type == "OperationFailed" {
        let operation = fields.get("operation").and_then(Value::as_str)?;
        return Some((format!("{aggregate_type}.{operation}"), "failed"));
    }
    OPERATION_EVENTS
        .iter()
        .find(|(resource, name, _, _)| *resource == aggregate_type && *name == event_type)
        .map(|(resource, _, verb, phase)| (format!("{resource}.{verb}"), *phase))
}

fn classify(event: &StoredEvent, fields: &Value) -> (String, Option<String>, Option<String>) {
    if let Some((action, _)) = operation_event(&event.aggregate_type, &event.event_type, fields) {
        return (
            action,
            Some(event.aggregate_type.clone()),
            Some(event.aggregate_id.clone()),
        );
    }
    let aggregate = (
        event.aggregate_type.as_str(),
        Some(event.aggregate_id.clone()),
    );
    let (action, resource_type, resource_id) =
        match (event.aggregate_type.as_str(), event.event_type.as_str()) {
            ("user", "UserCreated") => ("user.create", aggregate.0, aggregate.1),
            ("user", "UserProfileUpdated") => ("user.update", aggregate.0, aggregate.1),
            ("user", "UserRoleChanged") => ("user.role_change", aggregate.0, aggregate.1),
            ("user", "UserDeactivated") => ("user.deactivate", aggregate.0, aggregate.1),
            ("user", "UserReactivated") => ("user.reactivate", aggregate.0, aggregate.1),
            ("user", "UserPasswordChanged") => ("user.password_change", aggregate.0, aggregate.1),
            ("user", "UserDeleted") => ("user.delete", aggregate.0, aggregate.1),
            ("host", "HostRegistered") => ("host.create", aggregate.0, aggregate.1),
            ("host", "HostUpdated") => ("host.update", aggregate.0, aggregate.1),
            ("host", "HostCredentialsChanged") => {
                ("host.credentials_change", aggregate.0, aggregate.1)
            }
            ("host", "HostKeyPinned") => ("host.key_pin", aggregate.0, aggregate.1),
            ("host", "HostKeyMismatch") => ("host.key_mismatch", aggregate.0, aggregate.1),
            ("host", "HostStatusChanged") => ("host.status_change", aggregate.0, aggregate.1),
            ("host", "HostDisabled") => ("host.disable", aggregate.0, aggregate.1),
            ("host", "HostEnabled") => ("host.enable", aggregate.0, aggregate.1),
            ("host", "HostRemoved") => ("host.delete", aggregate.0, aggregate.1),
            ("wizard", "WizardStarted") => ("wizard.start", aggregate.0, aggregate.1),
            ("wizard", "StepDataSubmitted") => ("wizard.step_submit", aggregate.0, aggregate.1),
            ("wizard", "StepAdvanced") => ("wizard.next", aggregate.0, aggregate.1),
            ("wizard", "StepRetreated") => ("wizard.previous", aggregate.0, aggregate.1),
            ("wizard", "StepTested") => ("wizard.test", aggregate.0, aggregate.1),
            ("wizard", "WizardCompleted") => ("wizard.complete", aggregate.0, aggregate.1),
            ("wizard", "WizardCancelled") => ("wizard.cancel", aggregate.0, aggregate.1),
            ("wizard", "WizardFailed") => ("wizard.fail", aggregate.0, aggregate.1),
            ("session", "SessionStarted") => ("auth.login", aggregate.0, aggregate.1),
            ("session", "SessionLoggedOut") => ("auth.logout", aggregate.0, aggregate.1),
            ("session", "SessionRevoked") => ("auth.session_revoked", aggregate.0, aggregate.1),
            ("access_attempt", "LoginFailed") => (
                "auth.login_failed",
                "user",
                fields
                    .get("user_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ),
            ("access_attempt", "AccessDenied") => (
                "access.denied",
                "route",
                Some(format!(
                    "{} {}",
                    fields.get("method").and_then(Value::as_str).unwrap_or(""),
                    fields.get("route").and_then(Value::as_str).unwrap_or("")
                )),
            ),
            _ => {
                // Event types added by later features still get an entry; they map their own names.
                let action = format!("{}.{}", event.aggregate_type, snake_case(&event.event_type));
                return (action, Some(event.aggregate_type.clone()), aggregate.1);
            }
        };
    (
        action.to_string(),
        Some(resource_type.to_string()),
        resource_id,
    )
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
    // cqrs-es stores an enum variant as `{"VariantName": {fields}}`.
    let fields = event
        .payload
        .get(&event.event_type)
        .cloned()
        .unwrap_or_else(|| event.payload.clone());
    let (action, resource_type, resource_id) = classify(event, &fields);
    let field_str = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
    // Anonymous requests (a login) name their subject in the payload instead of the metadata.
    let user_id = event
        .meta(metadata::ACTOR_ID)
        .and_then(|id| id.parse().ok())
        .or_else(|| field_str("user_id").and_then(|id| id.parse().ok()));
    let username = event
        .meta(metadata::ACTOR_USERNAME)
        .map(str::to_string)
        .or_else(|| field_str("username"));
    let ip_address = event
        .meta(metadata::CLIENT_IP)
        .filter(|ip| ip.parse::<IpAddr>().is_ok())
        .map(str::to_string);
    // The outcome is judged on the event's own fields, before anything is added to them.
    let outcome = operation_event(&event.aggregate_type, &event.event_type, &fields)
        .map(|(_, outcome)| outcome);
    let mut details = fields;
    if let Value::Object(map) = &mut details {
        if let Some(kind) = event.meta(metadata::ACTOR_KIND) {
            map.insert("actor_kind".into(), json!(kind));
        }
        if let Some(outcome) = outcome {
            map.insert("outcome".into(), json!(outcome));
        }
    }
    AuditEntry {
        id: event.event_id,
        global_position: event.global_position,
        user_id,
        username,
        role: event.meta(metadata::ACTOR_ROLE).map(str::to_string),
        action,
        resource_type,
        resource_id,
        details,
        ip_address,
        user_agent: event
            .meta(metadata::USER_AGENT)
            .map(|ua| ua.chars().take(1024).collect()),
        request_id: event.meta(metadata::REQUEST_ID).map(str::to_string),
        created_at: event.recorded_at,
    }
}

#[async_trait::async_trait]
impl Projection for AuditLogProjection {
    const NAME: &'static str = "audit_log";
    // 2: every entry carries its hash chain.
    const VERSION: i32 = 2;
    const TABLES: &'static [&'static str] = &["audit_logs"];

    /// `seq` starts again at 1: a rebuilt chain is numbered as the first one was.
    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query("TRUNCATE audit_logs RESTART IDENTITY")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let entries: Vec<AuditEntry> = events.iter().map(audit_entry).collect();
        // The chain continues from the last entry stored (this runner is the only writer).
        let mut previous: String =
            sqlx::query_scalar("SELECT hash FROM audit_logs ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?
                .flatten()
                .unwrap_or_default();
        let hashes: Vec<String> = entries
            .iter()
            .map(|entry| {
                previous = chain_hash(&previous, &canonical(entry));
                previous.clone()
            })
            .collect();
        // COPY is the cheapest way into a table; rows arrive in log order, so `seq` (the
        // identity) follows it.
        let mut rows = String::with_capacity(entries.len() * 512);
        for (entry, hash) in entries.iter().zip(&hashes) {
            copy_row(&mut rows, entry, hash);
        }
        let mut copy = conn
            .copy_in_raw(
                "COPY audit_logs (id, global_position, user_id, username, role, action, resource_type, \
                 resource_id, details, ip_address, user_agent, request_id, created_at, hash) FROM STDIN",
            )
            .await?;
        if let Err(error) = copy.send(rows.into_bytes()).await {
            let _ = copy.abort("failed to send the rows").await;
            return Err(error.into());
        }
        copy.finish().await?;
        Ok(())
    }
}

/// Appends one entry as a line of `COPY … FROM STDIN` text format.
fn copy_row(out: &mut String, entry: &AuditEntry, hash: &str) {
    fn field(out: &mut String, value: Option<&str>) {
        match value {
            None => out.push_str("\\N"),
            Some(text) if !text.contains(['\\', '\n', '\r', '\t']) => out.push_str(text),
            Some(text) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c => out.push(c),
                    }
                }
            }
        }
        out.push('\t');
    }
    let details = entry.details.to_string();
    let created_at = entry
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    field(out, Some(&entry.id.to_string()));
    field(out, Some(&entry.global_position.to_string()));
    field(out, entry.user_id.map(|u| u.to_string()).as_deref());
    field(out, entry.username.as_deref());
    field(out, entry.role.as_deref());
    field(out, Some(&entry.action));
    field(out, entry.resource_type.as_deref());
    field(out, entry.resource_id.as_deref());
    field(out, Some(&details));
    field(out, entry.ip_address.as_deref());
    field(out, entry.user_agent.as_deref());
    field(out, entry.request_id.as_deref());
    field(out, Some(&created_at));
    field(out, Some(hash));
    // The last field's tab becomes the end of the line.
    out.pop();
    out.push('\n');
}

/// The text an entry's hash is computed over: its fields in a fixed order, as JSON (the
/// details' keys sorted), the time to the microsecond the database keeps.
pub fn canonical(entry: &AuditEntry) -> String {
    // A tuple serialises as a JSON array, exactly as the `json!` array of these fields did,
    // without copying the details.
    serde_json::to_string(&(
        &entry.id,
        entry.global_position,
        &entry.user_id,
        &entry.username,
        &entry.role,
        &entry.action,
        &entry.resource_type,
        &entry.resource_id,
        &entry.details,
        &entry.ip_address,
        &entry.user_agent,
        &entry.request_id,
        entry
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    ))
    .expect("an audit entry serialises")
}

/// `hex(sha256(previous hash ‖ "\n" ‖ canonical entry))`; the first entry's previous hash is "".
pub fn chain_hash(previous: &str, canonical: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(previous.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        hex.push(DIGITS[usize::from(byte >> 4)] as char);
        hex.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    hex
}

/// The result of walking the audit chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChainReport {
    /// True when every entry matches its hash and follows the one before it.
    pub valid: bool,
    /// Entries checked (up to and including the first invalid one).
    pub checked: i64,
    /// The hash of the last valid entry.
    pub last_hash: Option<String>,
    /// The first entry that does not match: changed, or not following the entry before it
    /// (one was removed, inserted or moved).
    pub first_invalid: Option<InvalidEntry>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InvalidEntry {
    pub seq: i64,
    pub id: Uuid,
    pub global_position: i64,
    pub action: String,
    pub stored_hash: Option<String>,
    pub expected_hash: String,
}

type ChainRow = (
    i64,
    Uuid,
    i64,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Value,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<String>,
);

/// Walks the whole audit log in order and recomputes every hash.
pub async fn verify_chain(pool: &sqlx::PgPool) -> anyhow::Result<ChainReport> {
    let mut previous = String::new();
    let mut checked = 0i64;
    let mut after = 0i64;
    loop {
        let rows: Vec<ChainRow> = sqlx::query_as(
            "SELECT seq, id, global_position, user_id, username, role, action, resource_type, resource_id, details, \
             host(ip_address), user_agent, request_id, created_at, hash FROM audit_logs WHERE seq > $1 ORDER BY seq LIMIT 5000",
        )
        .bind(after)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(ChainReport {
                valid: true,
                checked,
                last_hash: (!previous.is_empty()).then_some(previous),
                first_invalid: None,
            });
        };
        after = last.0;
        for row in rows {
            let (
                seq,
                id,
                global_position,
                user_id,
                username,
                role,
                action,
                resource_type,
                resource_id,
                details,
                ip_address,
                user_agent,
                request_id,
                created_at,
                stored,
            ) = row;
            let entry = AuditEntry {
                id,
                global_position,
                user_id,
                username,
                role,
                action: action.clone(),
                resource_type,
                resource_id,
                details,
                ip_address,
                user_agent,
                request_id,
                created_at,
            };
            let expected = chain_hash(&previous, &canonical(&entry));
            checked += 1;
            if stored.as_deref() != Some(expected.as_str()) {
                return Ok(ChainReport {
                    valid: false,
                    checked,
                    last_hash: (!previous.is_empty()).then_some(previous),
                    first_invalid: Some(InvalidEntry {
                        seq,
                        id,
                        global_position,
                        action,
                        stored_hash: stored,
                        expected_hash: expected,
                    }),
                });
            }
            previous = expected;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        aggregate_type: &str,
        event_type: &str,
        payload: Value,
        metadata: Value,
    ) -> StoredEvent {
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
            recorded_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn user_create_carries_actor_and_request_context() {
        let entry = audit_entry(&event(
            "user",
            "UserCreated",
            json!({"UserCreated": {"username": "bob", "role": "viewer"}}),
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
        let entry = audit_entry(&event(
            "access_attempt",
            "LoginFailed",
            json!({"LoginFailed": {"login": "bob", "user_id": "00000000-0000-0000-0000-000000000002", "reason": "wrong_password"}}),
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

    #[test]
    fn container_operations_share_one_action_per_verb() {
        let cases = [
            (
                "ContainerStartRequested",
                json!({}),
                "container.start",
                "requested",
            ),
            (
                "ContainerStarted",
                json!({}),
                "container.start",
                "succeeded",
            ),
            (
                "ContainerRemoveRequested",
                json!({}),
                "container.delete",
                "requested",
            ),
            (
                "ContainerRemoved",
                json!({}),
                "container.delete",
                "succeeded",
            ),
            (
                "ContainerCreated",
                json!({}),
                "container.create",
                "succeeded",
            ),
            (
                "ContainerRenamed",
                json!({}),
                "container.rename",
                "succeeded",
            ),
            (
                "OperationFailed",
                json!({"operation": "kill"}),
                "container.kill",
                "failed",
            ),
            (
                "ContainerDiscovered",
                json!({}),
                "container.observed",
                "discovered",
            ),
        ];
        for (event_type, fields, action, outcome) in cases {
            let entry = audit_entry(&event(
                "container",
                event_type,
                json!({ event_type: fields }),
                json!({}),
            ));
            assert_eq!(entry.action, action, "{event_type}");
            assert_eq!(entry.details["outcome"], outcome, "{event_type}");
            assert_eq!(entry.resource_type.as_deref(), Some("container"));
        }
    }

    #[test]
    fn image_volume_and_network_operations_have_their_actions() {
        let cases = [
            (
                "image",
                "ImagePullRequested",
                json!({}),
                "image.pull",
                "requested",
            ),
            (
                "image",
                "OperationFailed",
                json!({"operation": "pull"}),
                "image.pull",
                "failed",
            ),
            (
                "image",
                "ImageRemoved",
                json!({}),
                "image.delete",
                "succeeded",
            ),
            (
                "image",
                "ImageObserved",
                json!({"action": "pull"}),
                "image.observed",
                "observed",
            ),
            (
                "volume",
                "VolumeCreated",
                json!({}),
                "volume.create",
                "succeeded",
            ),
            (
                "volume",
                "VolumeRemoveRequested",
                json!({}),
                "volume.delete",
                "requested",
            ),
            (
                "network",
                "NetworkConnectRequested",
                json!({}),
                "network.connect",
                "requested",
            ),
            (
                "network",
                "NetworkDisconnected",
                json!({}),
                "network.disconnect",
                "succeeded",
            ),
            (
                "network",
                "NetworkRemoved",
                json!({}),
                "network.delete",
                "succeeded",
            ),
            (
                "container",
                "ContainerObserved",
                json!({"action": "die"}),
                "container.observed",
                "observed",
            ),
        ];
        for (aggregate_type, event_type, fields, action, outcome) in cases {
            let entry = audit_entry(&event(
                aggregate_type,
                event_type,
                json!({ event_type: fields }),
                json!({}),
            ));
            assert_eq!(entry.action, action, "{event_type}");
            assert_eq!(entry.details["outcome"], outcome, "{event_type}");
            assert_eq!(entry.resource_type.as_deref(), Some(aggregate_type));
        }
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

    /// Stored chains were hashed over this form: it must never change by a byte.
    #[test]
    fn the_canonical_form_and_hash_are_stable() {
        let mut entry = audit_entry(&event(
            "container",
            "ContainerCreateRequested",
            json!({"ContainerCreateRequested": {"op_id": "0190a000-0000-7000-8000-000000000001",
                "host": "local", "spec": {"image": "busybox", "env": {"Z": "ü\n\"q\"", "A": "1"}}}}),
            json!({"actor_id": "00000000-0000-0000-0000-000000000007", "actor_username": "ann",
                "actor_role": "admin", "client_ip": "192.0.2.1", "user_agent": "t\tab"}),
        ));
        entry.created_at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let reference = serde_json::json!([
            entry.id,
            entry.global_position,
            entry.user_id,
            entry.username,
            entry.role,
            entry.action,
            entry.resource_type,
            entry.resource_id,
            entry.details,
            entry.ip_address,
            entry.user_agent,
            entry.request_id,
            entry
                .created_at
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
        ])
        .to_string();
        assert_eq!(canonical(&entry), reference);
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
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"prev\n");
        hasher.update(reference.as_bytes());
        let expected: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(chain_hash("prev", &reference), expected);
    }

    #[test]
    fn access_denied_and_unknown_events() {
        let denied = audit_entry(&event(
            "access_attempt",
            "AccessDenied",
            json!({"AccessDenied": {"method": "POST", "route": "/api/v1/users"}}),
            json!({}),
        ));
        assert_eq!(denied.action, "access.denied");
        assert_eq!(denied.resource_id.as_deref(), Some("POST /api/v1/users"));
        // An event type without its own mapping still gets an entry.
        let other = audit_entry(&event("host", "HostAdded", json!({}), json!({})));
        assert_eq!(other.action, "host.host_added");
    }
}
