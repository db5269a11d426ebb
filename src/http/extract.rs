//! Our own extractors: their rejections are `ApiError`s in the documented format.
//!
//! - [`ApiJson`] requires `application/json`, rejects unknown, duplicate and
//!   mistyped fields (request types use `deny_unknown_fields`) and names the field.
//! - [`ApiPath`] and [`ApiQuery`] turn bad path or query values into 400s.
//! - [`Auth`] is the authenticated caller put in place by the permission middleware.
//! - [`CommandMeta`] gathers actor, request id, IP and user agent for event metadata.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::context::RequestContext;
use super::error::{ApiError, ErrorCode};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;

/// A JSON body that must parse into `T` exactly.
pub struct ApiJson<T>(pub T);

fn json_content_type(parts_headers: &axum::http::HeaderMap) -> bool {
    parts_headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// True when a JSON text contains the escape `\u0000`: PostgreSQL text cannot hold NUL,
/// so such input is refused up front rather than failing deep inside a write.
fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000".as_slice())
            {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// serde names the field itself in its message for unknown, missing and duplicate fields.
fn field_named_in(message: &str) -> Option<String> {
    ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| {
            message
                .split_once(prefix)
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(name, _)| name.to_string())
        })
}

/// serde quotes the value it refused (`invalid type: string "hunter2", expected …`): the
/// value can be a secret (a password in the wrong place), and the message is answered and
/// logged, so only its kind is kept.
fn without_values(message: &str) -> String {
    let mut out = message.to_string();
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(start) = out.find(prefix).map(|i| i + prefix.len()) else {
            continue;
        };
        let rest = &out[start..];
        // `string "…"` (Debug-escaped), or `integer `…``, `floating point `…``, …
        let (kind, end) = if let Some(quoted) = rest.strip_prefix("string \"") {
            let mut escaped = false;
            let close = quoted.char_indices().find_map(|(i, c)| {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => return Some(i),
                    _ => {}
                }
                None
            });
            match close {
                Some(i) => ("string", "string \"".len() + i + 1),
                None => continue,
            }
        } else if let Some(tick) = rest.find(" `") {
            match rest[tick + 2..].find('`') {
                Some(close) => (&rest[..tick], tick + 2 + close + 1),
                None => continue,
            }
        } else {
            continue;
        };
        let kind = kind.to_string();
        out.replace_range(start..start + end, &kind);
    }
    out
}

/// Turns a serde error into a 400 that names the offending field.
pub fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = without_values(&inner.to_string());
    let field = match (field_named_in(&message), path.as_str()) {
        (Some(name), "." | "") => Some(name),
        // For unknown fields the path already ends with the field itself.
        (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => {
            Some(path.to_string())
        }
        (Some(name), parent) => Some(format!("{parent}.{name}")),
        // serde_path_to_error writes `?` for a position it cannot name.
        (None, "." | "" | "?") => None,
        (None, path) => Some(path.to_string()),
    };
    let summary = if inner.is_syntax() || inner.is_eof() {
        format!("malformed JSON: {message}")
    } else {
        format!("invalid request body: {message}")
    };
    let mut error = ApiError::new(ErrorCode::Validation, summary);
    error.field = field;
    error
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(request.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a request body strictly: no NUL characters, nothing after the value.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Only objects: serde would otherwise fill a struct from a positional array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            ErrorCode::Validation,
            "the request body must be a JSON object",
        ));
    }
    if has_nul_escape(bytes) {
        return Err(ApiError::new(
            ErrorCode::Validation,
            "strings must not contain NUL characters (\\u0000)",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer
        .end()
        .map_err(|e| ApiError::new(ErrorCode::Validation, format!("malformed JSON: {e}")))?;
    Ok(value)
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; a value that does not parse is a 400 naming the parameter.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let message = error.body_text();
                Err(ApiError::new(
                    ErrorCode::Validation,
                    format!("invalid path parameter: {message}"),
                )
                .with_field("id"))
            }
            Err(other) => Err(ApiError::new(ErrorCode::Validation, other.body_text())),
        }
    }
}

/// Query parameters; unknown or malformed ones are a 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::validation(
                name.replace('\0', ""),
                "query parameters must not contain NUL characters",
            ));
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                let field = field_named_in(&message)
                    .or_else(|| (!matches!(path.as_str(), "." | "" | "?")).then_some(path.clone()));
                let message = match &field {
                    Some(field) if !message.contains(field.as_str()) => {
                        format!("invalid query parameter '{field}': {message}")
                    }
                    _ => format!("invalid query: {message}"),
                };
                let mut error = ApiError::new(ErrorCode::Validation, message);
                error.field = field;
                error
            })
    }
}

/// An optional JSON body: no body at all is `None`; any body must be JSON with the JSON
/// content type and follows the same rules as [`ApiJson`].
pub struct OptionalApiJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = json_content_type(request.headers());
        let bytes = read_body(request, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalApiJson(None));
        }
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        parse_json(&bytes).map(|value| OptionalApiJson(Some(value)))
    }
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
            } else {
                ApiError::new(
                    ErrorCode::Validation,
                    format!("could not read the request body: {rejection}"),
                )
            }
        })
}

/// The authenticated caller. Present on every route that is not public.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::authentication("authentication required"))
    }
}

fn context_of(parts: &Parts) -> RequestContext {
    parts
        .extensions
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_ip: None,
            user_agent: None,
        })
}

impl<S: Send + Sync> FromRequestParts<S> for CommandMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let context = context_of(parts);
        let principal = parts.extensions.get::<Principal>().cloned();
        Ok(CommandMeta::from_request(&context, principal.as_ref()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(context_of(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn refused_values_are_not_quoted_back() {
        assert_eq!(
            super::without_values(
                r#"invalid type: string "hunter\"2, expected", expected struct AuthRequest at line 1 column 9"#
            ),
            "invalid type: string, expected struct AuthRequest at line 1 column 9"
        );
        assert_eq!(
            super::without_values("invalid type: integer `123456`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            super::without_values("invalid value: floating point `1.5`, expected u16"),
            "invalid value: floating point, expected u16"
        );
        assert_eq!(
            super::without_values("missing field `name` at line 1 column 2"),
            "missing field `name` at line 1 column 2"
        );
    }

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(has_nul_escape(br#"{"a":"x\u0000y"}"#));
        assert!(has_nul_escape(br#"{"a\u0000":1}"#));
        assert!(!has_nul_escape(br#"{"a":"x\\u0000y"}"#));
        assert!(!has_nul_escape(br#"{"a":"\u0001"}"#));
    }
}
