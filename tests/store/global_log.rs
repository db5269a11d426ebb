//! The global log never skips or repeats an event, whatever order transactions commit in.

use std::collections::HashSet;
use std::time::Duration;

use dcp_projections::{GlobalLogReader, LogCursor};
use serde_json::json;
use sqlx::{Connection, PgPool};

use crate::common::migrated_pool;

async fn append(conn: &mut sqlx::PgConnection, writer: usize, n: usize) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('test', $1, $2, 'Tested', '1', $3, '{}') RETURNING global_position",
    )
    .bind(format!("writer-{writer}"))
    .bind(n as i64)
    .bind(json!({"writer": writer, "n": n}))
    .fetch_one(conn)
    .await
    .unwrap()
}

async fn read_all(pool: &PgPool, mut cursor: LogCursor) -> (Vec<(u64, i64)>, LogCursor) {
    let mut conn = pool.acquire().await.unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = GlobalLogReader::read_batch(&mut conn, cursor, 100)
            .await
            .unwrap();
        if batch.is_empty() {
            return (seen, cursor);
        }
        for event in &batch {
            seen.push((event.transaction_id, event.global_position));
        }
        cursor = batch.last().unwrap().cursor();
    }
}

/// The classic gap: a transaction takes position 1, a later one takes 2 and commits
/// first. A `global_position > last` reader skips 1 for ever; ours waits for it.
#[tokio::test]
async fn a_late_commit_is_not_skipped() {
    let pool = migrated_pool().await;
    let mut slow = pool.acquire().await.unwrap();
    let mut slow_tx = slow.begin().await.unwrap();
    let first = append(&mut slow_tx, 1, 0).await;
    let mut fast = pool.acquire().await.unwrap();
    let second = append(&mut fast, 2, 0).await;
    assert!(first < second);

    // The naive reader sees position 2 and moves past 1.
    let naive: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE global_position > 0 ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(naive, vec![second]);
    // Ours sees nothing yet: the open transaction is older than the fast one.
    let (seen, cursor) = read_all(&pool, LogCursor::START).await;
    assert!(seen.is_empty(), "{seen:?}");

    slow_tx.commit().await.unwrap();
    // The horizon is cluster-wide: transactions of tests running beside this one may
    // hold it back for a moment, so poll.
    let positions = crate::common::eventually(Duration::from_secs(30), || {
        let pool = pool.clone();
        async move {
            let (seen, _) = read_all(&pool, cursor).await;
            let positions: Vec<i64> = seen.iter().map(|(_, p)| *p).collect();
            (positions.len() == 2).then_some(positions)
        }
    })
    .await;
    assert_eq!(positions, vec![first, second]);
    let naive_after: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM events WHERE global_position > $1")
            .bind(second)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        naive_after.is_empty(),
        "the naive reader has lost position {first}"
    );
}

/// Writers commit out of position order (some hold their transaction open, some roll
/// back, some write several events) while a reader runs throughout: the reader sees
/// every committed event exactly once, in (transaction_id, global_position) order.
#[tokio::test]
async fn concurrent_writers_with_held_transactions() {
    let pool = migrated_pool().await;
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 40;
    let reader_pool = pool.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let reader_stop = stop.clone();
    let reader = tokio::spawn(async move {
        let mut cursor = LogCursor::START;
        let mut seen: Vec<(u64, i64)> = Vec::new();
        loop {
            let (batch, next) = read_all(&reader_pool, cursor).await;
            seen.extend(batch);
            cursor = next;
            if reader_stop.is_cancelled() {
                // One last read after every writer finished.
                let (batch, _) = read_all(&reader_pool, cursor).await;
                seen.extend(batch);
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut sequence = 0;
            for i in 0..PER_WRITER {
                let mut conn = pool.acquire().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                let count = if i % 7 == 3 { 3 } else { 1 };
                let mut positions = Vec::new();
                for _ in 0..count {
                    positions.push(append(&mut tx, writer, sequence).await);
                    sequence += 1;
                }
                if (i + writer) % 5 == 0 {
                    // Hold the transaction open while others commit later positions.
                    tokio::time::sleep(Duration::from_millis(
                        20 + (writer as u64 * 13 + i as u64 * 7) % 120,
                    ))
                    .await;
                }
                if i % 11 == 5 {
                    tx.rollback().await.unwrap();
                    sequence -= count;
                } else {
                    tx.commit().await.unwrap();
                    committed.extend(positions);
                }
            }
            committed
        }));
    }
    let mut committed = HashSet::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    stop.cancel();
    let seen = reader.await.unwrap();

    let positions: Vec<i64> = seen.iter().map(|(_, p)| *p).collect();
    let unique: HashSet<i64> = positions.iter().copied().collect();
    assert_eq!(
        unique.len(),
        positions.len(),
        "an event was delivered twice"
    );
    assert_eq!(
        unique, committed,
        "delivered events differ from committed ones"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "events out of (transaction_id, global_position) order"
    );
    let out_of_position_order = positions.windows(2).filter(|w| w[0] > w[1]).count();
    eprintln!(
        "{} events read exactly once; {} adjacent pairs committed out of position order",
        positions.len(),
        out_of_position_order
    );
    assert!(
        out_of_position_order > 0,
        "the test did not provoke out-of-order commits"
    );
}

/// Transaction ids are compared as numbers, not as their text: an event of transaction 10
/// comes after one of transaction 9 (read as text, "10" sorts first and 9 would be skipped).
#[tokio::test]
async fn transaction_ids_are_ordered_as_numbers_when_they_gain_a_digit() {
    let pool = migrated_pool().await;
    for (tx, n) in [("99", 1), ("100", 2), ("9", 3), ("1000", 4)] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, transaction_id) \
             VALUES ('test', 'digits', $1, 'Tested', '1', '{}', '{}', $2::text::xid8)",
        )
        .bind(n)
        .bind(tx)
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let mut cursor = LogCursor::START;
    let mut order = Vec::new();
    loop {
        let batch = GlobalLogReader::read_batch(&mut conn, cursor, 1)
            .await
            .unwrap();
        let Some(event) = batch.first() else { break };
        order.push(event.transaction_id);
        cursor = event.cursor();
    }
    assert_eq!(order, [9, 99, 100, 1000]);
    let filtered = GlobalLogReader::read_filtered(
        &mut conn,
        LogCursor::START,
        &dcp_projections::EventFilter::default(),
        10,
    )
    .await
    .unwrap();
    let filtered: Vec<u64> = filtered.iter().map(|e| e.transaction_id).collect();
    assert_eq!(filtered, [9, 99, 100, 1000]);
}
