//! The one error type of the HTTP layer, its table of stable codes, and the middleware
//! that renders and logs it once per request.
//!
//! Handlers return `ApiError`; its response carries the error in an extension with an
//! empty body, and [`render_errors`] turns it into the documented JSON (with the request
//! id) and logs it, with its internal cause, inside the request span. Internal causes
//! are never sent to the client.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::context::RequestContext;

/// Every error code the API can answer with, and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl ErrorCode {
    /// The table: code string and status, one row per variant.
    pub const TABLE: &'static [(ErrorCode, &'static str, u16)] = &[
        (ErrorCode::Validation, "VALIDATION_ERROR", 400),
        (
            ErrorCode::UnsupportedMediaType,
            "UNSUPPORTED_MEDIA_TYPE",
            415,
        ),
        (ErrorCode::PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
        (
            ErrorCode::AuthenticationFailed,
            "AUTHENTICATION_FAILED",
            401,
        ),
        (ErrorCode::TokenExpired, "TOKEN_EXPIRED", 401),
        (ErrorCode::TokenInvalid, "TOKEN_INVALID", 401),
        (ErrorCode::Forbidden, "FORBIDDEN", 403),
        (
            ErrorCode::PasswordChangeRequired,
            "PASSWORD_CHANGE_REQUIRED",
            403,
        ),
        (ErrorCode::NotFound, "NOT_FOUND", 404),
        (ErrorCode::MethodNotAllowed, "METHOD_NOT_ALLOWED", 405),
        (ErrorCode::Conflict, "CONFLICT", 409),
        (ErrorCode::RateLimited, "RATE_LIMITED", 429),
        (ErrorCode::Internal, "INTERNAL_ERROR", 500),
        (ErrorCode::DatabaseUnavailable, "DATABASE_UNAVAILABLE", 503),
        (ErrorCode::ReadModelLagging, "READ_MODEL_LAGGING", 503),
        (
            ErrorCode::DockerOperationFailed,
            "DOCKER_OPERATION_FAILED",
            502,
        ),
        (ErrorCode::DockerUnavailable, "DOCKER_UNAVAILABLE", 503),
    ];

    fn row(self) -> (&'static str, u16) {
        ErrorCode::TABLE
            .iter()
            .find(|(code, _, _)| *code == self)
            .map(|(_, name, status)| (*name, *status))
            .unwrap_or(("INTERNAL_ERROR", 500))
    }

    /// The stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.row().1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// An error answered to the client in the documented format.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub details: Option<Value>,
    /// Seconds, for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// The internal cause: logged, never sent.
    pub source: Option<Arc<anyhow::Error>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            details: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Validation, message).with_field(field)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Conflict, message)
    }

    pub fn authentication(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::AuthenticationFailed, message)
    }

    /// An unexpected failure: the client gets a generic message, the log gets the cause.
    pub fn internal(source: anyhow::Error) -> Self {
        let mut error = ApiError::new(ErrorCode::Internal, "internal server error");
        error.source = Some(Arc::new(source));
        error
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_source(mut self, source: anyhow::Error) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The JSON body, with the request id.
    pub fn body(&self, request_id: &str) -> Value {
        json!({
            "error": {
                "code": self.code.as_str(),
                "message": self.message,
                "details": self.details.clone().unwrap_or_else(|| json!({})),
                "field": self.field,
            },
            "status": "error",
            "request_id": request_id,
        })
    }
}

fn is_connection_error(error: &sqlx::Error) -> bool {
    crate::db::is_unavailable(error)
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if is_connection_error(&error) {
            return ApiError::new(
                ErrorCode::DatabaseUnavailable,
                "the database is unavailable",
            )
            .with_source(anyhow::Error::new(error));
        }
        ApiError::internal(anyhow::Error::new(error).context("database query failed"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        if let Some(sqlx_error) = error.downcast_ref::<sqlx::Error>() {
            if is_connection_error(sqlx_error) {
                return ApiError::new(
                    ErrorCode::DatabaseUnavailable,
                    "the database is unavailable",
                )
                .with_source(error);
            }
        }
        ApiError::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders an `ApiError` carried by the response into the JSON body and logs it once.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestContext>()
        .map(|ctx| ctx.request_id.clone())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let Some(error) = response.extensions_mut().remove::<ApiError>() else {
        return response;
    };
    match (&error.source, error.code.status().is_server_error()) {
        (Some(source), _) => tracing::error!(
            code = error.code.as_str(),
            error = format!("{source:#}"),
            "{}",
            error.message
        ),
        (None, true) => tracing::error!(code = error.code.as_str(), "{}", error.message),
        (None, false) => tracing::info!(code = error.code.as_str(), "{}", error.message),
    }
    let (mut parts, _) = response.into_parts();
    let body = error.body(&request_id).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_row() {
        let mut names: Vec<&str> = ErrorCode::TABLE.iter().map(|(_, n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::TABLE.len());
        assert_eq!(ErrorCode::Conflict.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorCode::RateLimited.as_str(), "RATE_LIMITED");
    }

    #[test]
    fn body_has_the_documented_shape() {
        let body = ApiError::validation("email", "bad email").body("req-1");
        assert_eq!(body["status"], "error");
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["field"], "email");
        assert!(body["error"]["details"].is_object());
    }
}
