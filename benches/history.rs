//! History benchmark: the state of a resource at a past moment (latency, on an aggregate
//! with 10,000 events), a full replay of 1,000,000 events into a fresh database (events/s),
//! and the audit chain verification rate. Each figure comes with a baseline measured in the
//! same run: the raw read of the same events.
//!
//! Run: `scripts/services.sh && source /tmp/dcp-services/env && cargo bench --bench history`
//! (`DCP_BENCH_EVENTS`, default 1,000,000, sets the size of the replayed log;
//! `DCP_BENCH_EACH=1` also replays each projection alone, to find the slowest.)

use std::time::{Duration, Instant};

use anyhow::Context;
use dcp::app::Application;
use dcp::config::Settings;
use dcp_projections::{all_projections, GlobalLogReader, LogCursor};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const AGGREGATE_EVENTS: i64 = 10_000;
const SAMPLES: usize = 40;

async fn fresh_database(server: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::connect(server)
        .await
        .context("connect to DCP_TEST_DATABASE_URL")?;
    let name = format!("dcp_bench_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (base, _) = server
        .rsplit_once('/')
        .context("database URL without a database name")?;
    Ok(format!("{base}/{name}"))
}

async fn migrated(url: &str) -> anyhow::Result<PgPool> {
    let pool = dcp::db::connect(url.parse()?, 8).await?;
    dcp::db::migrate(&pool).await?;
    Ok(pool)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

const METADATA: &str = "json_build_object('actor_id', '00000000-0000-0000-0000-000000000001', \
     'actor_username', 'admin', 'actor_role', 'admin', 'request_id', gen_random_uuid(), \
     'client_ip', '127.0.0.1', 'user_agent', 'bench/1.0', 'operation_id', op)";

/// `containers` containers with `per_container` events each: a create, then start and stop
/// operations, each requested and then done (the shapes dcp writes). Returns their ids.
async fn seed_containers(
    pool: &PgPool,
    containers: i64,
    per_container: i64,
) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "WITH c AS (SELECT i, gen_random_uuid() AS id FROM generate_series(1, $1) AS i), \
         e AS (SELECT c.i, c.id, s.n, md5(c.id::text || '-' || ((s.n + 1) / 2))::uuid AS op, \
                      ((s.n - 1) / 2) % 2 = 1 AS starting \
               FROM c CROSS JOIN generate_series(1, $2) AS s(n)) \
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'container', id::text, n, \
           CASE WHEN n = 1 THEN 'ContainerCreateRequested' WHEN n = 2 THEN 'ContainerCreated' \
                WHEN starting AND n % 2 = 1 THEN 'ContainerStartRequested' WHEN starting THEN 'ContainerStarted' \
                WHEN n % 2 = 1 THEN 'ContainerStopRequested' ELSE 'ContainerStopped' END, \
           CASE WHEN n = 2 THEN '2' ELSE '1' END, \
           CASE WHEN n = 1 THEN json_build_object('ContainerCreateRequested', json_build_object('op_id', op, \
                    'host', 'local', 'requested_at', now(), 'spec', json_build_object('image', 'busybox:latest', \
                    'name', 'bench-' || i, 'command', json_build_array('sleep', '300'), \
                    'env', json_build_object('MODE', 'bench', 'N', i::text)))) \
                WHEN n = 2 THEN json_build_object('ContainerCreated', json_build_object('op_id', op, 'host', 'local', \
                    'docker_id', md5(id::text) || md5(i::text), 'name', 'bench-' || i, \
                    'image_id', 'sha256:' || md5('busybox') || md5('latest'), 'created_at', now())) \
                WHEN starting AND n % 2 = 1 THEN json_build_object('ContainerStartRequested', \
                    json_build_object('op_id', op, 'requested_at', now())) \
                WHEN starting THEN json_build_object('ContainerStarted', json_build_object('op_id', op, 'started_at', now())) \
                WHEN n % 2 = 1 THEN json_build_object('ContainerStopRequested', \
                    json_build_object('op_id', op, 'timeout', NULL, 'requested_at', now())) \
                ELSE json_build_object('ContainerStopped', json_build_object('op_id', op, 'stopped_at', now())) END, \
           {METADATA} \
         FROM e ORDER BY i, n RETURNING (CASE WHEN sequence = 1 THEN aggregate_id END)"
    );
    let ids: Vec<Option<String>> = sqlx::query_scalar(&sql)
        .bind(containers)
        .bind(per_container as i32)
        .fetch_all(pool)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// `users` users with ten events each: created, then nine profile updates.
async fn seed_users(pool: &PgPool, users: i64) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'user', u.id::text, s.n, CASE WHEN s.n = 1 THEN 'UserCreated' ELSE 'UserProfileUpdated' END, '1', \
           CASE WHEN s.n = 1 THEN json_build_object('UserCreated', json_build_object('user_id', u.id, \
               'username', 'seed' || u.i, 'email', 'seed' || u.i || '@example.com', 'full_name', 'Seed ' || u.i, \
               'role', 'viewer', 'must_change_password', false, 'created_at', now())) \
           ELSE json_build_object('UserProfileUpdated', json_build_object('user_id', u.id, 'email', NULL, \
               'full_name', 'Seed ' || u.i || ' v' || s.n, 'updated_at', now())) END, \
           (SELECT {METADATA} FROM (SELECT NULL::uuid AS op) o) \
         FROM (SELECT i, gen_random_uuid() AS id FROM generate_series(1, $1) AS i) u \
         CROSS JOIN generate_series(1, 10) AS s(n) ORDER BY u.i, s.n"
    );
    sqlx::query(&sql).bind(users).execute(pool).await?;
    Ok(())
}

