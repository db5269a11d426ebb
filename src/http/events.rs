//! `/api/v1/events`: the raw event stream in global log order, for auditors and tools; the
//! work is the history service's ([`crate::history`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery};
use crate::history::{wants_ndjson, EventPage, EventView, EventsAnswer, EventsQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
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
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let ndjson = wants_ndjson(query.format.as_deref(), accept)?;
    Ok(match state.history.events(query, ndjson).await? {
        EventsAnswer::Page(page) => ApiJson(page).into_response(),
        EventsAnswer::Lines(lines) => (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(lines),
        )
            .into_response(),
    })
}
