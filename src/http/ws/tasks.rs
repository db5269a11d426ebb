//! `/ws/tasks/{id}`: an operation's progress whenever it changes (checked 4 times a
//! second), then its outcome, and the socket closes.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{admit, answer, close, close_for, closed_or_gone, fail, query_error, send_json};
use crate::http::app_state::AppState;
use crate::http::error::ApiError;
use crate::realtime::sockets::Registration;
use crate::realtime::tickets::Purpose;
use crate::realtime::RealtimeError;

/// How long a task the operations read model does not show yet may take to appear (a
/// socket opened right after the request).
const GRACE: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    pub ticket: Option<String>,
}

pub(super) async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<TicketQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    let Ok(op_id) = id.parse::<Uuid>() else {
        return ApiError::validation("id", "a task is an operation id (a UUID)").into_response();
    };
    let ticket = query.ticket.as_deref();
    let (_, registration, protocol) =
        match admit(&state, &headers, ticket, Purpose::Task, Some(&id)).await {
            Ok(admitted) => admitted,
            Err(error) => return error.into_response(),
        };
    answer(upgrade, protocol)
        .on_upgrade(move |socket| session(state, socket, registration, op_id))
        .into_response()
}

async fn session(state: AppState, socket: WebSocket, mut registration: Registration, op_id: Uuid) {
    let (mut sink, mut incoming) = socket.split();
    let mut last_progress: Option<Value> = None;
    let mut waited = Duration::ZERO;
    loop {
        match state.streams.task(op_id).await {
            Ok(Some(task)) => {
                if task.progress.is_some() && task.progress != last_progress {
                    let update = json!({ "type": "progress", "operation_id": op_id, "action": task.action,
                        "status": task.status, "progress": task.progress });
                    if !send_json(&mut sink, update).await {
                        return;
                    }
                    last_progress = task.progress.clone();
                }
                if task.status != "pending" {
                    let done = json!({ "type": "complete", "operation_id": op_id, "action": task.action,
                        "status": task.status, "error_code": task.error_code, "error_message": task.error_message,
                        "progress": last_progress });
                    let _ = send_json(&mut sink, done).await;
                    return close(&mut sink, 1000, "the task ended").await;
                }
            }
            Ok(None) if waited < GRACE => {}
            Ok(None) => return fail(&mut sink, RealtimeError::NoSuchTask, "no such task").await,
            Err(error) => tracing::warn!(%error, "reading a task failed"),
        }
        tokio::select! {
            reason = closed_or_gone(&mut registration, &mut incoming) => {
                if let Some(reason) = reason {
                    close_for(&mut sink, reason).await;
                }
                return;
            }
            _ = tokio::time::sleep(TICK) => waited += TICK,
        }
    }
}
