//! The global log: every event in commit-safe order, for projections, the relay and replay.
//!
//! A reader asks for events after its cursor `(transaction_id, global_position)` whose
//! transaction is older than the oldest transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`). Those transactions have all ended, so no
//! event can later appear before the cursor: a plain `global_position > n` read would skip
//! an event whose transaction took its position early and committed late.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dcp_aggregates::versioning::{self, VersionError};
use dcp_aggregates::AnyEvent;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A position in the global log. Events are ordered by `(transaction_id, position)`;
/// `LogCursor::START` is before every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct LogCursor {
    /// The `xid8` of the transaction that wrote the event.
    pub transaction_id: u64,
    /// The event's `global_position`.
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: LogCursor = LogCursor {
        transaction_id: 0,
        position: 0,
    };
}

/// One event as stored, with its place in the global log.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub global_position: i64,
    pub transaction_id: u64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// This event's place in the log.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            transaction_id: self.transaction_id,
            position: self.global_position,
        }
    }

    /// A metadata value as a string, if present.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// Deserializes the payload into an aggregate's event enum.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        E::deserialize(&self.payload)
    }

    /// Deserializes the payload into its aggregate's event enum, whichever the aggregate;
    /// `Ok(None)` for an aggregate type this build has no events of.
    pub fn decode_any(&self) -> Result<Option<AnyEvent>, serde_json::Error> {
        AnyEvent::decode(&self.aggregate_type, &self.payload)
    }

    /// [`StoredEvent::decode`] for a projection, whose batch fails on an event it cannot
    /// read: the error names the event and its position.
    pub(crate) fn typed<E: serde::de::DeserializeOwned>(&self) -> anyhow::Result<E> {
        self.decode().map_err(|error| self.unreadable(error))
    }

    /// [`StoredEvent::decode_any`] for a projection, as [`StoredEvent::typed`].
    pub(crate) fn typed_any(&self) -> anyhow::Result<Option<AnyEvent>> {
        self.decode_any().map_err(|error| self.unreadable(error))
    }

    fn unreadable(&self, error: serde_json::Error) -> anyhow::Error {
        anyhow::Error::new(error).context(format!(
            "Failed to decode {} at position {}",
            self.event_type, self.global_position
        ))
    }

    /// Brings the payload to the current shape of its type (see
    /// [`dcp_aggregates::versioning`]); an event this build does not know is an error.
    pub fn upcast(&mut self) -> Result<(), VersionError> {
        let version = versioning::upcast(
            &self.aggregate_type,
            &self.event_type,
            &self.event_version,
            &mut self.payload,
        )?;
        if self.event_version != version {
            self.event_version = version.to_string();
        }
        Ok(())
    }
}

/// What a reader does with an event this build of dcp does not know (a type or a version
/// written by a newer dcp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownEvents {
    /// Live processing: log it and go on, so one newer replica cannot stop the others.
    Skip,
    /// Rebuilds and replays: stop, because the result would silently lack the event.
    Fail,
}

/// An event a rebuild cannot apply.
#[derive(Debug, thiserror::Error)]
#[error(
    "event {event_type} v{event_version} of {aggregate_type} {aggregate_id} at position {position} \
     cannot be read by this build of dcp ({reason}); upgrade dcp before rebuilding"
)]
pub struct UnreadableEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub event_version: String,
    pub reason: VersionError,
}

/// `events` in their current shapes: upcast where needed, and events this build does not
/// know skipped or refused by `unknown`. Borrows when nothing needs changing (the rule).
pub fn current_shapes(
    events: &[StoredEvent],
    unknown: UnknownEvents,
) -> Result<Cow<'_, [StoredEvent]>, Box<UnreadableEvent>> {
    let untouched = |e: &StoredEvent| {
        versioning::is_current(&e.aggregate_type, &e.event_type, &e.event_version)
    };
    if events.iter().all(untouched) {
        return Ok(Cow::Borrowed(events));
    }
    let mut shaped = Vec::with_capacity(events.len());
    for event in events {
        let mut event = event.clone();
        match event.upcast() {
            Ok(()) => shaped.push(event),
            Err(reason) => {
                if unknown == UnknownEvents::Fail || !reason.is_unknown() {
                    return Err(Box::new(UnreadableEvent {
                        position: event.global_position,
                        aggregate_type: event.aggregate_type,
                        aggregate_id: event.aggregate_id,
                        event_type: event.event_type,
                        event_version: event.event_version,
                        reason,
                    }));
                }
                tracing::warn!(
                    position = event.global_position,
                    aggregate_type = event.aggregate_type,
                    event_type = event.event_type,
                    event_version = event.event_version,
                    %reason,
                    "skipping an event this build of dcp does not know"
                );
            }
        }
    }
    Ok(Cow::Owned(shaped))
}

/// The columns of a [`StoredEvent`]. `transaction_id` is read as text (sqlx has no `xid8`),
/// under its own name: an `ORDER BY` must therefore name `events.transaction_id`, or it
/// would sort by the text (`"10" < "9"`) and skip events when xids gain a digit.
pub(crate) const SELECT_COLUMNS: &str = "global_position, transaction_id::text AS transaction_id, event_id, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at";

fn parse_xid(text: &str) -> Result<u64, sqlx::Error> {
    text.parse::<u64>()
        .map_err(|e| sqlx::Error::Decode(format!("bad xid8 '{text}': {e}").into()))
}

