//! The compose deployment, started for real with the repository's `docker-compose.yml`
//! (and `scripts/compose/secrets`), then attacked as an operator would: a shell in
//! PostgreSQL, NATS stopped, dcp's data volume mounted, the compose network joined, the
//! database's logs read, dcp's own container stopped. Each is refused; the database role dcp
//! runs as cannot rewrite the event log, and NATS refuses a client without credentials.
//!
//! This machine pulls nothing from Docker Hub, so the images are made here: a Debian base
//! with debootstrap (from Debian's mirror, once per machine), PostgreSQL and nats-server from
//! Debian's packages behind the official images' contracts, and the dcp binary the tests were
//! built with (`tests/compose/*.Dockerfile`); an override file swaps them in for the public
//! images, and nothing else of the compose file changes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{login_at, temp_dir};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const BASE_IMAGE: &str = "dcp-test/debian:bookworm";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Debian base, made with debootstrap when this machine does not have it yet.
fn base_image() {
    if image_exists(BASE_IMAGE) {
        return;
    }
    let root = temp_dir().join("rootfs");
    let debootstrap = ["/usr/sbin/debootstrap", "debootstrap"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("debootstrap (scripts/services.sh installs it)");
    run(Command::new(debootstrap).args([
        "--variant=minbase",
        "bookworm",
        root.to_str().unwrap(),
        "http://deb.debian.org/debian",
    ]));
    run(Command::new("sh").arg("-c").arg(format!(
        "tar -C {} -c . | docker import - {BASE_IMAGE}",
        root.display()
    )));
    let _ = std::fs::remove_dir_all(&root);
}

/// `tests/compose/<name>.Dockerfile` built as `dcp-test/compose-<name>`, from `context`.
fn build_image(name: &str, context: &Path) -> String {
    let image = format!("dcp-test/compose-{name}:latest");
    let dockerfile = repo().join(format!("tests/compose/{name}.Dockerfile"));
    docker(&[
        "build",
        "-q",
        "-t",
        &image,
        "-f",
        dockerfile.to_str().unwrap(),
        context.to_str().unwrap(),
    ]);
    image
}

/// The stack of one test: its project name and directory; taken down (with its volumes)
/// when dropped, whatever happened.
struct Stack {
    project: String,
    dir: PathBuf,
    compose: Vec<String>,
    /// The image of this build's dcp (a binary's worth of layers each run): removed with the stack.
    dcp_image: String,
}

impl Stack {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.compose[0]);
        command.args(&self.compose[1..]).args([
            "-p",
            &self.project,
            "--project-directory",
            self.dir.to_str().unwrap(),
            "-f",
            repo().join("docker-compose.yml").to_str().unwrap(),
            "-f",
            self.dir.join("override.yml").to_str().unwrap(),
        ]);
        command.args(args).current_dir(&self.dir);
        command
    }

    fn container(&self, service: &str) -> String {
        run(&mut self.command(&["ps", "-q", service]))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(output) = self.command(&["logs", "--tail", "80"]).output() {
                eprintln!("{}", String::from_utf8_lossy(&output.stdout));
            }
        }
        let _ = self.command(&["down", "-v", "--remove-orphans"]).output();
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.dcp_image])
            .output();
    }
}

