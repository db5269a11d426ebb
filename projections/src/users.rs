//! The `users` read model: one row per existing account, with its last login.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use dcp_aggregates::session::SessionEvent;
use dcp_aggregates::user::{User, UserEvent};
use dcp_aggregates::Role;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runner::Projection;

/// Maintains the `users` table from `user` events and session starts.
pub struct UsersProjection;

/// A row of the `users` table.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub is_active: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub last_position: i64,
}

/// The user an event concerns, if this projection cares about it.
fn user_of(event: &StoredEvent) -> Option<Uuid> {
    match event.aggregate_type.as_str() {
        t if t == User::TYPE => event.aggregate_id.parse().ok(),
        "session" if event.event_type == "SessionStarted" => match event.decode::<SessionEvent>() {
            Ok(SessionEvent::SessionStarted { user_id, .. }) => Some(user_id),
            _ => None,
        },
        _ => None,
    }
}

fn apply_event(row: &mut Option<UserRow>, event: &StoredEvent) -> anyhow::Result<()> {
    let stamp = |row: &mut UserRow, at: DateTime<Utc>| {
        row.updated_at = at;
        row.version = event.sequence;
        row.last_position = event.global_position;
    };
    if event.aggregate_type == "session" {
        if let (Some(row), Ok(SessionEvent::SessionStarted { started_at, .. })) =
            (row.as_mut(), event.decode())
        {
            row.last_login_at = Some(started_at);
            row.last_position = event.global_position;
        }
        return Ok(());
    }
    let decoded: UserEvent = event.decode().with_context(|| {
        format!(
            "Failed to decode {} at position {}",
            event.event_type, event.global_position
        )
    })?;
    match decoded {
        UserEvent::UserCreated {
            user_id,
            username,
            email,
            full_name,
            role,
            must_change_password,
            created_at,
        } => {
            *row = Some(UserRow {
                id: user_id,
                username,
                email,
                full_name,
                role: role.as_str().to_string(),
                is_active: true,
                must_change_password,
                created_at,
                updated_at: created_at,
                last_login_at: None,
                version: event.sequence,
                last_position: event.global_position,
            });
        }
        UserEvent::UserDeleted { .. } => *row = None,
        other => {
            let Some(row) = row.as_mut() else {
                return Ok(());
            };
            match other {
                UserEvent::UserProfileUpdated {
                    email,
                    full_name,
                    updated_at,
                    ..
                } => {
                    if let Some(email) = email {
                        row.email = email;
                    }
                    if let Some(full_name) = full_name {
                        row.full_name = full_name;
                    }
                    stamp(row, updated_at);
                }
                UserEvent::UserRoleChanged { to, changed_at, .. } => {
                    row.role = Role::as_str(to).to_string();
                    stamp(row, changed_at);
                }
                UserEvent::UserDeactivated { deactivated_at, .. } => {
                    row.is_active = false;
                    stamp(row, deactivated_at);
                }
                UserEvent::UserReactivated { reactivated_at, .. } => {
                    row.is_active = true;
                    stamp(row, reactivated_at);
                }
                UserEvent::UserPasswordChanged {
                    must_change_password,
                    changed_at,
                    ..
                } => {
                    row.must_change_password = must_change_password;
                    stamp(row, changed_at);
                }
                UserEvent::UserCreated { .. } | UserEvent::UserDeleted { .. } => {}
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Projection for UsersProjection {
    const NAME: &'static str = "users";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &["users"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let relevant: Vec<(Uuid, &StoredEvent)> = events
            .iter()
            .filter_map(|e| user_of(e).map(|id| (id, e)))
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = relevant.iter().map(|(id, _)| *id).collect();
        let existing: Vec<UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        let mut rows: HashMap<Uuid, Option<UserRow>> = ids.iter().map(|id| (*id, None)).collect();
        for row in existing {
            rows.insert(row.id, Some(row));
        }
        for (id, event) in relevant {
            apply_event(rows.entry(id).or_default(), event)?;
        }
        let (present, gone): (Vec<_>, Vec<_>) =
            rows.into_iter().partition(|(_, row)| row.is_some());
        let gone: Vec<Uuid> = gone.into_iter().map(|(id, _)| id).collect();
        if !gone.is_empty() {
            sqlx::query("DELETE FROM users WHERE id = ANY($1)")
                .bind(&gone)
                .execute(&mut *conn)
                .await?;
        }
        let rows: Vec<UserRow> = present.into_iter().filter_map(|(_, row)| row).collect();
        upsert(conn, &rows).await
    }
}

async fn upsert(conn: &mut PgConnection, rows: &[UserRow]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "INSERT INTO users (id, username, email, full_name, role, is_active, must_change_password, \
         created_at, updated_at, last_login_at, version, last_position) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], \
         $7::bool[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::bigint[]) \
         ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, email = EXCLUDED.email, \
         full_name = EXCLUDED.full_name, role = EXCLUDED.role, is_active = EXCLUDED.is_active, \
         must_change_password = EXCLUDED.must_change_password, created_at = EXCLUDED.created_at, \
         updated_at = EXCLUDED.updated_at, last_login_at = EXCLUDED.last_login_at, \
         version = EXCLUDED.version, last_position = EXCLUDED.last_position",
    )
    .bind(column!(id))
    .bind(column!(username))
    .bind(column!(email))
    .bind(column!(full_name))
    .bind(column!(role))
    .bind(column!(is_active))
    .bind(column!(must_change_password))
    .bind(column!(created_at))
    .bind(column!(updated_at))
    .bind(column!(last_login_at))
    .bind(column!(version))
    .bind(column!(last_position))
    .execute(conn)
    .await?;
    Ok(())
}
