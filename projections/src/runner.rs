//! The projection runner: catches a projection up on the global log, exactly once.
//!
//! Each batch of events and the projection's checkpoint are written in one transaction.
//! A session advisory lock per projection makes one runner active across replicas;
//! the others stand by and take over when the holder's connection goes away. A
//! projection whose version differs from its checkpoint is rebuilt from zero.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::log::{
    changed_or_timeout, current_shapes, GlobalLogReader, LogCursor, LogWaker, StoredEvent,
    UnknownEvents, PROGRESS_CHANNEL,
};
pub use crate::progress::ProjectionProgress;

/// A read model built from the global log.
///
/// Its name, version and tables are constants of its type; the runner, rebuilds and
/// replays hold it as a [`DynProjection`], which every projection is.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint key, the advisory lock and the name
    /// `dcp projections rebuild NAME` takes.
    const NAME: &'static str;
    /// Bump it when the tables or the mapping change: the projection is rebuilt at start.
    const VERSION: i32;
    /// The tables it writes (a rebuild empties them; a replay builds their indexes once,
    /// at the end).
    const TABLES: &'static [&'static str];

    /// Empties the projection's tables before a rebuild. Identities start again, so a
    /// rebuilt table is numbered as the first build was (the audit log's `seq`).
    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "TRUNCATE {} RESTART IDENTITY",
            Self::TABLES.join(", ")
        ))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Applies events, in log order (in their current shapes), inside the runner's
    /// transaction.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()>;
}

/// A [`Projection`] as a trait object: what [`crate::all_projections`], the runner, rebuilds
/// and replays hold (a trait with constants cannot be one). Every projection is one.
#[async_trait::async_trait]
pub trait DynProjection: Send + Sync + 'static {
    /// [`Projection::NAME`].
    fn name(&self) -> &'static str;
    /// [`Projection::VERSION`].
    fn version(&self) -> i32;
    /// [`Projection::TABLES`].
    fn tables(&self) -> &'static [&'static str];
    /// [`Projection::reset`].
    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()>;
    /// [`Projection::apply_batch`].
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()>;
}

#[async_trait::async_trait]
impl<P: Projection> DynProjection for P {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn version(&self) -> i32 {
        P::VERSION
    }

    fn tables(&self) -> &'static [&'static str] {
        P::TABLES
    }

    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        Projection::reset(self, conn).await
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        Projection::apply_batch(self, conn, events).await
    }
}

/// Events read and applied per transaction: large enough that a catch-up is not dominated
/// by per-batch round trips and commits, small enough to keep a batch's memory modest.
pub const DEFAULT_BATCH_SIZE: i64 = 4000;

/// Advisory lock namespace for projection runners (the second key is `hashtext(name)`).
pub const PROJECTION_LOCK_NAMESPACE: i32 = 0x0dc9_0001;

/// Runs one projection for the life of the server.
pub struct ProjectionRunner {
    pool: PgPool,
    projection: Arc<dyn DynProjection>,
    waker: LogWaker,
    progress: ProjectionProgress,
    batch_size: i64,
    poll: Duration,
    standby_retry: Duration,
}

enum Leadership {
    /// Another replica holds the lock.
    Standby,
    /// We held it and stopped because of shutdown.
    Stopped,
}

impl ProjectionRunner {
    /// A runner of `projection` on `pool`, woken by `waker` when events are appended; it
    /// records its progress in `progress`.
    pub fn new(
        pool: PgPool,
        projection: Arc<dyn DynProjection>,
        waker: LogWaker,
        progress: ProjectionProgress,
    ) -> Self {
        ProjectionRunner {
            pool,
            projection,
            waker,
            progress,
            batch_size: DEFAULT_BATCH_SIZE,
            poll: Duration::from_millis(250),
            standby_retry: Duration::from_secs(2),
        }
    }

    /// Events per transaction (default [`DEFAULT_BATCH_SIZE`]).
    pub fn with_batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long a standby runner waits before trying the lock again (default 2 s).
    pub fn with_standby_retry(mut self, retry: Duration) -> Self {
        self.standby_retry = retry;
        self
    }