fn compose_binary() -> Vec<String> {
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        vec!["docker-compose".into()]
    } else {
        vec!["docker".into(), "compose".into()]
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stack up: images made, secrets made, `up -d`, and dcp ready on the returned URL.
fn start() -> (Stack, String) {
    base_image();
    let dir = temp_dir();
    let context = temp_dir();
    std::fs::copy(
        repo().join("tests/compose/postgres-entrypoint.sh"),
        context.join("postgres-entrypoint.sh"),
    )
    .unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_dcp"), context.join("dcp")).unwrap();
    let postgres = build_image("postgres", &context);
    let nats = build_image("nats", &context);
    let dcp = build_image("dcp", &context);
    // What the compose file names by relative path: its scripts and the secrets.
    std::fs::create_dir_all(dir.join("scripts/compose")).unwrap();
    std::fs::copy(
        repo().join("scripts/compose/postgres-roles.sh"),
        dir.join("scripts/compose/postgres-roles.sh"),
    )
    .unwrap();
    run(Command::new(repo().join("scripts/compose/secrets")).arg(dir.join("secrets")));
    std::fs::write(
        dir.join("override.yml"),
        format!(
            "services:\n  postgres:\n    image: {postgres}\n  nats:\n    image: {nats}\n  dcp:\n    image: {dcp}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let stack = Stack {
        project: format!("dcpcompose{}", &run_id[..8]),
        dir,
        compose: compose_binary(),
        dcp_image: dcp.clone(),
    };
    let gid = run(Command::new("stat").args(["-c", "%g", "/var/run/docker.sock"]));
    run(stack
        .command(&["up", "-d", "--no-build"])
        .env("DCP_PORT", port.to_string())
        .env("DOCKER_GID", gid));
    (stack, format!("127.0.0.1:{port}"))
}

async fn wait_ready(client: &reqwest::Client, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let ready = client
            .get(format!("http://{address}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dcp did not become ready in the compose stack"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A socket on `container` (`exec` or `logs`) opened with a ticket: the refusal's status.
async fn socket_status(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    container: &str,
    kind: &str,
) -> Option<u16> {
    let ticket: Value = client
        .post(format!("http://{address}/api/v1/ws-tickets"))
        .bearer_auth(token)
        .json(&json!({"purpose": format!("container.{kind}"), "resource_id": container}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap();
    let mut request = format!("ws://{address}/ws/containers/{container}/{kind}")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("dcp.ticket.{ticket}")).unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            let _ = socket.close(None).await;
            None
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_compose_deployment_protects_itself_from_operators() {
    let (stack, address) = start();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    wait_ready(&client, &address).await;
    let admin_password =
        std::fs::read_to_string(stack.dir.join("secrets/dcp_admin_password")).unwrap();
    let admin = login_at(
        &client,
        &format!("http://{address}"),
        "admin",
        admin_password.trim(),
    )
    .await;
    let created = client
        .post(format!("http://{address}/api/v1/users"))
        .bearer_auth(&admin)
        .json(
            &json!({"username": "mallory", "email": "mallory@example.com", "role": "operator", "full_name": "Mallory",
            "password": "mallory-password-1", "must_change_password": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let operator = login_at(
        &client,
        &format!("http://{address}"),
        "mallory",
        "mallory-password-1",
    )
    .await;
    let (postgres, nats, dcp) = (
        stack.container("postgres"),
        stack.container("nats"),
        stack.container("dcp"),
    );

    // The stack is protected, dcp's own container included (found from its mount table).
    let listed: Value = client
        .get(format!(
            "http://{address}/api/v1/containers?all=true&host=local"
        ))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let protection = |id: &str| {
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .and_then(|c| c["protection"].as_str())
            .map(str::to_string)
    };
    assert!(
        protection(&dcp).is_some_and(|why| why.contains("runs in")),
        "{listed}"
    );
    assert!(
        protection(&postgres).is_some_and(|why| why.contains("compose project")),
        "{listed}"
    );

    // A shell in PostgreSQL (to make oneself admin), its logs, NATS stopped, dcp stopped.
    assert_eq!(
        socket_status(&client, &address, &operator, &postgres, "exec").await,
        Some(403)
    );
    assert_eq!(
        socket_status(&client, &address, &operator, &postgres, "logs").await,
        Some(403)
    );
    for (container, action) in [(&nats, "stop"), (&postgres, "restart"), (&dcp, "stop")] {
        let refused = client
            .post(format!(
                "http://{address}/api/v1/containers/{container}/{action}"
            ))
            .bearer_auth(&operator)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "{action} {container}"
        );
    }
    // dcp-data mounted (the JWT secret, master key and audit key are there), the compose
    // network joined (NATS and PostgreSQL on it).
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    for (extra, field) in [
        (
            json!({"volumes": [{"source": format!("{}_dcp-data", stack.project), "target": "/loot"}]}),
            "volumes",
        ),
        (
            json!({"network": format!("{}_default", stack.project)}),
            "network",
        ),
    ] {
        let mut body = json!({"image": image, "name": format!("{}-thief", stack.project)});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let refused = client
            .post(format!("http://{address}/api/v1/containers?host=local"))
            .bearer_auth(&operator)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    for state in [&postgres, &nats, &dcp] {
        assert_eq!(
            docker(&["inspect", "--format", "{{.State.Running}}", state]),
            "true"
        );
    }

    // dcp's role cannot rewrite the log, and is no superuser.
    let psql = |sql: &str| {
        Command::new("docker")
            .args([
                "exec", &postgres, "psql", "-U", "dcp", "-d", "dcp", "-Atc", sql,
            ])
            .output()
            .unwrap()
    };
    let superuser = psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
    assert_eq!(String::from_utf8_lossy(&superuser.stdout).trim(), "f");
    for rewrite in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let output = psql(rewrite);
        assert!(!output.status.success(), "{rewrite} succeeded");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("permission denied"),
            "{rewrite}"
        );
    }
    // NATS refuses a client without its credentials.
    let nats_ip = docker(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &nats,
    ]);
    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(format!("nats://{nats_ip}:4222"))
        .await;
    assert!(
        anonymous.is_err(),
        "NATS accepted a client without credentials"
    );
    drop(stack);
}
