//! Sealed secrets: what dcp must keep and use later (an SSH host's private key or password),
//! stored in `sealed_secrets` encrypted with ChaCha20-Poly1305 under the master key, which
//! never enters the database. Events and the API carry a secret's id, never its value.
//!
//! Each seal has a fresh random nonce; the secret's id and kind are the associated data, so
//! a sealed value moved to another row, or relabelled as another kind, no longer opens.

use anyhow::Context;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Settings;

/// What a secret is; part of what its seal covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    SshPrivateKey,
    SshPassword,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::SshPrivateKey => "ssh_private_key",
            SecretKind::SshPassword => "ssh_password",
        }
    }
}

/// Why a secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("no secret {0}")]
    NotFound(Uuid),
    #[error("secret {id} was sealed with another master key ({key_id})")]
    OtherKey { id: Uuid, key_id: String },
    #[error("secret {0} does not open: it was altered, moved or relabelled")]
    Tampered(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The master key (32 bytes).
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl MasterKey {
    /// A key from its base64 text (32 bytes once decoded).
    pub fn from_base64(text: &SecretString) -> anyhow::Result<Self> {
        let bytes = SecretBox::new(Box::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.expose_secret().trim())
                .context("the master key is not base64")?,
        ));
        anyhow::ensure!(
            bytes.expose_secret().len() == 32,
            "the master key must be 32 bytes (base64 of 32 random bytes)"
        );
        let digest = Sha256::digest(bytes.expose_secret());
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes.expose_secret())
            .map_err(|_| anyhow::anyhow!("the master key is not a ChaCha20-Poly1305 key"))?;
        Ok(MasterKey {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// `DCP_MASTER_KEY`, `DCP_MASTER_KEY_FILE`, or `<data dir>/master-key` generated on
    /// first use (mode 0600).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let text = match (&settings.master_key, &settings.master_key_file) {
            (Some(key), _) => key.clone(),
            (None, Some(file)) => SecretString::from(
                std::fs::read_to_string(file)
                    .with_context(|| {
                        format!("Failed to read DCP_MASTER_KEY_FILE {}", file.display())
                    })?
                    .trim()
                    .to_string(),
            ),
            (None, None) => super::read_or_create(&settings.data_dir.join("master-key"))?,
        };
        Self::from_base64(&text)
    }

    /// Which key this is, without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(id: Uuid, kind: SecretKind) -> Vec<u8> {
        let mut aad = id.as_bytes().to_vec();
        aad.extend_from_slice(kind.as_str().as_bytes());
        aad
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plaintext`, bound to `id` and `kind`.
    pub fn seal(&self, id: Uuid, kind: SecretKind, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(Self::aad(id, kind)), &mut sealed)
            .expect("ChaCha20-Poly1305 seals any length a secret has");
        let mut out = nonce_bytes.to_vec();
        out.append(&mut sealed);
        out
    }

    /// The plaintext of a seal made by [`MasterKey::seal`] for the same `id` and `kind`.
    pub fn open(
        &self,
        id: Uuid,
        kind: SecretKind,
        sealed: &[u8],
    ) -> Result<SecretBox<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(SealError::Tampered(id));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Tampered(id))?;
        let mut buffer = rest.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(id, kind)), &mut buffer)
            .map_err(|_| SealError::Tampered(id))?
            .to_vec();
        // The working copy held the plaintext too.
        buffer.iter_mut().for_each(|b| *b = 0);
        Ok(SecretBox::new(Box::new(plaintext)))
    }
}

/// Seals `plaintext` and stores it; returns its id. `created_by` is who may use it.
pub async fn store(
    pool: &PgPool,
    key: &MasterKey,
    kind: SecretKind,
    plaintext: &[u8],
    created_by: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sealed_secrets (id, kind, key_id, sealed, created_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(key.id())
    .bind(key.seal(id, kind, plaintext))
    .bind(created_by)
    .execute(pool)
    .await?;
    Ok(id)
}

/// A new secret sealed for storing with the event that refers to it (a side write).
pub fn sealed_side_write(
    key: &MasterKey,
    kind: SecretKind,
    plaintext: &[u8],
    created_by: Option<Uuid>,
) -> (Uuid, crate::event_store::SideWrite) {
    let id = Uuid::now_v7();
    let write = crate::event_store::SideWrite::StoreSecret {
        id,
        kind: kind.as_str(),
        key_id: key.id().to_string(),
        sealed: key.seal(id, kind, plaintext),
        created_by,
    };
    (id, write)
}

/// The kind and maker of stored secret `id`, if it exists.
pub async fn describe(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<(String, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as("SELECT kind, created_by FROM sealed_secrets WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Opens stored secret `id` of `kind`.
pub async fn load(
    pool: &PgPool,
    key: &MasterKey,
    id: Uuid,
    kind: SecretKind,
) -> Result<SecretBox<Vec<u8>>, SealError> {
    let row: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, sealed FROM sealed_secrets WHERE id = $1 AND kind = $2")
            .bind(id)
            .bind(kind.as_str())
            .fetch_optional(pool)
            .await?;
    let (key_id, sealed) = row.ok_or(SealError::NotFound(id))?;
    if key_id != key.id() {
        return Err(SealError::OtherKey { id, key_id });
    }
    key.open(id, kind, &sealed)
}

/// Forgets stored secret `id` (a host removed, a wizard cancelled).
pub async fn forget(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM sealed_secrets WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        let bytes: [u8; 32] = rand::random();
        MasterKey::from_base64(&SecretString::from(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
        .unwrap()
    }

    #[test]
    fn a_seal_opens_only_with_its_key_id_and_kind() {
        let key = key();
        let id = Uuid::now_v7();
        let secret = b"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret material\n";
        let sealed = key.seal(id, SecretKind::SshPrivateKey, secret);
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "sealed, not encoded"
        );
        let opened = key.open(id, SecretKind::SshPrivateKey, &sealed).unwrap();
        assert_eq!(opened.expose_secret().as_slice(), secret);

        // Two seals of the same secret differ (fresh nonces).
        assert_ne!(sealed, key.seal(id, SecretKind::SshPrivateKey, secret));
        // Another key, another row, another kind, a flipped bit, a cut: none opens.
        assert!(super::tests::key()
            .open(id, SecretKind::SshPrivateKey, &sealed)
            .is_err());
        assert!(key
            .open(Uuid::now_v7(), SecretKind::SshPrivateKey, &sealed)
            .is_err());
        assert!(key.open(id, SecretKind::SshPassword, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(key.open(id, SecretKind::SshPrivateKey, &flipped).is_err());
        assert!(key
            .open(id, SecretKind::SshPrivateKey, &sealed[..20])
            .is_err());
        assert!(key.open(id, SecretKind::SshPrivateKey, &[]).is_err());
    }

    #[test]
    fn master_keys_are_32_bytes_of_base64() {
        assert!(MasterKey::from_base64(&SecretString::from("not base64!".to_string())).is_err());
        assert!(MasterKey::from_base64(&SecretString::from(
            base64::engine::general_purpose::STANDARD.encode([1u8; 16])
        ))
        .is_err());
        let a = key();
        let b = key();
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.id(), b.id());
    }
}
