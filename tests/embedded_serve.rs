//! The real `dcp` binary with nothing configured but a data dir and an address: it starts the embedded
//! PostgreSQL (as user `postgres` when the tests run as root), prints the first admin's password once,
//! keeps its data across a restart, stops the cluster on SIGTERM, and lets `dcp projections status`
//! use the cluster of a running server without disturbing it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

/// Initdb, migrations and hashing the generated passwords all happen before the server is up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const NEW_PASSWORD: &str = "a-new-admin-password-1";

/// A fresh data dir under /tmp, which user `postgres` can traverse (root's home is not), removed
/// when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        let dir =
            PathBuf::from("/tmp").join(format!("dcp-embedded-serve-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create data dir");
        DataDir(dir)
    }

    fn postmaster_pid(&self) -> Option<u32> {
        let content = std::fs::read_to_string(self.0.join("postgres/postmaster.pid")).ok()?;
        content.lines().next()?.trim().parse().ok()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        // A server the test failed to stop still runs: stop it (SIGQUIT is an immediate shutdown).
        if let Some(pid) = self.postmaster_pid() {
            send_signal("QUIT", pid);
            wait_until(EXIT_TIMEOUT, || !is_alive(pid));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `dcp` with a clean environment: no DATABASE_URL, NATS_URL or secrets.
fn dcp(data_dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcp"));
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("DCP_DATA_DIR", data_dir)
        .env("DCP_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Machines whose PostgreSQL lives somewhere dcp does not look.
    if let Some(dir) = std::env::var_os("DCP_PG_BIN_DIR") {
        cmd.env("DCP_PG_BIN_DIR", dir);
    }
    cmd
}

/// The port has to be known before the server prints it, for `dcp projections` to share the env.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A running `dcp serve`, stopped (and killed if it must be) when dropped.
struct Server {
    child: Child,
    port: u16,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the binary and waits until it says it is running; returns what it printed before.
    fn start(data_dir: &Path) -> (Server, Vec<String>) {
        let port = free_port();
        let mut child = dcp(data_dir, port).spawn().expect("spawn dcp");
        let (lines, stdout) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let server = Server {
            child,
            port,
            stdout,
            stderr,
        };
        let printed = server.wait_until_running();
        (server, printed)
    }

    fn wait_until_running(&self) -> Vec<String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut printed = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(remaining) {
                Ok(line) if line.starts_with("dcp is running at http://") => return printed,
                Ok(line) => printed.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "dcp did not report running within {STARTUP_TIMEOUT:?}; stdout {printed:?}, \
                     stderr:\n{}",
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "dcp exited before running; stdout {printed:?}, stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, as a service manager stops it, and the exit status.
    fn terminate(&mut self) -> ExitStatus {
        send_signal("TERM", self.child.id());
        let mut status = None;
        wait_until(EXIT_TIMEOUT, || {
            status = self.child.try_wait().expect("wait for dcp");
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("dcp did not exit within {EXIT_TIMEOUT:?} of SIGTERM"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            send_signal("TERM", self.child.id());
            if !wait_until(EXIT_TIMEOUT, || !matches!(self.child.try_wait(), Ok(None))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

fn send_signal(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Polls `done` until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Zombies count as dead: an orphaned postmaster is reaped by init, which may take its time.
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        !matches!(state, Some("Z" | "X" | "x"))
    })
}

/// Runs `dcp <args>` to completion with the server's environment.
fn run_tool(data_dir: &Path, port: u16, args: &[&str]) -> Output {
    let child = dcp(data_dir, port)
        .args(args)
        .spawn()
        .expect("spawn dcp tool");
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(TOOL_TIMEOUT) {
        Ok(output) => output.expect("wait for dcp tool"),
        Err(_) => {
            send_signal("KILL", pid);
            panic!(
                "`dcp {}` did not finish within {TOOL_TIMEOUT:?}",
                args.join(" ")
            );
        }
    }
}

async fn login(client: &reqwest::Client, server: &Server, password: &str) -> (StatusCode, Value) {
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("send login");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_binary_runs_on_an_embedded_postgres_that_keeps_data_and_stops_with_it() {
    let data_dir = DataDir::new();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // First start: the cluster is created and the admin's generated password printed.
    let (mut server, printed) = Server::start(&data_dir.0);
    let password = printed
        .iter()
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["admin", password, "(admin)"] => Some(password.to_owned()),
                _ => None,
            },
        )
        .unwrap_or_else(|| panic!("no admin password in the banner {printed:?}"));

    let (status, body) = login(&client, &server, &password).await;
    assert_eq!(status, StatusCode::OK, "login: {body}");
    assert_eq!(body["user"]["must_change_password"], true);
    let token = body["access_token"].as_str().expect("access_token");
    let response = client
        .post(server.url("/api/v1/auth/password"))
        .bearer_auth(token)
        .json(&json!({"current_password": password, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .expect("send password change");
    assert_eq!(response.status(), StatusCode::OK, "password change");

    let postmaster = data_dir
        .postmaster_pid()
        .expect("embedded postgres running");
    let status = server.terminate();
    assert!(
        status.success(),
        "dcp exited with {status}: {}",
        server.stderr()
    );
    assert_eq!(
        data_dir.postmaster_pid(),
        None,
        "postmaster.pid left behind: the embedded PostgreSQL still runs"
    );
    assert!(!is_alive(postmaster), "postmaster {postmaster} still runs");
    drop(server);

    // Second start on the same data dir: no banner, and the new password works.
    let (mut server, printed) = Server::start(&data_dir.0);
    assert!(
        !printed.iter().any(|line| line.contains("(admin)")),
        "a password was printed again: {printed:?}"
    );
    let (status, body) = login(&client, &server, NEW_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "login with the new password: {body}"
    );
    assert_eq!(body["user"]["must_change_password"], false);
    let (status, _) = login(&client, &server, &password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");

    // A tool run beside the server uses its cluster and leaves it alone.
    let postmaster = data_dir
        .postmaster_pid()
        .expect("embedded postgres running");
    let output = run_tool(&data_dir.0, server.port, &["projections", "status"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "dcp projections status failed with {}: {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for projection in ["users", "sessions", "audit_log"] {
        assert!(
            listed.contains(&projection),
            "{projection} missing from:\n{stdout}"
        );
    }
    assert_eq!(
        data_dir.postmaster_pid(),
        Some(postmaster),
        "the tool restarted the server's PostgreSQL"
    );
    let response = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .expect("send /health/ready");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "ready after the tool ran"
    );
    let (status, body) = login(&client, &server, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "login after the tool ran: {body}");

    let status = server.terminate();
    assert!(
        status.success(),
        "dcp exited with {status}: {}",
        server.stderr()
    );
    assert_eq!(
        data_dir.postmaster_pid(),
        None,
        "postmaster.pid left behind"
    );
    assert!(!is_alive(postmaster), "postmaster {postmaster} still runs");
}
