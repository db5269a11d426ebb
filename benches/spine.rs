//! Spine benchmark: command throughput and latency against the raw insert ceiling of
//! the same database, and projection catch-up rate.
//!
//! Run: `scripts/services.sh && source /tmp/dcp-services/env && cargo bench --bench spine`
//! (`DCP_BENCH_SECONDS`, default 10, sets the length of each throughput phase.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use dcp::app::Application;
use dcp::commands::{CommandBus, CommandMeta};
use dcp::config::Settings;
use dcp_aggregates::user::{User, UserCommand};
use dcp_aggregates::Role;
use dcp_projections::{all_projections, rebuild_projection, LogWaker, ProjectionProgress};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const CLIENTS: usize = 16;
const USERS_PER_CLIENT: usize = 100;
const CATCH_UP_EVENTS: i64 = 100_000;

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

struct Figures {
    operations: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// A client task: the latency of every operation it completed.
type Client = tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>;

impl Figures {
    /// Waits for the clients and puts their latencies together.
    async fn gather(clients: Vec<Client>, started: Instant) -> anyhow::Result<Figures> {
        let mut latencies = Vec::new();
        for client in clients {
            latencies.extend(client.await??);
        }
        Ok(Figures {
            operations: latencies.len(),
            elapsed: started.elapsed(),
            latencies,
        })
    }

    fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }
    fn line(&mut self, label: &str) -> String {
        self.latencies.sort();
        format!(
            "{label:<34} {:>9.0} ops/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} ops in {:.1} s)",
            self.per_second(),
            percentile(&self.latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1000.0,
            self.operations,
            self.elapsed.as_secs_f64()
        )
    }
}

/// 16 connections, each writing one event-sized row per transaction, the way the event
/// store writes (BEGIN, INSERT, COMMIT).
async fn raw_ceiling(
    pool: &PgPool,
    table: &'static str,
    payload: &Value,
    metadata: &Value,
    seconds: u64,
) -> anyhow::Result<Figures> {
    if table == "bench_raw" {
        sqlx::query(
            "CREATE TABLE bench_raw (aggregate_type text NOT NULL, aggregate_id text NOT NULL, sequence bigint NOT NULL, \
             event_type text NOT NULL, event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
        )
        .execute(pool)
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let pool = pool.clone();
        let (payload, metadata) = (payload.clone(), metadata.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut latencies = Vec::new();
            let mut sequence = 0i64;
            while Instant::now() < deadline {
                let at = Instant::now();
                let mut tx = conn.begin().await?;
                sqlx::query(&format!(
                    "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                     VALUES ('bench', $1, $2, 'UserProfileUpdated', '1', $3, $4)"
                ))
                .bind(format!("client-{client}"))
                .bind(sequence)
                .bind(&payload)
                .bind(&metadata)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                latencies.push(at.elapsed());
                sequence += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    Figures::gather(tasks, started).await
}

/// 16 HTTP clients, each sending `PATCH /api/v1/users/{id}` (a profile update) over its own users.
async fn command_throughput(
    address: &str,
    token: &str,
    users: &[Uuid],
    seconds: u64,
    minimal: bool,
) -> anyhow::Result<Figures> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in users.chunks(USERS_PER_CLIENT) {
        let client = client.clone();
        let chunk = chunk.to_vec();
        let (address, token) = (address.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let id = chunk[i % chunk.len()];
                let at = Instant::now();
                let mut request = client
                    .patch(format!("{address}/api/v1/users/{id}"))
                    .bearer_auth(&token);
                if minimal {
                    request = request.header("prefer", "return=minimal");
                }
                let response = request
                    .json(&json!({ "full_name": format!("Bench User {i}") }))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "command failed: {}",
                    response.text().await?
                );
                latencies.push(at.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    Figures::gather(tasks, started).await
}

/// 16 tasks executing `UpdateProfile` through the command bus (aggregate load, decision,
/// event append, position lookup): the event-sourcing cost without HTTP.
async fn bus_throughput(pool: &PgPool, users: &[Uuid], seconds: u64) -> anyhow::Result<Figures> {
    let bus = CommandBus::new(pool.clone());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in users.chunks(USERS_PER_CLIENT) {
        let bus = bus.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let meta = CommandMeta::system();
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let id = chunk[i % chunk.len()];
                let at = Instant::now();
                let command = UserCommand::UpdateProfile {
                    email: None,
                    full_name: Some(format!("Bus User {i}")),
                    at: Utc::now(),
                };
                bus.execute::<User>(&id.to_string(), command, &meta)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                latencies.push(at.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    Figures::gather(tasks, started).await
}

async fn seed_users(pool: &PgPool, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let bus = CommandBus::new(pool.clone());
    let meta = CommandMeta::system();
    let mut ids = Vec::with_capacity(count);
    let mut last = None;
    for i in 0..count {
        let id = Uuid::now_v7();
        let command = UserCommand::CreateUser {
            user_id: id,
            username: format!("bench{i}"),
            email: format!("bench{i}@example.com"),
            full_name: format!("Bench User {i}"),
            role: Role::Viewer,
            must_change_password: false,
            at: Utc::now(),
        };
        last = bus
            .execute::<User>(&id.to_string(), command, &meta)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id);
    }
    let waker = LogWaker::default();
    let progress = ProjectionProgress::new(pool.clone(), waker);
    if let Some(last) = last {
        anyhow::ensure!(
            progress
                .wait_for(&["users"], last, Duration::from_secs(120))
                .await?,
            "users projection did not catch up"
        );
    }
    Ok(ids)
}

/// Writes `count` realistic user events straight into the store.
async fn seed_events(pool: &PgPool, count: i64) -> anyhow::Result<()> {
    let per_user = 10;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'user', u.id::text, s.n, CASE WHEN s.n = 1 THEN 'UserCreated' ELSE 'UserProfileUpdated' END, '1', \
           CASE WHEN s.n = 1 THEN json_build_object('UserCreated', json_build_object('user_id', u.id, \
               'username', 'seed' || u.i, 'email', 'seed' || u.i || '@example.com', 'full_name', 'Seed ' || u.i, \
               'role', 'viewer', 'must_change_password', false, 'created_at', now())) \
           ELSE json_build_object('UserProfileUpdated', json_build_object('user_id', u.id, 'email', NULL, \
               'full_name', 'Seed ' || u.i || ' v' || s.n, 'updated_at', now())) END, \
           json_build_object('actor_id', '00000000-0000-0000-0000-000000000001', 'actor_username', 'admin', \
               'actor_role', 'admin', 'request_id', gen_random_uuid(), 'client_ip', '127.0.0.1', 'user_agent', 'bench/1.0') \
         FROM (SELECT i, gen_random_uuid() AS id FROM generate_series(1, $1) AS i) u \
         CROSS JOIN generate_series(1, $2) AS s(n) ORDER BY u.i, s.n",
    )
    .bind(count / per_user)
    .bind(per_user as i32)
    .execute(pool)
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DCP_TEST_DATABASE_URL")
        .context("DCP_TEST_DATABASE_URL is not set: run scripts/services.sh and source /tmp/dcp-services/env")?;
    let seconds: u64 = std::env::var("DCP_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "dcp spine benchmark — {} cores, {CLIENTS} concurrent clients, {seconds} s per phase",
        std::thread::available_parallelism()?.get()
    );

    // Command throughput through the whole stack (HTTP, auth lookup, aggregate load, event
    // append, read-your-writes wait for the projection, read model response).
    let url = fresh_database(&server).await?;
    let data_dir = std::env::temp_dir().join(format!("dcp-bench-{}", Uuid::new_v4().simple()));
    let mut settings = Settings::for_tests(&url, data_dir);
    settings.db_max_connections = 48;
    let app = Application::build(settings).await?;
    let address = format!("http://{}", app.address());
    let pool = app.pool().clone();
    let shutdown = app.shutdown_token();
    let server_task = tokio::spawn(app.run_until_stopped());
    let login: Value = reqwest::Client::new()
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "admin-password-for-tests"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("login failed")?
        .to_string();
    let users = seed_users(&pool, CLIENTS * USERS_PER_CLIENT).await?;
    let sample: (Value, Value) = sqlx::query_as(
        "SELECT payload, metadata FROM events WHERE event_type = 'UserCreated' LIMIT 1",
    )
    .fetch_one(&pool)
    .await?;
    // Warm up, then measure the raw ceiling and the commands on the same database, with
    // the server's projection runners running as in production.
    command_throughput(&address, &token, &users, 2, false).await?;
    let mut raw = raw_ceiling(&pool, "bench_raw", &sample.0, &sample.1, seconds).await?;
    println!("{}", raw.line("raw insert ceiling (1 row / tx)"));
    let ceiling = raw.per_second();
    // The same inserts into the event store itself (its four indexes, identity, defaults and
    // trigger): what appending an event costs before any framework is involved.
    let mut store = raw_ceiling(&pool, "events", &sample.0, &sample.1, seconds).await?;
    println!(
        "{}   ratio {:.2}",
        store.line("same rows into the events table"),
        store.per_second() / ceiling
    );
    let mut phases = [
        (
            "UpdateProfile via the command bus",
            bus_throughput(&pool, &users, seconds).await?,
        ),
        (
            "PATCH, Prefer: return=minimal",
            command_throughput(&address, &token, &users, seconds, true).await?,
        ),
        (
            "PATCH, waits for the read model",
            command_throughput(&address, &token, &users, seconds, false).await?,
        ),
    ];
    for (label, figures) in phases.iter_mut() {
        println!(
            "{}   ratio {:.2}",
            figures.line(label),
            figures.per_second() / ceiling
        );
    }
    shutdown.cancel();
    server_task.await??;

    // Projection catch-up from zero over 100,000 stored events.
    let url = fresh_database(&server).await?;
    let pool = dcp::db::connect(url.parse()?, 8).await?;
    dcp::db::migrate(&pool).await?;
    let seeded = Instant::now();
    seed_events(&pool, CATCH_UP_EVENTS).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    println!(
        "seeded {stored} events in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    for projection in all_projections() {
        let started = Instant::now();
        let status =
            rebuild_projection(&pool, Arc::clone(&projection), Duration::from_secs(600)).await?;
        let elapsed = started.elapsed();
        println!(
            "projection {:<10} caught up on {} events in {:.2} s: {:>8.0} events/s",
            status.name,
            status.events_applied,
            elapsed.as_secs_f64(),
            status.events_applied as f64 / elapsed.as_secs_f64()
        );
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for projection in all_projections() {
        let pool = pool.clone();
        all.push(tokio::spawn(async move {
            rebuild_projection(&pool, projection, Duration::from_secs(600)).await
        }));
    }
    for task in all {
        task.await??;
    }
    let elapsed = started.elapsed();
    println!(
        "all {} projections together from zero: {:.2} s, {:.0} events/s per projection",
        all_projections().len(),
        elapsed.as_secs_f64(),
        stored as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
