//! The `operations` read model: each Docker operation dcp was asked for, its timings and
//! its outcome, for `GET /api/v1/operations/{id}`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{operation_event, OPERATION_RESOURCES};
use crate::log::StoredEvent;
use crate::metadata;
use crate::runner::Projection;

/// Maintains `operations` from container, image, volume and network events.
pub struct OperationsProjection;

#[derive(Debug, Clone)]
struct OperationRow {
    id: Uuid,
    action: String,
    resource_type: String,
    aggregate_id: String,
    host: Option<String>,
    status: String,
    error_code: Option<String>,
    error_message: Option<String>,
    requested_by: Option<Uuid>,
    requested_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    last_position: i64,
    targets: Vec<String>,
}

/// An outcome of an operation requested in an earlier batch.
#[derive(Debug, Clone)]
struct Outcome {
    id: Uuid,
    status: String,
    code: Option<String>,
    message: Option<String>,
    at: DateTime<Utc>,
    position: i64,
    targets: Vec<String>,
}

/// The Docker ids and names an event names (see the `targets` column), including the named
/// volumes a container create mounts (Docker creates the missing ones).
fn targets_of(fields: &Value) -> Vec<String> {
    let volumes = fields
        .get("spec")
        .and_then(|spec| spec.get("volumes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|volume| volume.get("source").and_then(Value::as_str));
    [
        "docker_id",
        "previous_docker_id",
        "name",
        "reference",
        "image_id",
        "network_id",
        "container_id",
        "container_name",
    ]
    .iter()
    .filter_map(|key| fields.get(*key).and_then(Value::as_str))
    .chain(volumes)
    .filter(|value| !value.is_empty())
    .map(str::to_string)
    .collect()
}

#[async_trait::async_trait]
impl Projection for OperationsProjection {
    fn name(&self) -> &'static str {
        "operations"
    }

    fn version(&self) -> i32 {
        // 2: targets, and image, volume and network operations; 3: a create's volumes.
        3
    }

    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query("TRUNCATE operations").execute(conn).await?;
        Ok(())
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        // Requests and outcomes of this batch, folded in order; outcomes of earlier
        // requests become updates.
        let mut rows: HashMap<Uuid, OperationRow> = HashMap::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        for event in events
            .iter()
            .filter(|e| OPERATION_RESOURCES.contains(&e.aggregate_type.as_str()))
        {
            let fields = event
                .payload
                .get(&event.event_type)
                .cloned()
                .unwrap_or(Value::Null);
            let Some(op_id) = fields
                .get("op_id")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<Uuid>().ok())
            else {
                continue;
            };
            let Some((action, phase)) =
                operation_event(&event.aggregate_type, &event.event_type, &fields)
            else {
                continue;
            };
            let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
            match phase {
                "requested" => {
                    rows.insert(
                        op_id,
                        OperationRow {
                            id: op_id,
                            action,
                            resource_type: event.aggregate_type.clone(),
                            aggregate_id: event.aggregate_id.clone(),
                            host: text("host"),
                            status: "pending".into(),
                            error_code: None,
                            error_message: None,
                            requested_by: event
                                .meta(metadata::ACTOR_ID)
                                .and_then(|id| id.parse().ok()),
                            requested_at: event.recorded_at,
                            completed_at: None,
                            last_position: event.global_position,
                            targets: targets_of(&fields),
                        },
                    );
                }
                "succeeded" | "failed" => {
                    let status = if phase == "failed" {
                        "failed"
                    } else {
                        "succeeded"
                    };
                    let (code, message) = (text("code"), text("message"));
                    match rows.get_mut(&op_id) {
                        Some(row) => {
                            row.status = status.into();
                            row.error_code = code;
                            row.error_message = message;
                            row.completed_at = Some(event.recorded_at);
                            row.last_position = event.global_position;
                            row.targets.extend(targets_of(&fields));
                        }
                        None => outcomes.push(Outcome {
                            id: op_id,
                            status: status.into(),
                            code,
                            message,
                            at: event.recorded_at,
                            position: event.global_position,
                            targets: targets_of(&fields),
                        }),
                    }
                }
                _ => {}
            }
        }
        for row in rows.into_values() {
            sqlx::query(
                "INSERT INTO operations (id, action, resource_type, aggregate_id, host, status, error_code, error_message, \
                 requested_by, requested_at, completed_at, last_position, targets) \
                 VALUES ($1, $2, $3, $4, \
                 coalesce($5, (SELECT host FROM container_ids WHERE aggregate_id = $4::uuid)), \
                 $6, $7, $8, $9, $10, $11, $12, \
                 $13 || coalesce((SELECT array_agg(docker_id) FROM container_ids WHERE aggregate_id = $4::uuid), '{}')) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(row.id)
            .bind(&row.action)
            .bind(&row.resource_type)
            .bind(&row.aggregate_id)
            .bind(&row.host)
            .bind(&row.status)
            .bind(&row.error_code)
            .bind(&row.error_message)
            .bind(row.requested_by)
            .bind(row.requested_at)
            .bind(row.completed_at)
            .bind(row.last_position)
            .bind(&row.targets)
            .execute(&mut *conn)
            .await?;
        }
        for outcome in outcomes {
            sqlx::query(
                "UPDATE operations SET status = $2, error_code = $3, error_message = $4, completed_at = $5, last_position = $6, \
                 targets = targets || $7 WHERE id = $1",
            )
            .bind(outcome.id)
            .bind(outcome.status)
            .bind(outcome.code)
            .bind(outcome.message)
            .bind(outcome.at)
            .bind(outcome.position)
            .bind(outcome.targets)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
