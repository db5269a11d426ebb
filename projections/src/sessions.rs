//! The `sessions` read model: which logins are open, checked on every request.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use dcp_aggregates::session::{Session, SessionEvent};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::metadata;
use crate::runner::Projection;

/// Maintains the `sessions` table from `session` events.
pub struct SessionsProjection;

/// A row of the `sessions` table.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

#[async_trait::async_trait]
impl Projection for SessionsProjection {
    const NAME: &'static str = "sessions";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &["sessions"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let mut batch = Batch::default();
        for event in events.iter().filter(|e| e.aggregate_type == Session::TYPE) {
            batch.take(event, event.typed()?)?;
        }
        insert_started(conn, batch.started.into_values().collect()).await?;
        record_ends(conn, batch.ended).await
    }
}

/// One session's end: when, and why (`logout` or the revocation reason).
struct End {
    session_id: Uuid,
    at: DateTime<Utc>,
    reason: String,
}

/// The sessions a batch starts, and the ends of sessions started before it.
#[derive(Default)]
struct Batch {
    started: HashMap<Uuid, SessionRow>,
    ended: Vec<End>,
}

impl Batch {
    fn take(&mut self, event: &StoredEvent, typed: SessionEvent) -> anyhow::Result<()> {
        let end = match typed {
            SessionEvent::SessionStarted {
                session_id,
                user_id,
                expires_at,
                started_at,
                ..
            } => {
                let row = SessionRow {
                    id: session_id,
                    user_id,
                    started_at,
                    expires_at,
                    ended_at: None,
                    end_reason: None,
                    ip_address: event.meta(metadata::CLIENT_IP).map(str::to_string),
                    user_agent: event.meta(metadata::USER_AGENT).map(str::to_string),
                };
                self.started.insert(session_id, row);
                return Ok(());
            }
            SessionEvent::SessionLoggedOut {
                session_id,
                logged_out_at,
                ..
            } => End {
                session_id,
                at: logged_out_at,
                reason: "logout".into(),
            },
            SessionEvent::SessionRevoked {
                session_id,
                reason,
                revoked_at,
                ..
            } => End {
                session_id,
                at: revoked_at,
                reason: serde_json::to_value(reason)?
                    .as_str()
                    .unwrap_or("revoked")
                    .to_string(),
            },
        };
        // The end of a session started in this same batch is folded in before inserting.
        match self.started.get_mut(&end.session_id) {
            Some(row) => {
                row.ended_at = Some(end.at);
                row.end_reason = Some(end.reason);
            }
            None => self.ended.push(end),
        }
        Ok(())
    }
}

/// Inserts the sessions a batch started, in one statement.
async fn insert_started(conn: &mut PgConnection, rows: Vec<SessionRow>) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "INSERT INTO sessions (id, user_id, started_at, expires_at, ended_at, end_reason, ip_address, user_agent) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], \
         $5::timestamptz[], $6::text[], $7::text[], $8::text[]) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(column!(id))
    .bind(column!(user_id))
    .bind(column!(started_at))
    .bind(column!(expires_at))
    .bind(column!(ended_at))
    .bind(column!(end_reason))
    .bind(column!(ip_address))
    .bind(column!(user_agent))
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the sessions started in earlier batches, in one statement (an ended session
/// keeps its first end).
async fn record_ends(conn: &mut PgConnection, ended: Vec<End>) -> anyhow::Result<()> {
    if ended.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = ended.iter().map(|e| e.session_id).collect();
    let ats: Vec<DateTime<Utc>> = ended.iter().map(|e| e.at).collect();
    let reasons: Vec<String> = ended.into_iter().map(|e| e.reason).collect();
    sqlx::query(
        "UPDATE sessions s SET ended_at = e.ended_at, end_reason = e.reason \
         FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS e(id, ended_at, reason) \
         WHERE s.id = e.id AND s.ended_at IS NULL",
    )
    .bind(ids)
    .bind(ats)
    .bind(reasons)
    .execute(conn)
    .await?;
    Ok(())
}
