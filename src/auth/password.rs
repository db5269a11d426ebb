//! argon2id password hashing (m=19456 KiB, t=2, p=1) off the async threads, with
//! bounded concurrency, and a dummy verification for unknown users so response time
//! does not tell whether an account exists.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest password accepted (hashing cost must stay bounded).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Hashes and verifies passwords on the blocking pool, a few at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

/// Why a new password is not acceptable; the message is shown to the user.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!("password must be at most {MAX_PASSWORD_LEN} bytes"));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("password must not be the username".into());
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(' '))
    {
        return Err("password must not be one repeated character".into());
    }
    Ok(())
}

fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

impl PasswordHasher {
    /// `concurrency` hashes may run at once (each takes ~19 MiB and one core).
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = uuid::Uuid::new_v4().to_string();
        Ok(PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(
                hash_blocking(dummy.as_bytes()).context("Failed to prepare the dummy hash")?,
            ),
        })
    }

    /// A PHC string for `password`.
    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        // The permit moves into the blocking task: if the request is dropped, the hash
        // still counts against the limit until it really finishes.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hasher closed")?;
        let password = password.expose_secret().as_bytes().to_vec();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_blocking(&password)
        })
        .await
        .context("Failed to join the hashing task")?
    }

    /// True when `password` matches `hash`. With no hash (unknown user) a dummy hash is
    /// verified so the answer takes as long, and is always false.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<&str>,
    ) -> anyhow::Result<bool> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("hasher closed")?;
        let known = hash.is_some();
        let hash = hash
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.expose_secret().as_bytes().to_vec();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Argon2::default()
                .verify_password(&password, hash.as_str())
                .is_ok()
        })
        .await
        .context("Failed to join the verification task")?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = PasswordHasher::new(2).unwrap();
        let password = SecretString::from("correct horse battery");
        let hash = hasher.hash(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        assert!(!hasher
            .verify(&SecretString::from("wrong"), Some(&hash))
            .await
            .unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "bob").is_err());
        assert!(check_policy("aaaaaaaaaa", "bob").is_err());
        assert!(check_policy("alice-the-admin", "alice-the-admin").is_err());
        assert!(check_policy(&"x".repeat(300), "bob").is_err());
        assert!(check_policy("a decent passphrase", "bob").is_ok());
    }
}
