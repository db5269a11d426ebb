//! Lookups in the log by what its events carry: the server asks these of the store itself
//! when a read model may lag or never held the answer (an operation's request, a removed
//! container's Docker id, a host's former name). Which events are an operation's request
//! or outcome is the events' own word ([`OperationEvent`]), not a pattern on their names.

use chrono::{DateTime, Utc};
use dcp_aggregates::operation::{OperationEvent, OperationPhase};
use sqlx::PgPool;
use uuid::Uuid;

use crate::log::{event_from_row, GlobalLogReader, LogCursor, StoredEvent, SELECT_COLUMNS};

/// A Docker operation without an outcome: its request event and how long it has been
/// quiet.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The request (in its current shape).
    pub event: StoredEvent,
    /// Seconds since the request was recorded.
    pub age_secs: f64,
    /// Seconds since the operation last reported progress (pulls), if it ever did.
    pub progress_age_secs: Option<f64>,
}

impl PendingRequest {
    /// The request's fields (`{"op_id": …, …}`).
    pub fn fields(&self) -> serde_json::Value {
        self.event
            .payload
            .get(&self.event.event_type)
            .cloned()
            .unwrap_or_default()
    }
}

impl GlobalLogReader {
    /// The events of aggregates of `aggregate_type` that carry operation `op_id` (its
    /// request and its outcome), in log order and current shapes.
    async fn operation_events(
        pool: &PgPool,
        aggregate_type: &str,
        aggregate_id: Option<&str>,
        op_id: Uuid,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = $1 \
             AND ($2::text IS NULL OR aggregate_id = $2) \
             AND payload::jsonb -> event_type ->> 'op_id' = $3 ORDER BY global_position"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(op_id.to_string())
            .fetch_all(pool)
            .await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for event in &mut events {
            // An event this build cannot bring up to date is no operation it knows.
            let _ = event.upcast();
        }
        Ok(events)
    }

    /// The aggregate of type `aggregate_type` on which operation `op_id` was requested as a
    /// `verb` (`create`, `recreate`, …), if it was.
    pub async fn aggregate_requesting(
        pool: &PgPool,
        aggregate_type: &str,
        verb: &str,
        op_id: Uuid,
    ) -> Result<Option<String>, sqlx::Error> {
        let events = Self::operation_events(pool, aggregate_type, None, op_id).await?;
        Ok(events
            .into_iter()
            .find(|event| {
                step_of(event).is_some_and(|(phase, step_verb)| {
                    phase == OperationPhase::Requested && step_verb == verb
                })
            })
            .map(|event| event.aggregate_id))
    }

    /// Whether the outcome of operation `op_id` is recorded on aggregate `aggregate_id`.
    pub async fn outcome_recorded(
        pool: &PgPool,
        aggregate_type: &str,
        aggregate_id: &str,
        op_id: Uuid,
    ) -> Result<bool, sqlx::Error> {
        let events =
            Self::operation_events(pool, aggregate_type, Some(aggregate_id), op_id).await?;
        Ok(events.iter().any(|event| {
            step_of(event).is_some_and(|(phase, _)| phase != OperationPhase::Requested)
        }))
    }

    /// The requests of the operations of `resource_types` the operations read model shows
    /// pending: each found in the store by its operation id, whatever was recorded on the
    /// aggregate after it (an observed change does not hide it).
    pub async fn pending_requests(
        pool: &PgPool,
        resource_types: &[&str],
    ) -> Result<Vec<PendingRequest>, sqlx::Error> {
        type Pending = (Uuid, String, String, DateTime<Utc>, Option<f64>);
        let pending: Vec<Pending> = sqlx::query_as(
            "SELECT o.id, o.resource_type, o.aggregate_id, o.requested_at, \
             (SELECT EXTRACT(EPOCH FROM now() - p.updated_at)::float8 FROM operation_progress p WHERE p.op_id = o.id) \
             FROM operations o WHERE o.status = 'pending' AND o.resource_type = ANY($1)",
        )
        .bind(resource_types)
        .fetch_all(pool)
        .await?;
        // Ages by the database's clock, as the request times are.
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(pool).await?;
        let mut requests = Vec::new();
        for (op_id, resource_type, aggregate_id, _, progress_age_secs) in pending {
            let events =
                Self::operation_events(pool, &resource_type, Some(&aggregate_id), op_id).await?;
            let request = events.into_iter().rev().find(|event| {
                step_of(event).is_some_and(|(phase, _)| phase == OperationPhase::Requested)
            });
            if request.is_none() {
                // A request this build cannot read (a newer dcp's): the operation stays
                // pending, and says why at each pass.
                tracing::warn!(%op_id, %resource_type, %aggregate_id,
                    "a pending operation's request cannot be read; it is left pending");
            }
            if let Some(event) = request {
                let age_secs = (now - event.recorded_at).num_milliseconds() as f64 / 1000.0;
                requests.push(PendingRequest {
                    event,
                    age_secs,
                    progress_age_secs,
                });
            }
        }
        Ok(requests)
    }

    /// The aggregates of `aggregate_type` whose events ever recorded `field` (a Docker id)
    /// starting with `prefix`: a removed container or network by (a prefix of) its id. At
    /// most `limit`.
    pub async fn aggregates_with_id_prefix(
        pool: &PgPool,
        aggregate_type: &str,
        field: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1 \
             AND payload::jsonb -> event_type ->> $2 LIKE $3 || '%' LIMIT $4",
        )
        .bind(aggregate_type)
        .bind(field)
        .bind(escaped)
        .bind(limit)
        .fetch_all(pool)
        .await
    }

    /// The cursor of the newest event committed (in log order), if there is one.
    pub async fn head(pool: &PgPool) -> Result<Option<LogCursor>, sqlx::Error> {
        let head: Option<i64> = sqlx::query_scalar(
            "SELECT global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?;
        match head {
            Some(position) => Self::cursor_of(pool, position).await,
            None => Ok(None),
        }
    }

    /// Whether aggregate `aggregate_id` of `aggregate_type` has any event.
    pub async fn aggregate_exists(
        pool: &PgPool,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(pool)
        .await
    }

    /// Whether any aggregate of `aggregate_type` was ever recorded.
    pub async fn any_aggregate(pool: &PgPool, aggregate_type: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1)")
            .bind(aggregate_type)
            .fetch_one(pool)
            .await
    }

    /// The host last registered or renamed `name` (case-insensitively), whatever it is
    /// called now.
    pub async fn host_once_named(pool: &PgPool, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'host' \
             AND lower(COALESCE(payload::jsonb -> event_type -> 'spec' ->> 'name', payload::jsonb -> event_type ->> 'name')) = lower($1) \
             ORDER BY global_position DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await
    }
}

/// The phase and verb of the operation step `event` records, if it is one.
fn step_of(event: &StoredEvent) -> Option<(OperationPhase, String)> {
    let any = event.decode_any().ok().flatten()?;
    any.operation()
        .map(|step| (step.phase, step.verb.to_string()))
}
