//! The WebSocket gateway: `/ws/events` (platform and Docker events, per role, with replay
//! from a position), and the registry of open sockets.
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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use dcp_aggregates::Role;
use dcp_projections::GlobalLogReader;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::bus::Envelope;
use super::tickets::{self, Purpose, TicketRefusal, PROTOCOL_PREFIX};
use crate::auth::principal::Principal;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::AppState;

/// Open sockets per user on one server.
pub const MAX_SOCKETS_PER_USER: usize = 32;
/// Events a replay sends at most; further behind, the client resyncs from the REST API.
pub const REPLAY_LIMIT: usize = 10_000;
/// How long one frame may wait for a client that does not read.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A ping is sent this often; a client silent for [`IDLE_TIMEOUT`] is gone.
pub const PING_EVERY: Duration = Duration::from_secs(20);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Close code: the session ended or the user may no longer see this (RFC 6455 1008).
pub const CLOSE_POLICY: u16 = 1008;

/// Why every socket is closed when the server stops (with 1001, going away).
pub const SHUTTING_DOWN: &str = "the server is shutting down";

/// The close code for a socket the server closes for `reason`: 1001 when it stops, else
/// 1008 (a revoked session, a changed role, …).
pub fn close_code(reason: &str) -> u16 {
    if reason == SHUTTING_DOWN {
        1001
    } else {
        CLOSE_POLICY
    }
}
/// Close code: the client fell behind and must reconnect (RFC 6455 1013, try again later).
pub const CLOSE_TRY_AGAIN: u16 = 1013;

struct Entry {
    user_id: Uuid,
    session_id: Uuid,
    role: Role,
    close: watch::Sender<Option<&'static str>>,
}

/// The sockets open on this server, to enforce the per-user cap and to close them when
/// their session or account changes.
#[derive(Default)]
pub struct Registry {
    sockets: Mutex<HashMap<Uuid, Entry>>,
}

/// A registered socket: deregisters itself when dropped.
pub struct Registration {
    registry: Arc<Registry>,
    id: Uuid,
    pub closed: watch::Receiver<Option<&'static str>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut sockets) = self.registry.sockets.lock() {
            sockets.remove(&self.id);
        }
    }
}

impl Registry {
    /// Registers a socket of `principal`, unless the user already has too many.
    pub fn admit(self: &Arc<Self>, principal: &Principal) -> Option<Registration> {
        let mut sockets = self.sockets.lock().ok()?;
        let open = sockets
            .values()
            .filter(|e| e.user_id == principal.user_id)
            .count();
        if open >= MAX_SOCKETS_PER_USER {
            return None;
        }
        let id = Uuid::new_v4();
        let (close, closed) = watch::channel(None);
        sockets.insert(
            id,
            Entry {
                user_id: principal.user_id,
                session_id: principal.session_id,
                role: principal.role,
                close,
            },
        );
        Some(Registration {
            registry: self.clone(),
            id,
            closed,
        })
    }

    /// Closes every socket with 1001: the server is stopping.
    pub fn close_all_going_away(&self) {
        self.close_where(SHUTTING_DOWN, |_| true);
    }

