//! A host's credentials: sealed when given (only their id is kept), opened to connect; and
//! the checks of what a request says about reaching a host.

use std::sync::Arc;

use dcp_aggregates::host::AuthMethod;
use russh::keys::PublicKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::HostsError;
use crate::auth::principal::Principal;
use crate::event_store::SideWrite;
use crate::secrets::sealed::{self, MasterKey, SecretKind};
use crate::ssh::{self, Credentials};

/// Credentials: `{"method": "password", "password"}`, or `{"method": "imported_key",
/// "private_key", "passphrase"}`. Sealed at once; only their id is kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    /// `password` or `imported_key`.
    pub method: String,
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub private_key: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub passphrase: Option<SecretString>,
}

/// Opens the sealed credentials of a host.
pub async fn load_credentials(
    pool: &PgPool,
    master_key: &MasterKey,
    auth_method: &str,
    secret_id: Uuid,
) -> anyhow::Result<Credentials> {
    let kind = if auth_method == "password" {
        SecretKind::SshPassword
    } else {
        SecretKind::SshPrivateKey
    };
    let secret = sealed::load(pool, master_key, secret_id, kind).await?;
    let text = String::from_utf8(secret.expose_secret().clone())
        .map_err(|_| anyhow::anyhow!("secret {secret_id} is not text"))?;
    Ok(match kind {
        SecretKind::SshPassword => Credentials::Password(SecretString::from(text)),
        SecretKind::SshPrivateKey => Credentials::Key(Arc::new(
            ssh::parse_private_key(&text, None).map_err(|error| anyhow::anyhow!(error))?,
        )),
    })
}

/// A secret given in a request, for the hosts API: sealed, and returned as the side writes
/// that store it and give it to host `owner`.
pub(super) fn seal_credentials(
    master_key: &MasterKey,
    principal: &Principal,
    method: AuthMethod,
    secret: &SecretString,
    passphrase: Option<&str>,
    owner: &str,
) -> Result<(Uuid, Vec<SideWrite>), HostsError> {
    let (kind, plain) = match method {
        AuthMethod::Password => {
            if secret.expose_secret().is_empty() || secret.expose_secret().len() > 1024 {
                return Err(HostsError::invalid("auth.password", "1 to 1024 bytes"));
            }
            (SecretKind::SshPassword, secret.clone())
        }
        AuthMethod::ImportedKey | AuthMethod::GeneratedKey => {
            let key = ssh::parse_private_key(secret.expose_secret(), passphrase)
                .map_err(|message| HostsError::invalid("auth.private_key", message))?;
            (SecretKind::SshPrivateKey, ssh::private_key_text(&key))
        }
    };
    let (id, write) = sealed::sealed_side_write(
        master_key,
        kind,
        plain.expose_secret().as_bytes(),
        Some(principal.user_id),
    );
    let claim = SideWrite::ClaimSecret {
        id,
        owner: owner.to_string(),
    };
    Ok((id, vec![write, claim]))
}

/// Whether another host (not `except`) is named `name` (case-insensitively).
pub async fn name_taken(
    pool: &PgPool,
    name: &str,
    except: Option<&str>,
) -> Result<bool, sqlx::Error> {
    if name.eq_ignore_ascii_case(crate::docker::LOCAL_HOST) {
        return Ok(true);
    }
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM host_names WHERE name_key = lower($1) AND host_id IS DISTINCT FROM $2)",
    )
    .bind(name)
    .bind(except)
    .fetch_one(pool)
    .await
}

pub(super) fn parse_host_key(text: &str) -> Result<PublicKey, HostsError> {
    // `ssh-keyscan` prints `[host]:port type base64`: the key is the last two fields.
    let fields: Vec<&str> = text.split_whitespace().collect();
    let key = match fields.as_slice() {
        [kind, data] | [kind, data, ..]
            if kind.starts_with("ssh-") || kind.starts_with("ecdsa-") =>
        {
            format!("{kind} {data}")
        }
        [_, kind, data, ..] => format!("{kind} {data}"),
        _ => String::new(),
    };
    PublicKey::from_openssh(&key).map_err(|_| {
        HostsError::invalid(
            "host_key",
            "an SSH public key line (`ssh-ed25519 AAAA…`, as ssh-keyscan prints it)",
        )
    })
}

pub(super) fn auth_method(
    request: &AuthRequest,
) -> Result<(AuthMethod, SecretString, Option<String>), HostsError> {
    use secrecy::ExposeSecret;
    match request.method.as_str() {
        "password" => {
            let password = request
                .password
                .clone()
                .ok_or_else(|| HostsError::invalid("auth.password", "required"))?;
            Ok((AuthMethod::Password, password, None))
        }
        "imported_key" => {
            let key = request
                .private_key
                .clone()
                .ok_or_else(|| HostsError::invalid("auth.private_key", "required"))?;
            Ok((
                AuthMethod::ImportedKey,
                key,
                request
                    .passphrase
                    .as_ref()
                    .map(|p| p.expose_secret().to_string()),
            ))
        }
        _ => Err(HostsError::invalid(
            "auth.method",
            "password or imported_key (generated keys: use the ssh_host_setup wizard)",
        )),
    }
}
