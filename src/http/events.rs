//! `/api/v1/events`: the raw event stream in global log order, for auditors and tools:
//! filtered by aggregate, event type, actor and time, as pages or as one NDJSON stream.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dcp_projections::{EventFilter, GlobalLogReader, LogCursor, StoredEvent};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Return events after the event at this global position (0 or absent: from the start).
    pub after: Option<i64>,
    /// At most this many events (1–1000, default 100; with NDJSON: no limit by default).
    pub limit: Option<i64>,
    /// Only events of this aggregate type (`user`, `container`, …).
    pub aggregate_type: Option<String>,
    /// Only events of this aggregate (with `aggregate_type`).
    pub aggregate_id: Option<String>,
    /// Only events of this type (`ContainerStarted`, …).
    pub event_type: Option<String>,
    /// Only events caused by this actor (user id or username).
    pub actor: Option<String>,
    /// Only events recorded at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only events recorded at or before this time (RFC 3339).
    pub until: Option<String>,
    /// `json` (default: one page) or `ndjson` (every matching event, streamed; also chosen
    /// by `Accept: application/x-ndjson`).
    pub format: Option<String>,
}

fn name_like(field: &'static str, value: &Option<String>, max: usize) -> ApiResult<()> {
    match value {
        Some(v)
            if v.is_empty()
                || v.len() > max
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Err(ApiError::validation(
                field,
                format!("{field} is letters, digits and '_' (at most {max})"),
            ))
        }
        _ => Ok(()),
    }
}

fn time(
    field: &'static str,
    value: &Option<String>,
) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    value
        .as_deref()
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::validation(field, "an RFC 3339 time (2026-11-26T10:00:00Z)"))
        })
        .transpose()
}

impl EventsQuery {
    fn filter(&self) -> ApiResult<EventFilter> {
        name_like("aggregate_type", &self.aggregate_type, 64)?;
        name_like("event_type", &self.event_type, 128)?;
        for (field, value) in [("aggregate_id", &self.aggregate_id), ("actor", &self.actor)] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.len() > 255 || v.chars().any(char::is_control))
            {
                return Err(ApiError::validation(
                    field,
                    format!("{field} is 1 to 255 printable characters"),
                ));
            }
        }
        if self.aggregate_id.is_some() && self.aggregate_type.is_none() {
            return Err(ApiError::validation(
                "aggregate_id",
                "aggregate_id needs aggregate_type",
            ));
        }
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until) {
            if until < since {
                return Err(ApiError::validation("until", "until is before since"));
            }
        }
        Ok(EventFilter {
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            event_type: self.event_type.clone(),
            actor: self.actor.clone(),
            since,
            until,
        })
    }
}

/// One stored event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub global_position: i64,
    pub event_id: uuid::Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        EventView {
            global_position: e.global_position,
            event_id: e.event_id,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `after` to continue; equals the request's `after` when nothing new was found.
    pub next_after: i64,
}

/// Events in global log order after a position, optionally filtered; one JSON page, or
/// every matching event as NDJSON (one event per line, streamed).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, description = "a page (JSON) or every matching event (NDJSON)",
        content((EventPage = "application/json"), (EventView = "application/x-ndjson"))),
        (status = 400)))]
async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Response> {
    let ndjson = match query.format.as_deref() {
        Some("ndjson") => true,
        Some("json") => false,
        Some(_) => return Err(ApiError::validation("format", "format is json or ndjson")),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("application/x-ndjson")),
    };
    let filter = query.filter()?;
    let after = query.after.unwrap_or(0);
    let limit = match (query.limit, ndjson) {
        (Some(limit), true) if limit >= 1 => limit,
        (None, true) => i64::MAX,
        (Some(limit), false) if (1..=1000).contains(&limit) => limit,
        (None, false) => 100,
        _ => {
            return Err(ApiError::validation(
                "limit",
                "limit must be between 1 and 1000 (at least 1 with NDJSON)",
            ))
        }
    };
    let cursor = match after {
        0 => LogCursor::START,
        p if p < 0 => return Err(ApiError::validation("after", "after must not be negative")),
        p => GlobalLogReader::cursor_of(&state.pool, p)
            .await?
            .ok_or_else(|| ApiError::validation("after", format!("no event at position {p}")))?,
    };
    if ndjson {
        return Ok(stream_ndjson(state.pool.clone(), cursor, filter, limit));
    }
    let mut conn = state.pool.acquire().await?;
    let events = GlobalLogReader::read_filtered(&mut conn, cursor, &filter, limit).await?;
    let next_after = events.last().map(|e| e.global_position).unwrap_or(after);
    Ok(ApiJson(EventPage {
        events: events.into_iter().map(EventView::from).collect(),
        next_after,
    })
    .into_response())
}

/// Every matching event from `cursor` to the head of the log as it is when each batch is
/// read, one JSON object per line. A failure mid-stream ends the body early (the status
/// has been sent): a client sees a truncated last line or a closed connection.
fn stream_ndjson(pool: PgPool, cursor: LogCursor, filter: EventFilter, limit: i64) -> Response {
    let lines = futures_util::stream::unfold(Some((pool, cursor, limit)), move |state| {
        let filter = filter.clone();
        async move {
            let (pool, cursor, remaining) = state?;
            if remaining <= 0 {
                return None;
            }
            let batch = async {
                let mut conn = pool.acquire().await?;
                GlobalLogReader::read_filtered(&mut conn, cursor, &filter, remaining.min(1000))
                    .await
            }
            .await;
            match batch {
                Err(error) => {
                    tracing::warn!(%error, "event stream ended early");
                    Some((Err(error), None))
                }
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    let next = events.last().map(StoredEvent::cursor).unwrap_or(cursor);
                    let mut text = String::new();
                    for event in &events {
                        if let Ok(line) = serde_json::to_string(&EventView::from(event.clone())) {
                            text.push_str(&line);
                            text.push('\n');
                        }
                    }
                    let left = remaining - events.len() as i64;
                    Some((Ok(text), Some((pool, next, left))))
                }
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}
