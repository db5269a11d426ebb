//! Read-your-writes: command responses carry the global position of their events
//! (`X-Dcp-Position`), and reads given `X-Dcp-Min-Position` wait until the read models
//! they use have applied that position.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use crate::accounts::Answer;
use crate::read_models::ReadModels;

/// Response header: the global position of the last event a command wrote.
pub const POSITION_HEADER: &str = "x-dcp-position";
/// Request header: wait until the read models have applied this position.
pub const MIN_POSITION_HEADER: &str = "x-dcp-min-position";

/// The position a read must see (`X-Dcp-Min-Position`), if the client sent one.
pub fn min_position(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(MIN_POSITION_HEADER) else {
        return Ok(None);
    };
    let position = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|p: &i64| *p >= 0)
        .ok_or_else(|| {
            ApiError::validation(
                MIN_POSITION_HEADER,
                "must be a non-negative integer position",
            )
        })?;
    Ok(Some(position))
}

/// Honours `X-Dcp-Min-Position` on a read: waits until `projections` have applied it.
pub async fn settle_request(
    reads: &ReadModels,
    headers: &HeaderMap,
    projections: &[&str],
) -> ApiResult<()> {
    match min_position(headers)? {
        Some(position) => Ok(reads.settle_at(position, projections).await?),
        None => Ok(()),
    }
}

/// `Prefer: return=minimal` (RFC 7240) asks a command to answer as soon as its events are
/// committed, with the position and no representation, instead of waiting for the read
/// model to show the result.
pub fn answer_wanted(headers: &HeaderMap) -> Answer {
    let minimal = headers
        .get_all(axum::http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("return=minimal"));
    if minimal {
        Answer::Committed
    } else {
        Answer::Shown
    }
}

/// Marks a response that honoured `Prefer: return=minimal`.
pub const PREFERENCE_APPLIED: (&str, &str) = ("preference-applied", "return=minimal");

/// A response that carries the position its command wrote at.
pub struct Positioned<T>(pub Option<i64>, pub T);

impl<T: IntoResponse> IntoResponse for Positioned<T> {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        if let Some(position) = self.0 {
            if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(POSITION_HEADER), value);
            }
        }
        response
    }
}
