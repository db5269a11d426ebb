//! WebSocket tickets: `{purpose, resource_id}` → a random ticket,
//! valid 30 s, usable once, bound to the caller's user and session, the purpose and the
//! resource. The socket presents it in `Sec-WebSocket-Protocol` (`dcp.ticket.<ticket>`) or
//! as `?ticket=`; access tokens never appear in a URL.

use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use dcp_aggregates::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;

use super::RealtimeError;
use crate::auth::policy::{self, SocketKind};
use crate::auth::principal::{load_principal, Principal};

/// How long a ticket is valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Tickets a user may hold unused at once (twice the sockets they may have open).
pub const MAX_OPEN_TICKETS: i64 = 64;

/// The prefix of the `Sec-WebSocket-Protocol` entry that carries a ticket.
pub const PROTOCOL_PREFIX: &str = "dcp.ticket.";

/// What a ticket opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Purpose {
    #[serde(rename = "events")]
    Events,
    #[serde(rename = "container.logs")]
    ContainerLogs,
    #[serde(rename = "container.exec")]
    ContainerExec,
    #[serde(rename = "container.stats")]
    ContainerStats,
    #[serde(rename = "task")]
    Task,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Events => "events",
            Purpose::ContainerLogs => "container.logs",
            Purpose::ContainerExec => "container.exec",
            Purpose::ContainerStats => "container.stats",
            Purpose::Task => "task",
        }
    }

    /// Whether `role` may open sockets of this purpose ([`policy::may_open_socket`]).
    pub fn allowed(self, role: Role) -> bool {
        let kind = match self {
            Purpose::ContainerExec => SocketKind::Exec,
            _ => SocketKind::Reading,
        };
        policy::may_open_socket(role, kind)
    }

    /// Every purpose but `events` is about one resource (a container, a task).
    pub fn needs_resource(self) -> bool {
        self != Purpose::Events
    }
}

/// `POST /api/v1/ws-tickets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    pub purpose: Purpose,
    /// The container (id, id prefix or name) or task (operation id) the socket is for.
    pub resource_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    pub ticket: String,
    /// Seconds.
    pub expires_in: u64,
    pub purpose: Purpose,
    pub resource_id: Option<String>,
}

fn digest(ticket: &str) -> Vec<u8> {
    Sha256::digest(ticket.as_bytes()).to_vec()
}

/// Issues a single-use ticket for one socket of `principal`'s.
#[tracing::instrument(skip_all, fields(purpose = request.purpose.as_str()), err(level = "debug"))]
pub async fn issue(
    pool: &PgPool,
    principal: &Principal,
    request: TicketRequest,
) -> Result<TicketResponse, RealtimeError> {
    if !request.purpose.allowed(principal.role) {
        return Err(RealtimeError::PurposeForbidden(format!(
            "the role '{}' may not open {} sockets",
            principal.role,
            request.purpose.as_str()
        )));
    }
    let resource_id = request.resource_id.filter(|r| !r.is_empty());
    match (&resource_id, request.purpose.needs_resource()) {
        (None, true) => {
            return Err(RealtimeError::invalid(
                "resource_id",
                format!("a {} ticket names its resource", request.purpose.as_str()),
            ))
        }
        (Some(_), false) => {
            return Err(RealtimeError::invalid(
                "resource_id",
                "an events ticket names no resource",
            ))
        }
        (Some(resource), true)
            if resource.len() > 255
                || !resource
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            return Err(RealtimeError::invalid(
                "resource_id",
                "a container id, id prefix or name, or an operation id",
            ))
        }
        _ => {}
    }
    let ticket =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let expires_at = Utc::now() + TICKET_TTL;
    // Counted and inserted under a lock per user, so concurrent requests cannot pass the
    // bound together.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(principal.user_id)
        .execute(&mut *tx)
        .await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ws_tickets WHERE user_id = $1 AND used_at IS NULL AND expires_at > now()",
    )
    .bind(principal.user_id)
    .fetch_one(&mut *tx)
    .await?;
    if open >= MAX_OPEN_TICKETS {
        return Err(RealtimeError::TooManyTickets(MAX_OPEN_TICKETS));
    }
    sqlx::query(
        "INSERT INTO ws_tickets (ticket_hash, user_id, session_id, purpose, resource_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(digest(&ticket))
    .bind(principal.user_id)
    .bind(principal.session_id)
    .bind(request.purpose.as_str())
    .bind(&resource_id)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Spent and expired tickets are of no use to anyone: cleared as new ones are made.
    sqlx::query("DELETE FROM ws_tickets WHERE expires_at < now() - interval '1 minute'")
        .execute(pool)
        .await?;
    Ok(TicketResponse {
        ticket,
        expires_in: TICKET_TTL.as_secs(),
        purpose: request.purpose,
        resource_id,
    })
}

/// Why a ticket does not open the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefusal {
    /// Unknown, already used, expired, or for another purpose or resource.
    Invalid,
    /// The session ended or the account was deactivated since the ticket was issued.
    SessionClosed,
    /// The role no longer allows this purpose.
    Forbidden,
}

/// Spends `ticket` for a socket of `purpose` on `resource_id`; the caller as they are now.
pub async fn redeem(
    pool: &PgPool,
    ticket: &str,
    purpose: Purpose,
    resource_id: Option<&str>,
) -> Result<Result<Principal, TicketRefusal>, sqlx::Error> {
    if ticket.is_empty() || ticket.len() > 128 {
        return Ok(Err(TicketRefusal::Invalid));
    }
    // Spent whatever happens next: a ticket opens at most one attempt.
    let row: Option<(uuid::Uuid, uuid::Uuid, String, Option<String>)> = sqlx::query_as(
        "UPDATE ws_tickets SET used_at = now() WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > now() \
         RETURNING user_id, session_id, purpose, resource_id",
    )
    .bind(digest(ticket))
    .fetch_optional(pool)
    .await?;
    let Some((user_id, session_id, bound_purpose, bound_resource)) = row else {
        return Ok(Err(TicketRefusal::Invalid));
    };
    if bound_purpose != purpose.as_str() || bound_resource.as_deref() != resource_id {
        return Ok(Err(TicketRefusal::Invalid));
    }
    let principal = match load_principal(pool, user_id, session_id).await? {
        Ok(principal) => principal,
        Err(_) => return Ok(Err(TicketRefusal::SessionClosed)),
    };
    if !purpose.allowed(principal.role) {
        return Ok(Err(TicketRefusal::Forbidden));
    }
    Ok(Ok(principal))
}
