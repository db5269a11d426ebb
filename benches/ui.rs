//! UI benchmark: the containers list with 1,000 containers and the log viewer with 100,000
//! lines, in Debian's chromium (driven by playwright-core, `web/e2e/perf.js`) against a real
//! server on a fresh database, each figure beside a baseline measured in the same run:
//!
//! - the containers page (`/containers`): in-app navigation until the first row is painted,
//!   with every container listed, against the same page narrowed to one row by its search
//!   (`?q=<name>`: the same fetch of the whole list, one row rendered), and against the page
//!   before the bench made most of its containers (10 rows); then frame times while its list
//!   is scrolled top to bottom in 2 s (and at a fixed 60 px a frame), against idle frames on
//!   the same page, and the most row elements in the DOM at once;
//! - the log viewer: the time until every line of a container that printed 100,000 lines has
//!   arrived and is painted (the "Tail" set to "all"), frame times while scrolling, row
//!   elements, and searching ("777" typed a key at a time, then cleared), against the same
//!   steps on a container that printed 1,000 lines. Under the load time (the UI asks for
//!   batches), the same lines a message each (no `batch`) read by a bare WebSocket in the page
//!   and by a Rust WebSocket client, and the lines from Docker directly.
//!
//! Run: `(cd web && npx vite build) && scripts/services.sh && source /tmp/dcp-services/env &&
//! cargo bench --bench ui` (`DCP_BENCH_CONTAINERS`, default 1000; `DCP_PERF_ROUNDS`, default
//! 5 navigations of each kind; `DCP_PERF_LOADS`, default 3 full loads of each log;
//! `DCP_TEST_CHROMIUM`, default /usr/bin/chromium). The containers are created (only the two
//! log containers run, and have exited before the browser starts) with the label
//! `dcp-bench=ui-<run id>`, and removed at the end, also after a failure or Ctrl-C.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StartContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use dcp::app::Application;
use dcp::config::Settings;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

mod common;
use common::{drop_databases, fresh_database};

const ADMIN_PASSWORD: &str = "admin-password-for-tests";
const BIG_LOG: usize = 100_000;
const SMALL_LOG: usize = 1_000;
/// Containers made before the first (baseline) look at the list.
const FIRST: usize = 10;
/// The browser's own limit, per run of the script.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(900);

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: run scripts/services.sh and source /tmp/dcp-services/env")
    })
}

fn image() -> String {
    std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into())
}

fn labelled(label: &str) -> Option<ListContainersOptions> {
    Some(ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("dcp-bench={label}")],
        )])),
        ..Default::default()
    })
}

/// Creates (does not start) the named containers, 8 at a time; returns their ids.
async fn create(
    docker: &Docker,
    label: &str,
    names: Vec<String>,
    cmd: Vec<String>,
) -> anyhow::Result<Vec<String>> {
    futures_util::stream::iter(names.into_iter().map(|name| {
        let body = ContainerCreateBody {
            image: Some(image()),
            cmd: Some(cmd.clone()),
            labels: Some(HashMap::from([(
                "dcp-bench".to_string(),
                label.to_string(),
            )])),
            ..Default::default()
        };
        async move {
            let options = CreateContainerOptions {
                name: Some(name),
                ..Default::default()
            };
            Ok::<_, anyhow::Error>(docker.create_container(Some(options), body).await?.id)
        }
    }))
    .buffer_unordered(8)
    .try_collect()
    .await
}

/// A container that prints `lines` lines (1 to `lines`) and exits: its id once it has exited.
async fn log_container(
    docker: &Docker,
    label: &str,
    name: String,
    lines: usize,
) -> anyhow::Result<String> {
    let cmd = vec!["sh".into(), "-c".into(), format!("seq 1 {lines}")];
    let id = create(docker, label, vec![name], cmd)
        .await?
        .pop()
        .context("no container")?;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await?;
    let exits: Vec<_> = docker
        .wait_container(&id, None::<WaitContainerOptions>)
        .try_collect()
        .await?;
    anyhow::ensure!(
        exits.iter().all(|e| e.status_code == 0),
        "the log container failed: {exits:?}"
    );
    Ok(id)
}

async fn remove_containers(docker: &Docker, label: &str) -> anyhow::Result<usize> {
    let ids: Vec<String> = docker
        .list_containers(labelled(label))
        .await?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    let removed = ids.len();
    futures_util::stream::iter(ids.into_iter().map(|id| async move {
        docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
    }))
    .buffer_unordered(8)
    .try_collect::<Vec<_>>()
    .await?;
    Ok(removed)
}

