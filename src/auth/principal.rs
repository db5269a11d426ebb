//! The caller of a request, looked up from the read models on every request, so a
//! logout, deactivation or demotion takes effect on the very next request.

use chrono::{DateTime, Utc};
use dcp_aggregates::Role;
use sqlx::PgPool;
use uuid::Uuid;

/// An authenticated user in an open session.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub username: String,
    pub role: Role,
    pub must_change_password: bool,
}

/// Why a valid token does not give access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The session was logged out, revoked, expired or never existed.
    SessionClosed,
    /// The account is deactivated or deleted.
    AccountInactive,
}

/// username, role, is_active, must_change_password, ended_at, expires_at
type PrincipalRow = (
    String,
    String,
    bool,
    bool,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// Looks up the user and session named by a verified token.
pub async fn load_principal(
    pool: &PgPool,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Result<Principal, SessionRefusal>, sqlx::Error> {
    let row: Option<PrincipalRow> = sqlx::query_as(
        "SELECT u.username, u.role, u.is_active, u.must_change_password, s.ended_at, s.expires_at \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.user_id = $2",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    let Some((username, role, is_active, must_change_password, ended_at, expires_at)) = row else {
        return Ok(Err(SessionRefusal::SessionClosed));
    };
    if ended_at.is_some() || expires_at <= Utc::now() {
        return Ok(Err(SessionRefusal::SessionClosed));
    }
    if !is_active {
        return Ok(Err(SessionRefusal::AccountInactive));
    }
    let role = role.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Ok(Principal {
        user_id,
        session_id,
        username,
        role,
        must_change_password,
    }))
}
