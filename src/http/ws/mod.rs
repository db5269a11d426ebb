//! The WebSocket endpoints: `/ws/events` (platform and Docker events, per role, with replay
//! from a position), `/ws/tasks/{id}`, and a container's `logs`, `stats` and `exec`; the
//! streams themselves are the real-time service's ([`crate::realtime`]).
//!
//! - **Handshake.** A single-use ticket ([`super::tickets`]) in `Sec-WebSocket-Protocol`
//!   (`dcp.ticket.<ticket>`; the server answers with that protocol) or `?ticket=`; the
//!   `Origin`, when a browser sends one, must be this server or an allowed CORS origin.
//!   Refusals before the upgrade are HTTP errors in the API's format.
//! - **Messages.** JSON text frames: `{"type":"event","event":<envelope>}`,
//!   `{"type":"ready","position":…}` once a replay has caught up, `{"type":"lagged",…}`,
//!   and errors as `{"type":"error","code","message","timestamp","reconnect","fatal"}`.
//! - **Replay.** `?after=POS` sends the stored events after `POS` (that the user may see),
//!   then continues live; the live feed is subscribed before the replay starts and events
//!   already replayed are skipped, so there is no gap and no duplicate.
//! - **Back-pressure.** Each socket reads from this server's bounded broadcast of the bus;
//!   a socket that falls behind it, or whose client stops reading for [`SEND_TIMEOUT`],
//!   gets `lagged` (with the last position it received, to resume from) and is closed:
//!   server memory does not grow with a slow client.
//! - **Revocation.** Logout, session revocation, deactivation, deletion or a role change of
//!   a user closes that user's sockets with 1008 (policy violation) as soon as the event
//!   reaches this server.

mod events;
mod exec;
mod logs;
mod stats;
mod tasks;

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use super::app_state::AppState;
use super::error::{ApiError, SocketError};
use crate::auth::principal::Principal;
use crate::commands::{CommandMeta, RequestContext};
use crate::denials::Refused;
use crate::realtime::sockets::{Registration, SHUTTING_DOWN};
use crate::realtime::tickets::{Purpose, PROTOCOL_PREFIX};

/// How long one frame may wait for a client that does not read.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A ping is sent this often; a client silent for [`IDLE_TIMEOUT`] is gone.
pub const PING_EVERY: Duration = Duration::from_secs(20);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Close code: the session ended or the user may no longer see this (RFC 6455 1008).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: the client fell behind and must reconnect (RFC 6455 1013, try again later).
pub const CLOSE_TRY_AGAIN: u16 = 1013;

/// The close code for a socket the server closes for `reason`: 1001 when it stops, else
/// 1008 (a revoked session, a changed role, …).
pub fn close_code(reason: &str) -> u16 {
    if reason == SHUTTING_DOWN {
        1001
    } else {
        CLOSE_POLICY
    }
}

/// The routes of the sockets (outside `/api/v1`: tickets, not bearer tokens).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/events", get(events::socket))
        .route("/ws/tasks/{id}", get(tasks::socket))
        .route("/ws/containers/{id}/logs", get(logs::socket))
        .route("/ws/containers/{id}/stats", get(stats::socket))
        .route("/ws/containers/{id}/exec", get(exec::socket))
}

type Sink = SplitSink<WebSocket, Message>;

/// Socket buffers: small (tungstenite's defaults are 128 KiB each way, which is 256 KiB
/// per idle socket); frames are flushed one by one anyway, and clients only send small
/// control messages and keystrokes.
pub fn sized(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
}

/// The upgrade with our buffer sizes, answering with the ticket's subprotocol if it came as one.
pub fn answer(upgrade: WebSocketUpgrade, protocol: Option<String>) -> WebSocketUpgrade {
    match protocol {
        Some(protocol) => sized(upgrade).protocols([protocol]),
        None => sized(upgrade),
    }
}

/// Refuses a browser page from an origin that is neither this server nor allowed by CORS.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser: the ticket is the only credential that matters.
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let same_origin = [format!("http://{host}"), format!("https://{host}")];
    if same_origin.iter().any(|o| o == origin)
        || state.settings.cors_allowlist().iter().any(|o| o == origin)
    {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "WebSocket connections from the origin '{origin}' are not allowed"
    )))
}