/// How long it takes to read every line of a container's logs (`tail=all`, timestamps, as the
/// UI asks): from Docker directly, and through the server's log socket (a Rust client that
/// parses each message). The floors under the UI's figure. Returns (docker, socket, lines).
async fn stream_floors(
    docker: &Docker,
    address: &str,
    token: &str,
    id: &str,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let started = Instant::now();
    let mut logs = docker.logs(
        id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            tail: "all".into(),
            ..Default::default()
        }),
    );
    let mut from_docker = 0;
    while let Some(output) = logs.next().await {
        from_docker += output?.as_ref().iter().filter(|b| **b == b'\n').count();
    }
    let docker_took = started.elapsed();

    let ticket: Value = reqwest::Client::new()
        .post(format!("{address}/api/v1/ws-tickets"))
        .bearer_auth(token)
        .json(&json!({"purpose": "container.logs", "resource_id": id}))
        .send()
        .await?
        .json()
        .await?;
    let ticket = ticket["ticket"].as_str().context("no ticket")?;
    let url = format!(
        "{}/ws/containers/{id}/logs?host=local&tail=all&follow=true&timestamps=true&ticket={ticket}",
        address.replacen("http", "ws", 1)
    );
    let started = Instant::now();
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let mut from_socket = 0;
    while let Some(message) = socket.next().await {
        match message? {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str())?;
                if message["type"] == "log" {
                    from_socket += message["data"].as_str().unwrap_or("").matches('\n').count();
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let socket_took = started.elapsed();
    anyhow::ensure!(
        from_docker == from_socket,
        "{from_docker} lines from Docker, {from_socket} through the socket"
    );
    Ok((docker_took, socket_took, from_socket))
}

/// The UI's fetch of the containers list without the browser: every page of
/// `GET /api/v1/containers?all=true` (1,000 a page), as `loadAllContainers` asks for them.
/// The median of 5, and the number of requests.
async fn list_api(address: &str, token: &str) -> anyhow::Result<(Duration, usize)> {
    let client = reqwest::Client::new();
    let mut samples = Vec::new();
    let mut requests = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let (mut listed, mut total, mut calls) = (0, u64::MAX, 0);
        while listed < total {
            let page: Value = client
                .get(format!(
                    "{address}/api/v1/containers?all=true&limit=1000&offset={listed}"
                ))
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            calls += 1;
            total = page["total"].as_u64().context("the list failed")?;
            let items = page["items"].as_array().map_or(0, Vec::len) as u64;
            if items == 0 {
                break;
            }
            listed += items;
        }
        samples.push(started.elapsed());
        requests = calls;
    }
    samples.sort();
    Ok((samples[2], requests))
}

/// Runs `web/e2e/perf.js <mode>`: its progress goes to stderr, its figures (JSON) come back.
async fn browser(web: &Path, mode: &str, settings: &[(&str, String)]) -> anyhow::Result<Value> {
    let mut command = tokio::process::Command::new("node");
    command
        .args(["e2e/perf.js", mode])
        .current_dir(web)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in settings {
        command.env(name, value);
    }
    let child = command
        .spawn()
        .context("run node (is Node.js installed?)")?;
    let output = tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output())
        .await
        .context("the browser script timed out")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "web/e2e/perf.js {mode} failed ({}): {stdout}",
        output.status
    );
    let figures: Value = serde_json::from_str(
        stdout
            .lines()
            .rfind(|line| line.starts_with('{'))
            .context("web/e2e/perf.js printed no figures")?,
    )?;
    let errors = figures["pageErrors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    anyhow::ensure!(errors.is_empty(), "errors in the page: {errors:?}");
    Ok(figures)
}

