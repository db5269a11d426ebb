//! Read-your-writes: command responses carry the global position of their events
//! (`X-Dcp-Position`), and reads given `X-Dcp-Min-Position` wait until the read models
//! they use have applied that position.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use dcp_projections::{GlobalLogReader, LogCursor};

use super::error::{ApiError, ApiResult, ErrorCode};
use super::AppState;

/// Response header: the global position of the last event a command wrote.
pub const POSITION_HEADER: &str = "x-dcp-position";
/// Request header: wait until the read models have applied this position.
pub const MIN_POSITION_HEADER: &str = "x-dcp-min-position";

/// How long a request waits for a read model before answering 503.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Projections read by the users API (and auth).
pub const USERS: &[&str] = &["users"];
/// Projections read when authenticating.
pub const SESSIONS: &[&str] = &["sessions", "users"];
/// The audit log.
pub const AUDIT: &[&str] = &["audit_log"];

impl AppState {
    /// Waits until `projections` have applied `cursor`.
    pub async fn settle(
        &self,
        cursor: Option<LogCursor>,
        projections: &[&str],
    ) -> ApiResult<Option<i64>> {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        if self
            .progress
            .wait_for(projections, cursor, SETTLE_TIMEOUT)
            .await?
        {
            return Ok(Some(cursor.position));
        }
        Err(ApiError::new(
            ErrorCode::ReadModelLagging,
            format!(
                "the change was recorded at position {} but the read model has not caught up yet; retry the read with {MIN_POSITION_HEADER}",
                cursor.position
            ),
        )
        .with_details(serde_json::json!({ "position": cursor.position })))
    }

    /// Waits until `projections` have applied every event committed so far.
    pub async fn settle_to_head(&self, projections: &[&str]) -> ApiResult<()> {
        let head: Option<i64> = sqlx::query_scalar(
            "SELECT global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if let Some(head) = head {
            let cursor = GlobalLogReader::cursor_of(&self.pool, head).await?;
            self.settle(cursor, projections).await?;
        }
        Ok(())
    }

    /// Honours `X-Dcp-Min-Position` on a read.
    pub async fn settle_request(&self, headers: &HeaderMap, projections: &[&str]) -> ApiResult<()> {
        let Some(value) = headers.get(MIN_POSITION_HEADER) else {
            return Ok(());
        };
        let position: i64 = value
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
        if position == 0 {
            return Ok(());
        }
        let cursor = GlobalLogReader::cursor_of(&self.pool, position)
            .await?
            .ok_or_else(|| {
                ApiError::validation(
                    MIN_POSITION_HEADER,
                    format!("no event at position {position}"),
                )
            })?;
        self.settle(Some(cursor), projections).await.map(|_| ())
    }
}

/// True when the client sent `Prefer: return=minimal` (RFC 7240): the command answers as
/// soon as its events are committed, with the position and no representation, instead of
/// waiting for the read model to show the result.
pub fn wants_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("return=minimal"))
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
