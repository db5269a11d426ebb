//! The one error vocabulary: every code dcp answers with, over HTTP, in a WebSocket's error
//! message or as a recorded operation's outcome, with its HTTP status; and the trait every
//! service error implements to name its code.
//!
//! Services below HTTP return their own error types. Each says which code of this table it
//! is ([`ServiceError::code`]) and what the client may read about it (the message is its
//! `Display`; [`ServiceError::field`], [`ServiceError::details`]). The HTTP layer has the one
//! mapping from any [`ServiceError`] to a response and to a socket's error message.

use serde_json::Value;

/// Every error code, and where it is answered: see [`ErrorCode::TABLE`], which has a row
/// per code in this order (checked when compiling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Validation,
    UnsupportedMediaType,
    PayloadTooLarge,
    AuthenticationFailed,
    TokenExpired,
    TokenInvalid,
    Forbidden,
    PasswordChangeRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    Internal,
    DatabaseUnavailable,
    ReadModelLagging,
    DockerOperationFailed,
    DockerUnavailable,
    /// A socket's replay is too far behind: load the state from the API, then reconnect.
    ResyncRequired,
    /// A live Docker stream (logs, stats) broke off.
    StreamError,
    /// An exec session could not start or be recorded.
    ExecFailed,
    /// The server stopped before an operation's outcome was known, and Docker does not show
    /// it done (recorded by the reconciler). It stays the last code: the table's check
    /// counts the codes by it.
    Interrupted,
}

// The table has the codes' order, so a code's row is found by its place: a code added
// without its row, or a row out of place, does not compile.
const _: () = {
    let table = ErrorCode::TABLE;
    assert!(
        table.len() == ErrorCode::Interrupted as usize + 1,
        "every code has one row (Interrupted is the last code)"
    );
    let mut index = 0;
    while index < table.len() {
        assert!(
            table[index].code as usize == index,
            "the table lists the codes in the enum's order"
        );
        index += 1;
    }
};

/// Where a code is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// In HTTP error responses (and in a socket's error message, before or after the upgrade).
    Http,
    /// Only in a WebSocket's error message.
    Socket,
    /// Only as the recorded outcome of a Docker operation (`error_code` of an operation).
    Outcome,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRow {
    pub code: ErrorCode,
    /// The stable machine-readable name.
    pub name: &'static str,
    /// The HTTP status (for socket errors: its class decides the close code).
    pub status: u16,
    pub channel: Channel,
    /// Trying again later may succeed (a socket error tells the client to reconnect).
    pub transient: bool,
    /// What it means, for the API document.
    pub meaning: &'static str,
}

const fn row(
    code: ErrorCode,
    name: &'static str,
    status: u16,
    channel: Channel,
    transient: bool,
    meaning: &'static str,
) -> ErrorRow {
    ErrorRow {
        code,
        name,
        status,
        channel,
        transient,
        meaning,
    }
}

impl ErrorCode {
    /// The table: one row per code.
    pub const TABLE: &'static [ErrorRow] = {
        use Channel::*;
        use ErrorCode::*;
        &[
            row(Validation, "VALIDATION_ERROR", 400, Http, false, "the body, a parameter or a header is invalid; `field` names it"),
            row(UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", 415, Http, false, "the body is not sent as application/json"),
            row(PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413, Http, false, "the body is larger than the limit"),
            row(AuthenticationFailed, "AUTHENTICATION_FAILED", 401, Http, false, "no bearer token, wrong credentials, or a deactivated account"),
            row(TokenExpired, "TOKEN_EXPIRED", 401, Http, false, "the access token has expired; refresh it"),
            row(TokenInvalid, "TOKEN_INVALID", 401, Http, false, "the token is invalid or its session has ended"),
            row(Forbidden, "FORBIDDEN", 403, Http, false, "the caller's role is not allowed here (see x-dcp-roles)"),
            row(PasswordChangeRequired, "PASSWORD_CHANGE_REQUIRED", 403, Http, false, "the caller must change their password first"),
            row(NotFound, "NOT_FOUND", 404, Http, false, "no such resource"),
            row(MethodNotAllowed, "METHOD_NOT_ALLOWED", 405, Http, false, "the method is not allowed on this route"),
            row(Conflict, "CONFLICT", 409, Http, false, "the change conflicts with the current state"),
            row(RateLimited, "RATE_LIMITED", 429, Http, true, "too many failed attempts; retry after Retry-After seconds"),
            row(Internal, "INTERNAL_ERROR", 500, Http, true, "an unexpected failure"),
            row(DatabaseUnavailable, "DATABASE_UNAVAILABLE", 503, Http, true, "the database cannot be reached"),
            row(ReadModelLagging, "READ_MODEL_LAGGING", 503, Http, true, "the read model has not caught up in time; retry"),
            row(DockerOperationFailed, "DOCKER_OPERATION_FAILED", 502, Http, false, "the Docker engine refused the operation; the message is Docker's"),
            row(DockerUnavailable, "DOCKER_UNAVAILABLE", 503, Http, true, "the Docker engine cannot be reached"),
            row(ResyncRequired, "RESYNC_REQUIRED", 409, Socket, false, "a socket's replay is too far behind: load the state from the API, then reconnect without ?after"),
            row(StreamError, "STREAM_ERROR", 502, Socket, true, "a live Docker stream broke off; reconnect"),
            row(ExecFailed, "EXEC_FAILED", 502, Socket, false, "the shell could not be started or recorded"),
            row(Interrupted, "INTERRUPTED", 503, Outcome, false, "the server stopped before the operation's outcome was known, and Docker does not show it done"),
        ]
    };

