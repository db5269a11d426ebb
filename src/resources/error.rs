//! What the resources service answers when it cannot do what was asked.

use dcp_aggregates::operation::ResourceError;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::commands::CommandError;
use crate::containers::ContainersError;
use crate::docker::fanout::ListError;
use crate::docker::policy::PolicyError;
use crate::docker::DockerError;
use crate::errors::{ErrorCode, ServiceError};
use crate::read_models::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ResourcesError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// No such volume, network or image on the engine.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A create of what exists already (Docker would answer with the existing one).
    #[error("a {kind} named '{name}' already exists")]
    Exists { kind: &'static str, name: String },
    /// Docker refused the change in the resource's present state (its 403: a network with
    /// containers attached, a container already connected).
    #[error("{0}")]
    Refused(String),
    #[error("'{0}' is one of Docker's predefined networks and cannot be removed")]
    Predefined(String),
    /// The engine did not answer: the operation stays pending until the reconciler settles it.
    #[error("{error}")]
    Pending {
        operation_id: Uuid,
        error: DockerError,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The container a network operation names.
    #[error(transparent)]
    Container(#[from] ContainersError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Command(#[from] CommandError<ResourceError>),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(ResourcesError);

impl ResourcesError {
    /// A failed lookup of a `kind` resource: 400 (an ambiguous prefix) and 404 name nothing.
    pub(super) fn lookup(kind: &'static str, error: DockerError) -> Self {
        match error {
            DockerError::Failed {
                status: 400 | 404, ..
            } => ResourcesError::NotFound(kind),
            other => ResourcesError::Docker(other),
        }
    }

    /// Docker's answer to a refused change: its 403 means "not in this state", a conflict
    /// with the resource's state, not a failure of the engine.
    pub(super) fn refusal(error: DockerError) -> Self {
        match error {
            DockerError::Failed {
                status: 403,
                message,
            } => ResourcesError::Refused(message),
            other => ResourcesError::Docker(other),
        }
    }
}

impl ServiceError for ResourcesError {
    fn code(&self) -> ErrorCode {
        use ResourcesError::*;
        match self {
            Invalid { .. } => ErrorCode::Validation,
            NotFound(_) => ErrorCode::NotFound,
            Exists { .. } | Refused(_) => ErrorCode::Conflict,
            Predefined(_) => ErrorCode::Forbidden,
            Pending { error, .. } | Docker(error) => error.code(),
            Policy(error) => error.code(),
            Container(error) => error.code(),
            List(error) => error.code(),
            Command(error) => error.code(),
            Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        use ResourcesError::*;
        match self {
            Invalid { field, .. } => Some(field.to_string()),
            Exists { .. } => Some("name".into()),
            // The container of a connect or disconnect that names none.
            Container(ContainersError::NotFound { .. }) => Some("container".into()),
            Policy(error) => error.field(),
            Container(error) => error.field(),
            Docker(error) => error.field(),
            List(error) => error.field(),
            Command(error) => error.field(),
            Store(error) => error.field(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        use ResourcesError::*;
        match self {
            Policy(error) => error.retry_after(),
            Container(error) => error.retry_after(),
            _ => None,
        }
    }

    fn details(&self) -> Option<Value> {
        use ResourcesError::*;
        match self {
            Refused(_) => Some(json!({ "docker_status": 403 })),
            Pending { operation_id, .. } => {
                Some(json!({ "operation_id": operation_id, "status": "pending" }))
            }
            Container(error) => error.details(),
            Docker(error) => error.details(),
            List(error) => error.details(),
            Command(error) => error.details(),
            Store(error) => error.details(),
            _ => None,
        }
    }
}
