//! Docker operations as the operations read model has them: status, timings, outcome,
//! and the progress of a long one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Containers, ContainersError};

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

impl Containers {
    /// A Docker operation (on a container, an image, a volume or a network), by its id.
    pub async fn operation(&self, id: Uuid) -> Result<OperationView, ContainersError> {
        sqlx::query_as(
            "SELECT id, action, resource_type, aggregate_id, host, status, error_code, error_message, requested_by, \
             requested_at, completed_at, (EXTRACT(EPOCH FROM (completed_at - requested_at)) * 1000)::bigint AS duration_ms, \
             targets, (SELECT progress FROM operation_progress p WHERE p.op_id = o.id) AS progress \
             FROM operations o WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reads.pool())
        .await?
        .ok_or(ContainersError::NoSuchOperation)
    }
}
