//! Lookups in the log by what its events carry: the server asks these of the store itself
//! when a read model may lag or never held the answer (an operation's request, a removed
//! container's Docker id, a host's former name). Each query narrows by event type first,
//! with the names the events declare beside themselves (see
//! [`OperationEventTypes`](dcp_aggregates::operation::OperationEventTypes)), and reads a
//! payload only to decide what it matches.

use cqrs_es::Aggregate;
use dcp_aggregates::container::{Container, ContainerEvent};
use dcp_aggregates::host::HostEvent;
use dcp_aggregates::network::{Network, NetworkEvent};
use dcp_aggregates::operation::operation_event_types;
use dcp_aggregates::session::SessionEvent;
use dcp_aggregates::user::UserEvent;
use dcp_aggregates::AnyEvent;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::log::{event_from_row, GlobalLogReader, LogCursor, StoredEvent, SELECT_COLUMNS};

/// A Docker operation without an outcome: its request, typed, and how long it has been
/// quiet.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The operation.
    pub op_id: Uuid,
    /// The aggregate the operation was requested on.
    pub aggregate_id: String,
    /// The request (`ContainerStopRequested`, `ImagePullRequested`, …) in its current shape.
    pub request: AnyEvent,
    /// Seconds since the request was recorded, by the database's clock.
    pub age_secs: f64,
    /// Seconds since the operation last reported progress (pulls), if it ever did.
    pub progress_age_secs: Option<f64>,
}

/// What the store says now of some users and sessions, read from their own streams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessStanding {
    /// The sessions among those asked about that were logged out or revoked.
    pub ended_sessions: Vec<Uuid>,
    /// Per user asked about who was ever demoted, deactivated or deleted: where they stand.
    pub users: Vec<(Uuid, UserStanding)>,
}

/// Where a user stands after their last access change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStanding {
    /// The role of the last role change, if there was one.
    pub role: Option<String>,
    /// Deactivated (and not reactivated since) or deleted.
    pub barred: bool,
}

