//! Remote hosts benchmark: the container list through SSH against the same list from the
//! local socket, in the same run and on the same engine (the test sshd on 127.0.0.1 reaches
//! the local dockerd), so the difference is what SSH costs. Also the connection reuse: the
//! pooled SSH connection against a new SSH connection (handshake and authentication) per
//! request, and the number of handshakes the server made for all the requests.
//!
//! Run: `scripts/services.sh && source /tmp/dcp-services/env && cargo bench --bench hosts`
//! (`DCP_BENCH_CONTAINERS`, default 200; `DCP_BENCH_ROUNDS`, default 50.) The containers are
//! created (not started) with the label `dcp.bench=hosts` and removed at the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use dcp::app::Application;
use dcp::config::Settings;
use dcp::ssh::{Credentials, Endpoint, SshPool};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

mod common;
use common::{drop_databases, fresh_database, percentile};

const LABEL: &str = "dcp.bench=hosts";

fn report(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{label:<52} p50 {:>8.2} ms   p99 {:>8.2} ms   ({} requests)",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        samples.len()
    );
    p50
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run scripts/services.sh and source /tmp/dcp-services/env")
    })
}

fn labelled() -> Option<ListContainersOptions> {
    Some(ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![LABEL.to_string()],
        )])),
        ..Default::default()
    })
}

async fn ensure_containers(docker: &Docker, wanted: usize) -> anyhow::Result<()> {
    let existing = docker.list_containers(labelled()).await?.len();
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    for _ in existing..wanted {
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            labels: Some(HashMap::from([(
                "dcp.bench".to_string(),
                "hosts".to_string(),
            )])),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(format!("dcp-bench-hosts-{}", Uuid::new_v4().simple())),
            ..Default::default()
        };
        docker.create_container(Some(options), body).await?;
    }
    Ok(())
}

async fn remove_containers(docker: &Docker) -> anyhow::Result<()> {
    for container in docker.list_containers(labelled()).await? {
        docker
            .remove_container(
                &container.id.unwrap_or_default(),
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = env("DCP_TEST_DATABASE_URL")?;
    let port: u16 = env("DCP_TEST_SSHD_PORT")?.parse()?;
    let user = env("DCP_TEST_SSH_USER")?;
    let password = std::fs::read_to_string(env("DCP_TEST_SSH_PASSWORD_FILE")?)?
        .trim()
        .to_string();
    let host_key = std::fs::read_to_string(env("DCP_TEST_SSH_HOST_KEY")?)?;
    let wanted: usize = std::env::var("DCP_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rounds: usize = std::env::var("DCP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let docker = Docker::connect_with_local_defaults()?;
    ensure_containers(&docker, wanted).await?;
    let total = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await?
        .len();
    println!("{total} containers on the engine ({wanted} made for this benchmark)");

    let (database_url, name) = fresh_database(&server).await?;
    let settings = Settings::for_tests(&database_url, std::env::temp_dir().join(&name));
    let app = Application::build(settings).await?;
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
    let token = login["access_token"]
        .as_str()
        .context("login failed")?
        .to_string();
    let created: Value = client
        .post(format!("{address}/api/v1/hosts"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "bench-ssh",
            "url": format!("ssh://{user}@127.0.0.1:{port}"),
            "auth": {"method": "password", "password": password},
            "host_key": host_key,
        }))
        .send()
        .await?
        .json()
        .await?;
    let host_id = created["host"]["id"]
        .as_str()
        .with_context(|| format!("the SSH host was not created: {created}"))?
        .to_string();
    anyhow::ensure!(
        created["check"]["reachable"] == true,
        "the SSH host is not reachable: {created}"
    );

    let list = |host: Option<&str>| {
        let url = match host {
            Some(host) => format!("{address}/api/v1/containers?all=true&limit=1000&host={host}"),
            None => format!("{address}/api/v1/containers?all=true&limit=1000"),
        };
        let (client, token) = (client.clone(), token.clone());
        async move {
            let started = Instant::now();
            let page: Value = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            let took = started.elapsed();
            anyhow::ensure!(page["total"].as_u64().is_some(), "the list failed: {page}");
            Ok::<_, anyhow::Error>((took, page["total"].as_u64().unwrap_or(0)))
        }
    };
    // Warm up, then alternate so both paths see the same engine state.
    list(Some("local")).await?;
    list(Some(&host_id)).await?;
    let (mut local, mut over_ssh, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let (mut local_total, mut ssh_total, mut both_total) = (0, 0, 0);
    for _ in 0..rounds {
        let (took, n) = list(Some("local")).await?;
        local.push(took);
        local_total = n;
        let (took, n) = list(Some(&host_id)).await?;
        over_ssh.push(took);
        ssh_total = n;
        let (took, n) = list(None).await?;
        both.push(took);
        both_total = n;
    }
    anyhow::ensure!(local_total == ssh_total && both_total == 2 * local_total);
    println!("\nGET /api/v1/containers?all=true ({local_total} containers per host)");
    let local_p50 = report("  host=local (unix socket)", local);
    let ssh_p50 = report("  host=<ssh> (pooled SSH connection)", over_ssh);
    let both_p50 = report("  all hosts at once (local + ssh)", both);
    println!(
        "  ratio ssh / local: {:.2}   all hosts / slowest host: {:.2}",
        ssh_p50.as_secs_f64() / local_p50.as_secs_f64(),
        both_p50.as_secs_f64() / ssh_p50.max(local_p50).as_secs_f64()
    );
    let host: Value = client
        .get(format!("{address}/api/v1/hosts/{host_id}"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    println!(
        "  SSH handshakes for {} requests to the SSH host: {}",
        2 * rounds + 2,
        host["ssh_handshakes"]
    );

    // What the pool saves: the same Docker call on the pooled connection, and on a new
    // connection each time (TCP, key exchange, authentication, then the call).
    let endpoint = Endpoint {
        user,
        address: "127.0.0.1".into(),
        port,
    };
    let credentials = Credentials::Password(SecretString::from(password));
    let pinned = russh::keys::PublicKey::from_openssh(
        &host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    )?;
    let pooled = SshPool::new(endpoint.clone(), credentials.clone(), pinned.clone(), None);
    let pooled_docker = pooled.docker(30);
    pooled_docker.ping().await?;
    let (mut reuse, mut fresh) = (Vec::new(), Vec::new());
    for _ in 0..rounds.min(30) {
        let started = Instant::now();
        pooled_docker.list_containers(labelled()).await?;
        reuse.push(started.elapsed());
        let started = Instant::now();
        let pool: Arc<SshPool> =
            SshPool::new(endpoint.clone(), credentials.clone(), pinned.clone(), None);
        pool.docker(30).list_containers(labelled()).await?;
        fresh.push(started.elapsed());
    }
    println!("\nDocker list of {wanted} containers over SSH (without the API)");
    let reuse_p50 = report("  pooled connection (a channel per request)", reuse);
    let fresh_p50 = report("  new SSH connection per request", fresh);
    println!(
        "  ratio pooled / new connection: {:.3}   pooled handshakes: {}",
        reuse_p50.as_secs_f64() / fresh_p50.as_secs_f64(),
        pooled.handshakes()
    );

    shutdown.cancel();
    let _ = server_task.await;
    remove_containers(&docker).await?;
    drop_databases(&server, &[name]).await?;
    Ok(())
}
