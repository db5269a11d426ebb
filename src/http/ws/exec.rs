//! `/ws/containers/{id}/exec`: an interactive terminal in a container, binary frames both
//! ways, and text frames `{"type":"resize","cols","rows"}` or `{"type":"input","data"}`.
//! The session is recorded on the container's history ([`crate::realtime::streams`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{
    admit, answer, close, close_for, fail, query_error, send_json, send_text, Sink, SEND_TIMEOUT,
};
use crate::commands::{CommandMeta, RequestContext};
use crate::denials::Refused;
use crate::errors::ErrorCode;
use crate::http::app_state::AppState;
use crate::http::error::{ApiError, SocketError};
use crate::realtime::sockets::Registration;
use crate::realtime::streams::ExecSession;
use crate::realtime::tickets::Purpose;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecQuery {
    pub ticket: Option<String>,
    pub host: Option<String>,
    /// Why: required from admins opening a shell in a container the platform protects
    /// (recorded with the session).
    pub reason: Option<String>,
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

pub(super) async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    context: RequestContext,
    Path(reference): Path<String>,
    query: Result<Query<ExecQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    if query.cols == Some(0) || query.rows == Some(0) {
        return ApiError::validation("cols", "the terminal size is at least 1×1").into_response();
    }
    let opened = async {
        let host = state.streams.host(query.host.as_deref())?;
        let ticket = query.ticket.as_deref();
        let (principal, registration, protocol) = admit(
            &state,
            &headers,
            ticket,
            Purpose::ContainerExec,
            Some(&reference),
        )
        .await?;
        let meta = CommandMeta::from_request(&context, Some(&principal))
            .with_reason(query.reason.as_deref());
        let route = Refused::of("GET", "/ws/containers/{id}/exec");
        let target = state
            .streams
            .exec_target(&principal, (&host, &reference), &meta, route)
            .await?;
        Ok::<_, ApiError>((target, meta, registration, protocol))
    };
    let (target, meta, registration, protocol) = match opened.await {
        Ok(opened) => opened,
        Err(error) => return error.into_response(),
    };
    let size = (query.cols.unwrap_or(80), query.rows.unwrap_or(24));
    answer(upgrade, protocol)
        .on_upgrade(move |socket| async move {
            let (mut sink, incoming) = socket.split();
            match state.streams.start_exec(target, meta, size).await {
                Ok(shell) => session(&mut sink, incoming, registration, shell).await,
                Err(error) => fail(&mut sink, error, "exec failed").await,
            }
        })
        .into_response()
}

async fn session(
    sink: &mut Sink,
    mut incoming: futures_util::stream::SplitStream<WebSocket>,
    mut registration: Registration,
    mut shell: ExecSession,
) {
    let started = json!({ "type": "started", "exec_id": shell.exec_id, "command": shell.command });
    let _ = send_json(sink, started).await;
    let mut policy_close: Option<&'static str> = None;
    loop {
        tokio::select! {
            changed = registration.closed.changed() => {
                policy_close = if changed.is_ok() { *registration.closed.borrow() } else { Some("closed") };
                break;
            }
            chunk = shell.output.next() => match chunk {
                Some(Ok(chunk)) => {
                    let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Binary(chunk.into_bytes()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                // The shell exited.
                Some(Err(_)) | None => break,
            },
            message = incoming.next() => {
                if !take_input(sink, &mut shell, message).await {
                    break;
                }
            }
        }
    }
    let exit_code = shell.finish().await;
    match policy_close {
        Some(reason) => close_for(sink, reason).await,
        None => {
            let _ = send_json(sink, json!({ "type": "exit", "exit_code": exit_code })).await;
            close(sink, 1000, "the shell exited").await;
        }
    }
}

/// Passes one frame from the client to the shell; false when the session ends.
async fn take_input(
    sink: &mut Sink,
    shell: &mut ExecSession,
    message: Option<Result<Message, axum::Error>>,
) -> bool {
    match message {
        // Input goes straight to the shell: written before the next frame is read, so a
        // fast typist is slowed down, never buffered for.
        Some(Ok(Message::Binary(bytes))) => typed(shell, &bytes).await,
        Some(Ok(Message::Text(text))) => match serde_json::from_str::<ExecControl>(&text) {
            Ok(ExecControl::Resize { cols, rows }) if cols > 0 && rows > 0 => {
                shell.resize(cols, rows).await;
                true
            }
            Ok(ExecControl::Input { data }) => typed(shell, data.as_bytes()).await,
            _ => {
                let refused = SocketError::new(
                    ErrorCode::Validation,
                    "text frames are {\"type\":\"resize\",\"cols\",\"rows\"} or {\"type\":\"input\",\"data\"}",
                );
                let _ = send_text(sink, refused.text(false)).await;
                true
            }
        },
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => false,
        Some(Ok(_)) => true,
    }
}

/// Writes what was typed to the shell; false when it does not take it in time.
async fn typed(shell: &mut ExecSession, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, shell.input.write_all(bytes)).await,
        Ok(Ok(()))
    )
}
