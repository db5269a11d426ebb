//! WebSocket tickets: `POST /api/v1/ws-tickets` `{purpose, resource_id}` → a random ticket,
//! valid 30 s, usable once, bound to the caller's user and session, the purpose and the
//! resource. The socket presents it in `Sec-WebSocket-Protocol` (`dcp.ticket.<ticket>`) or
//! as `?ticket=`; access tokens never appear in a URL.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::Utc;
use dcp_aggregates::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::principal::{load_principal, Principal};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::AppState;

/// How long a ticket is valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

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

    /// Exec runs commands in a container: operators and admins only.
    pub fn allowed(self, role: Role) -> bool {
        match self {
            Purpose::ContainerExec => matches!(role, Role::Admin | Role::Operator),
            _ => true,
        }
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_ticket))
}

fn digest(ticket: &str) -> Vec<u8> {
    Sha256::digest(ticket.as_bytes()).to_vec()
}

/// A single-use ticket for one WebSocket.
#[utoipa::path(post, path = "/api/v1/ws-tickets", tag = "realtime", request_body = TicketRequest,
    responses((status = 201, body = TicketResponse), (status = 400), (status = 403)))]
async fn create_ticket(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<TicketRequest>,
) -> ApiResult<(StatusCode, ApiJson<TicketResponse>)> {
    if !request.purpose.allowed(principal.role) {
        return Err(ApiError::forbidden(format!(
            "the role '{}' may not open {} sockets",
            principal.role,
            request.purpose.as_str()
        ))
        .with_field("purpose"));
    }
    let resource_id = request.resource_id.filter(|r| !r.is_empty());
    match (&resource_id, request.purpose.needs_resource()) {
        (None, true) => {
            return Err(ApiError::validation(
                "resource_id",
                format!("a {} ticket names its resource", request.purpose.as_str()),
            ))
        }
        (Some(_), false) => {
            return Err(ApiError::validation(
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
            return Err(ApiError::validation(
                "resource_id",
                "a container id, id prefix or name, or an operation id",
            ))
        }
        _ => {}
    }
    let ticket =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let expires_at = Utc::now() + TICKET_TTL;
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
    .execute(&state.pool)
    .await?;
    // Spent and expired tickets are of no use to anyone: cleared as new ones are made.
    sqlx::query("DELETE FROM ws_tickets WHERE expires_at < now() - interval '1 minute'")
        .execute(&state.pool)
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(TicketResponse {
            ticket,
            expires_in: TICKET_TTL.as_secs(),
            purpose: request.purpose,
            resource_id,
        }),
    ))
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
