//! Secrets kept as files in the data dir when not given in the environment, and sealed
//! secrets kept in the database under the master key ([`sealed`]).

pub mod sealed;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;

/// Reads a secret file, or creates it with 32 random bytes (base64) and mode 0600.
pub fn read_or_create(path: &Path) -> anyhow::Result<SecretString> {
    if path.exists() {
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "secret file is readable by others; chmod 600 it");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        return Ok(SecretString::from(text.trim().to_string()));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("Failed to create {}", parent.display()))?;
    }
    let bytes: [u8; 32] = rand::random();
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    file.write_all(encoded.as_bytes())?;
    Ok(SecretString::from(encoded))
}

/// The access-token signing secret: `DCP_JWT_SECRET`, `DCP_JWT_SECRET_FILE`, or
/// `<data dir>/jwt-secret` generated on first start.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    let secret = match (&settings.jwt_secret, &settings.jwt_secret_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!("Failed to read DCP_JWT_SECRET_FILE {}", file.display())
            })?;
            SecretString::from(text.trim().to_string())
        }
        (None, None) => read_or_create(&settings.data_dir.join("jwt-secret"))?,
    };
    anyhow::ensure!(
        secret.expose_secret().len() >= 32,
        "the JWT secret must be at least 32 bytes long"
    );
    Ok(secret)
}
