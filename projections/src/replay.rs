//! Platform-wide replay: every read model rebuilt as of a past moment into another database
//! (or schema), where an auditor can query the past with SQL while the live models go on.
//!
//! One reader walks the source's global log once; each projection applies the batches on its
//! own connection to the target, concurrently, with its checkpoint in the same transaction
//! (as the runner does). Events this build does not know stop the replay, as in any rebuild.
//! The target's `events` table stays empty: the store is the source's, and the target's
//! `replays` row says which store, up to which moment and position.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Connection, PgPool};
use tokio::sync::mpsc;

use crate::log::{current_shapes, GlobalLogReader, LogCursor, StoredEvent, UnknownEvents};
use crate::runner::{apply_replayed, prepare_replay_target, DynProjection};

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Events applied (recorded at or before `until`).
    pub events: u64,
    /// Events read from the source log (including those after `until`).
    pub scanned: u64,
    /// The global position of the last event applied (0: none).
    pub last_position: i64,
    pub until: Option<DateTime<Utc>>,
    pub seconds: f64,
    /// Of which building the deferred indexes at the end.
    pub index_seconds: f64,
    pub projections: Vec<String>,
}

/// Batches in flight between the reader and each projection.
const QUEUE: usize = 4;

/// Events per batch: larger than a runner's, since a replay has no readers waiting on it.
const REPLAY_BATCH: i64 = 10_000;

/// Rebuilds `projections` into `target` from `source`'s log, keeping the events recorded at
/// or before `until` (all of them when `None`). The target must have been migrated and hold
/// no read model yet.
pub async fn replay_into(
    source: &PgPool,
    target: &PgPool,
    source_name: &str,
    until: Option<DateTime<Utc>>,
    projections: Vec<Arc<dyn DynProjection>>,
) -> anyhow::Result<ReplaySummary> {
    let started_at = Utc::now();
    let started = Instant::now();
    let filled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM projection_checkpoints WHERE events_applied > 0 OR last_position > 0",
    )
    .fetch_one(target)
    .await
    .context("Failed to read the target's checkpoints")?;
    anyhow::ensure!(
        filled == 0,
        "the target already holds read models; replay into a fresh database or schema"
    );
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables())
        .copied()
        .collect();
    let deferred = defer_indexes(target, &tables).await?;
    let loaded = load(source, target, until, &projections).await;
    // Put the indexes back whatever happened: a failed target keeps its shape.
    let indexing = Instant::now();
    let rebuilt = rebuild_indexes(target, deferred).await;
    let index_seconds = indexing.elapsed().as_secs_f64();
    let (events, scanned, last_position) = loaded?;
    rebuilt?;
    let summary = ReplaySummary {
        events,
        scanned,
        last_position,
        until,
        seconds: started.elapsed().as_secs_f64(),
        index_seconds,
        projections: projections.iter().map(|p| p.name().to_string()).collect(),
    };
    let mut conn = target.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO replays (source, until, last_position, events, started_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, now())",
    )
    .bind(source_name)
    .bind(until)
    .bind(last_position)
    .bind(events as i64)
    .bind(started_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(summary)
}

