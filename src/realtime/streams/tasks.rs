//! An operation as its task socket shows it: its status, its progress so far and its outcome.

use serde_json::Value;
use uuid::Uuid;

use super::Streams;
use crate::realtime::RealtimeError;

/// An operation now.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// The audit action, e.g. `image.pull`.
    pub action: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub progress: Option<Value>,
}

impl Task {
    /// Whether the operation has its outcome.
    pub fn ended(&self) -> bool {
        self.status != "pending"
    }
}

/// status, action, error code and message, progress
type TaskRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Value>,
);

impl Streams {
    /// Operation `op_id` as the operations read model has it; `None` when it has not seen it.
    pub async fn task(&self, op_id: Uuid) -> Result<Option<Task>, RealtimeError> {
        let row: Option<TaskRow> = sqlx::query_as(
                "SELECT o.status, o.action, o.error_code, o.error_message, p.progress FROM operations o \
                 LEFT JOIN operation_progress p ON p.op_id = o.id WHERE o.id = $1",
            )
            .bind(op_id)
            .fetch_optional(self.reads.pool())
            .await?;
        Ok(row.map(
            |(status, action, error_code, error_message, progress)| Task {
                status,
                action,
                error_code,
                error_message,
                progress,
            },
        ))
    }
}
