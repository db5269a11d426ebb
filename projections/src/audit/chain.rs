//! The audit log's hash chain: each entry's hash covers the entry and the hash before it,
//! so a changed, removed, inserted or reordered entry shows.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::AuditEntry;

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
    /// The first event the audit log has applied but holds no entry for: entries cut from
    /// the log (its tail included, which the chain alone cannot tell from a log that ends
    /// there).
    pub first_missing: Option<MissingEntry>,
}

/// An event the audit log should hold an entry for, and does not.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MissingEntry {
    pub global_position: i64,
    pub aggregate_type: String,
    pub event_type: String,
}

/// The first event at or before the audit projection's checkpoint with no entry. The
/// checkpoint is read first: entries only grow after it, so every event it covers must
/// already have one.
pub async fn first_missing(pool: &sqlx::PgPool) -> anyhow::Result<Option<MissingEntry>> {
    let checkpoint: Option<(String, i64)> = sqlx::query_as(
        "SELECT last_transaction_id::text, last_position FROM projection_checkpoints WHERE name = $1",
    )
    .bind(<super::AuditLogProjection as crate::runner::Projection>::NAME)
    .fetch_optional(pool)
    .await?;
    let Some((transaction_id, position)) = checkpoint else {
        return Ok(None);
    };
    let missing: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT e.global_position, e.aggregate_type, e.event_type FROM events e \
         WHERE (e.transaction_id, e.global_position) <= ($1::xid8, $2) \
         AND NOT EXISTS (SELECT 1 FROM audit_logs a WHERE a.global_position = e.global_position) \
         ORDER BY e.transaction_id, e.global_position LIMIT 1",
    )
    .bind(transaction_id)
    .bind(position)
    .fetch_optional(pool)
    .await?;
    Ok(missing.map(
        |(global_position, aggregate_type, event_type)| MissingEntry {
            global_position,
            aggregate_type,
            event_type,
        },
    ))
}

/// An entry whose stored hash is not the one its content and place give.
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

/// Walks the whole audit log in order and recomputes every hash, and checks that no event
/// the log has applied lacks its entry.
pub async fn verify_chain(pool: &sqlx::PgPool) -> anyhow::Result<ChainReport> {
    let missing = first_missing(pool).await?;
    let mut report = walk_chain(pool).await?;
    if missing.is_some() {
        report.valid = false;
        report.first_missing = missing;
    }
    Ok(report)
}

/// Walks the whole audit log in order and recomputes every hash.
async fn walk_chain(pool: &sqlx::PgPool) -> anyhow::Result<ChainReport> {
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
                first_missing: None,
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
                    first_missing: None,
                });
            }
            previous = expected;
        }
    }
}
