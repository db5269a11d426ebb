//! Live streams over WebSockets: `/ws/tasks/{id}` (an operation's progress and outcome),
//! `/ws/containers/{id}/logs`, `/ws/containers/{id}/stats` and `/ws/containers/{id}/exec`
//! (an interactive terminal: binary frames both ways, `{"type":"resize","cols","rows"}`).
//!
//! Each needs a ticket for its purpose and resource (the `{id}` as written in the path).
//! Streams apply back-pressure end to end: the next item is read from Docker only once the
//! previous frame has been sent, and a client that stops reading for
//! [`super::gateway::SEND_TIMEOUT`] is disconnected, so nothing queues up in the server.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bollard::container::LogOutput;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions, StatsOptions};
use chrono::{DateTime, Utc};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::gateway::{authorize, close, error_message, Registration, SEND_TIMEOUT};
use super::tickets::Purpose;
use crate::docker::DockerError;
use crate::docker::DockerHosts;
use crate::http::error::ApiError;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/tasks/{id}", get(task_socket))
        .route("/ws/containers/{id}/logs", get(logs_socket))
        .route("/ws/containers/{id}/stats", get(stats_socket))
        .route("/ws/containers/{id}/exec", get(exec_socket))
}

type Sink = SplitSink<WebSocket, Message>;

async fn send_json(sink: &mut Sink, value: Value) -> bool {
    matches!(
        tokio::time::timeout(
            SEND_TIMEOUT,
            sink.send(Message::Text(value.to_string().into()))
        )
        .await,
        Ok(Ok(()))
    )
}

/// Waits for the server to close the socket (revocation) or the client to leave.
async fn closed_or_gone(
    registration: &mut Registration,
    incoming: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Option<&'static str> {
    loop {
        tokio::select! {
            changed = registration.closed.changed() => {
                return if changed.is_ok() { *registration.closed.borrow() } else { Some("closed") };
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            },
        }
    }
}

fn query_error(rejection: axum::extract::rejection::QueryRejection) -> Response {
    ApiError::validation("query", rejection.body_text()).into_response()
}

// ---------------------------------------------------------------------------------------
// Tasks

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    pub ticket: Option<String>,
}

async fn task_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<TicketQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    let Ok(op_id) = id.parse::<Uuid>() else {
        return ApiError::validation("id", "a task is an operation id (a UUID)").into_response();
    };
    let (_, registration, protocol) = match authorize(
        &state,
        &headers,
        query.ticket.as_deref(),
        Purpose::Task,
        Some(&id),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(error) => return error.into_response(),
    };
    let upgrade = super::gateway::answer(upgrade, protocol);
    upgrade
        .on_upgrade(move |socket| task_session(state, socket, registration, op_id))
        .into_response()
}

/// operation row: status, action, error code and message, progress
type TaskRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Value>,
);

