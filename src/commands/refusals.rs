//! What each aggregate's refusal is in the error table: a bad value names its field, a
//! missing aggregate is not found, a command that does not fit the current state conflicts.
//! With the generic mapping of [`super::CommandError`], this is every command's error.

use dcp_aggregates::access_attempt::AccessAttemptError;
use dcp_aggregates::container::ContainerError;
use dcp_aggregates::host::HostError;
use dcp_aggregates::operation::ResourceError;
use dcp_aggregates::session::SessionError;
use dcp_aggregates::user::UserError;
use dcp_aggregates::wizard::WizardError;
use serde_json::{json, Value};

use crate::errors::{ErrorCode, ServiceError};

impl ServiceError for UserError {
    fn code(&self) -> ErrorCode {
        match self {
            UserError::Invalid { .. } => ErrorCode::Validation,
            UserError::NotFound => ErrorCode::NotFound,
            UserError::AlreadyExists | UserError::SelfChange(_) | UserError::LastAdmin => {
                ErrorCode::Conflict
            }
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            UserError::Invalid { field, .. } => Some(field.to_string()),
            _ => None,
        }
    }
}

impl ServiceError for ContainerError {
    fn code(&self) -> ErrorCode {
        match self {
            ContainerError::Invalid { .. } => ErrorCode::Validation,
            ContainerError::NotFound => ErrorCode::NotFound,
            ContainerError::AlreadyKnown
            | ContainerError::OperationInProgress(_)
            | ContainerError::UnknownOperation(_) => ErrorCode::Conflict,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ContainerError::Invalid { field, .. } => Some(field.to_string()),
            _ => None,
        }
    }
}

impl ServiceError for ResourceError {
    fn code(&self) -> ErrorCode {
        match self {
            ResourceError::Invalid { .. } => ErrorCode::Validation,
            ResourceError::OperationInProgress(_) | ResourceError::UnknownOperation(_) => {
                ErrorCode::Conflict
            }
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ResourceError::Invalid { field, .. } => Some(field.to_string()),
            _ => None,
        }
    }
}

impl ServiceError for HostError {
    fn code(&self) -> ErrorCode {
        match self {
            HostError::Invalid { .. } => ErrorCode::Validation,
            HostError::NotFound => ErrorCode::NotFound,
            HostError::AlreadyRegistered | HostError::Disabled | HostError::Stale => {
                ErrorCode::Conflict
            }
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            HostError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        }
    }
}

impl ServiceError for WizardError {
    fn code(&self) -> ErrorCode {
        match self {
            WizardError::Invalid { .. } => ErrorCode::Validation,
            WizardError::NotFound => ErrorCode::NotFound,
            _ => ErrorCode::Conflict,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            WizardError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        }
    }

    /// A step that holds the wizard back is named, for the UI to go to it.
    fn details(&self) -> Option<Value> {
        match self {
            WizardError::StepIncomplete(step)
            | WizardError::TestNotPassed(step)
            | WizardError::NoTest(step) => Some(json!({ "step": step })),
            _ => None,
        }
    }
}

/// A session that is gone or ended is an invalid token to its holder; anything else a
/// session command refuses is the server's mistake.
impl ServiceError for SessionError {
    fn code(&self) -> ErrorCode {
        match self {
            SessionError::NotFound | SessionError::AlreadyEnded => ErrorCode::TokenInvalid,
            SessionError::AlreadyStarted | SessionError::ExpiresBeforeStart => ErrorCode::Internal,
        }
    }

    fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::TokenInvalid => "the session has ended; log in again".into(),
            _ => "internal server error".into(),
        }
    }
}

/// Attempts are recorded under fresh ids: a refusal is the server's mistake.
impl ServiceError for AccessAttemptError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::CommandError;

    #[test]
    fn refusals_map_to_their_codes_through_the_command_error() {
        let invalid: CommandError<UserError> = CommandError::Rejected(UserError::Invalid {
            field: "email",
            message: "bad".into(),
        });
        assert_eq!(invalid.code(), ErrorCode::Validation);
        assert_eq!(invalid.field().as_deref(), Some("email"));
        let lost: CommandError<HostError> = CommandError::Conflict("host");
        assert_eq!(lost.code(), ErrorCode::Conflict);
        assert_eq!(
            lost.to_string(),
            "the host was changed by another request at the same time; retry"
        );
        let step: CommandError<WizardError> =
            CommandError::Rejected(WizardError::StepIncomplete("connection"));
        assert_eq!(step.details().unwrap()["step"], "connection");
        let down: CommandError<ContainerError> =
            CommandError::Unavailable(anyhow::anyhow!("pool timed out"));
        assert_eq!(down.code(), ErrorCode::DatabaseUnavailable);
    }
}
