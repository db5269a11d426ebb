//! SSH keys: host key fingerprints, and the client keys dcp reads, makes and installs.

use russh::keys::{HashAlg, PrivateKey, PublicKey};
use secrecy::SecretString;

/// The SHA-256 fingerprint of a host key, as `ssh-keygen -l` prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A key in OpenSSH public key form, without its comment.
pub fn openssh_public(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh()
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}

/// Reads a private key in OpenSSH (or PEM, PuTTY) form, decrypting it with `passphrase`.
pub fn parse_private_key(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, String> {
    russh::keys::decode_secret_key(text, passphrase).map_err(|error| match error {
        russh::keys::Error::KeyIsEncrypted => {
            "the key is encrypted: give its passphrase".to_string()
        }
        other => format!("not a usable private key: {other}"),
    })
}

/// A new ED25519 key with `comment`.
pub fn generate_key(comment: &str) -> PrivateKey {
    let mut key = PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
        .expect("ED25519 key generation does not fail");
    key.set_comment(comment);
    key
}

/// The OpenSSH private key text (what is sealed).
pub fn private_key_text(key: &PrivateKey) -> SecretString {
    SecretString::from(
        key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map(|text| text.to_string())
            .unwrap_or_default(),
    )
}

/// The `authorized_keys` line of `key` (with its comment).
pub fn authorized_keys_line(key: &PrivateKey) -> String {
    key.public_key()
        .to_openssh()
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}
