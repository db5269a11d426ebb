//! The relay: the global log onto the bus, every event exactly once in log order.
//!
//! One relay is active across replicas (an advisory lock; the others stand by and take
//! over when its session ends). It reads the log after its checkpoint, publishes each
//! batch and advances the checkpoint only once the bus has acknowledged the whole batch.
//! A crash between the acknowledgement and the checkpoint publishes the batch again;
//! JetStream drops the repeats by `Nats-Msg-Id` (within [`super::DUPLICATE_WINDOW`]) and
//! subscribers can dedupe by `event_id` beyond it. While the bus is away, commands keep
//! succeeding: the events wait in the store and go out when it is back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dcp_projections::log::changed_or_timeout;
use dcp_projections::{GlobalLogReader, LogCursor, LogWaker};
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Envelope, EventBus};

/// Advisory lock key: one active relay across replicas.
const RELAY_LOCK: i64 = 0x0dc9_0000_0000_0004;
/// The checkpoint row.
const NAME: &str = "bus";
/// Events per publish batch.
const BATCH: i64 = 500;
/// How often an idle relay looks at the log without a notification.
const POLL: Duration = Duration::from_secs(1);

pub struct Relay {
    pool: PgPool,
    bus: Arc<dyn EventBus>,
    waker: LogWaker,
    standby_retry: Duration,
}

enum Leadership {
    Stopped,
    Standby,
}

impl Relay {
    pub fn new(pool: PgPool, bus: Arc<dyn EventBus>, waker: LogWaker) -> Self {
        Relay {
            pool,
            bus,
            waker,
            standby_retry: Duration::from_secs(2),
        }
    }

    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let wait = match self.lead(&shutdown).await {
                Ok(Leadership::Stopped) => return,
                Ok(Leadership::Standby) => self.standby_retry,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "event relay failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<Leadership> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("Failed to get a connection for the relay")?
            .detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if !locked {
            let _ = conn.close().await;
            return Ok(Leadership::Standby);
        }
        tracing::info!(bus = self.bus.kind(), "event relay active");
        let mut cursor = checkpoint(&mut conn).await?;
        let mut events = self.waker.subscribe_events();
        loop {
            events.borrow_and_update();
            let batch = GlobalLogReader::read_batch(&mut conn, cursor, BATCH)
                .await
                .context("Failed to read the global log")?;
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = conn.close().await;
                        return Ok(Leadership::Stopped);
                    }
                    _ = changed_or_timeout(&mut events, POLL) => {}
                }
                continue;
            }
            let envelopes: Vec<Envelope> = batch.iter().map(Envelope::from_event).collect();
            if !self.publish(&envelopes, cursor, shutdown).await {
                let _ = conn.close().await;
                return Ok(Leadership::Stopped);
            }
            let last = batch.last().map(|e| e.cursor()).unwrap_or(cursor);
            sqlx::query(
                "UPDATE relay_checkpoints SET last_transaction_id = $2::text::xid8, last_position = $3, \
                 events_published = events_published + $4, updated_at = now() WHERE name = $1",
            )
            .bind(NAME)
            .bind(last.transaction_id.to_string())
            .bind(last.position)
            .bind(batch.len() as i64)
            .execute(&mut conn)
            .await
            .context("Failed to advance the relay checkpoint")?;
            cursor = last;
        }
    }
}

impl Relay {
    /// Publishes a batch, retrying (with back-off) until the bus takes it; false when the
    /// server stops first.
    #[tracing::instrument(skip_all, fields(events = envelopes.len(), after = after.position))]
    async fn publish(
        &self,
        envelopes: &[Envelope],
        after: LogCursor,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut retry = Duration::from_millis(100);
        loop {
            match self.bus.publish(envelopes).await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(%error, position = after.position, "publishing events failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

async fn checkpoint(conn: &mut PgConnection) -> anyhow::Result<LogCursor> {
    sqlx::query("INSERT INTO relay_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(NAME)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(
        "SELECT last_transaction_id::text AS tx, last_position FROM relay_checkpoints WHERE name = $1",
    )
    .bind(NAME)
    .fetch_one(&mut *conn)
    .await?;
    let tx: String = row.try_get("tx")?;
    Ok(LogCursor {
        transaction_id: tx.parse().context("Failed to parse the relay checkpoint")?,
        position: row.try_get("last_position")?,
    })
}

/// The relay's place in the log, for `/health/detailed`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RelayStatus {
    /// `nats` or `in-process`.
    pub bus: String,
    pub last_position: i64,
    pub events_published: i64,
    /// Events in the store not yet published.
    pub lag: i64,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn relay_status(pool: &PgPool, bus: &str) -> anyhow::Result<RelayStatus> {
    let row = sqlx::query(
        "SELECT last_transaction_id::text AS tx, last_position, events_published, updated_at \
         FROM relay_checkpoints WHERE name = $1",
    )
    .bind(NAME)
    .fetch_optional(pool)
    .await?;
    let (cursor, published, updated_at) = match row {
        Some(row) => {
            let tx: String = row.try_get("tx")?;
            (
                LogCursor {
                    transaction_id: tx.parse()?,
                    position: row.try_get("last_position")?,
                },
                row.try_get("events_published")?,
                Some(row.try_get("updated_at")?),
            )
        }
        None => (LogCursor::START, 0, None),
    };
    Ok(RelayStatus {
        bus: bus.to_string(),
        last_position: cursor.position,
        events_published: published,
        lag: GlobalLogReader::count_after(pool, cursor).await?,
        updated_at,
    })
}