    /// Runs until `shutdown` is cancelled, retrying after errors.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(self, shutdown: CancellationToken) {
        let name = self.projection.name();
        let mut backoff = Duration::from_millis(200);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let wait = match self.lead(&shutdown).await {
                Ok(Leadership::Stopped) => return,
                Ok(Leadership::Standby) => self.standby_retry,
                Err(error) => {
                    self.progress.forget_local(name);
                    tracing::error!(
                        projection = name,
                        error = format!("{error:#}"),
                        "projection runner failed; retrying"
                    );
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

    #[tracing::instrument(skip_all, fields(projection = self.projection.name()))]
    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<Leadership> {
        let name = self.projection.name();
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("Failed to get a connection for the projection runner")?
            .detach();
        if !try_lock(&mut conn, name).await? {
            let _ = conn.close().await;
            return Ok(Leadership::Standby);
        }
        tracing::info!("projection runner active");
        let Some((mut cursor, mut rebuilding)) =
            prepare(&mut conn, self.projection.as_ref()).await?
        else {
            let _ = conn.close().await;
            return Ok(Leadership::Standby);
        };
        self.progress.record_local(name, cursor);
        // Until a rebuild first reaches the head, an event this build does not know stops
        // it (the model would silently lack it); past the head, such events are skipped.
        let mut events = self.waker.subscribe_events();
        loop {
            events.borrow_and_update();
            let batch = GlobalLogReader::read_batch(&mut conn, cursor, self.batch_size)
                .await
                .context("Failed to read the global log")?;
            if batch.is_empty() {
                if rebuilding {
                    rebuilt(&mut conn, name).await?;
                    rebuilding = false;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = conn.close().await;
                        self.progress.forget_local(name);
                        return Ok(Leadership::Stopped);
                    }
                    _ = changed_or_timeout(&mut events, self.poll) => {}
                }
                if rebuild_requested(&mut conn, name).await? {
                    cursor = rebuild(&mut conn, self.projection.as_ref()).await?;
                    rebuilding = true;
                    self.progress.record_local(name, cursor);
                }
                continue;
            }
            let unknown = if rebuilding {
                UnknownEvents::Fail
            } else {
                UnknownEvents::Skip
            };
            let (applied, rebuild_requested) =
                apply(&mut conn, self.projection.as_ref(), &batch, unknown).await?;
            cursor = applied;
            // A rebuild asked for while events keep coming is seen here, not only when idle.
            if rebuild_requested {
                cursor = rebuild(&mut conn, self.projection.as_ref()).await?;
                rebuilding = true;
            }
            self.progress.record_local(name, cursor);
        }
    }
}

async fn try_lock(conn: &mut PgConnection, name: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(PROJECTION_LOCK_NAMESPACE)
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .context("Failed to try the projection lock")
}

fn cursor_from(row: &sqlx::postgres::PgRow) -> anyhow::Result<LogCursor> {
    let tx: String = row.try_get("tx")?;
    Ok(LogCursor {
        transaction_id: tx.parse().context("Failed to parse a checkpoint xid8")?,
        position: row.try_get("last_position")?,
    })
}

/// Makes sure the checkpoint exists at this projection's version (rebuilding if the
/// version changed). `None` when the stored version is newer than ours: a newer
/// replica owns this projection, so this one must not touch it.
async fn prepare(
    conn: &mut PgConnection,
    projection: &dyn DynProjection,
) -> anyhow::Result<Option<(LogCursor, bool)>> {
    sqlx::query("INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(projection.name())
        .bind(projection.version())
        .execute(&mut *conn)
        .await
        .context("Failed to create the projection checkpoint")?;
    let row = sqlx::query(
        "SELECT version, rebuild_requested, rebuilding, last_transaction_id::text AS tx, last_position \
         FROM projection_checkpoints WHERE name = $1",
    )
    .bind(projection.name())
    .fetch_one(&mut *conn)
    .await
    .context("Failed to read the projection checkpoint")?;
    let version: i32 = row.try_get("version")?;
    let requested: bool = row.try_get("rebuild_requested")?;
    if version > projection.version() {
        tracing::warn!(
            stored = version,
            ours = projection.version(),
            "a newer version of this projection is stored; standing by"
        );
        return Ok(None);
    }
    if version < projection.version() || requested {
        tracing::info!(
            from = version,
            to = projection.version(),
            "rebuilding projection"
        );
        return rebuild(conn, projection).await.map(|c| Some((c, true)));
    }
    let rebuilding: bool = row.try_get("rebuilding")?;
    cursor_from(&row).map(|c| Some((c, rebuilding)))
}

/// Marks the end of a rebuild: the projection has reached the head of the log once.
async fn rebuilt(conn: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE projection_checkpoints SET rebuilding = false WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .context("Failed to mark the end of a rebuild")?;
    Ok(())
}

async fn rebuild_requested(conn: &mut PgConnection, name: &str) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT rebuild_requested FROM projection_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .context("Failed to read the projection checkpoint")
        .map(|requested| requested.unwrap_or(false))
}

/// Empties the projection and moves its checkpoint to the start, in one transaction.
#[tracing::instrument(skip_all, fields(projection = projection.name()), err(level = "debug"))]
async fn rebuild(
    conn: &mut PgConnection,
    projection: &dyn DynProjection,
) -> anyhow::Result<LogCursor> {
    let mut tx = conn.begin().await?;
    projection
        .reset(&mut tx)
        .await
        .context("Failed to reset the projection")?;
    sqlx::query(
        "UPDATE projection_checkpoints SET version = $2, last_transaction_id = '0', last_position = 0, \
         events_applied = 0, rebuilt_at = now(), updated_at = now(), rebuild_requested = false, \
         rebuilding = true WHERE name = $1",
    )
    .bind(projection.name())
    .bind(projection.version())
    .execute(&mut *tx)
    .await?;
    tx.commit()
        .await
        .context("Failed to commit the projection reset")?;
    Ok(LogCursor::START)
}

/// Applies one batch and advances the checkpoint in the same transaction. Returns the new
/// cursor and whether a rebuild has been requested meanwhile.
#[tracing::instrument(skip_all, fields(projection = projection.name(), events = batch.len()), err(level = "debug"))]
async fn apply(
    conn: &mut PgConnection,
    projection: &dyn DynProjection,
    batch: &[StoredEvent],
    unknown: UnknownEvents,
) -> anyhow::Result<(LogCursor, bool)> {
    let last = batch.last().map(StoredEvent::cursor).unwrap_or_default();
    let shaped = current_shapes(batch, unknown)
        .with_context(|| format!("Failed to apply events to '{}'", projection.name()))?;
    let mut tx = conn.begin().await?;
    projection
        .apply_batch(&mut tx, &shaped)
        .await
        .with_context(|| format!("Failed to apply events up to position {}", last.position))?;
    let rebuild_requested = sqlx::query(
        "UPDATE projection_checkpoints SET last_transaction_id = $2::text::xid8, last_position = $3, \
         events_applied = events_applied + $4, updated_at = now() WHERE name = $1 RETURNING rebuild_requested",
    )
    .bind(projection.name())
    .bind(last.transaction_id.to_string())
    .bind(last.position)
    .bind(batch.len() as i64)
    .fetch_one(&mut *tx)
    .await?;
    let rebuild_requested: bool = rebuild_requested.try_get("rebuild_requested")?;
    tx.commit()
        .await
        .context("Failed to commit a projection batch")?;
    // Waiters on other replicas learn of the progress from this notification. It is sent
    // after the commit: a transaction that NOTIFYs holds the notify lock through its commit
    // flush, which would make the runners commit one at a time.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(PROGRESS_CHANNEL)
        .bind(projection.name())
        .execute(&mut *conn)
        .await?;
    Ok((last, rebuild_requested))
}

/// Resets `projection` and catches it up to the head of the log on `conn`, which holds
/// its lock.
#[tracing::instrument(
    skip_all,
    fields(projection = projection.name(), events = tracing::field::Empty),
    err(level = "debug")
)]
async fn rebuild_here(
    conn: &mut PgConnection,
    projection: &dyn DynProjection,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(projection.name())
        .bind(projection.version())
        .execute(&mut *conn)
        .await?;
    let mut cursor = rebuild(conn, projection).await?;
    let mut events = 0;
    loop {
        let batch = GlobalLogReader::read_batch(conn, cursor, DEFAULT_BATCH_SIZE).await?;
        if batch.is_empty() {
            tracing::Span::current().record("events", events);
            return rebuilt(conn, projection.name()).await;
        }
        events += batch.len();
        cursor = apply(conn, projection, &batch, UnknownEvents::Fail)
            .await?
            .0;
    }
}

