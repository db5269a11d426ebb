//! A remote Docker host at a past moment; also the document of the `hosts` read model.

use chrono::{DateTime, Utc};
use dcp_aggregates::host::{HostEvent, HostSpec};
use serde::Serialize;
use uuid::Uuid;

/// A remote Docker host as registered: how it is reached (its secret by id only), the
/// pinned host key, and what its checks found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HostState {
    pub id: String,
    pub name: String,
    /// `ssh://user@address:port`.
    pub url: String,
    pub user: String,
    pub address: String,
    pub port: u16,
    /// `generated_key`, `imported_key` or `password`.
    pub auth_method: String,
    /// The sealed secret holding the key or password (never the secret itself).
    pub secret_id: Option<Uuid>,
    /// The pinned host key (`ssh-ed25519 AAAA…`) and its SHA-256 fingerprint.
    pub host_key: String,
    pub fingerprint: String,
    pub tags: Vec<String>,
    /// `setup_pending`, `active`, `unreachable` or `disabled`.
    pub status: String,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    /// Why the last check failed.
    pub last_error: Option<String>,
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The last host key seen that was not the pinned one (refused).
    pub key_mismatch: Option<KeyMismatch>,
    pub wizard_id: Option<Uuid>,
    pub registered_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub removed: bool,
}

/// A host key seen that was not the pinned one, and when.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyMismatch {
    pub seen_fingerprint: String,
    pub seen_at: DateTime<Utc>,
}

impl HostState {
    /// A host as it was registered: `setup_pending` until a check reaches it.
    fn registered(id: String, spec: HostSpec, at: DateTime<Utc>) -> Self {
        HostState {
            id,
            url: ssh_url(&spec.user, &spec.address, spec.port),
            name: spec.name,
            user: spec.user,
            address: spec.address,
            port: spec.port,
            auth_method: spec.auth_method.as_str().to_string(),
            secret_id: Some(spec.secret_id),
            host_key: spec.host_key,
            fingerprint: spec.fingerprint,
            tags: spec.tags,
            status: "setup_pending".into(),
            wizard_id: spec.wizard_id,
            registered_at: Some(at),
            updated_at: Some(at),
            ..HostState::default()
        }
    }

    pub(super) fn apply(&mut self, event: HostEvent) {
        match event {
            HostEvent::HostRegistered {
                host_id,
                spec,
                registered_at,
            } => *self = HostState::registered(host_id, spec, registered_at),
            HostEvent::HostUpdated {
                name,
                tags,
                updated_at,
            } => {
                if let Some(name) = name {
                    self.name = name;
                }
                if let Some(tags) = tags {
                    self.tags = tags;
                }
                self.updated_at = Some(updated_at);
            }
            HostEvent::HostCredentialsChanged {
                auth_method,
                secret_id,
                changed_at,
                ..
            } => {
                self.auth_method = auth_method.as_str().to_string();
                self.secret_id = Some(secret_id);
                self.updated_at = Some(changed_at);
            }
            HostEvent::HostKeyPinned {
                host_key,
                fingerprint,
                pinned_at,
                ..
            } => {
                self.host_key = host_key;
                self.fingerprint = fingerprint;
                self.key_mismatch = None;
                self.updated_at = Some(pinned_at);
            }
            HostEvent::HostKeyMismatch {
                seen_fingerprint,
                seen_at,
                ..
            } => {
                self.key_mismatch = Some(KeyMismatch {
                    seen_fingerprint,
                    seen_at,
                });
                self.updated_at = Some(seen_at);
            }
            HostEvent::HostStatusChanged {
                to,
                engine_version,
                api_version,
                error,
                changed_at,
                ..
            } => {
                self.status = to.as_str().to_string();
                if engine_version.is_some() {
                    self.engine_version = engine_version;
                    self.api_version = api_version;
                }
                self.last_error = error;
                self.status_changed_at = Some(changed_at);
                self.updated_at = Some(changed_at);
            }
            HostEvent::HostDisabled { disabled_at } => {
                self.status = "disabled".into();
                self.status_changed_at = Some(disabled_at);
                self.updated_at = Some(disabled_at);
            }
            HostEvent::HostEnabled { enabled_at } => {
                self.status = "setup_pending".into();
                self.status_changed_at = Some(enabled_at);
                self.updated_at = Some(enabled_at);
            }
            HostEvent::HostRemoved { removed_at, .. } => {
                self.removed = true;
                self.updated_at = Some(removed_at);
            }
        }
    }
}

/// `ssh://user@address[:port]` (IPv6 addresses in brackets).
pub fn ssh_url(user: &str, address: &str, port: u16) -> String {
    let address = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    format!("ssh://{user}@{address}:{port}")
}
