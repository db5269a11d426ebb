//! `/api/v1/events`: the raw event stream in global log order, for auditors and tools.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dcp_projections::{GlobalLogReader, LogCursor, StoredEvent};

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
    /// At most this many events (1–1000, default 100).
    pub limit: Option<i64>,
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

/// Events in global log order after a position.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventsQuery), responses((status = 200, body = EventPage)))]
async fn list_events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<ApiJson<EventPage>> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    let cursor = match after {
        0 => LogCursor::START,
        p if p < 0 => return Err(ApiError::validation("after", "after must not be negative")),
        p => GlobalLogReader::cursor_of(&state.pool, p)
            .await?
            .ok_or_else(|| ApiError::validation("after", format!("no event at position {p}")))?,
    };
    let mut conn = state.pool.acquire().await?;
    let events = GlobalLogReader::read_batch(&mut conn, cursor, limit).await?;
    let next_after = events.last().map(|e| e.global_position).unwrap_or(after);
    Ok(ApiJson(EventPage {
        events: events.into_iter().map(EventView::from).collect(),
        next_after,
    }))
}