/// Sends the operation's progress whenever it changes (checked 4 times a second), then its
/// outcome, and closes.
async fn task_session(
    state: AppState,
    socket: WebSocket,
    mut registration: Registration,
    op_id: Uuid,
) {
    let (mut sink, mut incoming) = socket.split();
    let mut last_progress: Option<Value> = None;
    let mut waited = Duration::ZERO;
    let tick = Duration::from_millis(250);
    loop {
        let row: Result<Option<TaskRow>, sqlx::Error> = sqlx::query_as(
            "SELECT o.status, o.action, o.error_code, o.error_message, p.progress FROM operations o \
             LEFT JOIN operation_progress p ON p.op_id = o.id WHERE o.id = $1",
        )
        .bind(op_id)
        .fetch_optional(&state.pool)
        .await;
        match row {
            Ok(Some((status, action, code, message, progress))) => {
                if progress.is_some() && progress != last_progress {
                    let update = json!({ "type": "progress", "operation_id": op_id, "action": action,
                        "status": status, "progress": progress });
                    if !send_json(&mut sink, update).await {
                        return;
                    }
                    last_progress = progress;
                }
                if status != "pending" {
                    let done = json!({ "type": "complete", "operation_id": op_id, "action": action,
                        "status": status, "error_code": code, "error_message": message,
                        "progress": last_progress });
                    let _ = send_json(&mut sink, done).await;
                    close(&mut sink, 1000, "the task ended").await;
                    return;
                }
            }
            // The operations read model may not have it yet (a socket opened right after the
            // request): a few seconds' grace, then it is unknown.
            Ok(None) if waited < Duration::from_secs(10) => {}
            Ok(None) => {
                let _ = sink
                    .send(Message::Text(
                        error_message("NOT_FOUND", "no such task", false, true).into(),
                    ))
                    .await;
                close(&mut sink, 1000, "no such task").await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "reading a task failed");
            }
        }
        tokio::select! {
            reason = closed_or_gone(&mut registration, &mut incoming) => {
                if let Some(reason) = reason {
                    close(&mut sink, super::gateway::close_code(reason), reason).await;
                }
                return;
            }
            _ = tokio::time::sleep(tick) => waited += tick,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Container streams

/// Checks a container stream's host and ticket and finds its container: the host, the
/// container's full id, the socket's registration and the subprotocol to answer with.
async fn open_container_stream(
    state: &AppState,
    headers: &HeaderMap,
    ticket: &Option<String>,
    host: &Option<String>,
    purpose: Purpose,
    reference: &str,
) -> Result<(String, String, Registration, Option<String>), ApiError> {
    let host = state.registry.enabled_host(host.as_deref())?;
    let (_, registration, protocol) =
        authorize(state, headers, ticket.as_deref(), purpose, Some(reference)).await?;
    let id = container_id(state, &host, reference).await?;
    Ok((host, id, registration, protocol))
}

/// The container a stream is for: its full id, or the error to answer.
async fn container_id(state: &AppState, host: &str, reference: &str) -> Result<String, ApiError> {
    if !crate::containers::valid_reference(reference) {
        return Err(ApiError::validation(
            "id",
            "a container id, id prefix or name",
        ));
    }
    let docker = state.registry.client(host)?;
    let inspect = docker
        .inspect_container(reference, None::<InspectContainerOptions>)
        .await
        .map_err(|error| match DockerError::from_bollard(host, error) {
            DockerError::Failed {
                status: 400 | 404, ..
            } => ApiError::not_found("container"),
            other => other.into(),
        })?;
    Ok(inspect.id.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    pub ticket: Option<String>,
    pub host: Option<String>,
    /// Lines from the end to start with (default 100), or `all`.
    pub tail: Option<String>,
    /// Keep streaming new lines (default true).
    pub follow: Option<bool>,
    /// Only lines since this time (RFC 3339 or Unix seconds).
    pub since: Option<String>,
    /// Prefix each line with Docker's timestamp (default false).
    pub timestamps: Option<bool>,
    /// Send the chunks Docker gives within 5 ms of each other in one
    /// `{"type":"logs","lines":[…]}` message (each line as a `log` message has it, without
    /// `type`; at most 1,000 or 256 KiB), instead of a message per chunk: a browser pays a
    /// fixed cost per message, so a long history loads many times faster.
    pub batch: Option<bool>,
}

/// One chunk of output, as sent: `{"type":"log","stream":"stdout","timestamp":…,"data":"…"}`
/// (in a batch, the same without `type`).
#[derive(Debug, Serialize)]
struct LogLine {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    stream: &'static str,
    timestamp: Option<String>,
    data: String,
}

impl LogLine {
    /// The chunk Docker sent, with its timestamp split off when asked for; None for stdin.
    fn of(output: &LogOutput, timestamps: bool) -> Option<LogLine> {
        let (stream, bytes) = match output {
            LogOutput::StdOut { message } => ("stdout", message),
            LogOutput::StdErr { message } => ("stderr", message),
            LogOutput::Console { message } => ("stdout", message),
            LogOutput::StdIn { .. } => return None,
        };
        let text = String::from_utf8_lossy(bytes);
        let (timestamp, data) = match text.split_once(' ') {
            Some((ts, rest)) if timestamps && ts.contains('T') => (Some(ts.to_string()), rest),
            _ => (None, text.as_ref()),
        };
        Some(LogLine {
            kind: Some("log"),
            stream,
            timestamp,
            data: data.to_string(),
        })
    }
}

/// A batch holds at most this many chunks…
const BATCH_LINES: usize = 1000;
/// …and about this many bytes of output…
const BATCH_BYTES: usize = 256 * 1024;
/// …collected for at most this long after its first chunk.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

fn parse_since(since: &str) -> Option<i32> {
    if let Ok(seconds) = since.parse::<i64>() {
        return i32::try_from(seconds).ok().filter(|s| *s >= 0);
    }
    DateTime::parse_from_rfc3339(since)
        .ok()
        .and_then(|t| i32::try_from(t.timestamp()).ok())
}

async fn logs_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    query: Result<Query<LogsQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    let tail = query.tail.clone().unwrap_or_else(|| "100".into());
    if tail != "all" && tail.parse::<u32>().is_err() {
        return ApiError::validation("tail", "a number of lines, or all").into_response();
    }
    let since = match query.since.as_deref().map(parse_since) {
        Some(None) => {
            return ApiError::validation("since", "RFC 3339 time or Unix seconds").into_response()
        }
        Some(Some(since)) => since,
        None => 0,
    };
    let (host, id, registration, protocol) = match open_container_stream(
        &state,
        &headers,
        &query.ticket,
        &query.host,
        Purpose::ContainerLogs,
        &reference,
    )
    .await
    {
        Ok(opened) => opened,
        Err(error) => return error.into_response(),
    };
    let options = LogsOptions {
        follow: query.follow.unwrap_or(true),
        stdout: true,
        stderr: true,
        since,
        timestamps: query.timestamps.unwrap_or(false),
        tail,
        ..Default::default()
    };
    let batch = query.batch.unwrap_or(false);
    let upgrade = super::gateway::answer(upgrade, protocol);
    upgrade
        .on_upgrade(move |socket| {
            logs_session(state, socket, registration, host, id, options, batch)
        })
        .into_response()
}

async fn logs_session(
    state: AppState,
    socket: WebSocket,
    mut registration: Registration,
    host: String,
    id: String,
    options: LogsOptions,
    batch: bool,
) {
    let (mut sink, mut incoming) = socket.split();
    let Ok(docker) = state.registry.client(&host) else {
        return;
    };
    // A followed stream has no end: not cut by the per-call timeout.
    let docker = docker.with_timeout(Duration::from_secs(u64::from(u32::MAX)));
    let timestamps = options.timestamps;
    let follow = options.follow;
    let mut logs = docker.logs(&id, Some(options));
    // What a batch read past its end: the end of the stream or an error, handled next.
    let mut held = None;
    loop {
        let item = match held.take() {
            Some(item) => item,
            None => tokio::select! {
                reason = closed_or_gone(&mut registration, &mut incoming) => {
                    if let Some(reason) = reason {
                        close(&mut sink, super::gateway::close_code(reason), reason).await;
                    }
                    return;
                }
                item = logs.next() => item,
            },
        };
        let output = match item {
            None => {
                let end = json!({ "type": "end", "reason": if follow { "the container stopped" } else { "no more lines" } });
                let _ = send_json(&mut sink, end).await;
                close(&mut sink, 1000, "end of logs").await;
                return;
            }
            Some(Err(error)) => {
                let message = error_message(
                    "STREAM_ERROR",
                    &format!("Failed to stream logs: {error}"),
                    true,
                    false,
                );
                let _ = sink.send(Message::Text(message.into())).await;
                close(&mut sink, 1011, "log stream failed").await;
                return;
            }
            Some(Ok(output)) => output,
        };
        let Some(line) = LogLine::of(&output, timestamps) else {
            continue;
        };
        let text = if batch {
            // What Docker sends within a few milliseconds joins this chunk (the body is read
            // on demand, so nothing is ever "ready" without asking): a live line waits at most
            // BATCH_WINDOW, a long history goes a thousand lines a message.
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            let mut size = line.data.len();
            let mut lines = vec![LogLine { kind: None, ..line }];
            while lines.len() < BATCH_LINES && size < BATCH_BYTES {
                match tokio::time::timeout_at(deadline, logs.next()).await {
                    Ok(Some(Ok(output))) => {
                        if let Some(line) = LogLine::of(&output, timestamps) {
                            size += line.data.len();
                            lines.push(LogLine { kind: None, ..line });
                        }
                    }
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            serde_json::to_string(&json!({ "type": "logs", "lines": lines }))
        } else {
            serde_json::to_string(&line)
        };
        let Ok(text) = text else {
            continue;
        };
        if !matches!(
            tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await,
            Ok(Ok(()))
        ) {
            // A client that does not read is closed, never buffered for.
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stats

/// One sample, ready for a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSample {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: DateTime<Utc>,
    /// Of one CPU: 200 means two CPUs fully used (as `docker stats`).
    pub cpu_percent: f64,
    pub online_cpus: u32,
    pub memory: MemorySample,
    pub network: NetworkSample,
    pub block_io: BlockIoSample,
    pub pids: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorySample {
    /// Bytes used, without the page cache (as `docker stats`).
    pub usage: u64,
    pub limit: u64,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSample {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockIoSample {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// `docker stats`' figures from one stats document (current and previous CPU counters).
pub fn sample(stats: &bollard::models::ContainerStatsResponse) -> StatsSample {
    let cpu = stats.cpu_stats.as_ref();
    let precpu = stats.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let online_cpus = cpu
        .and_then(|c| c.online_cpus)
        .filter(|n| *n > 0)
        .or_else(|| {
            cpu.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as u32)
        })
        .unwrap_or(1);
    let cpu_delta = total(cpu).saturating_sub(total(precpu)) as f64;
    let system_delta = system(cpu).saturating_sub(system(precpu)) as f64;
    let cpu_percent = if cpu_delta > 0.0 && system_delta > 0.0 {
        cpu_delta / system_delta * f64::from(online_cpus) * 100.0
    } else {
        0.0
    };
    let memory = stats.memory_stats.as_ref();
    let raw_usage = memory.and_then(|m| m.usage).unwrap_or(0);
    let detail: HashMap<String, u64> = memory.and_then(|m| m.stats.clone()).unwrap_or_default();
    // cgroup v1 counts the page cache as `total_inactive_file`, v2 as `inactive_file`.
    let cache = detail
        .get("total_inactive_file")
        .or_else(|| detail.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let usage = if cache < raw_usage {
        raw_usage - cache
    } else {
        raw_usage
    };
    let limit = memory.and_then(|m| m.limit).unwrap_or(0);
    let percent = if limit > 0 {
        usage as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (rx_bytes, tx_bytes) = stats
        .networks
        .iter()
        .flatten()
        .fold((0, 0), |(rx, tx), (_, n)| {
            (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
        });
    let (read_bytes, write_bytes) = stats
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .into_iter()
        .flatten()
        .fold((0, 0), |(read, write), entry| {
            match entry.op.as_deref().map(str::to_lowercase).as_deref() {
                Some("read") => (read + entry.value.unwrap_or(0), write),
                Some("write") => (read, write + entry.value.unwrap_or(0)),
                _ => (read, write),
            }
        });
    StatsSample {
        kind: "stats",
        timestamp: Utc::now(),
        cpu_percent: (cpu_percent * 100.0).round() / 100.0,
        online_cpus,
        memory: MemorySample {
            usage,
            limit,
            percent: (percent * 100.0).round() / 100.0,
        },
        network: NetworkSample { rx_bytes, tx_bytes },
        block_io: BlockIoSample {
            read_bytes,
            write_bytes,
        },
        pids: stats
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .unwrap_or(0),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub ticket: Option<String>,
    pub host: Option<String>,
}

async fn stats_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    let (host, id, registration, protocol) = match open_container_stream(
        &state,
        &headers,
        &query.ticket,
        &query.host,
        Purpose::ContainerStats,
        &reference,
    )
    .await
    {
        Ok(opened) => opened,
        Err(error) => return error.into_response(),
    };
    let upgrade = super::gateway::answer(upgrade, protocol);
    upgrade
        .on_upgrade(move |socket| stats_session(state, socket, registration, host, id))
        .into_response()
}

/// One sample a second (Docker's own pace), until the container stops or the client leaves.
async fn stats_session(
    state: AppState,
    socket: WebSocket,
    mut registration: Registration,
    host: String,
    id: String,
) {
    let (mut sink, mut incoming) = socket.split();
    let Ok(docker) = state.registry.client(&host) else {
        return;
    };
    let docker = docker.with_timeout(Duration::from_secs(u64::from(u32::MAX)));
    let mut stats = docker.stats(
        &id,
        Some(StatsOptions {
            stream: true,
            one_shot: false,
        }),
    );
    loop {
        let item = tokio::select! {
            reason = closed_or_gone(&mut registration, &mut incoming) => {
                if let Some(reason) = reason {
                    close(&mut sink, super::gateway::close_code(reason), reason).await;
                }
                return;
            }
            item = stats.next() => item,
        };
        match item {
            Some(Ok(document)) => {
                let Ok(value) = serde_json::to_value(sample(&document)) else {
                    continue;
                };
                if !send_json(&mut sink, value).await {
                    return;
                }
            }
            Some(Err(error)) => {
                let message = error_message(
                    "STREAM_ERROR",
                    &format!("Failed to stream stats: {error}"),
                    true,
                    false,
                );
                let _ = sink.send(Message::Text(message.into())).await;
                close(&mut sink, 1011, "stats stream failed").await;
                return;
            }
            None => {
                let _ = send_json(
                    &mut sink,
                    json!({ "type": "end", "reason": "the container stopped" }),
                )
                .await;
                close(&mut sink, 1000, "end of stats").await;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Exec

/// What in a running container's configuration reaches the host.
async fn host_reach(
    state: &AppState,
    host: &str,
    reference: &str,
) -> Result<Vec<&'static str>, ApiError> {
    let docker = state.registry.client(host)?;
    let inspect = docker
        .inspect_container(reference, None::<InspectContainerOptions>)
        .await
        .map_err(|error| match DockerError::from_bollard(host, error) {
            DockerError::Failed {
                status: 400 | 404, ..
            } => ApiError::not_found("container"),
            other => other.into(),
        })?;
    let Some(config) = inspect.host_config else {
        return Ok(vec![]);
    };
    let mut reaching = Vec::new();
    let set = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if config.privileged == Some(true) {
        reaching.push("privileged");
    }
    if set(&config.cap_add) {
        reaching.push("cap_add");
    }
    if config.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        reaching.push("devices");
    }
    if set(&config.security_opt) {
        reaching.push("security_opt");
    }
    // A bind (`/host/path:/target`) names a host path; a named volume does not start with '/'.
    let host_bind = config.binds.iter().flatten().any(|b| b.starts_with('/'))
        || config
            .mounts
            .iter()
            .flatten()
            .any(|m| m.typ == Some(bollard::models::MountType::BIND));
    if host_bind {
        reaching.push("binds");
    }
    for (field, mode) in [
        ("pid_mode", &config.pid_mode),
        ("uts_mode", &config.uts_mode),
        ("ipc_mode", &config.ipc_mode),
        ("network", &config.network_mode),
    ] {
        if mode
            .as_deref()
            .is_some_and(|m| m == "host" || m.starts_with("container:"))
        {
            reaching.push(field);
        }
    }
    Ok(reaching)
}

/// The command an exec session runs: bash where the image has it, else sh.
pub const SHELL_DETECTION: &str =
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecQuery {
    pub ticket: Option<String>,
    pub host: Option<String>,
    /// Initial terminal size.
    pub cols: Option<u16>,
    pub rows: Option<u16>,
}

/// A text frame from the terminal client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ExecControl {
    Resize { cols: u16, rows: u16 },
    Input { data: String },
}

#[allow(clippy::too_many_arguments)]
async fn exec_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    context: crate::commands::RequestContext,
    Path(reference): Path<String>,
    query: Result<Query<ExecQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    if query.cols == Some(0) || query.rows == Some(0) {
        return ApiError::validation("cols", "the terminal size is at least 1×1").into_response();
    }
    let host = match state.registry.enabled_host(query.host.as_deref()) {
        Ok(host) => host,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let (principal, registration, protocol) = match authorize(
        &state,
        &headers,
        query.ticket.as_deref(),
        Purpose::ContainerExec,
        Some(&reference),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(error) => return error.into_response(),
    };
    if !crate::containers::valid_reference(&reference) {
        return ApiError::validation("id", "a container id, id prefix or name").into_response();
    }
    // The session is recorded on the container's history: the container is resolved (and
    // discovered if dcp has not seen it) as for any operation.
    let meta = crate::commands::CommandMeta::from_request(&context, Some(&principal));
    // A shell in a container that reaches the host (privileged, host paths, host
    // namespaces, devices) is a shell on the host: admins only, as creating one is.
    if principal.role != dcp_aggregates::Role::Admin {
        match host_reach(&state, &host, &reference).await {
            Ok(reaching) => {
                let verdict = crate::auth::policy::may_open_shell(principal.role, &reaching)
                    .map_err(|message| crate::docker::policy::PolicyError::Forbidden {
                        field: "id".into(),
                        message,
                    });
                let route = "/ws/containers/{id}/exec";
                if let Err(refused) = state
                    .denials
                    .enforce(&principal, &meta, route, verdict)
                    .await
                {
                    return ApiError::from(refused).into_response();
                }
            }
            Err(error) => return error.into_response(),
        }
    }
    let target = match state.containers.resolve(&host, &reference, &meta).await {
        Ok(target) => target,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let upgrade = super::gateway::answer(upgrade, protocol);
    let size = (query.cols.unwrap_or(80), query.rows.unwrap_or(24));
    upgrade
        .on_upgrade(move |socket| exec_session(state, socket, registration, target, meta, size))
        .into_response()
}

async fn exec_session(
    state: AppState,
    socket: WebSocket,
    mut registration: Registration,
    target: crate::containers::ContainerTarget,
    meta: crate::commands::CommandMeta,
    (cols, rows): (u16, u16),
) {
    use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
    use dcp_aggregates::container::{Container, ContainerCommand};
    use tokio::io::AsyncWriteExt;

    let (mut sink, mut incoming) = socket.split();
    let fail = |message: String| error_message("EXEC_FAILED", &message, false, true);
    let Ok(docker) = state.registry.client(&target.host) else {
        return;
    };
    let docker = docker.with_timeout(Duration::from_secs(u64::from(u32::MAX)));
    let command = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        SHELL_DETECTION.to_string(),
    ];
    let created = docker
        .create_exec(
            &target.docker_id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                env: Some(vec!["TERM=xterm-256color".to_string()]),
                cmd: Some(command.clone()),
                ..Default::default()
            },
        )
        .await;
    let exec_id = match created {
        Ok(created) => created.id,
        Err(error) => {
            let _ = sink
                .send(Message::Text(
                    fail(format!("Failed to start a shell: {error}")).into(),
                ))
                .await;
            close(&mut sink, 1011, "exec failed").await;
            return;
        }
    };
    let aggregate = target.aggregate_id.to_string();
    let started_at = tokio::time::Instant::now();
    let record_start = ContainerCommand::RecordExecStarted {
        exec_id: exec_id.clone(),
        command: command.clone(),
        at: Utc::now(),
    };
    // Recorded before the shell runs: no session without its audit entry.
    if let Err(error) = state
        .commands
        .execute_retrying::<Container>(&aggregate, record_start, &meta, vec![])
        .await
    {
        tracing::error!(%error, "Failed to record an exec session; not starting it");
        let message = fail("the session could not be recorded; try again".into());
        let _ = sink.send(Message::Text(message.into())).await;
        close(&mut sink, 1011, "exec not recorded").await;
        return;
    }
    let started = docker
        .start_exec(
            &exec_id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                output_capacity: None,
            }),
        )
        .await;
    let (mut output, mut input) = match started {
        Ok(StartExecResults::Attached { output, input }) => (output, input),
        Ok(StartExecResults::Detached) | Err(_) => {
            let _ = sink
                .send(Message::Text(
                    fail("Failed to attach to the shell".into()).into(),
                ))
                .await;
            close(&mut sink, 1011, "exec failed").await;
            return;
        }
    };
    let _ = docker
        .resize_exec(
            &exec_id,
            ResizeExecOptions {
                height: rows,
                width: cols,
            },
        )
        .await;
    let _ = sink
        .send(Message::Text(
            json!({ "type": "started", "exec_id": exec_id, "command": command })
                .to_string()
                .into(),
        ))
        .await;
    let mut policy_close: Option<&'static str> = None;
    loop {
        tokio::select! {
            changed = registration.closed.changed() => {
                policy_close = if changed.is_ok() { *registration.closed.borrow() } else { Some("closed") };
                break;
            }
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => {
                    let bytes = chunk.into_bytes();
                    if !matches!(
                        tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Binary(bytes))).await,
                        Ok(Ok(()))
                    ) {
                        break;
                    }
                }
                // The shell exited.
                Some(Err(_)) | None => break,
            },
            message = incoming.next() => match message {
                // Input goes straight to the shell: written before the next frame is read,
                // so a fast typist is slowed down, never buffered for.
                Some(Ok(Message::Binary(bytes))) => {
                    if !matches!(tokio::time::timeout(SEND_TIMEOUT, input.write_all(&bytes)).await, Ok(Ok(()))) {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ExecControl>(&text) {
                    Ok(ExecControl::Resize { cols, rows }) if cols > 0 && rows > 0 => {
                        let _ = docker
                            .resize_exec(&exec_id, ResizeExecOptions { height: rows, width: cols })
                            .await;
                    }
                    Ok(ExecControl::Input { data }) => {
                        if !matches!(tokio::time::timeout(SEND_TIMEOUT, input.write_all(data.as_bytes())).await, Ok(Ok(()))) {
                            break;
                        }
                    }
                    _ => {
                        let message = error_message(
                            "VALIDATION_ERROR",
                            "text frames are {\"type\":\"resize\",\"cols\",\"rows\"} or {\"type\":\"input\",\"data\"}",
                            false,
                            false,
                        );
                        let _ = sink.send(Message::Text(message.into())).await;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    // Closing stdin ends an interactive shell that is still running.
    let _ = input.shutdown().await;
    drop(input);
    let exit_code = match docker.inspect_exec(&exec_id).await {
        Ok(inspect) if inspect.running == Some(true) => None,
        Ok(inspect) => inspect.exit_code,
        Err(_) => None,
    };
    let record_end = ContainerCommand::RecordExecEnded {
        exec_id: exec_id.clone(),
        exit_code,
        duration_ms: started_at.elapsed().as_millis() as i64,
        at: Utc::now(),
    };
    if let Err(error) = state
        .commands
        .execute_retrying::<Container>(&aggregate, record_end, &meta, vec![])
        .await
    {
        tracing::error!(%error, "Failed to record the end of an exec session");
    }
    match policy_close {
        Some(reason) => close(&mut sink, super::gateway::close_code(reason), reason).await,
        None => {
            let _ = send_json(&mut sink, json!({ "type": "exit", "exit_code": exit_code })).await;
            close(&mut sink, 1000, "the shell exited").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_follow_docker_stats() {
        let document: bollard::models::ContainerStatsResponse = serde_json::from_value(json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64}, "system_cpu_usage": 18_000_000_000u64},
            "memory_stats": {"usage": 100_000_000u64, "limit": 400_000_000u64, "stats": {"inactive_file": 20_000_000u64}},
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "write", "value": 8192}]},
            "pids_stats": {"current": 3}
        }))
        .unwrap();
        let sample = sample(&document);
        // 1 s of CPU over 2 s of system time on 2 CPUs: one CPU fully used.
        assert_eq!(sample.cpu_percent, 100.0);
        assert_eq!(sample.memory.usage, 80_000_000);
        assert_eq!(sample.memory.percent, 20.0);
        assert_eq!(
            sample.network,
            NetworkSample {
                rx_bytes: 11,
                tx_bytes: 22
            }
        );
        assert_eq!(
            sample.block_io,
            BlockIoSample {
                read_bytes: 4096,
                write_bytes: 8192
            }
        );
        assert_eq!(sample.pids, 3);
    }

    #[test]
    fn a_first_sample_without_history_is_zero_cpu() {
        let document: bollard::models::ContainerStatsResponse =
            serde_json::from_value(json!({"cpu_stats": {"cpu_usage": {"total_usage": 5}}}))
                .unwrap();
        assert_eq!(sample(&document).cpu_percent, 0.0);
    }

    #[test]
    fn since_takes_seconds_or_rfc3339() {
        assert_eq!(parse_since("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_since("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(parse_since("yesterday"), None);
        assert_eq!(parse_since("-5"), None);
    }
}
