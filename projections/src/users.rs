//! The `users` read model: one row per existing account, with its last login.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use dcp_aggregates::session::{Session, SessionEvent};
use dcp_aggregates::user::{User, UserEvent};
use dcp_aggregates::Role;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runner::Projection;

/// Maintains the `users` table from `user` events and session starts.
pub struct UsersProjection;

// What the `users` table holds of an account is what the API shows of it.
/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, FromRow)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub is_active: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The aggregate's sequence number: how many changes it has seen.
    pub version: i64,
}

/// A row of the `users` table: the account, and the position of the event that last
/// changed it.
#[derive(Debug, Clone, PartialEq, FromRow)]
struct UserRow {
    #[sqlx(flatten)]
    user: UserView,
    last_position: i64,
}

/// What an event changes of one user's row.
enum UserChange {
    /// An event of the user's own stream.
    Account(UserEvent),
    /// The user logged in.
    LoggedIn(DateTime<Utc>),
}

/// The user an event concerns and what it changes, if this projection cares about it.
fn change_of(event: &StoredEvent) -> anyhow::Result<Option<(Uuid, UserChange)>> {
    match event.aggregate_type.as_str() {
        User::TYPE => {
            let Ok(id) = event.aggregate_id.parse() else {
                return Ok(None);
            };
            Ok(Some((id, UserChange::Account(event.typed()?))))
        }
        // Only a session's start matters here. One this build cannot read only loses a
        // last-login time.
        Session::TYPE if event.event_type == SessionEvent::STARTED => {
            match event.decode::<SessionEvent>() {
                Ok(SessionEvent::SessionStarted {
                    user_id,
                    started_at,
                    ..
                }) => Ok(Some((user_id, UserChange::LoggedIn(started_at)))),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn apply_change(row: &mut Option<UserRow>, event: &StoredEvent, change: UserChange) {
    match change {
        UserChange::LoggedIn(at) => {
            if let Some(row) = row.as_mut() {
                row.user.last_login_at = Some(at);
                row.last_position = event.global_position;
            }
        }
        UserChange::Account(UserEvent::UserCreated {
            user_id,
            username,
            email,
            full_name,
            role,
            must_change_password,
            created_at,
        }) => {
            *row = Some(UserRow {
                user: UserView {
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
                },
                last_position: event.global_position,
            });
        }
        UserChange::Account(UserEvent::UserDeleted { .. }) => *row = None,
        UserChange::Account(other) => {
            if let Some(row) = row.as_mut() {
                row.update(event, other);
            }
        }
    }
}

impl UserRow {
    /// Applies a change to an existing account.
    fn update(&mut self, event: &StoredEvent, change: UserEvent) {
        let at = match change {
            UserEvent::UserProfileUpdated {
                email,
                full_name,
                updated_at,
                ..
            } => {
                if let Some(email) = email {
                    self.user.email = email;
                }
                if let Some(full_name) = full_name {
                    self.user.full_name = full_name;
                }
                updated_at
            }
            UserEvent::UserRoleChanged { to, changed_at, .. } => {
                self.user.role = Role::as_str(to).to_string();
                changed_at
            }
            UserEvent::UserDeactivated { deactivated_at, .. } => {
                self.user.is_active = false;
                deactivated_at
            }
            UserEvent::UserReactivated { reactivated_at, .. } => {
                self.user.is_active = true;
                reactivated_at
            }
            UserEvent::UserPasswordChanged {
                must_change_password,
                changed_at,
                ..
            } => {
                self.user.must_change_password = must_change_password;
                changed_at
            }
            // A creation or a deletion replaces the whole row (see `apply_change`).
            UserEvent::UserCreated { .. } | UserEvent::UserDeleted { .. } => return,
        };
        self.user.updated_at = at;
        self.user.version = event.sequence;
        self.last_position = event.global_position;
    }
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
        let mut relevant: Vec<(Uuid, &StoredEvent, UserChange)> = Vec::new();
        for event in events {
            if let Some((id, change)) = change_of(event)? {
                relevant.push((id, event, change));
            }
        }
        if relevant.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = relevant.iter().map(|(id, _, _)| *id).collect();
        let existing: Vec<UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        let mut rows: HashMap<Uuid, Option<UserRow>> = ids.iter().map(|id| (*id, None)).collect();
        for row in existing {
            rows.insert(row.user.id, Some(row));
        }
        for (id, event, change) in relevant {
            apply_change(rows.entry(id).or_default(), event, change);
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
            rows.iter()
                .map(|r| r.user.$field.clone())
                .collect::<Vec<_>>()
        };
    }
    let last_positions: Vec<i64> = rows.iter().map(|r| r.last_position).collect();
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
    .bind(last_positions)
    .execute(conn)
    .await?;
    Ok(())
}
