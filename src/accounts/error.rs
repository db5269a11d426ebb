//! What the accounts service answers when it cannot do what was asked.

use dcp_aggregates::session::SessionError;
use dcp_aggregates::user::UserError;
use serde_json::{json, Value};

use crate::commands::CommandError;
use crate::errors::{ErrorCode, ServiceError};
use crate::read_models::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("user not found")]
    NotFound,
    /// A username or email belongs to another account.
    #[error("{kind} '{value}' is already taken")]
    Taken { kind: &'static str, value: String },
    /// The one answer to every failed login: a deactivated account must not confirm a
    /// guessed password (the audit log keeps the real reason).
    #[error("invalid username or password")]
    BadCredentials,
    #[error("the current password is wrong")]
    WrongPassword,
    /// A request without an access token, or from an account that is gone or deactivated.
    #[error("{0}")]
    NotSignedIn(&'static str),
    #[error("the access token has expired; refresh it")]
    TokenExpired,
    /// An access or refresh token that does not (or no longer) open a session.
    #[error("{0}")]
    TokenInvalid(&'static str),
    /// Too many failed attempts (or one still running) for the account or the client.
    #[error("too many failed logins; retry in {0} s")]
    RateLimited(u64),
    #[error(transparent)]
    User(#[from] CommandError<UserError>),
    #[error(transparent)]
    Session(#[from] CommandError<SessionError>),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(AccountsError);

impl AccountsError {
    /// Refused until `wait` has passed, rounded up: a client that waits this long is let
    /// through.
    pub(super) fn rate_limited(wait: std::time::Duration) -> Self {
        AccountsError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Another attempt for the same account (or too many from one client) is in progress.
    pub(super) fn busy() -> Self {
        AccountsError::RateLimited(1)
    }

    pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AccountsError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl ServiceError for AccountsError {
    fn code(&self) -> ErrorCode {
        use AccountsError::*;
        match self {
            Invalid { .. } => ErrorCode::Validation,
            NotFound => ErrorCode::NotFound,
            Taken { .. } => ErrorCode::Conflict,
            BadCredentials | WrongPassword | NotSignedIn(_) => ErrorCode::AuthenticationFailed,
            TokenExpired => ErrorCode::TokenExpired,
            TokenInvalid(_) => ErrorCode::TokenInvalid,
            RateLimited(_) => ErrorCode::RateLimited,
            User(error) => error.code(),
            Session(error) => error.code(),
            Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        use AccountsError::*;
        match self {
            Invalid { field, .. } => Some(field.to_string()),
            Taken { kind, .. } => Some(kind.to_string()),
            WrongPassword => Some("current_password".into()),
            User(error) => error.field(),
            Store(error) => error.field(),
            _ => None,
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            AccountsError::RateLimited(seconds) => Some(json!({ "retry_after": seconds })),
            AccountsError::User(error) => error.details(),
            AccountsError::Store(error) => error.details(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            AccountsError::RateLimited(seconds) => Some(*seconds),
            _ => None,
        }
    }

    fn public_message(&self) -> String {
        match self {
            AccountsError::Session(error) => error.public_message(),
            AccountsError::User(error) => error.public_message(),
            other => match crate::errors::withheld_message(other.code()) {
                Some(message) => message.into(),
                None => other.to_string(),
            },
        }
    }
}