fn ms(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// One line of a table: the figure, its baseline and their ratio.
fn row(label: &str, measured: f64, baseline: f64, unit: &str) {
    let ratio = if baseline > 0.0 {
        format!("{:>7.2}x", measured / baseline)
    } else {
        format!("{:>8}", "-")
    };
    println!("  {label:<56} {measured:>9.1} {unit:<3} {baseline:>9.1} {unit:<3} {ratio}");
}

fn header(title: &str, measured: &str, baseline: &str) {
    println!("\n{title}");
    println!("  {:<56} {measured:>13} {baseline:>13} {:>8}", "", "ratio");
}

/// The frame lines of a scroll (`measured`) against `baseline` (idle frames, or the same
/// scroll of a shorter list).
fn frames(what: &str, measured: &Value, baseline: &Value) {
    for (key, name) in [("p50", "p50"), ("p95", "p95"), ("max", "max")] {
        row(
            &format!("{what}: frame {name}"),
            ms(&measured[key]),
            ms(&baseline[key]),
            "ms",
        );
    }
    row(
        &format!(
            "{what}: frames > 50 ms (of {} / {})",
            measured["frames"], baseline["frames"]
        ),
        ms(&measured["over50"]),
        ms(&baseline["over50"]),
        "",
    );
    row(
        &format!("{what}: long tasks (> 50 ms)"),
        ms(&measured["longTasks"]),
        ms(&baseline["longTasks"]),
        "",
    );
}

/// The log streams without the browser, for the big and the small log.
struct Floors {
    docker: (Duration, Duration),
    socket: (Duration, Duration),
    /// The list's API requests (all of them, and the number), with every container and
    /// before most were made.
    list: ((Duration, usize), (Duration, usize)),
}

fn report(before: &Value, main: &Value, made: usize, floors: &Floors) {
    let c = &main["containers"];
    println!(
        "\nUI benchmark: chromium, 1360x860 viewport; timings in the page; medians of {} navigations",
        std::env::var("DCP_PERF_ROUNDS").unwrap_or_else(|_| "5".into())
    );
    header(
        &format!(
            "Containers list (/containers), {made} made by the bench; shown: {} (filtered: {}; before: {})",
            c["full"]["shown"], c["filtered"]["shown"], before["containers"]["shown"]
        ),
        "all rows",
        "baseline",
    );
    row(
        "navigation -> first row painted, vs the same fetch, 1 row",
        ms(&c["full"]["painted"]),
        ms(&c["filtered"]["painted"]),
        "ms",
    );
    row(
        &format!("navigation -> first row painted, vs {FIRST} containers"),
        ms(&c["full"]["painted"]),
        ms(&before["containers"]["nav"]["painted"]),
        "ms",
    );
    row(
        &format!(
            "  the list's API requests alone, Rust client ({} vs {})",
            floors.list.0 .1, floors.list.1 .1
        ),
        floors.list.0 .0.as_secs_f64() * 1000.0,
        floors.list.1 .0.as_secs_f64() * 1000.0,
        "ms",
    );
    frames("drag top->bottom in 2 s vs idle", &c["drag"], &c["idle"]);
    frames("wheel 60 px/frame for 2 s vs idle", &c["wheel"], &c["idle"]);
    row(
        "row elements in the DOM (max while scrolling) vs rows listed",
        ms(&c["drag"]["maxRows"]).max(ms(&c["wheel"]["maxRows"])),
        ms(&c["full"]["listed"]),
        "",
    );

    let (big, small) = (&main["bigLog"], &main["smallLog"]);
    header(
        &format!(
            "Log viewer (/containers/<id>?tab=logs): {} lines against {} lines",
            big["lines"], small["lines"]
        ),
        &format!("{BIG_LOG}"),
        &format!("{SMALL_LOG}"),
    );
    row(
        "navigation -> last 1,000 lines painted (tail 1000)",
        ms(&big["opened"]["painted"]),
        ms(&small["opened"]["painted"]),
        "ms",
    );
    row(
        "tail \"all\" -> every line received and painted",
        ms(&big["load"]["painted"]),
        ms(&small["load"]["painted"]),
        "ms",
    );
    row(
        "  a message a line (no batch), bare WebSocket in the page",
        ms(&big["raw"]["ms"]),
        ms(&small["raw"]["ms"]),
        "ms",
    );
    row(
        "  a message a line (no batch), Rust WebSocket client",
        floors.socket.0.as_secs_f64() * 1000.0,
        floors.socket.1.as_secs_f64() * 1000.0,
        "ms",
    );
    row(
        "  the same lines from Docker directly (no dcp)",
        floors.docker.0.as_secs_f64() * 1000.0,
        floors.docker.1.as_secs_f64() * 1000.0,
        "ms",
    );
    row(
        "JS heap after loading (MB)",
        ms(&big["heapMb"]),
        ms(&small["heapMb"]),
        "MB",
    );
    frames("drag top->bottom in 2 s", &big["drag"], &small["drag"]);
    frames("wheel 60 px/frame for 2 s", &big["wheel"], &small["wheel"]);
    frames("idle (no scroll) 1 s", &big["idle"], &small["idle"]);
    row(
        "row elements in the DOM (max while scrolling)",
        ms(&big["drag"]["maxRows"]).max(ms(&big["wheel"]["maxRows"])),
        ms(&small["drag"]["maxRows"]).max(ms(&small["wheel"]["maxRows"])),
        "",
    );
    for (i, key) in ["7", "77", "777"].iter().enumerate() {
        row(
            &format!("search: type \"{key}\" -> filtered view painted"),
            ms(&big["search"]["keys"][i]["painted"]),
            ms(&small["search"]["keys"][i]["painted"]),
            "ms",
        );
    }
    row(
        "search: clear -> every line painted again",
        ms(&big["search"]["clear"]["painted"]),
        ms(&small["search"]["clear"]["painted"]),
        "ms",
    );
    let samples = |log: &Value, key: &str| {
        log[key]["samples"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|v| format!("{:.0}", ms(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!(
        "  (every load, ms: UI {BIG_LOG} [{}], {SMALL_LOG} [{}]; bare socket {BIG_LOG} [{}], {SMALL_LOG} [{}])",
        samples(big, "load"),
        samples(small, "load"),
        samples(big, "raw"),
        samples(small, "raw")
    );
}

async fn bench(docker: &Docker, address: &str, run: &str, label: &str) -> anyhow::Result<()> {
    let made: usize = std::env::var("DCP_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .max(FIRST);
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    let chromium =
        std::env::var("DCP_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let name = |i: usize| format!("dcp-bench-{label}-{i:04}");
    let sleep = vec!["sleep".to_string(), "3600".to_string()];
    let mut settings = vec![
        ("DCP_UI_URL", address.to_string()),
        ("DCP_UI_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
        ("DCP_TEST_CHROMIUM", chromium),
    ];

    let started = Instant::now();
    create(
        docker,
        label,
        (1..=FIRST).map(name).collect(),
        sleep.clone(),
    )
    .await?;
    eprintln!("[ui] run {run}: {FIRST} containers made; the baseline list");
    let login: Value = reqwest::Client::new()
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("login failed")?;
    let list_before = list_api(address, token).await?;
    let before = browser(&web, "before", &settings).await?;

    create(docker, label, (FIRST + 1..=made).map(name).collect(), sleep).await?;
    let big = log_container(
        docker,
        label,
        format!("dcp-bench-{label}-log-{BIG_LOG}"),
        BIG_LOG,
    );
    let small = log_container(
        docker,
        label,
        format!("dcp-bench-{label}-log-{SMALL_LOG}"),
        SMALL_LOG,
    );
    let (big, small) = tokio::try_join!(big, small)?;
    eprintln!(
        "[ui] {made} containers and 2 log containers made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let list_after = list_api(address, token).await?;
    // Medians of three reads of each.
    let mut medians = Vec::new();
    for (id, expected) in [(&big, BIG_LOG), (&small, SMALL_LOG)] {
        let (mut from_docker, mut from_socket) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let (d, s, lines) = stream_floors(docker, address, token, id).await?;
            anyhow::ensure!(lines == expected, "{lines} lines, not {expected}");
            from_docker.push(d);
            from_socket.push(s);
        }
        from_docker.sort();
        from_socket.sort();
        medians.push((from_docker[1], from_socket[1]));
    }
    let floors = Floors {
        docker: (medians[0].0, medians[1].0),
        socket: (medians[0].1, medians[1].1),
        list: (list_after, list_before),
    };
    settings.extend([
        ("DCP_PERF_ONE_NAME", name(made / 2)),
        ("DCP_PERF_BIG_LOG", big),
        ("DCP_PERF_BIG_LINES", BIG_LOG.to_string()),
        ("DCP_PERF_SMALL_LOG", small),
        ("DCP_PERF_SMALL_LINES", SMALL_LOG.to_string()),
    ]);
    let main = browser(&web, "main", &settings).await?;
    report(&before, &main, made, &floors);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = env("DCP_TEST_DATABASE_URL")?;
    anyhow::ensure!(
        dcp::http::web::embedded(),
        "the UI is not built into this binary: run `npx vite build` in web/ first"
    );
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    anyhow::ensure!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/"
    );
    let docker = Docker::connect_with_local_defaults()?;
    docker.ping().await.context("the Docker engine")?;
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let label = format!("ui-{run}");

    let (database_url, database) = fresh_database(&server).await?;
    let data_dir = std::env::temp_dir().join(&database);
    let outcome = async {
        let app = Application::build(Settings::for_tests(&database_url, data_dir.clone())).await?;
        let address = format!("http://{}", app.address());
        let shutdown = app.shutdown_token();
        let server_task = tokio::spawn(app.run_until_stopped());
        let outcome = tokio::select! {
            outcome = bench(&docker, &address, &run, &label) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        shutdown.cancel();
        let _ = server_task.await;
        outcome
    }
    .await;

    let removed = remove_containers(&docker, &label).await;
    if let Ok(n) = &removed {
        eprintln!("[ui] {n} containers removed");
    }
    let dropped = drop_databases(&server, &[database]).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome?;
    removed?;
    dropped
}
