//! The `sessions` read model: which logins are open, checked on every request.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use dcp_aggregates::session::SessionEvent;
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
        let mut rows: HashMap<Uuid, SessionRow> = HashMap::new();
        let mut ended: Vec<(Uuid, DateTime<Utc>, String)> = Vec::new();
        for event in events.iter().filter(|e| e.aggregate_type == "session") {
            let decoded: SessionEvent = event.decode().with_context(|| {
                format!(
                    "Failed to decode {} at position {}",
                    event.event_type, event.global_position
                )
            })?;
            match decoded {
                SessionEvent::SessionStarted {
                    session_id,
                    user_id,
                    expires_at,
                    started_at,
                    ..
                } => {
                    rows.insert(
                        session_id,
                        SessionRow {
                            id: session_id,
                            user_id,
                            started_at,
                            expires_at,
                            ended_at: None,
                            end_reason: None,
                            ip_address: event.meta(metadata::CLIENT_IP).map(str::to_string),
                            user_agent: event.meta(metadata::USER_AGENT).map(str::to_string),
                        },
                    );
                }
                SessionEvent::SessionLoggedOut {
                    session_id,
                    logged_out_at,
                    ..
                } => ended.push((session_id, logged_out_at, "logout".into())),
                SessionEvent::SessionRevoked {
                    session_id,
                    reason,
                    revoked_at,
                    ..
                } => {
                    let reason = serde_json::to_value(reason)?
                        .as_str()
                        .unwrap_or("revoked")
                        .to_string();
                    ended.push((session_id, revoked_at, reason));
                }
            }
        }
        // Ends of sessions started in this same batch are folded in before inserting.
        ended.retain(|(id, at, reason)| match rows.get_mut(id) {
            Some(row) => {
                row.ended_at = Some(*at);
                row.end_reason = Some(reason.clone());
                false
            }
            None => true,
        });
        if !rows.is_empty() {
            let rows: Vec<SessionRow> = rows.into_values().collect();
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
            .execute(&mut *conn)
            .await?;
        }
        if !ended.is_empty() {
            let ids: Vec<Uuid> = ended.iter().map(|e| e.0).collect();
            let ats: Vec<DateTime<Utc>> = ended.iter().map(|e| e.1).collect();
            let reasons: Vec<String> = ended.into_iter().map(|e| e.2).collect();
            sqlx::query(
                "UPDATE sessions s SET ended_at = e.ended_at, end_reason = e.reason \
                 FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS e(id, ended_at, reason) \
                 WHERE s.id = e.id AND s.ended_at IS NULL",
            )
            .bind(ids)
            .bind(ats)
            .bind(reasons)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
