//! What the hosts service answers when it cannot do what was asked.

use dcp_aggregates::host::HostError;
use serde_json::{json, Value};

use crate::commands::CommandError;
use crate::errors::{ErrorCode, ServiceError};
use crate::read_models::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("host not found")]
    NotFound,
    /// Host names are unique (case-insensitively); `field` is where the caller gave it.
    #[error("a host named '{name}' already exists")]
    NameTaken { name: String, field: &'static str },
    /// `local` is the engine dcp runs next to: it is not changed or removed here.
    #[error("{0}")]
    LocalHost(&'static str),
    #[error("{0}")]
    NoCredentials(&'static str),
    /// The host presented another key than the one it should have (nothing was sent to it).
    #[error("the host presented another key (nothing was sent to it): check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)")]
    HostKeyMismatch { seen: String },
    #[error("the host could not be reached: {message}")]
    Unreachable { message: String, kind: &'static str },
    #[error(transparent)]
    Command(#[from] CommandError<HostError>),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(HostsError);

impl HostsError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        HostsError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl ServiceError for HostsError {
    fn code(&self) -> ErrorCode {
        use HostsError::*;
        match self {
            Invalid { .. } | HostKeyMismatch { .. } | Unreachable { .. } => ErrorCode::Validation,
            NotFound => ErrorCode::NotFound,
            NameTaken { .. } | LocalHost(_) | NoCredentials(_) => ErrorCode::Conflict,
            Command(error) => error.code(),
            Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        use HostsError::*;
        match self {
            Invalid { field, .. } => Some(field.clone()),
            NameTaken { field, .. } => Some(field.to_string()),
            HostKeyMismatch { .. } => Some("host_key_fingerprint".into()),
            Unreachable { .. } => Some("url".into()),
            Command(error) => error.field(),
            Store(error) => error.field(),
            _ => None,
        }
    }

    fn details(&self) -> Option<Value> {
        use HostsError::*;
        match self {
            HostKeyMismatch { seen } => Some(json!({ "seen_fingerprint": seen })),
            Unreachable { kind, .. } => Some(json!({ "error_kind": kind })),
            Command(error) => error.details(),
            Store(error) => error.details(),
            _ => None,
        }
    }
}
