//! The raw event stream in global log order, for auditors and tools: filtered by
//! aggregate, event type, actor and time, as pages or as one NDJSON stream.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use dcp_projections::{EventFilter, GlobalLogReader, LogCursor, StoredEvent};

use super::{History, HistoryError};

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

/// What an events query answers: a page, or every matching event as NDJSON lines.
pub enum EventsAnswer {
    Page(EventPage),
    Lines(futures_util::stream::BoxStream<'static, Result<String, sqlx::Error>>),
}

impl History {
    /// The events after `query.after` matching it: one page, or (`ndjson`) every one of them.
    #[tracing::instrument(skip_all, fields(after = query.after, ndjson = ndjson), err(level = "debug"))]
    pub async fn events(
        &self,
        query: EventsQuery,
        ndjson: bool,
    ) -> Result<EventsAnswer, HistoryError> {
        let filter = query.filter()?;
        let after = query.after.unwrap_or(0);
        let limit = match (query.limit, ndjson) {
            (Some(limit), true) if limit >= 1 => limit,
            (None, true) => i64::MAX,
            (Some(limit), false) if (1..=1000).contains(&limit) => limit,
            (None, false) => 100,
            _ => {
                return Err(HistoryError::invalid(
                    "limit",
                    "limit must be between 1 and 1000 (at least 1 with NDJSON)",
                ))
            }
        };
        let pool = self.reads.pool();
        let cursor = match after {
            0 => LogCursor::START,
            p if p < 0 => return Err(HistoryError::invalid("after", "after must not be negative")),
            p => GlobalLogReader::cursor_of(pool, p).await?.ok_or_else(|| {
                HistoryError::invalid("after", format!("no event at position {p}"))
            })?,
        };
        if ndjson {
            let lines = ndjson_lines(pool.clone(), cursor, filter, limit);
            return Ok(EventsAnswer::Lines(Box::pin(lines)));
        }
        let mut conn = pool.acquire().await?;
        let events = GlobalLogReader::read_filtered(&mut conn, cursor, &filter, limit).await?;
        let next_after = events.last().map(|e| e.global_position).unwrap_or(after);
        Ok(EventsAnswer::Page(EventPage {
            events: events.into_iter().map(EventView::from).collect(),
            next_after,
        }))
    }
}

/// Whether the events query's `format` (else the `Accept` header) asks for NDJSON.
pub fn wants_ndjson(format: Option<&str>, accept: Option<&str>) -> Result<bool, HistoryError> {
    match format {
        Some("ndjson") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(HistoryError::invalid("format", "format is json or ndjson")),
        None => Ok(accept.is_some_and(|accept| accept.contains("application/x-ndjson"))),
    }
}

fn name_like(field: &'static str, value: &Option<String>, max: usize) -> Result<(), HistoryError> {
    match value {
        Some(v)
            if v.is_empty()
                || v.len() > max
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Err(HistoryError::invalid(
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
) -> Result<Option<chrono::DateTime<chrono::Utc>>, HistoryError> {
    value
        .as_deref()
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    HistoryError::invalid(field, "an RFC 3339 time (2026-11-26T10:00:00Z)")
                })
        })
        .transpose()
}

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter, HistoryError> {
        name_like("aggregate_type", &self.aggregate_type, 64)?;
        name_like("event_type", &self.event_type, 128)?;
        for (field, value) in [("aggregate_id", &self.aggregate_id), ("actor", &self.actor)] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.len() > 255 || v.chars().any(char::is_control))
            {
                return Err(HistoryError::invalid(
                    field,
                    format!("{field} is 1 to 255 printable characters"),
                ));
            }
        }
        if self.aggregate_id.is_some() && self.aggregate_type.is_none() {
            return Err(HistoryError::invalid(
                "aggregate_id",
                "aggregate_id needs aggregate_type",
            ));
        }
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until) {
            if until < since {
                return Err(HistoryError::invalid("until", "until is before since"));
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

/// Every matching event from `cursor` to the head of the log as it is when each batch is
/// read, one JSON object per line. A failure mid-stream ends the body early (the status
/// has been sent): a client sees a truncated last line or a closed connection.
fn ndjson_lines(
    pool: PgPool,
    cursor: LogCursor,
    filter: EventFilter,
    limit: i64,
) -> impl futures_util::Stream<Item = Result<String, sqlx::Error>> {
    futures_util::stream::unfold(Some((pool, cursor, limit)), move |state| {
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
    })
}