/// Makes `conn`'s database ready to receive a replay of `projection`: its checkpoint at the
/// start and its tables empty.
pub async fn prepare_replay_target(
    conn: &mut PgConnection,
    projection: &dyn DynProjection,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(projection.name())
        .bind(projection.version())
        .execute(&mut *conn)
        .await?;
    rebuild(conn, projection).await?;
    Ok(())
}

/// Applies one replayed batch and its checkpoint in one transaction (events this build does
/// not know stop it).
pub async fn apply_replayed(
    conn: &mut PgConnection,
    projection: &dyn DynProjection,
    batch: &[StoredEvent],
) -> anyhow::Result<()> {
    apply(conn, projection, batch, UnknownEvents::Fail).await?;
    Ok(())
}

/// One projection's place in the log, for `dcp projections status` and `/health/detailed`.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    pub position: i64,
    pub transaction_id: u64,
    pub events_applied: i64,
    /// Stored events not yet applied.
    pub lag: i64,
    pub updated_at: DateTime<Utc>,
    pub rebuild_requested: bool,
}

/// The status of every projection that has a checkpoint.
pub async fn projection_statuses(pool: &PgPool) -> anyhow::Result<Vec<ProjectionStatus>> {
    let rows = sqlx::query(
        "SELECT name, version, last_transaction_id::text AS tx, last_position, events_applied, updated_at, \
         rebuild_requested FROM projection_checkpoints ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .context("Failed to read projection checkpoints")?;
    let mut statuses = Vec::with_capacity(rows.len());
    for row in rows {
        let cursor = cursor_from(&row)?;
        statuses.push(ProjectionStatus {
            name: row.try_get("name")?,
            version: row.try_get("version")?,
            position: cursor.position,
            transaction_id: cursor.transaction_id,
            events_applied: row.try_get("events_applied")?,
            lag: GlobalLogReader::count_after(pool, cursor).await?,
            updated_at: row.try_get("updated_at")?,
            rebuild_requested: row.try_get("rebuild_requested")?,
        });
    }
    Ok(statuses)
}

/// Rebuilds one projection from zero.
///
/// If no server runs it right now, this process takes the lock, resets it and catches
/// it up to the head of the log before returning. If a server runs it, the rebuild
/// is requested and that server's runner performs it; this returns once it has.
pub async fn rebuild_projection(
    pool: &PgPool,
    projection: Arc<dyn DynProjection>,
    timeout: Duration,
) -> anyhow::Result<ProjectionStatus> {
    let name = projection.name();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut requested = false;
    loop {
        // Whoever holds the lock runs the projection. A runner that has just stopped may
        // still hold it for a moment (its backend exits after the connection closes), so
        // the lock is tried again on every round, not only once.
        let mut conn = pool.acquire().await?.detach();
        if try_lock(&mut conn, name).await? {
            rebuild_here(&mut conn, projection.as_ref()).await?;
            conn.close().await?;
            break;
        }
        conn.close().await?;
        if !requested {
            // A server runs it: ask that server's runner to rebuild.
            sqlx::query(
                "UPDATE projection_checkpoints SET rebuild_requested = true WHERE name = $1",
            )
            .bind(name)
            .execute(pool)
            .await?;
            sqlx::query("SELECT pg_notify('dcp_events', '')")
                .execute(pool)
                .await?;
            requested = true;
        } else {
            let status = projection_statuses(pool)
                .await?
                .into_iter()
                .find(|s| s.name == name);
            if status.is_some_and(|s| !s.rebuild_requested && s.lag == 0) {
                break;
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the running server did not finish rebuilding '{name}' in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    projection_statuses(pool)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .context("the projection checkpoint disappeared")
}
