//! Account recovery from the command line: works with the database alone, whether or not
//! a server is running, and records what it does like any other command.

use anyhow::Context;
use base64::Engine;
use chrono::Utc;
use dcp_aggregates::session::RevocationReason;
use dcp_aggregates::user::{User, UserCommand};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use super::revocation::revoke_sessions;
use super::users::handle;
use crate::auth::password::PasswordHasher;
use crate::commands::{CommandBus, CommandMeta};
use crate::event_store::SideWrite;

/// Sets a new random password for `username` (the hash commits with the
/// `UserPasswordChanged` event), ends the account's sessions, and returns the password.
pub async fn reset_password(pool: &PgPool, username: &str) -> anyhow::Result<String> {
    // The handle claims are always current, even when no projection has run yet.
    let user_id: Uuid = sqlx::query_scalar("SELECT user_id FROM user_handles WHERE handle = $1")
        .bind(handle("username", username))
        .fetch_optional(pool)
        .await
        .context("Failed to look the account up")?
        .with_context(|| format!("no account named '{username}'"))?;
    let bytes: [u8; 15] = rand::random();
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = PasswordHasher::new(1)?
        .hash(&SecretString::from(password.clone()))
        .await?;
    let commands = CommandBus::new(pool.clone());
    let meta = CommandMeta {
        actor_kind: Some("cli"),
        ..CommandMeta::system()
    };
    let command = UserCommand::ChangePassword {
        reset_by_admin: true,
        at: Utc::now(),
    };
    commands
        .execute_with::<User>(
            &user_id.to_string(),
            command,
            &meta,
            vec![SideWrite::SetPasswordHash { user_id, hash }],
        )
        .await
        .map_err(|error| anyhow::anyhow!("the password change was refused: {error}"))?;
    revoke_sessions(
        pool,
        &commands,
        user_id,
        None,
        RevocationReason::PasswordChanged,
        &meta,
    )
    .await
    .map_err(|error| anyhow::anyhow!("Failed to end the account's sessions: {error}"))?;
    Ok(password)
}
