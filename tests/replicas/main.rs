//! Several `dcp serve` processes on one PostgreSQL and one NATS: commands through any
//! replica, events on a WebSocket of every replica, each projection and the relay active in
//! exactly one replica; `kill -9` of the replica holding the locks, under load, hands them to
//! another within seconds, and nothing acknowledged is lost or recorded twice; SIGTERM and a
//! database restart under load.
//!
//! Its own binary: it runs real server processes (to kill them) and a private nats-server.

#[path = "../common/mod.rs"]
mod common;

mod database_restart;
mod failover;
mod shutdown;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use common::*;

const PASSWORD: &str = "replica-admin-password-1";

/// One `dcp serve` process.
struct Replica {
    port: u16,
    child: Option<Child>,
}

impl Replica {
    fn start(database_url: &str, nats_url: &str, master_key: &str) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_dcp"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", nats_url)
            .env("DCP_BIND", format!("127.0.0.1:{port}"))
            .env("DCP_DATA_DIR", temp_dir())
            .env("DCP_ADMIN_PASSWORD", PASSWORD)
            // Shared by every replica: a token from one is good at the others.
            .env(
                "DCP_JWT_SECRET",
                "a-replica-test-secret-that-is-long-enough-0123",
            )
            .env(
                "DCP_AUDIT_KEY",
                "a-replica-audit-key-that-is-long-enough-012345",
            )
            .env("DCP_MASTER_KEY", master_key)
            .env("DCP_WATCH_DOCKER_EVENTS", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dcp serve");
        Replica {
            port,
            child: Some(child),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client.get(self.url("/health/live")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "replica did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn login(client: &reqwest::Client, replica: &Replica) -> String {
    common::login_at(client, &replica.url(""), "admin", PASSWORD).await
}

fn master_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The id of the user `token` belongs to.
async fn my_id(client: &reqwest::Client, replica: &Replica, token: &str) -> String {
    let me: Value = client
        .get(replica.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_string()
}

/// Creates `count` viewers (`<prefix>0`, …) to change under load, one per writer, so the
/// writers never race on one aggregate; returns their ids.
async fn create_users(
    client: &reqwest::Client,
    replica: &Replica,
    token: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let response = client
            .post(replica.url("/api/v1/users"))
            .bearer_auth(token)
            .json(&json!({
                "username": format!("{prefix}{i}"),
                "email": format!("{prefix}{i}@example.com"),
                "full_name": "Load",
                "role": "viewer",
                "password": "a-load-password-123",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let user: Value = response.json().await.unwrap();
        ids.push(user["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Waits until every projection has applied the whole log, then checks that each event
/// was applied and published exactly once: one audit entry and one bus message per event.
async fn assert_converged(pool: &sqlx::PgPool, nats: &Nats) {
    eventually(Duration::from_secs(30), || async {
        let statuses = dcp_projections::projection_statuses(pool).await.unwrap();
        (statuses.len() == 7 && statuses.iter().all(|s| s.lag == 0)).then_some(())
    })
    .await;
    let (events, audit): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM audit_logs)")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(audit, events, "one audit entry per event");
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let published = eventually(Duration::from_secs(30), || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream("DCP_EVENTS").await.ok()?;
            let messages = stream.info().await.ok()?.state.messages as i64;
            (messages >= events).then_some(messages)
        }
    })
    .await;
    assert_eq!(published, events, "each event on the bus once");
}

/// `/ws/events` on `replica`, opened with a ticket of `token`'s in its query.
async fn events_socket(client: &reqwest::Client, replica: &Replica, token: &str) -> Socket {
    let base = replica.url("");
    let ticket = request_ws_ticket(client, &base, token, json!({"purpose": "events"})).await;
    Socket::connect(&ws_url(&base, &format!("/ws/events?ticket={ticket}"))).await
}

/// Follows `/ws/events` on `replica`, collecting the positions of the events it delivers.
async fn follow(
    client: &reqwest::Client,
    replica: &Replica,
    token: &str,
    seen: Arc<Mutex<BTreeSet<i64>>>,
) -> tokio::task::JoinHandle<()> {
    let mut socket = events_socket(client, replica, token).await;
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(position) = value["event"]["global_position"].as_i64() {
                    seen.lock().unwrap().insert(position);
                }
            }
        }
    })
}

/// Every acknowledged command (by its position) is in the store.
async fn assert_all_stored(pool: &sqlx::PgPool, acknowledged: &[i64]) {
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position = ANY($1)")
            .bind(acknowledged)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "acknowledged commands in the store"
    );
}

/// The advisory locks held now, as (lock key, holder pid).
async fn lock_holders(pool: &sqlx::PgPool) -> Vec<(String, u32)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT l.classid::text || ':' || l.objid::text, a.application_name \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'dcp/%' \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(key, application)| {
            // `dcp/<host>/<pid>`
            let pid = application
                .rsplit('/')
                .next()
                .and_then(|pid| pid.parse().ok())
                .unwrap_or_default();
            (key, pid)
        })
        .collect()
}

/// Writes through `urls` (round robin) until `stop`, each writer on its own user; returns
/// the positions of the acknowledged commands.
async fn write_load(
    client: &reqwest::Client,
    token: &str,
    urls: Vec<String>,
    targets: &[String],
    stop: tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<Vec<i64>>> {
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let (client, token, stop, urls, target) = (
                client.clone(),
                token.to_string(),
                stop.clone(),
                urls.clone(),
                target.clone(),
            );
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut n = 0usize;
                while !stop.is_cancelled() {
                    n += 1;
                    let base = &urls[(i + n) % urls.len()];
                    let sent = client
                        .patch(format!("{base}/api/v1/users/{target}"))
                        .bearer_auth(&token)
                        .header("prefer", "return=minimal")
                        .json(&json!({"full_name": format!("Load {i} {n}")}))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().is_success() => {
                            acknowledged.push(
                                response.headers()["x-dcp-position"]
                                    .to_str()
                                    .unwrap()
                                    .parse::<i64>()
                                    .unwrap(),
                            );
                        }
                        Ok(_) => {}
                        // Nobody listening (a killed server): do not spin.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                acknowledged
            })
        })
        .collect()
}
