//! What the containers service answers when it cannot do what was asked.

use dcp_aggregates::container::ContainerError;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::commands::CommandError;
use crate::docker::fanout::ListError;
use crate::docker::policy::PolicyError;
use crate::docker::DockerError;
use crate::errors::{ErrorCode, ServiceError};
use crate::read_models::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    /// Not a container id, id prefix or name.
    #[error("a container id, id prefix or name")]
    BadReference,
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Docker knows no such container (`docker` is what it said, when it said something).
    #[error("container not found")]
    NotFound { docker: Option<String> },
    /// The role policy refused the request (an option the role may not use is recorded as
    /// a denied request).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The image to run is not on the engine.
    #[error("{message}")]
    ImageMissing { message: String },
    /// The engine did not answer: the operation may or may not have happened, and stays
    /// pending until the reconciler settles it.
    #[error("{error}")]
    Pending {
        operation_id: Uuid,
        error: DockerError,
    },
    #[error("the container was discovered twice at the same time; retry")]
    DiscoveredTwice,
    #[error("operation not found")]
    NoSuchOperation,
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Command(#[from] CommandError<ContainerError>),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(ContainersError);

impl ContainersError {
    /// A failed Docker call about a container: 400 (an ambiguous prefix) and 404 name nothing.
    pub(crate) fn lookup(error: DockerError) -> Self {
        match Self::lookup_saying(error) {
            ContainersError::NotFound { .. } => ContainersError::NotFound { docker: None },
            other => other,
        }
    }

    /// [`ContainersError::lookup`], keeping what Docker said (an inspect shows it).
    pub(crate) fn lookup_saying(error: DockerError) -> Self {
        match error {
            DockerError::Failed {
                status: 400 | 404,
                message,
            } => ContainersError::NotFound {
                docker: Some(message),
            },
            other => ContainersError::Docker(other),
        }
    }
}

impl ServiceError for ContainersError {
    fn code(&self) -> ErrorCode {
        use ContainersError::*;
        match self {
            BadReference | Invalid { .. } => ErrorCode::Validation,
            NotFound { .. } | NoSuchOperation => ErrorCode::NotFound,
            Policy(error) => error.code(),
            ImageMissing { .. } => ErrorCode::DockerOperationFailed,
            DiscoveredTwice => ErrorCode::Conflict,
            Pending { error, .. } | Docker(error) => error.code(),
            List(error) => error.code(),
            Command(error) => error.code(),
            Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        use ContainersError::*;
        match self {
            BadReference => Some("id".into()),
            Invalid { field, .. } => Some(field.clone()),
            Policy(error) => error.field(),
            ImageMissing { .. } => Some("image".into()),
            Docker(error) => error.field(),
            List(error) => error.field(),
            Command(error) => error.field(),
            Store(error) => error.field(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        use ContainersError::*;
        match self {
            Policy(error) => error.retry_after(),
            _ => None,
        }
    }

    fn details(&self) -> Option<Value> {
        use ContainersError::*;
        match self {
            NotFound { docker } => docker.as_ref().map(|message| json!({ "docker": message })),
            ImageMissing { .. } => Some(json!({ "docker_status": 404 })),
            Pending { operation_id, .. } => {
                Some(json!({ "operation_id": operation_id, "status": "pending" }))
            }
            Docker(error) => error.details(),
            List(error) => error.details(),
            Command(error) => error.details(),
            Store(error) => error.details(),
            _ => None,
        }
    }
}
