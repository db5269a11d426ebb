//! Opaque refresh tokens: 256 random bits at login, stored as SHA-256, rotated on every use.
//! A token used twice means it was stolen or replayed: the caller revokes the session
//! (the whole rotation family).
//!
//! A token's successor is derived from it with a server key ([`Successors`]), not drawn at
//! random: a token traded again within the grace window (two tabs refreshing at once)
//! yields the very same successor, so a family never forks into two live chains; once that
//! successor has been traded in turn, the old token is refused.

use base64::Engine;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
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

/// Derives a token's successor: HMAC-SHA256 under a key of the server's, so no one without
/// it can compute a successor, and the server computes the same one every time.
#[derive(Clone)]
pub struct Successors {
    key: Vec<u8>,
}

impl Successors {
    /// Keyed by `secret` (the access-token secret), under a label of its own.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .expect("HMAC takes keys of any length");
        mac.update(b"dcp refresh-token successors v1");
        Successors {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The token that replaces `token`.
    pub fn of(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(token.as_bytes());
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }
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
    /// Traded within the grace window, and its successor traded since: refused, the
    /// family goes on from the newer token.
    Superseded,
    /// Unknown, malformed or expired.
    Invalid,
}

/// Spends `token` and issues its replacement, atomically. A token traded in less than
/// `grace` ago yields the same replacement again while that one is unspent (two browser
/// tabs refreshing at the same moment is not theft), and a refusal once it is spent.
/// Presented later, or after a revocation, it is reuse.
pub async fn redeem(
    pool: &PgPool,
    token: &str,
    grace: Duration,
    successors: &Successors,
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
                Some((session_id, user_id, expires_at, true)) => {
                    tx.commit().await?;
                    return again(pool, successors.of(token), session_id, user_id, expires_at)
                        .await;
                }
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
    let next = successors.of(token);
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

/// A token traded within the grace window: its successor `next`, if still unspent.
async fn again(
    pool: &PgPool,
    next: String,
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<Redemption, sqlx::Error> {
    let unspent: Option<bool> = sqlx::query_scalar(
        "SELECT used_at IS NULL FROM refresh_tokens WHERE token_hash = $1 AND session_id = $2",
    )
    .bind(digest(&next))
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    Ok(match unspent {
        Some(true) if expires_at > Utc::now() => Redemption::Rotated {
            session_id,
            user_id,
            token: next,
            expires_at,
        },
        Some(true) => Redemption::Invalid,
        _ => Redemption::Superseded,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_is_the_same_every_time_and_needs_the_key() {
        let token = new_token();
        let successors = Successors::new(b"a secret");
        assert_eq!(successors.of(&token), successors.of(&token));
        assert_ne!(successors.of(&token), token);
        assert_ne!(
            successors.of(&token),
            Successors::new(b"another").of(&token)
        );
        assert!(successors.of(&token).starts_with(PREFIX));
        assert_ne!(successors.of(&successors.of(&token)), successors.of(&token));
    }
}
