//! `/api/v1/operations/{id}`: a Docker operation's status, timings and outcome.

use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use super::AppState;

/// Projections read here.
pub const OPERATIONS: &[&str] = &["operations"];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_operation))
}

/// One operation.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct OperationView {
    pub id: Uuid,
    /// The audit action, e.g. `container.start`.
    pub action: String,
    pub resource_type: String,
    /// The platform id of the resource's aggregate.
    pub aggregate_id: String,
    pub host: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Milliseconds from request to outcome.
    pub duration_ms: Option<i64>,
    /// The Docker ids and names the operation touched.
    pub targets: Vec<String>,
    /// Progress so far of a long operation (an image pull: `status`, and per layer
    /// `status`, `current` and `total` bytes); absent for the others.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<serde_json::Value>,
}

/// A Docker operation, by its id (`operation_id` in command responses and history).
#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "operations", params(("id" = Uuid, Path)),
    responses((status = 200, body = OperationView), (status = 404)))]
async fn get_operation(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<OperationView>> {
    state.settle_request(&headers, OPERATIONS).await?;
    sqlx::query_as(
        "SELECT id, action, resource_type, aggregate_id, host, status, error_code, error_message, requested_by, \
         requested_at, completed_at, (EXTRACT(EPOCH FROM (completed_at - requested_at)) * 1000)::bigint AS duration_ms, \
         targets, (SELECT progress FROM operation_progress p WHERE p.op_id = o.id) AS progress \
         FROM operations o WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .map(ApiJson)
    .ok_or_else(|| ApiError::not_found("operation"))
}
