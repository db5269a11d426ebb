//! Failover: `kill -9` of the replica holding the locks under load hands them to the
//! others within seconds; a lone server killed under load restarts with everything it
//! acknowledged; either way the read models, audit log and bus converge.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

#[tokio::test]
async fn three_replicas_share_the_work_and_a_killed_lock_holder_is_replaced() {
    let nats = Nats::start();
    let database_url = fresh_database().await;
    let master_key = master_key();
    let client = http_client();
    // The first replica migrates, creates the admin and takes every lock.
    let mut first = Replica::start(&database_url, &nats.url(), &master_key);
    first.ready(&client).await;
    let token = login(&client, &first).await;
    let pool = dcp::db::connect(database_url.parse().unwrap(), 4)
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        let holders = lock_holders(&pool).await;
        // Seven projections and the relay.
        (holders
            .iter()
            .filter(|(_, pid)| *pid == first.pid())
            .count()
            >= 8)
            .then_some(())
    })
    .await;
    let others = [
        Replica::start(&database_url, &nats.url(), &master_key),
        Replica::start(&database_url, &nats.url(), &master_key),
    ];
    for replica in &others {
        replica.ready(&client).await;
    }

    // Users to change, one per writer, so the writers never race on one aggregate.
    let targets = create_users(&client, &first, &token, "load", 6).await;
    // A socket on each replica that stays up.
    let seen: Vec<Arc<Mutex<BTreeSet<i64>>>> = (0..2).map(|_| Arc::default()).collect();
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut sockets = Vec::new();
    for (replica, seen) in others.iter().zip(&seen) {
        sockets.push(follow(&client, replica, &token, seen.clone()).await);
    }

    // Load through all three replicas; the lock holder is killed halfway.
    let stop = tokio_util::sync::CancellationToken::new();
    let urls: Vec<String> = [&first, &others[0], &others[1]]
        .iter()
        .map(|r| r.url(""))
        .collect();
    let writers = write_load(&client, &token, urls, &targets, stop.clone()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = first.pid();
    first.kill9();
    let killed_at = Instant::now();
    // The locks move to the survivors within seconds, while the load goes on.
    let moved = eventually(Duration::from_secs(15), || async {
        let holders = lock_holders(&pool).await;
        let survivors = holders
            .iter()
            .filter(|(_, pid)| others.iter().any(|r| r.pid() == *pid))
            .count();
        (survivors >= 8 && holders.iter().all(|(_, pid)| *pid != killed)).then_some(holders)
    })
    .await;
    let failover = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "{} commands acknowledged",
        acknowledged.len()
    );

    // Exactly one holder per lock.
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for (key, _) in &moved {
        *per_key.entry(key.clone()).or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "{moved:?}");

    // Nothing acknowledged is lost.
    assert_all_stored(&pool, &acknowledged).await;

    // The read models and the relay converge, each event applied and published once.
    assert_converged(&pool, &nats).await;

    // Every surviving replica's socket delivered every event written after it opened,
    // whichever replica wrote it.
    let wanted: BTreeSet<i64> =
        sqlx::query_scalar("SELECT global_position FROM events WHERE global_position > $1")
            .bind(head)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (n, seen) in seen.iter().enumerate() {
        eventually(Duration::from_secs(30), || async {
            let seen = seen.lock().unwrap();
            wanted.is_subset(&seen).then_some(())
        })
        .await;
        let seen = seen.lock().unwrap();
        assert!(
            wanted.is_subset(&seen),
            "replica {n}: {} of {} events",
            wanted.intersection(&seen).count(),
            wanted.len()
        );
    }
    for socket in sockets {
        socket.abort();
    }
    eprintln!(
        "{} commands acknowledged through 3 replicas; locks moved {:.1} s after kill -9",
        acknowledged.len(),
        failover.as_secs_f64()
    );
}

#[tokio::test]
async fn a_server_killed_under_load_keeps_every_acknowledged_command_and_converges() {
    let nats = Nats::start();
    let database_url = fresh_database().await;
    let master_key = master_key();
    let client = http_client();
    let mut server = Replica::start(&database_url, &nats.url(), &master_key);
    server.ready(&client).await;
    let token = login(&client, &server).await;
    let targets = create_users(&client, &server, &token, "solo", 4).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let writers = write_load(
        &client,
        &token,
        vec![server.url("")],
        &targets,
        stop.clone(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill9();
    stop.cancel();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 20,
        "{} acknowledged",
        acknowledged.len()
    );

    // Restarted on the same database: everything acknowledged is there, and the read
    // models, the audit log and the bus catch up, each event once.
    let server = Replica::start(&database_url, &nats.url(), &master_key);
    server.ready(&client).await;
    let pool = dcp::db::connect(database_url.parse().unwrap(), 2)
        .await
        .unwrap();
    assert_all_stored(&pool, &acknowledged).await;
    assert_converged(&pool, &nats).await;
    // Each user's read model shows the last change the store holds for it.
    for target in &targets {
        let (last,): (Value,) = sqlx::query_as(
            "SELECT payload::jsonb FROM events WHERE aggregate_type = 'user' AND aggregate_id = $1 \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(target)
        .fetch_one(&pool)
        .await
        .unwrap();
        let name: String = sqlx::query_scalar("SELECT full_name FROM users WHERE id = $1::uuid")
            .bind(target)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            last["UserProfileUpdated"]["full_name"].as_str(),
            Some(name.as_str()),
            "{last}"
        );
    }
    drop(server);
}
