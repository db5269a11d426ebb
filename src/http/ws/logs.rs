//! `/ws/containers/{id}/logs`: a container's output, line by line or in batches
//! (`?batch=true`: the chunks Docker gives within 5 ms in one `{"type":"logs","lines":[…]}`
//! message, at most 1,000 or 256 KiB: a browser pays a fixed cost per message, so a long
//! history loads many times faster). Back-pressure end to end: the next chunk is read from
//! Docker only once the previous frame has been sent.

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bollard::container::LogOutput;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{
    admit_on_container, answer, close, close_for, closed_or_gone, fail, query_error, send_json,
    send_text,
};
use crate::commands::RequestContext;
use crate::http::app_state::AppState;
use crate::http::error::ApiError;
use crate::realtime::sockets::Registration;
use crate::realtime::streams::{LogLine, LogsRequest, BATCH_BYTES, BATCH_LINES, BATCH_WINDOW};
use crate::realtime::tickets::Purpose;
use crate::realtime::RealtimeError;

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
    /// Send chunks in batches (default false).
    pub batch: Option<bool>,
}

pub(super) async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    context: RequestContext,
    Path(reference): Path<String>,
    query: Result<Query<LogsQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    let request = LogsRequest {
        tail: query.tail.clone(),
        since: query.since.clone(),
        follow: query.follow,
        timestamps: query.timestamps,
    };
    let opened = async {
        let options = request.options()?;
        let socket = admit_on_container(
            &state,
            (&headers, &context),
            query.ticket.as_deref(),
            Purpose::ContainerLogs,
            query.host.as_deref(),
            &reference,
        )
        .await?;
        let chunks = state
            .streams
            .logs(&socket.host, &socket.id, options.clone())?;
        Ok::<_, ApiError>((chunks, options, socket.registration, socket.protocol))
    };
    let (chunks, options, registration, protocol) = match opened.await {
        Ok(opened) => opened,
        Err(error) => return error.into_response(),
    };
    let batch = query.batch.unwrap_or(false);
    let form = Form {
        timestamps: options.timestamps,
        follow: options.follow,
        batch,
    };
    answer(upgrade, protocol)
        .on_upgrade(move |socket| session(socket, registration, chunks, form))
        .into_response()
}

/// How the lines are sent.
#[derive(Debug, Clone, Copy)]
struct Form {
    timestamps: bool,
    follow: bool,
    batch: bool,
}

type Chunk = Option<Result<LogOutput, bollard::errors::Error>>;

async fn session(
    socket: WebSocket,
    mut registration: Registration,
    mut logs: crate::realtime::streams::LogChunks,
    form: Form,
) {
    let (mut sink, mut incoming) = socket.split();
    // What a batch read past its end: the end of the stream or an error, handled next.
    let mut held: Option<Chunk> = None;
    loop {
        let item = match held.take() {
            Some(item) => item,
            None => tokio::select! {
                reason = closed_or_gone(&mut registration, &mut incoming) => {
                    if let Some(reason) = reason {
                        close_for(&mut sink, reason).await;
                    }
                    return;
                }
                item = logs.next() => item,
            },
        };
        let output = match item {
            None => {
                let reason = if form.follow {
                    "the container stopped"
                } else {
                    "no more lines"
                };
                let _ = send_json(&mut sink, json!({ "type": "end", "reason": reason })).await;
                return close(&mut sink, 1000, "end of logs").await;
            }
            Some(Err(error)) => {
                let broken = RealtimeError::StreamBroken(format!("Failed to stream logs: {error}"));
                return fail(&mut sink, broken, "log stream failed").await;
            }
            Some(Ok(output)) => output,
        };
        let Some(line) = LogLine::of(&output, form.timestamps) else {
            continue;
        };
        let text = if form.batch {
            let lines = batch_after(line, &mut logs, form.timestamps, &mut held).await;
            serde_json::to_string(&json!({ "type": "logs", "lines": lines }))
        } else {
            serde_json::to_string(&line)
        };
        let Ok(text) = text else {
            continue;
        };
        // A client that does not read is closed, never buffered for.
        if !send_text(&mut sink, text).await {
            return;
        }
    }
}

/// `first` and what Docker sends within [`BATCH_WINDOW`] after it (the body is read on
/// demand, so nothing is ever "ready" without asking): a live line waits at most the
/// window, a long history goes a thousand lines a message. What ends the stream is `held`.
async fn batch_after(
    first: LogLine,
    logs: &mut crate::realtime::streams::LogChunks,
    timestamps: bool,
    held: &mut Option<Chunk>,
) -> Vec<LogLine> {
    let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
    let mut size = first.data.len();
    let mut lines = vec![LogLine {
        kind: None,
        ..first
    }];
    while lines.len() < BATCH_LINES && size < BATCH_BYTES {
        match tokio::time::timeout_at(deadline, logs.next()).await {
            Ok(Some(Ok(output))) => {
                if let Some(line) = LogLine::of(&output, timestamps) {
                    size += line.data.len();
                    lines.push(LogLine { kind: None, ..line });
                }
            }
            Ok(other) => {
                *held = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    lines
}
