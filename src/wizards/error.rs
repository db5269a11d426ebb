//! What the wizards service answers when it cannot do what was asked.

use dcp_aggregates::wizard::WizardError;
use serde_json::{json, Value};

use crate::commands::CommandError;
use crate::errors::{ErrorCode, ServiceError};
use crate::hosts::HostsError;
use crate::read_models::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WizardsError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// No such wizard, or another user's (not shown).
    #[error("wizard not found")]
    NotFound,
    /// The wizard was completed or cancelled.
    #[error("the wizard is {0}, no longer in progress")]
    NotInProgress(String),
    /// What a step needs from an earlier one is missing or unusable; `step` names it.
    #[error("{message}")]
    StepNotReady { step: &'static str, message: String },
    #[error("a host named '{0}' already exists")]
    NameTaken(String),
    #[error("this key is already used by another host or wizard")]
    KeyInUse,
    #[error(transparent)]
    Command(#[from] CommandError<WizardError>),
    #[error(transparent)]
    Hosts(#[from] HostsError),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(WizardsError);

impl WizardsError {
    pub(super) fn invalid(field: &str, message: impl Into<String>) -> Self {
        WizardsError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Step `step` is not complete.
    pub(super) fn incomplete(step: &'static str) -> Self {
        WizardsError::StepNotReady {
            step,
            message: format!("step '{step}' is not complete"),
        }
    }
}

impl ServiceError for WizardsError {
    fn code(&self) -> ErrorCode {
        use WizardsError::*;
        match self {
            Invalid { .. } => ErrorCode::Validation,
            NotFound => ErrorCode::NotFound,
            NotInProgress(_) | StepNotReady { .. } | NameTaken(_) | KeyInUse => ErrorCode::Conflict,
            Command(error) => error.code(),
            Hosts(error) => error.code(),
            Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        use WizardsError::*;
        match self {
            Invalid { field, .. } => Some(field.clone()),
            NameTaken(_) => Some("connection_name".into()),
            KeyInUse => Some("key_id".into()),
            Command(error) => error.field(),
            Hosts(error) => error.field(),
            Store(error) => error.field(),
            _ => None,
        }
    }

    fn details(&self) -> Option<Value> {
        use WizardsError::*;
        match self {
            StepNotReady { step, .. } => Some(json!({ "step": step })),
            Command(error) => error.details(),
            Hosts(error) => error.details(),
            Store(error) => error.details(),
            _ => None,
        }
    }
}
