//! Container list benchmark: `GET /api/v1/containers?all=true` with 1,000 containers on the
//! engine, against Docker's own `GET /containers/json?all=1` on its socket, in the same run.
//!
//! Run: `scripts/services.sh && source /tmp/dcp-services/env && cargo bench --bench containers`
//! (`DCP_BENCH_CONTAINERS`, default 1000; `DCP_BENCH_ROUNDS`, default 50.) The containers are
//! created (not started) with the label `dcp.bench=containers` and removed at the end; the
//! server discovers each one first, so every listed row is merged with its platform record.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use dcp::app::Application;
use dcp::config::Settings;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const LABEL: &str = "dcp.bench=containers";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{label:<44} p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        samples.len()
    );
    p50
}

/// Docker's own answer, read whole from the socket without parsing it.
async fn raw_list(socket: &str) -> anyhow::Result<usize> {
    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    stream
        .write_all(b"GET /containers/json?all=1 HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body).await?;
    anyhow::ensure!(
        body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"),
        "Docker refused the list"
    );
    Ok(body.len())
}

async fn ensure_containers(docker: &Docker, wanted: usize) -> anyhow::Result<()> {
    let filters = HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
    let existing = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?
        .len();
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    let started = Instant::now();
    let missing = wanted.saturating_sub(existing);
    for chunk in (0..missing).collect::<Vec<_>>().chunks(16) {
        let mut creating = Vec::new();
        for _ in chunk {
            let docker = docker.clone();
            let image = image.clone();
            creating.push(tokio::spawn(async move {
                let body = ContainerCreateBody {
                    image: Some(image),
                    cmd: Some(vec!["sleep".into(), "3600".into()]),
                    labels: Some(HashMap::from([(
                        "dcp.bench".to_string(),
                        "containers".to_string(),
                    )])),
                    ..Default::default()
                };
                let options = CreateContainerOptions {
                    name: Some(format!("dcp-bench-{}", Uuid::new_v4().simple())),
                    ..Default::default()
                };
                docker.create_container(Some(options), body).await
            }));
        }
        for task in creating {
            task.await??;
        }
    }
    println!(
        "{wanted} containers on the engine ({missing} created in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn remove_containers(docker: &Docker) -> anyhow::Result<()> {
    let filters = HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    for chunk in containers.chunks(16) {
        let mut removing = Vec::new();
        for container in chunk {
            let docker = docker.clone();
            let id = container.id.clone().unwrap_or_default();
            removing.push(tokio::spawn(async move {
                docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await
            }));
        }
        for task in removing {
            task.await??;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DCP_TEST_DATABASE_URL").context("DCP_TEST_DATABASE_URL is not set: run scripts/services.sh and source /tmp/dcp-services/env")?;
    let wanted: usize = std::env::var("DCP_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rounds: usize = std::env::var("DCP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let docker = Docker::connect_with_local_defaults()?;
    ensure_containers(&docker, wanted).await?;

    let mut conn = PgConnection::connect(&server).await?;
    let name = format!("dcp_bench_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (base, _) = server
        .rsplit_once('/')
        .context("database URL without a database name")?;
    let settings = Settings::for_tests(&format!("{base}/{name}"), std::env::temp_dir().join(&name));
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
    let url = format!("{address}/api/v1/containers?all=true&limit=1000");

    // The platform knows every container (as after dcp created or discovered them), so each
    // row of the list is merged with its record in the `containers` read model.
    let ids: Vec<String> = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![LABEL.to_string()],
            )])),
            ..Default::default()
        }))
        .await?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    let started = Instant::now();
    let discovered = futures_util::stream::iter(ids.iter().map(|id| {
        let (client, token, address) = (&client, &token, &address);
        async move {
            client
                .get(format!("{address}/api/v1/containers/{id}/history"))
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().is_success())
        }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
    anyhow::ensure!(
        discovered.iter().all(|ok| matches!(ok, Ok(true))),
        "discovering the containers failed"
    );
    let mut db = PgConnection::connect(&format!("{base}/{name}")).await?;
    loop {
        let known: i64 = sqlx::query_scalar("SELECT count(*) FROM containers")
            .fetch_one(&mut db)
            .await?;
        if known as usize >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{} containers known to the platform (discovered in {:.1} s)",
        ids.len(),
        started.elapsed().as_secs_f64()
    );

    // Warm up both paths, then alternate them so both see the same engine state.
    raw_list(&socket).await?;
    client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    let (mut raw, mut api) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let (mut listed, mut merged) = (0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        let bytes = raw_list(&socket).await?;
        raw.push(started.elapsed());
        let started = Instant::now();
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        api.push(started.elapsed());
        anyhow::ensure!(bytes > 0);
        listed = page["total"].as_u64().unwrap_or(0);
        merged = page["items"]
            .as_array()
            .map(|items| items.iter().filter(|c| c["platform"].is_object()).count())
            .unwrap_or(0);
    }
    println!(
        "the engine holds {listed} containers in all; {merged} listed with their platform record"
    );
    let raw_p50 = report("Docker GET /containers/json?all=1 (socket)", raw);
    let api_p50 = report("dcp GET /api/v1/containers?all=true", api);
    println!(
        "ratio dcp / Docker (p50): {:.2}",
        api_p50.as_secs_f64() / raw_p50.as_secs_f64()
    );

    shutdown.cancel();
    server_task.await??;
    if std::env::var_os("DCP_BENCH_KEEP").is_none() {
        remove_containers(&docker).await?;
    }
    Ok(())
}
