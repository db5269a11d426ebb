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