    /// The rows of the codes HTTP responses carry (the API document lists these).
    pub fn http_rows() -> impl Iterator<Item = &'static ErrorRow> {
        ErrorCode::TABLE
            .iter()
            .filter(|row| row.channel == Channel::Http)
    }

    /// This code's row.
    pub fn row(self) -> &'static ErrorRow {
        &ErrorCode::TABLE[self as usize]
    }

    /// The stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        self.row().status
    }

    /// Trying again later may succeed.
    pub fn is_transient(self) -> bool {
        self.row().transient
    }

    /// A failure of the server or what it depends on, not of the request.
    pub fn is_server_error(self) -> bool {
        self.status() >= 500
    }
}

/// An error a service returns: which code of the table it is, and what the client may read
/// about it. The message is the error's `Display`, except for [`ErrorCode::Internal`]
/// (the client gets a generic message; the cause is logged).
pub trait ServiceError: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static
where
    Self: Into<anyhow::Error>,
{
    fn code(&self) -> ErrorCode;

    /// The input the error is about, if any.
    fn field(&self) -> Option<String> {
        None
    }

    /// Structured context for the client (ids, positions, …).
    fn details(&self) -> Option<Value> {
        None
    }

    /// Seconds after which a retry may succeed (`Retry-After`).
    fn retry_after(&self) -> Option<u64> {
        None
    }

    /// What the client reads: the error's own words, except for failures whose cause is
    /// the server's business.
    fn public_message(&self) -> String {
        match withheld_message(self.code()) {
            Some(message) => message.into(),
            None => self.to_string(),
        }
    }
}

/// The message a client gets instead of the error's own words, for codes whose cause is
/// the server's business.
pub fn withheld_message(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Internal => Some("internal server error"),
        ErrorCode::DatabaseUnavailable => Some("the database is unavailable"),
        _ => None,
    }
}

impl ServiceError for sqlx::Error {
    fn code(&self) -> ErrorCode {
        if crate::db::is_unavailable(self) {
            ErrorCode::DatabaseUnavailable
        } else {
            ErrorCode::Internal
        }
    }
}

/// Unexpected failures from adapters: internal, unless the database is away.
impl ServiceError for anyhow::Error {
    fn code(&self) -> ErrorCode {
        match self.downcast_ref::<sqlx::Error>() {
            Some(error) => error.code(),
            None => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_row() {
        let mut names: Vec<&str> = ErrorCode::TABLE.iter().map(|row| row.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::TABLE.len());
        let mut codes: Vec<String> = ErrorCode::TABLE
            .iter()
            .map(|row| format!("{:?}", row.code))
            .collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::TABLE.len());
        assert_eq!(ErrorCode::Internal.as_str(), "INTERNAL_ERROR");
        assert_eq!(ErrorCode::Conflict.status(), 409);
        assert_eq!(ErrorCode::RateLimited.as_str(), "RATE_LIMITED");
        assert_eq!(ErrorCode::StreamError.as_str(), "STREAM_ERROR");
        assert!(!ErrorCode::http_rows().any(|row| row.code == ErrorCode::ResyncRequired));
    }
}
