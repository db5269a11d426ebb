//! Accounts: listed from the `users` read model; created, changed and deleted as `User`
//! commands. Usernames and emails are claimed in `user_handles` before the command, and
//! password hashes live in `credentials`, never in events.

use chrono::Utc;
use dcp_aggregates::session::RevocationReason;
use dcp_aggregates::user::{
    validate_email, validate_full_name, validate_username, User, UserCommand,
};
use dcp_aggregates::Role;
use dcp_projections::LogCursor;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::revocation::revoke_sessions;
use super::{Accounts, AccountsError};
use crate::auth::password::check_policy;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;
use crate::read_models::{SESSIONS, USERS};

pub use dcp_projections::users::UserView;

const USER_COLUMNS: &str =
    "id, username, email, full_name, role, is_active, must_change_password, created_at, updated_at, last_login_at, version";

/// One user from the read model.
pub async fn find_user(pool: &PgPool, id: Uuid) -> Result<Option<UserView>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// Only users with this role (`admin`, `operator`, `viewer`).
    #[param(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Only active (true) or deactivated (false) users.
    pub active: Option<bool>,
    /// Case-insensitive search in username, email and full name.
    pub q: Option<String>,
    /// Page size (1–500, default 100).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub email: String,
    pub full_name: String,
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = String)]
    pub role: Role,
    /// The initial password (8–256 characters).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Ask for a new password at first login (default true).
    pub must_change_password: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub email: Option<String>,
    pub full_name: Option<String>,
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// false deactivates, true reactivates.
    pub is_active: Option<bool>,
    /// A new password set by the admin; the user must change it at next login.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
}

/// Everything needed to create an account; shared by the API and the first-run bootstrap.
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub password: SecretString,
    pub must_change_password: bool,
}

/// How long a write waits before it answers: until the read models show it, or only until
/// it is committed (`Prefer: return=minimal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Shown,
    Committed,
}

