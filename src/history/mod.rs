//! History: the audit log (entries, exports, the checks that it was not rewritten), the raw
//! event stream, and any past moment of one resource rebuilt from its events.

mod audit;
mod events;
mod lookup;
mod past;

use std::sync::Arc;

pub use audit::{
    AuditAnswer, AuditLogView, AuditPage, AuditQuery, ChainReportView, ExportFormat, VerifyReport,
    VerifyRequest,
};
pub use events::{wants_ndjson, EventPage, EventView, EventsAnswer, EventsQuery};
pub use lookup::{PastKind, PastTarget};
pub use past::{AsOf, DiffQuery, DiffView, StateQuery, StateView};

use crate::checkpoints::AuditKey;
use crate::containers::{Containers, ContainersError};
use crate::docker::DockerError;
use crate::errors::{ErrorCode, ServiceError};
use crate::hosts::HostRegistry;
use crate::read_models::{ReadModels, StoreError};

/// The history service.
#[derive(Clone)]
pub struct History {
    reads: ReadModels,
    /// Finds the containers a past-state request names.
    containers: Containers,
    registry: Arc<HostRegistry>,
    /// Signs audit checkpoints (kept out of the database).
    audit_key: Arc<AuditKey>,
}

impl History {
    pub fn new(
        reads: ReadModels,
        containers: Containers,
        registry: Arc<HostRegistry>,
        audit_key: Arc<AuditKey>,
    ) -> Self {
        History {
            reads,
            containers,
            registry,
            audit_key,
        }
    }
}

/// What the history service answers when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Nothing of this kind by that key (`"user"`, `"host"`, `"audit entry"`, …).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Container(#[from] ContainersError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(HistoryError);

impl HistoryError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        HistoryError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl ServiceError for HistoryError {
    fn code(&self) -> ErrorCode {
        match self {
            HistoryError::Invalid { .. } => ErrorCode::Validation,
            HistoryError::NotFound(_) => ErrorCode::NotFound,
            HistoryError::Container(error) => error.code(),
            HistoryError::Docker(error) => error.code(),
            HistoryError::Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            HistoryError::Invalid { field, .. } => Some(field.clone()),
            HistoryError::Container(error) => error.field(),
            HistoryError::Docker(error) => error.field(),
            HistoryError::Store(error) => error.field(),
            _ => None,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            HistoryError::Container(error) => error.details(),
            HistoryError::Docker(error) => error.details(),
            HistoryError::Store(error) => error.details(),
            _ => None,
        }
    }
}
