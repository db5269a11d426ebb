//! Signed audit checkpoints: evidence, kept outside the database, of what the audit log
//! said at a moment.
//!
//! The hash chain shows an edit made without recomputing the hashes that follow it. Someone
//! with write access to the database can recompute them all, so the chain alone proves
//! nothing against them. A checkpoint names the newest entry (its sequence number, global
//! position and chain hash) and is signed with HMAC-SHA256 under a key the database never
//! sees (`DCP_AUDIT_KEY`, `DCP_AUDIT_KEY_FILE`, or `<data dir>/audit-key`). Exported and
//! kept elsewhere, it makes any later rewrite of the entries it covers detectable: their
//! chain can no longer end in the signed hash, and a new signature needs the key.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::Settings;

/// The format tag every checkpoint carries (and signs).
pub const CHECKPOINT_FORMAT: &str = "dcp-audit-checkpoint/1";

/// The signing key; never stored in the database.
pub struct AuditKey {
    secret: SecretString,
}

impl AuditKey {
    pub fn new(secret: SecretString) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.expose_secret().len() >= 32,
            "the audit key must be at least 32 bytes long"
        );
        Ok(AuditKey { secret })
    }

    /// `DCP_AUDIT_KEY`, `DCP_AUDIT_KEY_FILE`, or `<data dir>/audit-key` generated on first use.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let secret = match (&settings.audit_key, &settings.audit_key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(file)) => read_key_file(file)?,
            (None, None) => crate::secrets::read_or_create(&settings.data_dir.join("audit-key"))?,
        };
        AuditKey::new(secret)
    }

    /// The key that signed earlier checkpoints: like [`AuditKey::from_settings`], but a
    /// missing key file is an error (a new key could not check anything).
    pub fn existing(settings: &Settings) -> anyhow::Result<Self> {
        if settings.audit_key.is_none() && settings.audit_key_file.is_none() {
            let path = settings.data_dir.join("audit-key");
            anyhow::ensure!(
                path.exists(),
                "no audit key at {} (set DCP_AUDIT_KEY, DCP_AUDIT_KEY_FILE or DCP_DATA_DIR): \
                 checkpoints can only be checked with the key that signed them",
                path.display()
            );
        }
        Self::from_settings(settings)
    }

    /// A public name for the key: which key signed a checkpoint, without revealing it.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.secret.expose_secret().as_bytes());
        hex(&digest[..8])
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC accepts any key length")
    }

    fn sign(&self, message: &str) -> String {
        let mut mac = self.mac();
        mac.update(message.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    fn signature_matches(&self, message: &str, signature: &str) -> bool {
        let Some(bytes) = unhex(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(message.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }
}

fn read_key_file(file: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("Failed to read DCP_AUDIT_KEY_FILE {}", file.display()))?;
    Ok(SecretString::from(text.trim().to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A signed statement: "entry `seq` of the audit log had chain hash `hash`".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// `dcp-audit-checkpoint/1`.
    pub format: String,
    /// The entry's sequence number (`seq`); the checkpoint covers it and every entry before.
    pub seq: i64,
    pub entry_id: Uuid,
    pub global_position: i64,
    /// The entry's chain hash.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    /// Which key signed it (a digest of the key, not the key).
    pub key_id: String,
    /// `hex(HMAC-SHA256(key, signed text))`.
    pub signature: String,
}

impl Checkpoint {
    /// The text the signature covers: every field but the signature, one per line.
    fn signed_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.format,
            self.seq,
            self.entry_id,
            self.global_position,
            self.hash,
            self.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            self.key_id
        )
    }
}

/// A checkpoint of the newest audit entry; `None` while the log is empty.
pub async fn issue(pool: &PgPool, key: &AuditKey) -> anyhow::Result<Option<Checkpoint>> {
    let newest: Option<(i64, Uuid, i64, Option<String>)> = sqlx::query_as(
        "SELECT seq, id, global_position, hash FROM audit_logs ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .context("Failed to read the newest audit entry")?;
    let Some((seq, entry_id, global_position, hash)) = newest else {
        return Ok(None);
    };
    let hash = hash.context("the newest audit entry has no hash")?;
    // Microseconds, as stored and as signed: the checkpoint round-trips exactly.
    let now = Utc::now();
    let created_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let mut checkpoint = Checkpoint {
        format: CHECKPOINT_FORMAT.to_string(),
        seq,
        entry_id,
        global_position,
        hash,
        created_at,
        key_id: key.id(),
        signature: String::new(),
    };
    checkpoint.signature = key.sign(&checkpoint.signed_text());
    Ok(Some(checkpoint))
}

/// What one checkpoint says about the log now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CheckpointCheck {
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// `ok`; `bad_signature` (not signed with this key, or altered); `missing` (the entry is
    /// gone: the log was cut); `changed` (the entry no longer has the signed hash: the
    /// entries it covers were rewritten).
    pub status: String,
    pub message: String,
}

/// Checks each checkpoint against the log as it is now.
pub async fn check(
    pool: &PgPool,
    key: &AuditKey,
    checkpoints: &[Checkpoint],
) -> anyhow::Result<Vec<CheckpointCheck>> {
    let mut checks = Vec::with_capacity(checkpoints.len());
    for checkpoint in checkpoints {
        let result = |status: &str, message: String| CheckpointCheck {
            seq: checkpoint.seq,
            created_at: checkpoint.created_at,
            status: status.to_string(),
            message,
        };
        if checkpoint.format != CHECKPOINT_FORMAT
            || checkpoint.key_id != key.id()
            || !key.signature_matches(&checkpoint.signed_text(), &checkpoint.signature)
        {
            checks.push(result(
                "bad_signature",
                "the signature does not match: the checkpoint was altered or signed with another key".into(),
            ));
            continue;
        }
        let stored: Option<(Uuid, i64, Option<String>)> =
            sqlx::query_as("SELECT id, global_position, hash FROM audit_logs WHERE seq = $1")
                .bind(checkpoint.seq)
                .fetch_optional(pool)
                .await
                .context("Failed to read an audit entry")?;
        checks.push(match stored {
            None => result(
                "missing",
                format!(
                    "entry {} is gone: the audit log was cut after the checkpoint of {}",
                    checkpoint.seq, checkpoint.created_at
                ),
            ),
            Some((id, position, hash))
                if id == checkpoint.entry_id
                    && position == checkpoint.global_position
                    && hash.as_deref() == Some(checkpoint.hash.as_str()) =>
            {
                result(
                    "ok",
                    format!("entries up to {} are as signed", checkpoint.seq),
                )
            }
            Some(_) => result(
                "changed",
                format!(
                    "entry {} no longer has the hash signed at {}: entries up to it were rewritten",
                    checkpoint.seq, checkpoint.created_at
                ),
            ),
        });
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> AuditKey {
        AuditKey::new(SecretString::from(text.to_string())).unwrap()
    }

    fn checkpoint(key: &AuditKey) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            seq: 42,
            entry_id: Uuid::nil(),
            global_position: 99,
            hash: "ab".repeat(32),
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            key_id: key.id(),
            signature: String::new(),
        };
        checkpoint.signature = key.sign(&checkpoint.signed_text());
        checkpoint
    }

    #[test]
    fn a_signature_covers_every_field_and_needs_the_key() {
        let ours = key("an-audit-key-that-is-long-enough-0123456789");
        let theirs = key("another-audit-key-that-is-long-enough-012345");
        let signed = checkpoint(&ours);
        assert!(ours.signature_matches(&signed.signed_text(), &signed.signature));
        assert!(!theirs.signature_matches(&signed.signed_text(), &signed.signature));
        assert_ne!(ours.id(), theirs.id());
        let altered = [
            Checkpoint {
                seq: 43,
                ..signed.clone()
            },
            Checkpoint {
                hash: "cd".repeat(32),
                ..signed.clone()
            },
            Checkpoint {
                global_position: 100,
                ..signed.clone()
            },
            Checkpoint {
                created_at: signed.created_at + chrono::Duration::seconds(1),
                ..signed.clone()
            },
        ];
        for checkpoint in altered {
            assert!(!ours.signature_matches(&checkpoint.signed_text(), &checkpoint.signature));
        }
        assert!(!ours.signature_matches(&signed.signed_text(), "zz"));
        assert!(!ours.signature_matches(&signed.signed_text(), ""));
        // It round-trips through JSON unchanged.
        let text = serde_json::to_string(&signed).unwrap();
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert!(ours.signature_matches(&back.signed_text(), &back.signature));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(AuditKey::new(SecretString::from("short".to_string())).is_err());
    }
}