/// The ticket from `Sec-WebSocket-Protocol` (and the protocol to answer with), or `?ticket=`.
fn ticket_of(headers: &HeaderMap, query: Option<&str>) -> Option<(String, Option<String>)> {
    let from_protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| {
            p.strip_prefix(PROTOCOL_PREFIX)
                .map(|t| (t.to_string(), p.to_string()))
        });
    match from_protocol {
        Some((ticket, protocol)) => Some((ticket, Some(protocol))),
        None => query.map(|t| (t.to_string(), None)),
    }
}

/// Checks the origin and spends the ticket; the caller, registered, and the protocol to answer.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    query_ticket: Option<&str>,
    purpose: Purpose,
    resource_id: Option<&str>,
) -> Result<(Principal, Registration, Option<String>), ApiError> {
    check_origin(state, headers)?;
    let Some((ticket, protocol)) = ticket_of(headers, query_ticket) else {
        return Err(ApiError::authentication(
            "a WebSocket needs a ticket from POST /api/v1/ws-tickets (Sec-WebSocket-Protocol dcp.ticket.<ticket>, or ?ticket=)",
        ));
    };
    let (principal, registration) = state.streams.admit(&ticket, purpose, resource_id).await?;
    Ok((principal, registration, protocol))
}

/// A socket admitted on one container: where it is, and what to answer with.
struct ContainerSocket {
    host: String,
    /// The container's full id.
    id: String,
    registration: Registration,
    protocol: Option<String>,
}

/// [`admit`] for a socket of `purpose` on the container `reference` names on `host`
/// (default `local`), which must exist (and, for logs, not be one the platform protects
/// from the caller).
async fn admit_on_container(
    state: &AppState,
    (headers, context): (&HeaderMap, &RequestContext),
    query_ticket: Option<&str>,
    purpose: Purpose,
    host: Option<&str>,
    reference: &str,
) -> Result<ContainerSocket, ApiError> {
    let host = state.streams.host(host)?;
    let (principal, registration, protocol) =
        admit(state, headers, query_ticket, purpose, Some(reference)).await?;
    let meta = CommandMeta::from_request(context, Some(&principal));
    let route = match purpose {
        Purpose::ContainerLogs => Refused::of("GET", "/ws/containers/{id}/logs"),
        _ => Refused::of("GET", "/ws/containers/{id}/stats"),
    };
    let id = state
        .streams
        .container_for(&principal, (&host, reference), purpose, &meta, route)
        .await?;
    Ok(ContainerSocket {
        host,
        id,
        registration,
        protocol,
    })
}

/// A refused query string, in the API's format (before the upgrade).
fn query_error(rejection: QueryRejection) -> Response {
    ApiError::validation("query", rejection.body_text()).into_response()
}

/// Sends one text frame, giving up on a client that does not read.
async fn send_text(sink: &mut Sink, text: String) -> bool {
    matches!(
        tokio::time::timeout(
            SEND_TIMEOUT,
            sink.send(Message::Text(Utf8Bytes::from(text)))
        )
        .await,
        Ok(Ok(()))
    )
}

async fn send_json(sink: &mut Sink, value: Value) -> bool {
    send_text(sink, value.to_string()).await
}

async fn close(sink: &mut Sink, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

/// Tells the client why the socket ends, then closes it (`reason` goes in the close frame).
async fn fail(sink: &mut Sink, error: impl Into<SocketError>, reason: &str) {
    let error = error.into();
    let _ = send_text(sink, error.text(true)).await;
    close(sink, error.close_code(), reason).await;
}

/// Closes a socket the server closed (revocation, shutdown) with its reason.
async fn close_for(sink: &mut Sink, reason: &str) {
    close(sink, close_code(reason), reason).await;
}

/// Waits for the server to close the socket (revocation) or the client to leave.
async fn closed_or_gone(
    registration: &mut Registration,
    incoming: &mut SplitStream<WebSocket>,
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
