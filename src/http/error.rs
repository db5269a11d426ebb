//! The one error type of the HTTP layer, the one mapping from service errors to it and to
//! a WebSocket's error message, and the middleware that renders and logs it once per request.
//!
//! Handlers return `ApiError`; any [`ServiceError`] converts into it (its code from the
//! table in [`crate::errors`]). Its response carries the error in an extension with an
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

pub use crate::errors::{ErrorCode, ServiceError};

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

/// The one mapping from a service's error to the answer: the code of the table, the
/// message the client may read, and the cause kept for the log when the server is at fault.
impl<E: ServiceError> From<E> for ApiError {
    fn from(error: E) -> Self {
        let code = error.code();
        let mut api = ApiError::new(code, error.public_message());
        api.field = error.field();
        api.details = error.details();
        api.retry_after = error.retry_after();
        if code.is_server_error() {
            api.source = Some(Arc::new(error.into()));
        }
        api
    }
}

/// An error told to a WebSocket client as `{"type":"error","code","message","timestamp",
/// "reconnect","fatal"}`: `reconnect` when trying again may succeed, `fatal` when the socket
/// closes for good after it.
#[derive(Debug, Clone)]
pub struct SocketError {
    pub code: ErrorCode,
    pub message: String,
}

impl SocketError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SocketError {
            code,
            message: message.into(),
        }
    }

    /// The message, for a socket that closes after it (`closing`) or stays open.
    pub fn text(&self, closing: bool) -> String {
        let reconnect = self.code.is_transient();
        json!({
            "type": "error",
            "code": self.code.as_str(),
            "message": self.message,
            "timestamp": chrono::Utc::now(),
            "reconnect": reconnect,
            "fatal": closing && !reconnect,
        })
        .to_string()
    }

    /// The close code after it: 1011 when the server is at fault, else 1000.
    pub fn close_code(&self) -> u16 {
        if self.code.is_server_error() {
            1011
        } else {
            1000
        }
    }
}

impl<E: ServiceError> From<E> for SocketError {
    fn from(error: E) -> Self {
        let code = error.code();
        if code.is_server_error() {
            tracing::warn!(code = code.as_str(), error = %error, "a socket failed");
        }
        SocketError::new(code, error.public_message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = status.into_response();
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
    match (&error.source, error.code.is_server_error()) {
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
    fn socket_errors_say_whether_to_reconnect_and_how_the_socket_closes() {
        let resync = SocketError::new(ErrorCode::ResyncRequired, "too far behind");
        let message: Value = serde_json::from_str(&resync.text(true)).unwrap();
        assert_eq!(message["code"], "RESYNC_REQUIRED");
        assert_eq!(message["reconnect"], false);
        assert_eq!(message["fatal"], true);
        assert_eq!(resync.close_code(), 1000);
        let broken = SocketError::new(ErrorCode::StreamError, "gone");
        let message: Value = serde_json::from_str(&broken.text(true)).unwrap();
        assert_eq!(
            (message["reconnect"].clone(), message["fatal"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(broken.close_code(), 1011);
        let frame = SocketError::new(ErrorCode::Validation, "bad frame");
        let message: Value = serde_json::from_str(&frame.text(false)).unwrap();
        assert_eq!(message["fatal"], false);
    }

    #[test]
    fn internal_causes_are_not_answered() {
        let error: ApiError = anyhow::anyhow!("secret detail").into();
        assert_eq!(error.code, ErrorCode::Internal);
        assert_eq!(error.message, "internal server error");
        assert!(error.source.is_some());
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
