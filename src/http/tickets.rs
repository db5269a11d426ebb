//! `POST /api/v1/ws-tickets`: a single-use ticket for one WebSocket ([`crate::realtime::tickets`]).

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use crate::realtime::tickets::{self, TicketRequest, TicketResponse};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_ticket))
}

/// A single-use ticket for one WebSocket.
#[utoipa::path(post, path = "/api/v1/ws-tickets", tag = "realtime", request_body = TicketRequest,
    responses((status = 201, body = TicketResponse), (status = 400), (status = 403)))]
async fn create_ticket(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<TicketRequest>,
) -> ApiResult<(StatusCode, ApiJson<TicketResponse>)> {
    let ticket = tickets::issue(state.reads.pool(), &principal, request).await?;
    Ok((StatusCode::CREATED, ApiJson(ticket)))
}
