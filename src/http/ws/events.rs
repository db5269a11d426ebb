//! `/ws/events`: platform and Docker events, per role, live; with `?after=POS`, the stored
//! events after `POS` first. The live feed is subscribed before the replay starts and events
//! already replayed are skipped, so there is no gap and no duplicate. A socket that falls
//! behind this server's broadcast of the bus, or whose client stops reading, gets `lagged`
//! (with the last position it received, to resume from) and is closed.

use std::collections::HashSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    admit, answer, close, close_code, close_for, fail, query_error, send_json, send_text, Sink,
    CLOSE_TRY_AGAIN, IDLE_TIMEOUT, PING_EVERY, SEND_TIMEOUT,
};
use crate::auth::principal::Principal;
use crate::http::app_state::AppState;
use crate::http::error::ApiError;
use crate::realtime::bus::Envelope;
use crate::realtime::sockets::{Registration, SHUTTING_DOWN};
use crate::realtime::streams::visible_to;
use crate::realtime::tickets::Purpose;
use crate::realtime::RealtimeError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub ticket: Option<String>,
    /// Replay the events after this global position first.
    pub after: Option<i64>,
}

pub(super) async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return query_error(rejection),
    };
    if query.after.is_some_and(|a| a < 0) {
        return ApiError::validation("after", "after is a global position (0 or more)")
            .into_response();
    }
    let (principal, registration, protocol) = match admit(
        &state,
        &headers,
        query.ticket.as_deref(),
        Purpose::Events,
        None,
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(error) => return error.into_response(),
    };
    answer(upgrade, protocol)
        .on_upgrade(move |socket| session(state, socket, principal, registration, query.after))
        .into_response()
}

fn event_message(envelope: &Envelope) -> String {
    json!({ "type": "event", "event": envelope }).to_string()
}

/// What the live feed must skip: the events the replay sent, until the first one past it.
struct Replayed {
    ids: HashSet<Uuid>,
    last_position: Option<i64>,
}

async fn session(
    state: AppState,
    socket: WebSocket,
    principal: Principal,
    mut registration: Registration,
    after: Option<i64>,
) {
    // Subscribed before the replay reads the store: nothing falls between the two.
    let mut live = state.bus.subscribe();
    let (mut sink, mut incoming) = socket.split();
    let mut replayed = Replayed {
        ids: HashSet::new(),
        last_position: after,
    };
    if let Some(after) = after {
        match replay(&state, &principal, after, &mut sink, &mut replayed).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => return fail(&mut sink, error, "replay refused").await,
        }
    }
    let ready = json!({ "type": "ready", "position": replayed.last_position });
    if !send_json(&mut sink, ready).await {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            changed = registration.closed.changed() => {
                let reason = if changed.is_ok() { *registration.closed.borrow() } else { None };
                return close_for(&mut sink, reason.unwrap_or("closed by the server")).await;
            }
            received = live.recv() => {
                if !forward(&mut sink, &principal, &mut replayed, received).await {
                    return;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    return close(&mut sink, 1001, "idle").await;
                }
                if tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends one live event the user may see (skipping those the replay sent); false when the
/// socket ends.
async fn forward(
    sink: &mut Sink,
    principal: &Principal,
    replayed: &mut Replayed,
    received: Result<std::sync::Arc<Envelope>, broadcast::error::RecvError>,
) -> bool {
    match received {
        Ok(envelope) => {
            if !replayed.ids.is_empty() {
                if replayed.ids.remove(&envelope.event_id) {
                    return true;
                }
                // Live events come in log order, and the replay covered everything up to
                // its end: the first one it did not have is past it, and so is every one
                // after it.
                replayed.ids = HashSet::new();
            }
            if !visible_to(principal, &envelope) {
                return true;
            }
            replayed.last_position = Some(envelope.global_position);
            send_text(sink, event_message(&envelope)).await
        }
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            let lagged = json!({ "type": "lagged", "missed": missed, "position": replayed.last_position,
                "message": "this socket fell behind; reconnect with ?after=<position>" });
            let _ = send_json(sink, lagged).await;
            close(sink, CLOSE_TRY_AGAIN, "lagged").await;
            false
        }
        Err(broadcast::error::RecvError::Closed) => {
            close(sink, close_code(SHUTTING_DOWN), SHUTTING_DOWN).await;
            false
        }
    }
}

/// Sends the stored events after `after` that the user may see; `Ok(false)` when the
/// client went away.
async fn replay(
    state: &AppState,
    principal: &Principal,
    after: i64,
    sink: &mut Sink,
    replayed: &mut Replayed,
) -> Result<bool, RealtimeError> {
    let mut replay = state.streams.replay_after(after).await?;
    loop {
        let batch = state.streams.next_replayed(&mut replay).await?;
        if batch.is_empty() {
            return Ok(true);
        }
        for envelope in &batch {
            replayed.ids.insert(envelope.event_id);
            replayed.last_position = Some(envelope.global_position);
            if visible_to(principal, envelope) && !send_text(sink, event_message(envelope)).await {
                return Ok(false);
            }
        }
    }
}
