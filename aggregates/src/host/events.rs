//! What happened to a host: the events of the [`Host`](super::Host) aggregate, the facts
//! they carry (how the host is reached, where it stands), and how each reads in the audit log.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Host;
use crate::audit::{AuditAction, Audited};

/// How dcp authenticates to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An ED25519 key dcp generated (its public key is in the host's `authorized_keys`).
    GeneratedKey,
    /// A private key the admin imported.
    ImportedKey,
    Password,
}

impl AuthMethod {
    /// `generated_key`, `imported_key` or `password`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::GeneratedKey => "generated_key",
            AuthMethod::ImportedKey => "imported_key",
            AuthMethod::Password => "password",
        }
    }

    /// The method named by [`AuthMethod::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "generated_key" => Some(AuthMethod::GeneratedKey),
            "imported_key" => Some(AuthMethod::ImportedKey),
            "password" => Some(AuthMethod::Password),
            _ => None,
        }
    }
}

/// Where a host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Registered; no check has passed yet.
    #[default]
    SetupPending,
    /// The last check reached its engine.
    Active,
    /// The last check did not.
    Unreachable,
    /// An admin took it out of use.
    Disabled,
}

impl HostStatus {
    /// `setup_pending`, `active`, `unreachable` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::SetupPending => "setup_pending",
            HostStatus::Active => "active",
            HostStatus::Unreachable => "unreachable",
            HostStatus::Disabled => "disabled",
        }
    }
}

/// How to reach a host, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub name: String,
    pub user: String,
    pub address: String,
    pub port: u16,
    pub auth_method: AuthMethod,
    /// The sealed secret (private key or password).
    pub secret_id: Uuid,
    /// The pinned host key, OpenSSH public key form (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    /// Its SHA-256 fingerprint (`SHA256:…`).
    pub fingerprint: String,
    pub tags: Vec<String>,
    /// The wizard that set it up, if one did.
    pub wizard_id: Option<Uuid>,
}

/// Events emitted by [`Host`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostEvent {
    HostRegistered {
        host_id: String,
        spec: HostSpec,
        registered_at: DateTime<Utc>,
    },
    HostUpdated {
        name: Option<String>,
        tags: Option<Vec<String>>,
        updated_at: DateTime<Utc>,
    },
    HostCredentialsChanged {
        auth_method: AuthMethod,
        secret_id: Uuid,
        /// The secret no longer used (forgotten with this event).
        previous_secret_id: Uuid,
        changed_at: DateTime<Utc>,
    },
    HostKeyPinned {
        host_key: String,
        fingerprint: String,
        previous_fingerprint: String,
        pinned_at: DateTime<Utc>,
    },
    HostKeyMismatch {
        expected_fingerprint: String,
        seen_fingerprint: String,
        seen_at: DateTime<Utc>,
    },
    HostStatusChanged {
        from: HostStatus,
        to: HostStatus,
        engine_version: Option<String>,
        api_version: Option<String>,
        error: Option<String>,
        changed_at: DateTime<Utc>,
    },
    HostDisabled {
        disabled_at: DateTime<Utc>,
    },
    HostEnabled {
        enabled_at: DateTime<Utc>,
    },
    HostRemoved {
        /// The secret forgotten with it.
        secret_id: Uuid,
        removed_at: DateTime<Utc>,
    },
}

impl DomainEvent for HostEvent {
    fn event_type(&self) -> String {
        match self {
            HostEvent::HostRegistered { .. } => "HostRegistered",
            HostEvent::HostUpdated { .. } => "HostUpdated",
            HostEvent::HostCredentialsChanged { .. } => "HostCredentialsChanged",
            HostEvent::HostKeyPinned { .. } => "HostKeyPinned",
            HostEvent::HostKeyMismatch { .. } => "HostKeyMismatch",
            HostEvent::HostStatusChanged { .. } => "HostStatusChanged",
            HostEvent::HostDisabled { .. } => "HostDisabled",
            HostEvent::HostEnabled { .. } => "HostEnabled",
            HostEvent::HostRemoved { .. } => "HostRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(Host::TYPE, &self.event_type())
    }
}

impl Audited for HostEvent {
    fn audit_action(&self) -> AuditAction<'_> {
        let verb = match self {
            HostEvent::HostRegistered { .. } => "create",
            HostEvent::HostUpdated { .. } => "update",
            HostEvent::HostCredentialsChanged { .. } => "credentials_change",
            HostEvent::HostKeyPinned { .. } => "key_pin",
            HostEvent::HostKeyMismatch { .. } => "key_mismatch",
            HostEvent::HostStatusChanged { .. } => "status_change",
            HostEvent::HostDisabled { .. } => "disable",
            HostEvent::HostEnabled { .. } => "enable",
            HostEvent::HostRemoved { .. } => "delete",
        };
        AuditAction::new(Host::TYPE, verb)
    }
}

impl HostEvent {
    /// The events that give the host a name (registered under it, or renamed to it): where
    /// a host is found by a name it once had.
    pub const NAMING: &'static [&'static str] = &["HostRegistered", "HostUpdated"];
}