impl Accounts {
    /// A page of the accounts matching `query`.
    pub async fn list_users(&self, query: UserListQuery) -> Result<UserList, AccountsError> {
        let limit = query.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(AccountsError::invalid(
                "limit",
                "limit must be between 1 and 500",
            ));
        }
        let offset = query.offset.unwrap_or(0);
        if offset < 0 {
            return Err(AccountsError::invalid(
                "offset",
                "offset must not be negative",
            ));
        }
        let pattern = query.q.as_deref().map(|q| {
            format!(
                "%{}%",
                q.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let filter = "($1::text IS NULL OR role = $1) AND ($2::bool IS NULL OR is_active = $2) AND \
                      ($3::text IS NULL OR username ILIKE $3 OR email ILIKE $3 OR full_name ILIKE $3)";
        let role = query.role.map(|r| r.as_str().to_string());
        let items: Vec<UserView> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY lower(username) LIMIT $4 OFFSET $5"
        ))
        .bind(&role)
        .bind(query.active)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.reads.pool())
        .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM users WHERE {filter}"))
            .bind(&role)
            .bind(query.active)
            .bind(&pattern)
            .fetch_one(self.reads.pool())
            .await?;
        Ok(UserList {
            items,
            total,
            limit,
            offset,
        })
    }

    /// One account.
    pub async fn user(&self, id: Uuid) -> Result<UserView, AccountsError> {
        find_user(self.reads.pool(), id)
            .await?
            .ok_or(AccountsError::NotFound)
    }

    /// Creates an account; the user as shown once the read model has it (`Answer::Shown`).
    #[tracing::instrument(skip_all, fields(username = %new.username), err(level = "debug"))]
    pub async fn create_user(
        &self,
        new: NewUser,
        meta: &CommandMeta,
        answer: Answer,
    ) -> Result<(Uuid, Option<i64>, Option<UserView>), AccountsError> {
        let (user_id, cursor) = self.create_account(new, meta).await?;
        if answer == Answer::Committed {
            return Ok((user_id, cursor.map(|c| c.position), None));
        }
        let position = self.reads.settle(cursor, USERS).await?;
        Ok((user_id, position, Some(self.user(user_id).await?)))
    }

    /// Creates an account: claims its handles, stores its hash, then records `UserCreated`.
    /// Anything done before a refused command is undone.
    pub(super) async fn create_account(
        &self,
        new: NewUser,
        meta: &CommandMeta,
    ) -> Result<(Uuid, Option<LogCursor>), AccountsError> {
        validate_username(&new.username).map_err(CommandError::Rejected)?;
        validate_email(&new.email).map_err(CommandError::Rejected)?;
        validate_full_name(&new.full_name).map_err(CommandError::Rejected)?;
        check_policy(new.password.expose_secret(), &new.username)
            .map_err(|message| AccountsError::invalid("password", message))?;
        let user_id = Uuid::now_v7();
        let handles = [
            ("username", new.username.as_str()),
            ("email", new.email.as_str()),
        ];
        claim_handles(self.reads.pool(), user_id, &handles).await?;
        let result = async {
            let hash = self.hasher.hash(&new.password).await?;
            let command = UserCommand::CreateUser {
                user_id,
                username: new.username.clone(),
                email: new.email.clone(),
                full_name: new.full_name.clone(),
                role: new.role,
                must_change_password: new.must_change_password,
                at: Utc::now(),
            };
            // The hash is stored in the same transaction as `UserCreated`.
            let side_writes = vec![SideWrite::SetPasswordHash { user_id, hash }];
            Ok::<_, AccountsError>(
                self.commands
                    .execute_with::<User>(&user_id.to_string(), command, meta, side_writes)
                    .await?,
            )
        }
        .await;
        match result {
            Ok(cursor) => Ok((user_id, cursor)),
            Err(error) => {
                let _ = release_handles(self.reads.pool(), user_id, &handles).await;
                Err(error)
            }
        }
    }

    /// Changes an account (profile, role, activation, password: all at once or not at all)
    /// as `actor`; a deactivated account, or one whose password an admin reset, keeps no
    /// session. The user as shown, unless `Answer::Committed`.
    #[tracing::instrument(skip_all, fields(user = %id), err(level = "debug"))]
    pub async fn update_user(
        &self,
        actor: Uuid,
        id: Uuid,
        body: UpdateUserRequest,
        meta: &CommandMeta,
        answer: Answer,
    ) -> Result<(Option<i64>, Option<UserView>), AccountsError> {
        let current = self.user(id).await?;
        if let Some(email) = &body.email {
            validate_email(email).map_err(CommandError::Rejected)?;
        }
        if let Some(password) = &body.password {
            check_policy(password.expose_secret(), &current.username)
                .map_err(|message| AccountsError::invalid("password", message))?;
        }
        let new_email = body
            .email
            .clone()
            .filter(|e| !e.eq_ignore_ascii_case(&current.email));
        let new_hash = match &body.password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        if let Some(email) = &new_email {
            claim_handles(self.reads.pool(), id, &[("email", email.as_str())]).await?;
        }
        let position = self
            .record_update(actor, id, &body, &current, new_hash.clone(), meta, answer)
            .await;
        let position = match position {
            Ok(position) => position,
            Err(error) => {
                if let Some(email) = &new_email {
                    let _ =
                        release_handles(self.reads.pool(), id, &[("email", email.as_str())]).await;
                }
                return Err(error);
            }
        };
        // A reactivation must not bring an old (possibly stolen) session back.
        let revoke = match (body.is_active, new_hash.is_some()) {
            (Some(false), _) => Some(RevocationReason::AccountDeactivated),
            (_, true) => Some(RevocationReason::PasswordChanged),
            _ => None,
        };
        if let Some(reason) = revoke {
            let revoked =
                revoke_sessions(self.reads.pool(), &self.commands, id, None, reason, meta).await?;
            if answer == Answer::Shown {
                self.reads.settle(revoked, SESSIONS).await?;
            }
        }
        if answer == Answer::Committed {
            return Ok((position, None));
        }
        Ok((position, Some(self.user(id).await?)))
    }

    /// Records an update (with the new hash, and the release of the old email), under the
    /// admin lock when it may remove an admin.
    #[allow(clippy::too_many_arguments)]
    async fn record_update(
        &self,
        actor: Uuid,
        id: Uuid,
        body: &UpdateUserRequest,
        current: &UserView,
        new_hash: Option<String>,
        meta: &CommandMeta,
        answer: Answer,
    ) -> Result<Option<i64>, AccountsError> {
        let mut side_writes = Vec::new();
        let password_reset = new_hash.is_some();
        if let Some(hash) = new_hash {
            side_writes.push(SideWrite::SetPasswordHash { user_id: id, hash });
        }
        if body
            .email
            .as_ref()
            .is_some_and(|e| !e.eq_ignore_ascii_case(&current.email))
        {
            side_writes.push(SideWrite::ReleaseHandles {
                user_id: id,
                handles: vec![handle("email", &current.email)],
            });
        }
        // Any change of role or activation is decided under the admin lock, on a read model
        // that every earlier such change has settled into: deciding from a read made before
        // the lock could let two changes remove the last admin between them.
        let may_remove_admin = body.role.is_some() || body.is_active.is_some();
        self.with_admin_lock(may_remove_admin, answer, async {
            let command = UserCommand::Update {
                email: body.email.clone(),
                full_name: body.full_name.clone(),
                role: body.role,
                active: body.is_active,
                password_reset,
                actor_id: Some(actor),
                // Counting scans the users; a profile-only change cannot remove an admin.
                other_active_admins: match may_remove_admin {
                    true => other_active_admins(self.reads.pool(), id).await?,
                    false => u64::MAX,
                },
                at: Utc::now(),
            };
            Ok(self
                .commands
                .execute_with::<User>(&id.to_string(), command, meta, side_writes)
                .await?)
        })
        .await
    }

    /// Deletes an account for good, as `actor`; its sessions end.
    #[tracing::instrument(skip_all, fields(user = %id), err(level = "debug"))]
    pub async fn delete_user(
        &self,
        actor: Uuid,
        id: Uuid,
        meta: &CommandMeta,
        answer: Answer,
    ) -> Result<Option<i64>, AccountsError> {
        self.user(id).await?;
        let position = self
            .with_admin_lock(true, answer, async {
                let command = UserCommand::Delete {
                    actor_id: Some(actor),
                    other_active_admins: other_active_admins(self.reads.pool(), id).await?,
                    at: Utc::now(),
                };
                // Handles, hash and refresh tokens go in the same transaction as `UserDeleted`.
                let side_writes = vec![SideWrite::ForgetUser { user_id: id }];
                Ok(self
                    .commands
                    .execute_with::<User>(&id.to_string(), command, meta, side_writes)
                    .await?)
            })
            .await?;
        let revoked = revoke_sessions(
            self.reads.pool(),
            &self.commands,
            id,
            None,
            RevocationReason::AccountDeleted,
            meta,
        )
        .await?;
        if answer == Answer::Shown {
            self.reads.settle(revoked, SESSIONS).await?;
        }
        Ok(position)
    }

    /// Runs a command, and when it may remove an admin, holds the admin-changes lock (in
    /// process, then across replicas) and waits for the read model before releasing it, so
    /// the next such command counts the admins right. Other commands run without it.
    async fn with_admin_lock<Fut>(
        &self,
        may_remove_admin: bool,
        answer: Answer,
        command: Fut,
    ) -> Result<Option<i64>, AccountsError>
    where
        Fut: std::future::Future<Output = Result<Option<LogCursor>, AccountsError>>,
    {
        if !may_remove_admin {
            let cursor = command.await?;
            if answer == Answer::Committed {
                return Ok(cursor.map(|c| c.position));
            }
            return Ok(self.reads.settle(cursor, USERS).await?);
        }
        // Waiters queue here without holding a database connection.
        let _local = self.admin_changes.lock().await;
        // The lock lives on a connection of its own, closed afterwards: if this future were
        // ever dropped half-way, the lock goes with the connection instead of back to the pool.
        let mut conn = self.reads.pool().acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(ADMIN_CHANGES_LOCK)
            .execute(&mut conn)
            .await?;
        let result = async {
            // The future is lazy: the counting and the command run only now, under the lock.
            let cursor = command.await?;
            Ok(self.reads.settle(cursor, USERS).await?)
        }
        .await;
        let _ = sqlx::Connection::close(conn).await;
        result
    }
}