    /// Waits (at most `limit`) until every socket has closed.
    pub async fn drained(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.open_sockets() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    pub fn open_sockets(&self) -> usize {
        self.sockets.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn close_where(&self, reason: &'static str, matches: impl Fn(&Entry) -> bool) {
        if let Ok(sockets) = self.sockets.lock() {
            for entry in sockets.values().filter(|e| matches(e)) {
                let _ = entry.close.send(Some(reason));
            }
        }
    }

    /// Closes the sockets an event takes the right away from.
    pub fn apply(&self, envelope: &Envelope) {
        let id = envelope.aggregate.id.parse::<Uuid>().ok();
        match (
            envelope.aggregate.aggregate_type.as_str(),
            envelope.event_type.as_str(),
        ) {
            ("session", "SessionLoggedOut" | "SessionRevoked") => {
                self.close_where("the session ended", |e| Some(e.session_id) == id)
            }
            ("user", "UserDeactivated" | "UserDeleted") => {
                self.close_where("the account was deactivated", |e| Some(e.user_id) == id)
            }
            ("user", "UserRoleChanged") => {
                self.close_where("the account's role changed", |e| Some(e.user_id) == id)
            }
            _ => {}
        }
    }

    /// Checks every open socket's session and role against the read models and closes
    /// those that changed (after the revoker missed events).
    pub async fn recheck(&self, pool: &sqlx::PgPool) {
        let open: Vec<(Uuid, Uuid, Role)> = match self.sockets.lock() {
            Ok(sockets) => sockets
                .values()
                .map(|e| (e.user_id, e.session_id, e.role))
                .collect(),
            Err(_) => return,
        };
        let mut checked: HashMap<(Uuid, Uuid), Option<Role>> = HashMap::new();
        for (user_id, session_id, _) in open {
            if checked.contains_key(&(user_id, session_id)) {
                continue;
            }
            let now = match crate::auth::principal::load_principal(pool, user_id, session_id).await
            {
                Ok(Ok(principal)) => Some(principal.role),
                Ok(Err(_)) => None,
                // The database is away: the next check decides.
                Err(_) => continue,
            };
            checked.insert((user_id, session_id), now);
        }
        self.close_where("the session or role changed", |e| {
            checked
                .get(&(e.user_id, e.session_id))
                .is_some_and(|now| *now != Some(e.role))
        });
    }

    /// Follows the bus on this server and applies every event (spawned once at start).
    pub fn spawn_revoker(
        self: &Arc<Self>,
        mut events: broadcast::Receiver<Arc<Envelope>>,
        pool: sqlx::PgPool,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    received = events.recv() => received,
                };
                match received {
                    Ok(envelope) => registry.apply(&envelope),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // What it missed may have been a logout: every socket is checked.
                        tracing::warn!(
                            missed,
                            "the socket revoker fell behind the bus; checking every socket"
                        );
                        registry.recheck(&pool).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}

/// Whether `principal` may see `envelope`: admins see everything; the others see Docker
/// resources, hosts and wizards, and of users and sessions only their own.
pub fn visible(principal: &Principal, envelope: &Envelope) -> bool {
    if principal.role == Role::Admin {
        return true;
    }
    let own = principal.user_id.to_string();
    match envelope.aggregate.aggregate_type.as_str() {
        "container" | "image" | "volume" | "network" | "host" => true,
        "wizard" => envelope.actor.id.as_deref() == Some(own.as_str()),
        "user" => envelope.aggregate.id == own,
        "session" => envelope.data.get("user_id").and_then(Value::as_str) == Some(own.as_str()),
        _ => false,
    }
}

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

/// The routes of the gateway (outside `/api/v1`: tickets, not bearer tokens).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/events", get(events_socket))
        .merge(super::streams::router())
}

/// `{"type":"error",…}` as the original design has it.
pub fn error_message(code: &str, message: &str, reconnect: bool, fatal: bool) -> String {
    json!({
        "type": "error",
        "code": code,
        "message": message,
        "timestamp": Utc::now(),
        "reconnect": reconnect,
        "fatal": fatal,
    })
    .to_string()
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
pub async fn authorize(
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
    let principal = match tickets::redeem(&state.pool, &ticket, purpose, resource_id).await? {
        Ok(principal) => principal,
        Err(TicketRefusal::Invalid) => {
            return Err(ApiError::authentication(
                "the ticket is unknown, expired, already used, or for another socket",
            ))
        }
        Err(TicketRefusal::SessionClosed) => {
            return Err(ApiError::authentication("the session has ended"))
        }
        Err(TicketRefusal::Forbidden) => {
            return Err(ApiError::forbidden("this role may not open this socket"))
        }
    };
    let registration = state.sockets.admit(&principal).ok_or_else(|| {
        ApiError::new(
            ErrorCode::RateLimited,
            format!("at most {MAX_SOCKETS_PER_USER} open sockets per user"),
        )
    })?;
    // Registered first, then checked once more against read models that include every
    // event so far: a logout or demotion committed around the handshake either reaches
    // this registered socket through the bus or is seen here.
    state
        .settle_to_head(crate::http::positions::SESSIONS)
        .await?;
    match crate::auth::principal::load_principal(
        &state.pool,
        principal.user_id,
        principal.session_id,
    )
    .await?
    {
        Ok(now) if now.role == principal.role => {}
        _ => {
            return Err(ApiError::authentication(
                "the session changed; ask for a new ticket",
            ))
        }
    }
    Ok((principal, registration, protocol))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub ticket: Option<String>,
    /// Replay the events after this global position first.
    pub after: Option<i64>,
}

async fn events_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return ApiError::validation("query", rejection.body_text()).into_response();
        }
    };
    if query.after.is_some_and(|a| a < 0) {
        return ApiError::validation("after", "after is a global position (0 or more)")
            .into_response();
    }
    let (principal, registration, protocol) = match authorize(
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
    let upgrade = answer(upgrade, protocol);
    upgrade
        .on_upgrade(move |socket| async move {
            events_session(state, socket, principal, registration, query.after).await
        })
        .into_response()
}

/// Sends one text frame, giving up on a client that does not read.
async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    text: String,
) -> bool {
    matches!(
        tokio::time::timeout(
            SEND_TIMEOUT,
            sink.send(Message::Text(Utf8Bytes::from(text)))
        )
        .await,
        Ok(Ok(()))
    )
}

