//! Ending a user's sessions (a password change, a deactivation, a deletion, a recovery):
//! each open session revoked, and every refresh token of the user's spent.

use chrono::Utc;
use dcp_aggregates::session::{RevocationReason, Session, SessionCommand};
use dcp_projections::LogCursor;
use uuid::Uuid;

use super::AccountsError;
use crate::commands::{CommandBus, CommandError, CommandMeta};

/// Ends every open session of `user_id` (but `except`) and spends their refresh tokens.
/// Returns the cursor of the last revocation, for read-your-writes.
pub async fn revoke_sessions(
    pool: &sqlx::PgPool,
    commands: &CommandBus,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: RevocationReason,
    meta: &CommandMeta,
) -> Result<Option<LogCursor>, AccountsError> {
    let open: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND id IS DISTINCT FROM $2",
    )
    .bind(user_id)
    .bind(except)
    .fetch_all(pool)
    .await?;
    let mut last = None;
    for session_id in open {
        let command = SessionCommand::Revoke {
            reason,
            at: Utc::now(),
        };
        match commands
            .execute::<Session>(&session_id.to_string(), command, meta)
            .await
        {
            Ok(cursor) => last = last.max(cursor),
            // Ended meanwhile (a logout): nothing left to do.
            Err(CommandError::Rejected(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    // Tokens of sessions the read model has not shown yet are spent too.
    sqlx::query("UPDATE refresh_tokens SET used_at = now(), spent_by = 'revocation' WHERE user_id = $1 AND used_at IS NULL AND session_id IS DISTINCT FROM $2")
        .bind(user_id)
        .bind(except)
        .execute(pool)
        .await?;
    Ok(last)
}
