//! Read-your-writes: how far each projection is, and waiting for it to reach a position.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;

use crate::log::{changed_or_timeout, LogCursor, LogWaker};

/// How far each projection is, for read-your-writes waits.
///
/// Local runners record their progress in memory so a waiter on the same replica
/// needs no query; otherwise the checkpoint table is read on each wake-up.
#[derive(Debug, Clone)]
pub struct ProjectionProgress {
    pool: PgPool,
    waker: LogWaker,
    local: Arc<Mutex<HashMap<&'static str, LogCursor>>>,
}

impl ProjectionProgress {
    /// Progress read from `pool`'s checkpoints, woken by `waker`.
    pub fn new(pool: PgPool, waker: LogWaker) -> Self {
        ProjectionProgress {
            pool,
            waker,
            local: Arc::default(),
        }
    }

    pub(crate) fn record_local(&self, name: &'static str, cursor: LogCursor) {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local.insert(name, cursor);
        drop(local);
        self.waker.progressed();
    }

    pub(crate) fn forget_local(&self, name: &'static str) {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    fn reached_locally(&self, names: &[&str], target: LogCursor) -> bool {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .all(|name| local.get(name).is_some_and(|cursor| *cursor >= target))
    }

    async fn reached_in_database(
        &self,
        names: &[&str],
        target: LogCursor,
    ) -> Result<bool, sqlx::Error> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let behind: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) AS wanted(name) \
             LEFT JOIN projection_checkpoints c ON c.name = wanted.name \
             WHERE c.name IS NULL OR c.rebuild_requested \
                OR (c.last_transaction_id, c.last_position) < ($2::text::xid8, $3)",
        )
        .bind(&names)
        .bind(target.transaction_id.to_string())
        .bind(target.position)
        .fetch_one(&self.pool)
        .await?;
        Ok(behind == 0)
    }

    /// Waits until every named projection has applied the event at `target`.
    /// Returns `false` if `timeout` passed first.
    pub async fn wait_for(
        &self,
        names: &[&str],
        target: LogCursor,
        timeout: Duration,
    ) -> Result<bool, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.waker.subscribe_progress();
        loop {
            rx.borrow_and_update();
            if self.reached_locally(names, target)
                || self.reached_in_database(names, target).await?
            {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            changed_or_timeout(&mut rx, (deadline - now).min(Duration::from_millis(250))).await;
        }
    }
}