pub async fn close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
}

fn event_message(envelope: &Envelope) -> String {
    json!({ "type": "event", "event": envelope }).to_string()
}

async fn events_session(
    state: AppState,
    socket: WebSocket,
    principal: Principal,
    mut registration: Registration,
    after: Option<i64>,
) {
    // Subscribed before the replay reads the store: nothing falls between the two.
    let mut live = state.bus.subscribe();
    let (mut sink, mut incoming) = socket.split();
    let mut replayed: HashSet<Uuid> = HashSet::new();
    let mut last_position: Option<i64> = after;
    if let Some(after) = after {
        match replay(
            &state,
            &principal,
            after,
            &mut sink,
            &mut replayed,
            &mut last_position,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(message) => {
                let internal = message.contains("INTERNAL_ERROR");
                let _ = send(&mut sink, message).await;
                close(
                    &mut sink,
                    if internal { 1011 } else { 1000 },
                    "replay refused",
                )
                .await;
                return;
            }
        }
    }
    if !send(
        &mut sink,
        json!({ "type": "ready", "position": last_position }).to_string(),
    )
    .await
    {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            changed = registration.closed.changed() => {
                let reason = if changed.is_ok() { *registration.closed.borrow() } else { None };
                let reason = reason.unwrap_or("closed by the server");
                close(&mut sink, close_code(reason), reason).await;
                return;
            }
            received = live.recv() => match received {
                Ok(envelope) => {
                    if !replayed.is_empty() {
                        if replayed.remove(&envelope.event_id) {
                            continue;
                        }
                        // Live events come in log order, and the replay covered everything up
                        // to its end: the first one it did not have is past it, and so is
                        // every one after it.
                        replayed = HashSet::new();
                    }
                    if !visible(&principal, &envelope) {
                        continue;
                    }
                    last_position = Some(envelope.global_position);
                    if !send(&mut sink, event_message(&envelope)).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let lagged = json!({ "type": "lagged", "missed": missed, "position": last_position,
                        "message": "this socket fell behind; reconnect with ?after=<position>" });
                    let _ = send(&mut sink, lagged.to_string()).await;
                    close(&mut sink, CLOSE_TRY_AGAIN, "lagged").await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    close(&mut sink, 1001, "the server is shutting down").await;
                    return;
                }
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    close(&mut sink, 1001, "idle").await;
                    return;
                }
                if tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends the stored events after `after`; `Ok(false)` when the client went away, `Err`
/// with an error message when the replay is refused.
async fn replay(
    state: &AppState,
    principal: &Principal,
    after: i64,
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    replayed: &mut HashSet<Uuid>,
    last_position: &mut Option<i64>,
) -> Result<bool, String> {
    let internal = |_| error_message("INTERNAL_ERROR", "the replay failed", true, false);
    let mut cursor = if after == 0 {
        dcp_projections::LogCursor::START
    } else {
        match GlobalLogReader::cursor_of(&state.pool, after)
            .await
            .map_err(internal)?
        {
            Some(cursor) => cursor,
            None => {
                return Err(error_message(
                    "VALIDATION_ERROR",
                    &format!("no event at position {after}"),
                    false,
                    true,
                ))
            }
        }
    };
    // Too far behind: said before anything is sent.
    let behind = GlobalLogReader::count_after(&state.pool, cursor)
        .await
        .map_err(internal)?;
    if behind > REPLAY_LIMIT as i64 {
        return Err(error_message(
            "RESYNC_REQUIRED",
            &format!("{behind} events to replay (more than {REPLAY_LIMIT}): load the current state from the API, then reconnect without ?after"),
            false,
            true,
        ));
    }
    loop {
        // A connection per batch, released before sending: a client that reads slowly
        // holds no database connection.
        let batch = {
            let mut conn = state.pool.acquire().await.map_err(internal)?;
            GlobalLogReader::read_batch(&mut conn, cursor, 500)
                .await
                .map_err(internal)?
        };
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        cursor = last.cursor();
        for event in &batch {
            if replayed.len() >= REPLAY_LIMIT {
                return Err(error_message(
                    "RESYNC_REQUIRED",
                    &format!("more than {REPLAY_LIMIT} events to replay: load the current state from the API, then reconnect without ?after"),
                    false,
                    true,
                ));
            }
            let envelope = Envelope::from_event(event);
            replayed.insert(envelope.event_id);
            *last_position = Some(envelope.global_position);
            if visible(principal, &envelope) && !send(sink, event_message(&envelope)).await {
                return Ok(false);
            }
        }
    }
}
