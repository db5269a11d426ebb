//! Scale-out benchmark: command throughput with 1, 2 and 3 `dcp serve` replicas (release
//! processes) on the same PostgreSQL and NATS, against the database's own ceiling for the
//! same writes measured in the same run; and WebSocket delivery across replicas (a command
//! through one replica, its event on another replica's socket).
//!
//! Run: `scripts/services.sh && source /tmp/dcp-services/env && cargo bench --bench replicas`
//! (`DCP_BENCH_SECONDS` per phase, default 8; `DCP_BENCH_CLIENTS`, default 32.)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

mod common;
use common::{drop_databases, fresh_database, percentile};

const PASSWORD: &str = "bench-admin-password-1";

struct Replica {
    port: u16,
    child: Child,
}

impl Replica {
    fn start(database_url: &str, nats_url: &str) -> anyhow::Result<Replica> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data_dir = std::env::temp_dir().join(format!("dcp-bench-{}", Uuid::new_v4().simple()));
        let child = Command::new(env!("CARGO_BIN_EXE_dcp"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", nats_url)
            .env("DCP_BIND", format!("127.0.0.1:{port}"))
            .env("DCP_DATA_DIR", data_dir)
            .env("DCP_ADMIN_PASSWORD", PASSWORD)
            .env(
                "DCP_JWT_SECRET",
                "a-bench-secret-that-is-long-enough-0123456789",
            )
            .env(
                "DCP_AUDIT_KEY",
                "a-bench-audit-key-that-is-long-enough-01234567",
            )
            .env(
                "DCP_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("DCP_WATCH_DOCKER_EVENTS", "false")
            .env("DCP_DB_MAX_CONNECTIONS", "16")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Replica { port, child })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(self.url("/health/live")).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "replica did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn login(client: &reqwest::Client, replica: &Replica) -> anyhow::Result<String> {
    let body: Value = client
        .post(replica.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("login failed: {body}"))
}

/// The database's ceiling for these writes: plain inserts of event-sized rows, one
/// transaction each, from `clients` connections.
async fn raw_ceiling(database_url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let mut conn = PgConnection::connect(database_url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, body jsonb)")
        .execute(&mut conn)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = database_url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await?;
            let mut done = 0u64;
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO bench_raw (body) VALUES ($1)")
                    .bind(json!({"UserProfileUpdated": {"full_name": "x".repeat(40)}}))
                    .execute(&mut conn)
                    .await?;
                done += 1;
            }
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / seconds as f64)
}

/// `clients` writers, each on its own user, round robin over the replicas, for `seconds`.
async fn throughput(
    client: &reqwest::Client,
    replicas: &[Replica],
    token: &str,
    users: &[String],
    seconds: u64,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let urls: Vec<String> = replicas
            .iter()
            .map(|r| r.url(&format!("/api/v1/users/{user}")))
            .collect();
        let (client, token) = (client.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = i;
            while Instant::now() < deadline {
                n += 1;
                let started = Instant::now();
                let response = client
                    .patch(&urls[n % urls.len()])
                    .bearer_auth(&token)
                    .header("prefer", "return=minimal")
                    .json(&json!({"full_name": format!("Bench {i} {n}")}))
                    .send()
                    .await?;
                anyhow::ensure!(response.status().is_success(), "{}", response.status());
                latencies.push(started.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort();
    Ok((latencies.len() as f64 / seconds as f64, latencies))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DCP_TEST_DATABASE_URL").context("DCP_TEST_DATABASE_URL is not set: run scripts/services.sh and source /tmp/dcp-services/env")?;
    let nats = std::env::var("DCP_TEST_NATS_URL").context("DCP_TEST_NATS_URL is not set")?;
    let seconds: u64 = std::env::var("DCP_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let clients: usize = std::env::var("DCP_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    let (raw_url, raw_name) = fresh_database(&server).await?;
    let ceiling = raw_ceiling(&raw_url, clients.min(16), seconds).await?;
    println!(
        "database ceiling: {ceiling:.0} inserts/s (event-sized rows, one transaction each, {} connections)\n",
        clients.min(16)
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>12}",
        "replicas", "commands/s", "p50 ms", "p99 ms", "vs ceiling"
    );
    let mut drop_dbs = vec![raw_name];
    let mut first_rate = None;
    for count in 1..=3 {
        let (url, name) = fresh_database(&server).await?;
        drop_dbs.push(name);
        let mut replicas = vec![Replica::start(&url, &nats)?];
        replicas[0].ready(&client).await?;
        for _ in 1..count {
            replicas.push(Replica::start(&url, &nats)?);
        }
        for replica in &replicas {
            replica.ready(&client).await?;
        }
        let token = login(&client, &replicas[0]).await?;
        let mut users = Vec::new();
        for i in 0..clients {
            let user: Value = client
                .post(replicas[0].url("/api/v1/users"))
                .bearer_auth(&token)
                .json(&json!({
                    "username": format!("bench{i}"), "email": format!("bench{i}@example.com"),
                    "full_name": "Bench", "role": "viewer", "password": "a-bench-password-123",
                }))
                .send()
                .await?
                .json()
                .await?;
            users.push(user["id"].as_str().context("user not created")?.to_string());
        }
        let (rate, latencies) = throughput(&client, &replicas, &token, &users, seconds).await?;
        first_rate.get_or_insert(rate);
        println!(
            "{count:<10} {rate:>10.0} {:>10.2} {:>10.2} {:>12.2}",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            rate / ceiling
        );

        if count == 3 {
            // Delivery across replicas: a command through the first, its event on the
            // third's socket.
            let ticket: Value = client
                .post(replicas[2].url("/api/v1/ws-tickets"))
                .bearer_auth(&token)
                .json(&json!({"purpose": "events"}))
                .send()
                .await?
                .json()
                .await?;
            let (mut socket, _) = tokio_tungstenite::connect_async(format!(
                "ws://127.0.0.1:{}/ws/events?ticket={}",
                replicas[2].port,
                ticket["ticket"].as_str().context("no ticket")?
            ))
            .await?;
            let mut delivery = Vec::new();
            for n in 0..200 {
                let started = Instant::now();
                let response = client
                    .patch(replicas[0].url(&format!("/api/v1/users/{}", users[0])))
                    .bearer_auth(&token)
                    .header("prefer", "return=minimal")
                    .json(&json!({"full_name": format!("Delivered {n}")}))
                    .send()
                    .await?;
                let position: i64 = response.headers()["x-dcp-position"].to_str()?.parse()?;
                loop {
                    let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                        .await?
                        .context("socket closed")??;
                    if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                        let value: Value = serde_json::from_str(&text)?;
                        if value["event"]["global_position"].as_i64() == Some(position) {
                            break;
                        }
                    }
                }
                delivery.push(started.elapsed());
            }
            delivery.sort();
            println!(
                "\ncommand through replica 1 → its event on replica 3's socket (NATS): p50 {:.2} ms, p99 {:.2} ms (200 commands, one at a time)",
                ms(percentile(&delivery, 0.5)),
                ms(percentile(&delivery, 0.99))
            );
        }
    }
    if let Some(first) = first_rate {
        println!("(1 replica: {first:.0} commands/s)");
    }
    drop_databases(&server, &drop_dbs).await?;
    Ok(())
}
