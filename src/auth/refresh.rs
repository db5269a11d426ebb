//! Opaque refresh tokens: 256 random bits, stored as SHA-256, rotated on every use.
//! A token used twice means it was stolen or replayed: the caller revokes the session
//! (the whole rotation family).

use base64::Engine;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

const PREFIX: &str = "dcp_rt_";

/// A new random refresh token (what the client keeps).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Stores a freshly issued token for `session_id`.
pub async fn store(
    pool: &PgPool,
    token: &str,
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(digest(token))
        .bind(session_id)
        .bind(user_id)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// What presenting a refresh token amounted to.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// Valid and now spent; here is its replacement.
    Rotated {
        session_id: Uuid,
        user_id: Uuid,
        token: String,
        expires_at: DateTime<Utc>,
    },
    /// It had been spent before: the session must be revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown, malformed or expired.
    Invalid,
}

/// Spends `token` and issues its replacement, atomically. A token traded in less than
/// `grace` ago is honoured again with another replacement: two browser tabs refreshing at
/// the same moment is not theft. Presented later, or after a revocation, it is reuse.
pub async fn redeem(
    pool: &PgPool,
    token: &str,
    grace: Duration,
) -> Result<Redemption, sqlx::Error> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Ok(Redemption::Invalid);
    }
    let hash = digest(token);
    let mut tx = pool.begin().await?;
    let spent: Option<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE refresh_tokens SET used_at = now(), spent_by = 'rotation' WHERE token_hash = $1 AND used_at IS NULL \
         RETURNING session_id, user_id, expires_at",
    )
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let spent = match spent {
        Some(spent) => spent,
        None => {
            let previous: Option<(Uuid, Uuid, DateTime<Utc>, bool)> = sqlx::query_as(
                "SELECT session_id, user_id, expires_at, \
                 (spent_by = 'rotation' AND used_at > now() - make_interval(secs => $2)) AS within_grace \
                 FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(&hash)
            .bind(grace.as_secs_f64())
            .fetch_optional(&mut *tx)
            .await?;
            match previous {
                Some((session_id, user_id, expires_at, true)) => (session_id, user_id, expires_at),
                Some((session_id, user_id, _, false)) => {
                    tx.commit().await?;
                    return Ok(Redemption::Reused {
                        session_id,
                        user_id,
                    });
                }
                None => {
                    tx.commit().await?;
                    return Ok(Redemption::Invalid);
                }
            }
        }
    };
    let (session_id, user_id, expires_at) = spent;
    if expires_at <= Utc::now() {
        tx.commit().await?;
        return Ok(Redemption::Invalid);
    }
    let next = new_token();
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(digest(&next))
        .bind(session_id)
        .bind(user_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Redemption::Rotated {
        session_id,
        user_id,
        token: next,
        expires_at,
    })
}

/// Spends every token of a session (logout, revocation).
pub async fn spend_session(pool: &PgPool, session_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET used_at = now(), spent_by = 'revocation' WHERE session_id = $1 AND used_at IS NULL",
    )
    .bind(session_id)
    .execute(pool)
    .await?;
    Ok(())
}
