//! Real-time benchmark, against a `dcp` server process (release build) on the test services:
//!
//! 1. Command → WebSocket delivery latency (p50/p99) with 1,000 `/ws/events` sockets open,
//!    on the in-process bus and on NATS (`DCP_TEST_NATS_URL`).
//! 2. Server RSS idle and with the 1,000 sockets open (aim ≤ 100 MB).
//! 3. Log streaming: a container's whole log read over `/ws/containers/{id}/logs` against
//!    the same log read straight from the Docker API, in the same run (ratio; aim ≥ 0.8).
//!
//! Run: `scripts/services.sh && source /tmp/dcp-services/env && cargo bench --bench realtime`
//! (`DCP_BENCH_SOCKETS`, default 1000; `DCP_BENCH_COMMANDS`, default 100;
//! `DCP_BENCH_LOG_LINES`, default 200000.)

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const PASSWORD: &str = "bench-admin-password-1";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A `dcp serve` process on its own fresh database.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    async fn start(database_server: &str, nats: Option<&str>) -> anyhow::Result<Server> {
        let mut conn = PgConnection::connect(database_server).await?;
        let name = format!("dcp_bench_{}", Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let (base, _) = database_server.rsplit_once('/').context("database URL")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data_dir = std::env::temp_dir().join(&name);
        let mut command = Command::new(env!("CARGO_BIN_EXE_dcp"));
        command
            .arg("serve")
            .env("DATABASE_URL", format!("{base}/{name}"))
            .env("DCP_BIND", format!("127.0.0.1:{port}"))
            .env("DCP_DATA_DIR", &data_dir)
            .env("DCP_ADMIN_PASSWORD", PASSWORD)
            .env(
                "DCP_JWT_SECRET",
                "a-bench-secret-that-is-long-enough-0123456789",
            )
            .env("DCP_WATCH_DOCKER_EVENTS", "false")
            .env("RUST_LOG", "warn")
            .env_remove("NATS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(nats) = nats {
            command.env("NATS_URL", nats);
        }
        let child = command.spawn().context("start dcp")?;
        let server = Server {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("http://{}/health/ready", server.address))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            anyhow::ensure!(Instant::now() < deadline, "dcp did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(
    client: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body: Value = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("login failed: {body}"))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_socket(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    path: &str,
    purpose: Value,
) -> anyhow::Result<Socket> {
    let ticket: Value = client
        .post(server.url("/api/v1/ws-tickets"))
        .bearer_auth(token)
        .json(&purpose)
        .send()
        .await?
        .json()
        .await?;
    let ticket = ticket["ticket"].as_str().context("no ticket")?;
    let url = format!(
        "ws://{}{path}{}ticket={ticket}",
        server.address,
        if path.contains('?') { "&" } else { "?" }
    );
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(socket)
}

/// Opens `sockets` event sockets (32 per user, the per-user cap), sends `commands` profile
/// changes one after another, and returns every socket's delivery latency.
async fn delivery(
    server: &Server,
    sockets: usize,
    commands: usize,
) -> anyhow::Result<(Vec<Duration>, f64, f64)> {
    let client = reqwest::Client::new();
    let started_rss = server.rss_mb();
    let admin = login(&client, server, "admin", PASSWORD).await?;
    let login_rss = server.rss_mb();
    let users = sockets.div_ceil(32);
    let mut tokens = Vec::new();
    for i in 0..users {
        let username = format!("bench{i}");
        let password = format!("{username}-password-1");
        let response = client
            .post(server.url("/api/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "full_name": username,
                "role": "admin", "password": password, "must_change_password": false}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "create user: {}",
            response.text().await?
        );
        tokens.push(login(&client, server, &username, &password).await?);
    }
    let target: Value = client
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(&admin)
        .send()
        .await?
        .json()
        .await?;
    let target_id = target["id"].as_str().context("me")?.to_string();
    // Idle: every user logged in (password hashing has had its memory), no socket open.
    let idle_rss = server.rss_mb();
    println!("  RSS at start {started_rss:.1} MB, after one login {login_rss:.1} MB, after {users} users and logins {idle_rss:.1} MB");
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut readers = Vec::new();
    for i in 0..sockets {
        let mut socket = open_socket(
            &client,
            server,
            &tokens[i / 32],
            "/ws/events",
            json!({"purpose": "events"}),
        )
        .await?;
        let (sent, latencies) = (sent.clone(), latencies.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < commands {
                let Some(Ok(Message::Text(text))) = socket.next().await else {
                    return;
                };
                let arrived = Instant::now();
                if !text.contains("UserProfileUpdated") {
                    continue;
                }
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let Some(marker) = message["event"]["data"]["full_name"].as_str() else {
                    continue;
                };
                if let Some(at) = sent.lock().unwrap().get(marker) {
                    latencies.lock().unwrap().push(arrived - *at);
                    seen += 1;
                }
            }
        }));
    }
    // Every socket has said `ready` by the time its first event arrives; give them a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open_rss = server.rss_mb();
    for n in 0..commands {
        let marker = format!("bench-{n}");
        sent.lock().unwrap().insert(marker.clone(), Instant::now());
        let response = client
            .patch(server.url(&format!("/api/v1/users/{target_id}")))
            .bearer_auth(&admin)
            .header("prefer", "return=minimal")
            .json(&json!({"full_name": marker}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "patch: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(60), reader).await;
    }
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    Ok((latencies, idle_rss, open_rss))
}

/// Bytes of a container's whole log, read straight from Docker and over the socket.
async fn log_streaming(server: &Server, lines: usize, rounds: usize) -> anyhow::Result<()> {
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    let name = format!(
        "dcp-bench-logs-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let script = format!("i=0; while [ $i -lt {lines} ]; do echo \"line $i of the benchmark log, padded to a realistic length\"; i=$((i+1)); done; sleep 600");
    let status = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "dcp.bench=logs",
            &image,
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "docker run");
    let docker = bollard::Docker::connect_with_local_defaults()?;
    // Wait until the whole log is written.
    loop {
        let mut count = 0;
        let mut logs = docker.logs(
            &name,
            Some(LogsOptions {
                stdout: true,
                tail: "1".into(),
                ..Default::default()
            }),
        );
        while let Some(Ok(line)) = logs.next().await {
            if String::from_utf8_lossy(&line.into_bytes()).contains(&format!("line {} ", lines - 1))
            {
                count += 1;
            }
        }
        if count > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = reqwest::Client::new();
    let admin = login(&client, server, "admin", PASSWORD).await?;
    let (mut direct, mut socket_times) = (Vec::new(), Vec::new());
    let mut bytes = 0usize;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut logs = docker.logs(
            &name,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: "all".into(),
                ..Default::default()
            }),
        );
        let mut read = 0;
        while let Some(Ok(chunk)) = logs.next().await {
            read += chunk.into_bytes().len();
        }
        direct.push(started.elapsed());
        bytes = read;

        let started = Instant::now();
        let mut socket = open_socket(
            &client,
            server,
            &admin,
            &format!("/ws/containers/{name}/logs?tail=all&follow=false"),
            json!({"purpose": "container.logs", "resource_id": name}),
        )
        .await?;
        let mut received = 0;
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Text(text) if text.contains("\"type\":\"end\"") => break,
                Message::Text(_) => received += 1,
                Message::Close(_) => break,
                _ => {}
            }
        }
        socket_times.push(started.elapsed());
        anyhow::ensure!(
            received >= lines,
            "the socket delivered {received} of {lines} lines"
        );
    }
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    direct.sort();
    socket_times.sort();
    let (direct_p50, socket_p50) = (percentile(&direct, 0.5), percentile(&socket_times, 0.5));
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "log streaming, {lines} lines ({:.1} MB), {rounds} rounds:",
        bytes as f64 / 1e6
    );
    println!(
        "  Docker API directly      p50 {:>8.1} ms   {:>7.1} MB/s",
        direct_p50.as_secs_f64() * 1000.0,
        rate(direct_p50)
    );
    println!(
        "  /ws/containers/{{id}}/logs p50 {:>8.1} ms   {:>7.1} MB/s",
        socket_p50.as_secs_f64() * 1000.0,
        rate(socket_p50)
    );
    println!(
        "  throughput ratio socket / Docker: {:.2} (aim ≥ 0.8)",
        direct_p50.as_secs_f64() / socket_p50.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database = std::env::var("DCP_TEST_DATABASE_URL")
        .context("DCP_TEST_DATABASE_URL is not set: run scripts/services.sh and source /tmp/dcp-services/env")?;
    let sockets = env_number("DCP_BENCH_SOCKETS", 1000);
    let commands = env_number("DCP_BENCH_COMMANDS", 100);
    let lines = env_number("DCP_BENCH_LOG_LINES", 200_000);
    let nats = std::env::var("DCP_TEST_NATS_URL").ok();
    println!("dcp real-time benchmark — {sockets} sockets, {commands} commands");
    let mut buses: Vec<(&str, Option<&str>)> = vec![("in-process bus", None)];
    if let Some(nats) = nats.as_deref() {
        buses.push(("NATS JetStream", Some(nats)));
    }
    let mut last_server = None;
    for (label, nats) in buses {
        let server = Server::start(&database, nats).await?;
        let (latencies, idle, open) = delivery(&server, sockets, commands).await?;
        anyhow::ensure!(!latencies.is_empty(), "no event was delivered");
        println!(
            "{label:<15} command → socket  p50 {:>7.2} ms   p99 {:>7.2} ms   ({} deliveries of {} expected)",
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.len(),
            sockets * commands
        );
        println!(
            "{label:<15} server RSS idle {idle:.1} MB, with {sockets} sockets open {open:.1} MB ({:.1} KB per socket; aim ≤ 100 MB)",
            (open - idle) * 1024.0 / sockets as f64
        );
        last_server = Some(server);
    }
    if let Some(server) = last_server {
        log_streaming(&server, lines, 5).await?;
    }
    Ok(())
}
