//! What the real-time service answers when a socket cannot be opened or a stream breaks.

use serde_json::Value;

use crate::containers::ContainersError;
use crate::docker::policy::PolicyError;
use crate::docker::DockerError;
use crate::errors::{ErrorCode, ServiceError};
use crate::read_models::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The role may not ask for tickets of this purpose.
    #[error("{0}")]
    PurposeForbidden(String),
    /// The role no longer allows the socket its ticket was for.
    #[error("this role may not open this socket")]
    SocketForbidden,
    /// No ticket, or one that does not open this socket, or a session that ended.
    #[error("{0}")]
    NotAdmitted(&'static str),
    #[error("at most {0} open sockets per user")]
    TooManySockets(usize),
    /// Too many tickets asked for and not used yet.
    #[error("at most {0} unused tickets per user; use or let expire the ones asked for")]
    TooManyTickets(i64),
    /// A replay too far behind: the client loads the state from the API, then reconnects.
    #[error("{0}")]
    ResyncRequired(String),
    #[error("no such task")]
    NoSuchTask,
    /// A live Docker stream broke off.
    #[error("{0}")]
    StreamBroken(String),
    /// A shell could not be started or recorded.
    #[error("{0}")]
    ExecFailed(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Container(#[from] ContainersError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The store: the database away, a read model behind, or an unexpected failure.
    #[error(transparent)]
    Store(StoreError),
}

crate::store_failures!(RealtimeError);

impl RealtimeError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        RealtimeError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl ServiceError for RealtimeError {
    fn code(&self) -> ErrorCode {
        use RealtimeError::*;
        match self {
            Invalid { .. } => ErrorCode::Validation,
            PurposeForbidden(_) | SocketForbidden => ErrorCode::Forbidden,
            NotAdmitted(_) => ErrorCode::AuthenticationFailed,
            TooManySockets(_) | TooManyTickets(_) => ErrorCode::RateLimited,
            ResyncRequired(_) => ErrorCode::ResyncRequired,
            NoSuchTask => ErrorCode::NotFound,
            StreamBroken(_) => ErrorCode::StreamError,
            ExecFailed(_) => ErrorCode::ExecFailed,
            Policy(error) => error.code(),
            Container(error) => error.code(),
            Docker(error) => error.code(),
            Store(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        use RealtimeError::*;
        match self {
            Invalid { field, .. } => Some(field.to_string()),
            PurposeForbidden(_) => Some("purpose".into()),
            Policy(error) => error.field(),
            Container(error) => error.field(),
            Docker(error) => error.field(),
            Store(error) => error.field(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        use RealtimeError::*;
        match self {
            TooManyTickets(_) => Some(super::tickets::TICKET_TTL.as_secs()),
            Policy(error) => error.retry_after(),
            Container(error) => error.retry_after(),
            _ => None,
        }
    }

    fn details(&self) -> Option<Value> {
        use RealtimeError::*;
        match self {
            Container(error) => error.details(),
            Docker(error) => error.details(),
            Store(error) => error.details(),
            _ => None,
        }
    }
}
