//! Several `dcp serve` processes on one PostgreSQL and one NATS: commands through any
//! replica, events on a WebSocket of every replica, each projection and the relay active in
//! exactly one replica; `kill -9` of the replica holding the locks, under load, hands them to
//! another within seconds, and nothing acknowledged is lost or recorded twice.
//!
//! Its own binary: it runs real server processes (to kill them) and a private nats-server.

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeSet, HashMap};
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
    let body: Value = client
        .post(replica.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"))
        .to_string()
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

/// Follows `/ws/events` on `replica`, collecting the positions of the events it delivers.
async fn follow(
    client: &reqwest::Client,
    replica: &Replica,
    token: &str,
    seen: Arc<Mutex<BTreeSet<i64>>>,
) -> tokio::task::JoinHandle<()> {
    let ticket: Value = client
        .post(replica.url("/api/v1/ws-tickets"))
        .bearer_auth(token)
        .json(&json!({"purpose": "events"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "ws://127.0.0.1:{}/ws/events?ticket={}",
        replica.port,
        ticket["ticket"].as_str().unwrap()
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
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
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position = ANY($1)")
            .bind(&acknowledged)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "acknowledged commands in the store"
    );

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
async fn sigterm_under_load_loses_no_acknowledged_command_and_closes_sockets_with_1001() {
    let nats = Nats::start();
    let database_url = fresh_database().await;
    let master_key = master_key();
    let client = http_client();
    let mut server = Replica::start(&database_url, &nats.url(), &master_key);
    server.ready(&client).await;
    let token = login(&client, &server).await;
    let admin = my_id(&client, &server, &token).await;
    let ticket: Value = client
        .post(server.url("/api/v1/ws-tickets"))
        .bearer_auth(&token)
        .json(&json!({"purpose": "events"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{}/ws/events?ticket={}",
        server.port,
        ticket["ticket"].as_str().unwrap()
    ))
    .await
    .unwrap();
    let closed = tokio::spawn(async move {
        while let Some(message) = socket.next().await {
            match message {
                Ok(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                    return frame.map(|f| u16::from(f.code));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    });

    let acknowledged: Arc<Mutex<Vec<i64>>> = Arc::default();
    let mut writers = Vec::new();
    for i in 0..8 {
        let (client, token, acknowledged) = (client.clone(), token.clone(), acknowledged.clone());
        let url = server.url(&format!("/api/v1/users/{admin}"));
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                // Half the writers wait for the read model: it must keep running until the
                // last request is answered.
                let mut request = client.patch(&url).bearer_auth(&token);
                if i % 2 == 0 {
                    request = request.header("prefer", "return=minimal");
                }
                let response = request
                    .json(&json!({"full_name": format!("Admin {i} {n}")}))
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
                        let position = response.headers()["x-dcp-position"]
                            .to_str()
                            .unwrap()
                            .parse::<i64>()
                            .unwrap();
                        acknowledged.lock().unwrap().push(position);
                    }
                    // A lost race on the one aggregate: not acknowledged, try again.
                    Ok(response) if response.status() == StatusCode::CONFLICT => {}
                    // An answer that is neither: the shutdown failed a request.
                    Ok(response) => panic!(
                        "a request in flight got {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    ),
                    // The server stopped accepting: done.
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // An image pull runs in the background when the signal comes: it is finished first.
    let registry = std::env::var("DCP_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55000".into());
    let repository = format!(
        "{registry}/dcp-test/sigterm-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    for args in [
        vec!["tag", image.as_str(), &format!("{repository}:1")],
        vec!["push", &format!("{repository}:1")],
        vec!["rmi", &format!("{repository}:1")],
    ] {
        assert!(Command::new("docker")
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success());
    }
    let accepted: Value = client
        .post(server.url("/api/v1/images/pull"))
        .bearer_auth(&token)
        .json(&json!({"image": repository, "tag": "1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pull = accepted["operation_id"].as_str().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopping = Instant::now();
    let exit = tokio::task::spawn_blocking(move || {
        let mut child = server.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    let exit = exit.expect("the server exits within 30 s of SIGTERM");
    assert!(exit.success(), "exit status {exit}");
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(15), writer)
            .await
            .expect("writers end once the server is gone")
            .unwrap();
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the socket is closed")
            .unwrap(),
        Some(1001),
        "sockets are closed with 1001 (going away)"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "{} acknowledged",
        acknowledged.len()
    );
    let pool = dcp::db::connect(database_url.parse().unwrap(), 2)
        .await
        .unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position = ANY($1)")
            .bind(&acknowledged)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "acknowledged commands in the store"
    );
    // Its locks went with it (PostgreSQL ends its sessions moments after the exit).
    eventually(Duration::from_secs(10), || async {
        lock_holders(&pool).await.is_empty().then_some(())
    })
    .await;
    let pulled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ImagePulled' AND metadata->>'operation_id' = $1",
    )
    .bind(&pull)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        pulled, 1,
        "the pull in flight finished and was recorded before the exit"
    );
    let _ = Command::new("docker")
        .args(["rmi", &format!("{repository}:1")])
        .output();
    eprintln!(
        "{} commands acknowledged; exited {:.2} s after SIGTERM",
        acknowledged.len(),
        stopping.elapsed().as_secs_f64()
    );
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
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position = ANY($1)")
            .bind(&acknowledged)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "acknowledged commands in the store"
    );
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

/// A private PostgreSQL cluster the test can stop and start (run as user `postgres`).
struct Postgres {
    dir: std::path::PathBuf,
    port: u16,
    bin: std::path::PathBuf,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("the PostgreSQL server (scripts/services.sh installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("pg_ctl").exists())
            .expect("pg_ctl");
        let dir = std::path::PathBuf::from("/tmp")
            .join(format!("dcp-pg-restart-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let postgres = Postgres { dir, port, bin };
        assert!(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&postgres.dir)
            .status()
            .unwrap()
            .success());
        postgres.run(&[
            "initdb",
            "-D",
            &postgres.data(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        postgres.pg_ctl_start();
        postgres
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(args[0]))
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-o",
            &options,
            "-l",
            &log,
            "-w",
            "start",
        ]);
    }

    fn stop(&self) {
        self.run(&["pg_ctl", "-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_database_restart_under_load_answers_503_quickly_and_recovers_by_itself() {
    let postgres = Postgres::start();
    let nats = Nats::start();
    let master_key = master_key();
    let client = http_client();
    let server = Replica::start(&postgres.url(), &nats.url(), &master_key);
    server.ready(&client).await;
    let token = login(&client, &server).await;
    let admin = my_id(&client, &server, &token).await;

    // Requests keep coming while the database goes away: each answers within seconds, as
    // 503 DATABASE_UNAVAILABLE, never a 500 or a hang.
    postgres.stop();
    let mut outage = Vec::new();
    for n in 0..6 {
        let started = Instant::now();
        let response = if n % 2 == 0 {
            client
                .get(server.url("/api/v1/users"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
        } else {
            client
                .patch(server.url(&format!("/api/v1/users/{admin}")))
                .bearer_auth(&token)
                .json(&json!({"full_name": format!("During {n}")}))
                .send()
                .await
                .unwrap()
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        outage.push((status, started.elapsed(), body));
    }
    for (n, (status, took, body)) in outage.iter().enumerate() {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "DATABASE_UNAVAILABLE", "{body}");
        // The first finds out (the pool's acquire timeout); the next fail at once.
        let limit = if n == 0 {
            Duration::from_secs(7)
        } else {
            Duration::from_secs(2)
        };
        assert!(*took < limit, "request {n} answered in {took:?}");
    }
    let ready = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back: the same server answers again, writes, and its read models follow.
    postgres.pg_ctl_start();
    let back = Instant::now();
    let updated = eventually(Duration::from_secs(30), || async {
        let response = client
            .patch(server.url(&format!("/api/v1/users/{admin}")))
            .bearer_auth(&token)
            .json(&json!({"full_name": "After the restart"}))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Value>().await.ok()
    })
    .await;
    // Answered with the read model: the projection runs again.
    assert_eq!(updated["full_name"], "After the restart", "{updated}");
    let ready = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    eprintln!(
        "outage answers: {:?}; recovered {:.1} s after the database came back",
        outage.iter().map(|(_, took, _)| *took).collect::<Vec<_>>(),
        back.elapsed().as_secs_f64()
    );
}