impl GlobalLogReader {
    /// Where `users` and `sessions` stand, from their own streams in the store: no read
    /// model, no bus and no log horizon in between, so what is committed counts at once
    /// (the socket revoker's check).
    pub async fn access_standing(
        pool: &PgPool,
        users: &[Uuid],
        sessions: &[Uuid],
    ) -> Result<AccessStanding, sqlx::Error> {
        let text = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>();
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, event_type, \
             payload::jsonb -> event_type ->> 'to' AS role FROM events \
             WHERE (aggregate_type = 'session' AND aggregate_id = ANY($1) AND event_type = ANY($2)) \
             OR (aggregate_type = 'user' AND aggregate_id = ANY($3) AND event_type = ANY($4)) \
             ORDER BY aggregate_type, aggregate_id, sequence",
        )
        .bind(text(sessions))
        .bind(SessionEvent::ENDING.to_vec())
        .bind(text(users))
        .bind(UserEvent::ACCESS.to_vec())
        .fetch_all(pool)
        .await?;
        let mut standing = AccessStanding::default();
        for row in rows {
            let Ok(id) = row.get::<String, _>("aggregate_id").parse::<Uuid>() else {
                continue;
            };
            if row.get::<String, _>("aggregate_type") == "session" {
                standing.ended_sessions.push(id);
                continue;
            }
            if standing.users.last().map(|(user, _)| *user) != Some(id) {
                standing.users.push((
                    id,
                    UserStanding {
                        role: None,
                        barred: false,
                    },
                ));
            }
            let Some((_, user)) = standing.users.last_mut() else {
                continue;
            };
            let [changed, _, reactivated, _] = UserEvent::ACCESS;
            match row.get::<String, _>("event_type").as_str() {
                t if t == changed => user.role = row.get("role"),
                t if t == reactivated => user.barred = false,
                _ => user.barred = true,
            }
        }
        Ok(standing)
    }

    /// The aggregate of type `aggregate_type` on which operation `op_id` was requested as a
    /// `verb` (`create`, `recreate`, …), if it was; `None` also for a verb the resource has
    /// no operation for.
    pub async fn aggregate_requesting(
        pool: &PgPool,
        aggregate_type: &str,
        verb: &str,
        op_id: Uuid,
    ) -> Result<Option<String>, sqlx::Error> {
        let Some(request_type) =
            operation_event_types(aggregate_type).and_then(|types| types.request_for(verb))
        else {
            return Ok(None);
        };
        sqlx::query_scalar(
            "SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND event_type = $2 \
             AND payload::jsonb -> event_type ->> 'op_id' = $3 LIMIT 1",
        )
        .bind(aggregate_type)
        .bind(request_type)
        .bind(op_id.to_string())
        .fetch_optional(pool)
        .await
    }

    /// Whether the outcome of operation `op_id` is recorded on aggregate `aggregate_id`.
    pub async fn outcome_recorded(
        pool: &PgPool,
        aggregate_type: &str,
        aggregate_id: &str,
        op_id: Uuid,
    ) -> Result<bool, sqlx::Error> {
        let outcomes =
            operation_event_types(aggregate_type).map_or(&[][..], |types| types.outcomes);
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND event_type = ANY($3) AND payload::jsonb -> event_type ->> 'op_id' = $4)",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(outcomes)
        .bind(op_id.to_string())
        .fetch_one(pool)
        .await
    }

    /// The requests of the operations of `resource_types` the operations read model shows
    /// pending, in one query: each found in the store by its operation id, whatever was
    /// recorded on the aggregate after it (an observed change does not hide it). A request
    /// this build cannot read (a newer dcp's) is logged and left pending.
    pub async fn pending_requests(
        pool: &PgPool,
        resource_types: &[&str],
    ) -> Result<Vec<PendingRequest>, sqlx::Error> {
        let request_types: Vec<&str> = resource_types
            .iter()
            .filter_map(|resource_type| operation_event_types(resource_type))
            .flat_map(|types| types.request_types())
            .collect();
        // Ages by the database's clock, as the request times are. An operation whose
        // request is of no type this build knows comes with an empty request.
        let sql = format!(
            "SELECT o.id AS op_id, o.resource_type AS pending_type, o.aggregate_id AS pending_aggregate, \
             EXTRACT(EPOCH FROM now() - e.recorded_at)::float8 AS age_secs, \
             (SELECT EXTRACT(EPOCH FROM now() - p.updated_at)::float8 FROM operation_progress p WHERE p.op_id = o.id) AS progress_age_secs, \
             e.* FROM operations o LEFT JOIN LATERAL ( \
                 SELECT {SELECT_COLUMNS} FROM events \
                 WHERE aggregate_type = o.resource_type AND aggregate_id = o.aggregate_id \
                 AND event_type = ANY($2) AND payload::jsonb -> event_type ->> 'op_id' = o.id::text \
                 ORDER BY sequence DESC LIMIT 1) e ON true \
             WHERE o.status = 'pending' AND o.resource_type = ANY($1)"
        );
        let rows = sqlx::query(&sql)
            .bind(resource_types)
            .bind(&request_types)
            .fetch_all(pool)
            .await?;
        let mut requests = Vec::with_capacity(rows.len());
        for row in &rows {
            let op_id: Uuid = row.try_get("op_id")?;
            let found: Option<i64> = row.try_get("global_position")?;
            let request = match found {
                Some(_) => typed_request(event_from_row(row)?),
                None => Err("no request of a type this build of dcp knows carries its id".into()),
            };
            match request {
                Ok(request) => requests.push(PendingRequest {
                    op_id,
                    aggregate_id: row.try_get("pending_aggregate")?,
                    request,
                    age_secs: row.try_get("age_secs")?,
                    progress_age_secs: row.try_get("progress_age_secs")?,
                }),
                Err(reason) => {
                    let resource_type: String = row.try_get("pending_type")?;
                    let aggregate_id: String = row.try_get("pending_aggregate")?;
                    tracing::warn!(%op_id, %resource_type, %aggregate_id, %reason,
                        "a pending operation's request cannot be read; it is left pending");
                }
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
        let recording: &[&str] = match (aggregate_type, field) {
            (Container::TYPE, "docker_id") => ContainerEvent::RECORDING_DOCKER_ID,
            (Network::TYPE, "network_id") => NetworkEvent::RECORDING_NETWORK_ID,
            // No other resource's events record a Docker id in that field.
            _ => return Ok(Vec::new()),
        };
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1 \
             AND event_type = ANY($2) AND payload::jsonb -> event_type ->> $3 LIKE $4 || '%' LIMIT $5",
        )
        .bind(aggregate_type)
        .bind(recording)
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
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'host' AND event_type = ANY($2) \
             AND lower(COALESCE(payload::jsonb -> event_type -> 'spec' ->> 'name', payload::jsonb -> event_type ->> 'name')) = lower($1) \
             ORDER BY global_position DESC LIMIT 1",
        )
        .bind(name)
        .bind(HostEvent::NAMING)
        .fetch_optional(pool)
        .await
    }
}

/// A pending operation's request in its current shape, typed; why not, when this build
/// cannot read it.
fn typed_request(mut event: StoredEvent) -> Result<AnyEvent, String> {
    let position = event.global_position;
    event
        .upcast()
        .map_err(|reason| format!("position {position}: {reason}"))?;
    match event.decode_any() {
        Ok(Some(request)) => Ok(request),
        Ok(None) => Err(format!(
            "no events of aggregate type '{}'",
            event.aggregate_type
        )),
        Err(error) => Err(format!(
            "{} at position {} does not decode: {error}",
            event.event_type, event.global_position
        )),
    }
}