/// Advisory lock key serialising changes that can remove an admin, across replicas.
const ADMIN_CHANGES_LOCK: i64 = 0x0dc9_0000_0000_0002;

/// The key of a unique handle in `user_handles`.
pub fn handle(kind: &str, value: &str) -> String {
    format!("{kind}:{}", value.to_lowercase())
}

/// Claims unique handles for `user_id`; a taken handle is a 409 naming the field.
pub async fn claim_handles(
    pool: &PgPool,
    user_id: Uuid,
    handles: &[(&'static str, &str)],
) -> Result<(), AccountsError> {
    let mut tx = pool.begin().await?;
    for (kind, value) in handles {
        let claimed = sqlx::query("INSERT INTO user_handles (handle, user_id) VALUES ($1, $2) ON CONFLICT (handle) DO NOTHING")
            .bind(handle(kind, value))
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if claimed == 0 {
            let owner: Option<Uuid> =
                sqlx::query_scalar("SELECT user_id FROM user_handles WHERE handle = $1")
                    .bind(handle(kind, value))
                    .fetch_optional(&mut *tx)
                    .await?;
            if owner != Some(user_id) {
                return Err(AccountsError::Taken {
                    kind,
                    value: value.to_string(),
                });
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Releases handles (after a failed command, an email change or a deletion).
pub async fn release_handles(
    pool: &PgPool,
    user_id: Uuid,
    handles: &[(&'static str, &str)],
) -> Result<(), sqlx::Error> {
    let keys: Vec<String> = handles.iter().map(|(k, v)| handle(k, v)).collect();
    sqlx::query("DELETE FROM user_handles WHERE user_id = $1 AND handle = ANY($2)")
        .bind(user_id)
        .bind(&keys)
        .execute(pool)
        .await?;
    Ok(())
}

/// Active admins other than `user_id` (for the "keep one admin" rule).
pub(super) async fn other_active_admins(pool: &PgPool, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE role = 'admin' AND is_active AND id <> $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok(count as u64)
}