pub(crate) fn event_from_row(row: &sqlx::postgres::PgRow) -> Result<StoredEvent, sqlx::Error> {
    let transaction_id: String = row.try_get("transaction_id")?;
    Ok(StoredEvent {
        global_position: row.try_get("global_position")?,
        transaction_id: parse_xid(&transaction_id)?,
        event_id: row.try_get("event_id")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// Which events a filtered read returns (every set condition must hold).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
    /// The actor's id or username (metadata).
    pub actor: Option<String>,
    /// Recorded at or after.
    pub since: Option<DateTime<Utc>>,
    /// Recorded at or before.
    pub until: Option<DateTime<Utc>>,
}

/// Reads the global log in batches. Stateless: the caller keeps the cursor.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalLogReader;

impl GlobalLogReader {
    /// Up to `limit` events after `after`, in log order, all of whose transactions have ended.
    ///
    /// Run it outside any transaction that has written (a transaction holding an xid
    /// would hold the horizon below its own events).
    pub async fn read_batch(
        conn: &mut PgConnection,
        after: LogCursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.transaction_id, events.global_position LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.transaction_id.to_string())
            .bind(after.position)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Like [`GlobalLogReader::read_batch`], keeping only the events `filter` matches.
    pub async fn read_filtered(
        conn: &mut PgConnection,
        after: LogCursor,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
               AND ($3::text IS NULL OR aggregate_type = $3) \
               AND ($4::text IS NULL OR aggregate_id = $4) \
               AND ($5::text IS NULL OR event_type = $5) \
               AND ($6::text IS NULL OR metadata ->> 'actor_id' = $6 OR metadata ->> 'actor_username' = $6) \
               AND ($7::timestamptz IS NULL OR recorded_at >= $7) \
               AND ($8::timestamptz IS NULL OR recorded_at <= $8) \
             ORDER BY events.transaction_id, events.global_position LIMIT $9"
        );
        let rows = sqlx::query(&sql)
            .bind(after.transaction_id.to_string())
            .bind(after.position)
            .bind(&filter.aggregate_type)
            .bind(&filter.aggregate_id)
            .bind(&filter.event_type)
            .bind(&filter.actor)
            .bind(filter.since)
            .bind(filter.until)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Every event of one aggregate, in sequence order (as stored, not upcast).
    pub async fn aggregate_events(
        pool: &PgPool,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_all(pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The cursor of the event at `position`, if it exists (to turn a client's position into a cursor).
    pub async fn cursor_of(pool: &PgPool, position: i64) -> Result<Option<LogCursor>, sqlx::Error> {
        let row =
            sqlx::query("SELECT transaction_id::text AS tx FROM events WHERE global_position = $1")
                .bind(position)
                .fetch_optional(pool)
                .await?;
        row.map(|row| {
            let tx: String = row.try_get("tx")?;
            Ok(LogCursor {
                transaction_id: parse_xid(&tx)?,
                position,
            })
        })
        .transpose()
    }

    /// How many stored events lie after `cursor`, counting no further than `cap` (an
    /// answer of `cap` means "at least"): reads at most `cap` index entries, however long
    /// the log is.
    pub async fn count_after_at_most(
        pool: &PgPool,
        cursor: LogCursor,
        cap: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM events \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
             ORDER BY transaction_id, global_position LIMIT $3) AS following",
        )
        .bind(cursor.transaction_id.to_string())
        .bind(cursor.position)
        .bind(cap)
        .fetch_one(pool)
        .await
    }

    /// How many stored events lie after `cursor` (for lag figures).
    pub async fn count_after(pool: &PgPool, cursor: LogCursor) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2)",
        )
        .bind(cursor.transaction_id.to_string())
        .bind(cursor.position)
        .fetch_one(pool)
        .await
    }
}

/// Wakes log readers when events commit (LISTEN `dcp_events`) and waiters when a
/// projection advances on any replica (LISTEN `dcp_projection_progress`).
///
/// Each signal is a counter in a `watch` channel, so a subscriber that marks what it
/// has seen before checking its condition never misses a wake-up. Notifications can
/// still be lost while the listener reconnects, so every reader also polls; this only
/// makes the common case fast.
#[derive(Debug, Clone)]
pub struct LogWaker {
    events: Arc<watch::Sender<u64>>,
    progress: Arc<watch::Sender<u64>>,
}

/// The channel the event store trigger notifies on.
pub const EVENTS_CHANNEL: &str = "dcp_events";
/// The channel projection runners notify on after each committed batch.
pub const PROGRESS_CHANNEL: &str = "dcp_projection_progress";

impl Default for LogWaker {
    fn default() -> Self {
        LogWaker {
            events: Arc::new(watch::channel(0).0),
            progress: Arc::new(watch::channel(0).0),
        }
    }
}

impl LogWaker {
    /// Starts the listener task; it stops when `shutdown` is cancelled.
    pub async fn listen(pool: &PgPool, shutdown: CancellationToken) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener
            .listen_all([EVENTS_CHANNEL, PROGRESS_CHANNEL])
            .await?;
        let waker = LogWaker::default();
        let task_waker = waker.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) if notification.channel() == PROGRESS_CHANNEL => {
                        task_waker.progressed();
                    }
                    Ok(Some(_)) => task_waker.appended(),
                    Ok(None) => {
                        // The connection dropped; sqlx reconnects on the next call. Whatever
                        // was missed meanwhile: wake everyone to re-check.
                        tracing::warn!("event listener connection lost; reconnecting");
                        task_waker.appended();
                        task_waker.progressed();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event listener failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(waker)
    }

    /// A receiver that changes whenever events may have been appended.
    pub fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }

    /// A receiver that changes whenever a projection may have advanced.
    pub fn subscribe_progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// Signals that events may have been appended.
    pub fn appended(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Signals that a projection advanced (the local runner calls this after each commit).
    pub fn progressed(&self) {
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Waits until `rx` changes or `poll` elapses, whichever comes first.
pub async fn changed_or_timeout(rx: &mut watch::Receiver<u64>, poll: Duration) {
    let _ = tokio::time::timeout(poll, rx.changed()).await;
}