/// The state of one aggregate with 10,000 events, through the HTTP API, against reading
/// those events from the store.
async fn state_at_a_moment(server: &str) -> anyhow::Result<()> {
    let url = fresh_database(server).await?;
    let pool = migrated(&url).await?;
    let id = seed_containers(&pool, 1, AGGREGATE_EVENTS).await?.remove(0);
    let data_dir = std::env::temp_dir().join(format!("dcp-bench-{}", Uuid::new_v4().simple()));
    let app = Application::build(Settings::for_tests(&url, data_dir)).await?;
    let address = format!("http://{}", app.address());
    let shutdown = app.shutdown_token();
    let server_task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "admin-password-for-tests"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("login failed")?;
    let (first, last): (i64, i64) = sqlx::query_as(
        "SELECT min(global_position), max(global_position) FROM events WHERE aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await?;
    let middle = (first + last) / 2;

    let mut raw = Vec::new();
    let mut state = Vec::new();
    let mut latest = Vec::new();
    let mut diff = Vec::new();
    for round in 0..SAMPLES + 3 {
        let started = Instant::now();
        let events = GlobalLogReader::aggregate_events(&pool, "container", &id).await?;
        let read = started.elapsed();
        anyhow::ensure!(events.len() as i64 == AGGREGATE_EVENTS);
        let timed = |path: String| {
            let client = client.clone();
            async move {
                let started = Instant::now();
                let response = client.get(path).bearer_auth(token).send().await?;
                anyhow::ensure!(response.status().is_success(), "{}", response.status());
                let body: Value = response.json().await?;
                anyhow::Ok((started.elapsed(), body))
            }
        };
        let base = format!("{address}/api/v1/containers/{id}");
        let (at_middle, body) = timed(format!("{base}/state?position={middle}")).await?;
        anyhow::ensure!(body["as_of"]["global_position"] == json!(middle));
        let (at_end, _) = timed(format!("{base}/state")).await?;
        let (whole, body) = timed(format!("{base}/diff?from={first}&to={last}")).await?;
        anyhow::ensure!(
            body["events"].as_array().map(Vec::len) == Some(AGGREGATE_EVENTS as usize - 1)
        );
        if round >= 3 {
            raw.push(read);
            state.push(at_middle);
            latest.push(at_end);
            diff.push(whole);
        }
    }
    for samples in [&mut raw, &mut state, &mut latest, &mut diff] {
        samples.sort();
    }
    let base = percentile(&raw, 0.5);
    println!(
        "state at a moment, one container with {AGGREGATE_EVENTS} events ({SAMPLES} samples):"
    );
    println!(
        "  baseline: read its events from the store   p50 {:>7.2} ms   p99 {:>7.2} ms",
        base,
        percentile(&raw, 0.99)
    );
    for (label, samples) in [
        ("GET …/state?position=<middle>", &state),
        ("GET …/state (now)", &latest),
        ("GET …/diff over all its events", &diff),
    ] {
        println!(
            "  {label:<40} p50 {:>7.2} ms   p99 {:>7.2} ms   ratio {:.2}",
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            percentile(samples, 0.5) / base
        );
    }
    shutdown.cancel();
    server_task.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DCP_TEST_DATABASE_URL")
        .context("DCP_TEST_DATABASE_URL is not set: run scripts/services.sh and source /tmp/dcp-services/env")?;
    let total: i64 = std::env::var("DCP_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "dcp history benchmark — {} cores",
        std::thread::available_parallelism()?.get()
    );
    state_at_a_moment(&server).await?;

    // A log of `total` events: half user events, half container operations.
    let source_url = fresh_database(&server).await?;
    let source = migrated(&source_url).await?;
    let seeded = Instant::now();
    seed_users(&source, total / 2 / 10).await?;
    seed_containers(&source, total / 2 / 10, 10).await?;
    sqlx::query("VACUUM ANALYZE events")
        .execute(&source)
        .await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&source)
        .await?;
    println!(
        "seeded {stored} events in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    // Baseline: one reader scanning the whole log, decoding every event.
    let started = Instant::now();
    let mut conn = source.acquire().await?;
    let mut cursor = LogCursor::START;
    let mut scanned = 0usize;
    loop {
        let batch = GlobalLogReader::read_batch(&mut conn, cursor, 4000).await?;
        let Some(last) = batch.last() else { break };
        cursor = last.cursor();
        scanned += batch.len();
    }
    drop(conn);
    let scan = started.elapsed().as_secs_f64();
    let scan_rate = scanned as f64 / scan;
    println!("baseline: scan the log            {scanned:>9} events in {scan:>6.1} s: {scan_rate:>8.0} events/s");

    if std::env::var_os("DCP_BENCH_EACH").is_some() {
        let mut conn = source.acquire().await?;
        let events = GlobalLogReader::read_batch(&mut conn, LogCursor::START, 100_000).await?;
        drop(conn);
        let started = Instant::now();
        let mut previous = String::new();
        for event in &events {
            let entry = dcp_projections::audit::audit_entry(event);
            previous = dcp_projections::audit::chain_hash(
                &previous,
                &dcp_projections::audit::canonical(&entry),
            );
        }
        println!(
            "  audit entries and hashes in memory: {:>8.0} events/s",
            events.len() as f64 / started.elapsed().as_secs_f64()
        );
        for projection in all_projections() {
            let target_url = fresh_database(&server).await?;
            let target = migrated(&target_url).await?;
            let name = projection.name();
            let summary = dcp_projections::replay::replay_into(
                &source,
                &target,
                "bench",
                None,
                vec![projection],
            )
            .await?;
            println!(
                "  replay of {name:<12} alone: {:>8.0} events/s",
                summary.events as f64 / summary.seconds
            );
        }
    }
    let target_url = fresh_database(&server).await?;
    let target = migrated(&target_url).await?;
    let summary =
        dcp_projections::replay::replay_into(&source, &target, "bench", None, all_projections())
            .await?;
    let rate = summary.events as f64 / summary.seconds;
    println!(
        "replay into a fresh database      {:>9} events in {:>6.1} s: {:>8.0} events/s   ratio {:.2}   (aim ≥ 50,000/s; {} projections; indexes built at the end in {:.1} s)",
        summary.events,
        summary.seconds,
        rate,
        rate / scan_rate,
        summary.projections.len(),
        summary.index_seconds
    );

    let started = Instant::now();
    let report = dcp_projections::audit::verify_chain(&target).await?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.valid, "the replayed chain does not verify");
    println!(
        "audit chain verification          {:>9} entries in {:>6.1} s: {:>8.0} entries/s   ratio {:.2}",
        report.checked,
        elapsed,
        report.checked as f64 / elapsed,
        report.checked as f64 / elapsed / scan_rate
    );
    Ok(())
}
