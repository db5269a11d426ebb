//! The audit log: one entry per event, derived from the stream, so nothing acts unaudited.
//!
//! Actions are `<resource>.<action>`; actor, IP, user agent and request id come from
//! the event metadata written by the server. Entries keep the log order in `seq` and
//! carry a hash chain (`chain`). `entry` builds an entry from an event.

mod chain;
mod entry;
#[cfg(test)]
mod tests;

use sqlx::PgConnection;

use crate::log::StoredEvent;
use crate::runner::Projection;

pub use chain::{
    canonical, chain_hash, first_missing, verify_chain, ChainReport, InvalidEntry, MissingEntry,
};
pub use entry::{audit_entry, AuditEntry};

/// Maintains `audit_logs` from every event.
pub struct AuditLogProjection;

#[async_trait::async_trait]
impl Projection for AuditLogProjection {
    const NAME: &'static str = "audit_log";
    // 2: every entry carries its hash chain.
    const VERSION: i32 = 2;
    const TABLES: &'static [&'static str] = &["audit_logs"];

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
