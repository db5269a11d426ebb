//! Account writes shared by the users API, auth and the first-run bootstrap: unique
//! handle claims, the "keep one active admin" lock, account creation, and the mapping
//! of refused `User` commands to API errors.

use chrono::Utc;
use dcp_aggregates::user::{
    validate_email, validate_full_name, validate_username, User, UserCommand,
};
use dcp_aggregates::Role;
use dcp_projections::LogCursor;
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::password::check_policy;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;
use crate::http::error::{ApiError, ApiResult};
use crate::http::positions::USERS;
use crate::http::AppState;

/// The key of a unique handle in `user_handles`.
pub fn handle(kind: &str, value: &str) -> String {
    format!("{kind}:{}", value.to_lowercase())
}

/// Claims unique handles for `user_id`; a taken handle is a 409 naming the field.
pub async fn claim_handles(
    pool: &PgPool,
    user_id: Uuid,
    handles: &[(&'static str, &str)],
) -> ApiResult<()> {
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
                return Err(
                    ApiError::conflict(format!("{kind} '{value}' is already taken"))
                        .with_field(*kind),
                );
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

/// Advisory lock key serialising changes that can remove an admin, across replicas.
const ADMIN_CHANGES_LOCK: i64 = 0x0dc9_0000_0000_0002;

/// Runs a command, and when it may remove an admin, holds the admin-changes lock (in
/// process, then across replicas) and waits for the read model before releasing it, so
/// the next such command counts the admins right. Other commands run without it.
pub(super) async fn with_admin_lock<Fut>(
    state: &AppState,
    may_remove_admin: bool,
    minimal: bool,
    command: Fut,
) -> ApiResult<Option<i64>>
where
    Fut: std::future::Future<Output = ApiResult<Option<LogCursor>>>,
{
    if !may_remove_admin {
        let cursor = command.await?;
        if minimal {
            return Ok(cursor.map(|c| c.position));
        }
        return state.settle(cursor, USERS).await;
    }
    // Waiters queue here without holding a database connection.
    let _local = state.admin_changes.lock().await;
    // The lock lives on a connection of its own, closed afterwards: if this future were
    // ever dropped half-way, the lock goes with the connection instead of back to the pool.
    let mut conn = state.pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(ADMIN_CHANGES_LOCK)
        .execute(&mut conn)
        .await?;
    let result = async {
        // The future is lazy: the counting and the command run only now, under the lock.
        let cursor = command.await?;
        state.settle(cursor, USERS).await
    }
    .await;
    let _ = sqlx::Connection::close(conn).await;
    result
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

/// Creates an account: claims its handles, stores its hash, then records `UserCreated`.
/// Anything done before a refused command is undone.
pub async fn create_account(
    state: &AppState,
    new: NewUser,
    meta: &CommandMeta,
) -> ApiResult<(Uuid, Option<LogCursor>)> {
    validate_username(&new.username).map_err(|e| ApiError::from(CommandError::Rejected(e)))?;
    validate_email(&new.email).map_err(|e| ApiError::from(CommandError::Rejected(e)))?;
    validate_full_name(&new.full_name).map_err(|e| ApiError::from(CommandError::Rejected(e)))?;
    check_policy(
        secrecy::ExposeSecret::expose_secret(&new.password),
        &new.username,
    )
    .map_err(|message| ApiError::validation("password", message))?;
    let user_id = Uuid::now_v7();
    let handles = [
        ("username", new.username.as_str()),
        ("email", new.email.as_str()),
    ];
    claim_handles(&state.pool, user_id, &handles).await?;
    let result = async {
        let hash = state.hasher.hash(&new.password).await?;
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
        state
            .commands
            .execute_with::<User>(&user_id.to_string(), command, meta, side_writes)
            .await
            .map_err(ApiError::from)
    }
    .await;
    match result {
        Ok(cursor) => Ok((user_id, cursor)),
        Err(error) => {
            let _ = release_handles(&state.pool, user_id, &handles).await;
            Err(error)
        }
    }
}
