//! `/api/v1/operations/{id}`: a Docker operation's status, timings and outcome; read by
//! the containers service ([`crate::containers`]).

use axum::extract::State;
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::app_state::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath};
use super::positions::settle_request;
use crate::containers::OperationView;
use crate::read_models::OPERATIONS;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_operation))
}

/// A Docker operation, by its id (`operation_id` in command responses and history).
#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "operations", params(("id" = Uuid, Path)),
    responses((status = 200, body = OperationView), (status = 404)))]
async fn get_operation(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<OperationView>> {
    settle_request(&state.reads, &headers, OPERATIONS).await?;
    Ok(ApiJson(state.containers.operation(id).await?))
}