/// Reads the log once and has every projection apply it on its own connection; returns
/// the events applied, the events read and the last position applied.
async fn load(
    source: &PgPool,
    target: &PgPool,
    until: Option<DateTime<Utc>>,
    projections: &[Arc<dyn DynProjection>],
) -> anyhow::Result<(u64, u64, i64)> {
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for projection in projections {
        let mut conn = target
            .acquire()
            .await
            .context("Failed to connect to the target")?
            .detach();
        // Bulk load: a lost target is rebuilt, not recovered, so commits need not wait for
        // the disk.
        sqlx::query("SET synchronous_commit = off")
            .execute(&mut conn)
            .await?;
        prepare_replay_target(&mut conn, projection.as_ref()).await?;
        let (sender, mut receiver) = mpsc::channel::<Arc<Vec<StoredEvent>>>(QUEUE);
        senders.push(sender);
        let projection = Arc::clone(projection);
        workers.push(tokio::spawn(async move {
            while let Some(batch) = receiver.recv().await {
                apply_replayed(&mut conn, projection.as_ref(), &batch)
                    .await
                    .with_context(|| format!("Failed to replay '{}'", projection.name()))?;
            }
            conn.close().await?;
            anyhow::Ok(())
        }));
    }

    let mut reader = source
        .acquire()
        .await
        .context("Failed to connect to the source")?;
    let mut cursor = LogCursor::START;
    let (mut events, mut scanned, mut last_position) = (0u64, 0u64, 0i64);
    let read = async {
        loop {
            let batch = GlobalLogReader::read_batch(&mut reader, cursor, REPLAY_BATCH).await?;
            let Some(last) = batch.last() else { break };
            cursor = last.cursor();
            scanned += batch.len() as u64;
            let kept: Vec<StoredEvent> = match until {
                Some(until) => batch
                    .into_iter()
                    .filter(|e| e.recorded_at <= until)
                    .collect(),
                None => batch,
            };
            if kept.is_empty() {
                continue;
            }
            // Events already in their current shapes are passed on as read (no copy).
            let shaped = match current_shapes(&kept, UnknownEvents::Fail)? {
                Cow::Owned(shaped) => Some(shaped),
                Cow::Borrowed(_) => None,
            };
            let kept = Arc::new(shaped.unwrap_or(kept));
            events += kept.len() as u64;
            last_position = kept.last().map(|e| e.global_position).unwrap_or(0);
            for sender in &senders {
                // A worker that stopped has failed: its error is reported below.
                if sender.send(Arc::clone(&kept)).await.is_err() {
                    return anyhow::Ok(());
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    drop(senders);
    for worker in workers {
        worker.await.context("a replay worker panicked")??;
    }
    read?;
    Ok((events, scanned, last_position))
}

/// An index or constraint taken off a fresh target during the load.
enum Deferred {
    Index {
        name: String,
        definition: String,
    },
    Constraint {
        table: String,
        name: String,
        definition: String,
    },
}

/// Takes the indexes and unique constraints (all but primary keys, which the upserts use) of
/// the read models' `tables` off a fresh target, to build each once at the end instead of maintaining it
/// row by row: a bulk load's usual shape. Returns what to put back.
async fn defer_indexes(target: &PgPool, tables: &[&str]) -> anyhow::Result<Vec<Deferred>> {
    let constraints: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT quote_ident(t.relname), quote_ident(c.conname), pg_get_constraintdef(c.oid) \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND c.contype = 'u' AND t.relname = ANY($1)",
    )
    .bind(tables)
    .fetch_all(target)
    .await
    .context("Failed to list the target's constraints")?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(ic.relname), pg_get_indexdef(i.indexrelid) FROM pg_index i \
         JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND NOT i.indisprimary \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
         AND t.relname = ANY($1)",
    )
    .bind(tables)
    .fetch_all(target)
    .await
    .context("Failed to list the target's indexes")?;
    let mut deferred = Vec::new();
    for (table, name, definition) in constraints {
        sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
            .execute(target)
            .await
            .with_context(|| format!("Failed to defer constraint {name}"))?;
        deferred.push(Deferred::Constraint {
            table,
            name,
            definition,
        });
    }
    for (name, definition) in indexes {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(target)
            .await
            .with_context(|| format!("Failed to defer index {name}"))?;
        deferred.push(Deferred::Index { name, definition });
    }
    Ok(deferred)
}

/// Builds the deferred indexes, two at a time (one per core here; each build is one process).
async fn rebuild_indexes(target: &PgPool, deferred: Vec<Deferred>) -> anyhow::Result<()> {
    let mut builds = tokio::task::JoinSet::new();
    let mut pending = deferred.into_iter();
    loop {
        while builds.len() < 2 {
            let Some(next) = pending.next() else { break };
            let target = target.clone();
            builds.spawn(async move {
                let mut conn = target.acquire().await?;
                sqlx::query("SET maintenance_work_mem = '256MB'")
                    .execute(&mut *conn)
                    .await?;
                let (what, sql) = match next {
                    Deferred::Index { name, definition } => (name, definition),
                    Deferred::Constraint {
                        table,
                        name,
                        definition,
                    } => (
                        name.clone(),
                        format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"),
                    ),
                };
                sqlx::query(&sql)
                    .execute(&mut *conn)
                    .await
                    .with_context(|| format!("Failed to rebuild {what}"))?;
                anyhow::Ok(())
            });
        }
        match builds.join_next().await {
            Some(result) => result.context("an index build panicked")??,
            None => return Ok(()),
        }
    }
}
