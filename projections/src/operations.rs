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

/// Each container aggregate's host and current Docker id, as its events say, for the
/// operations of a batch (loaded for the batch's containers, saved after it).
struct ContainerMap {
    known: HashMap<String, (String, Option<String>)>,
    changed: Vec<String>,
}

impl ContainerMap {
    async fn load(conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<Self> {
        let ids: Vec<&str> = events
            .iter()
            .filter(|e| e.aggregate_type == "container")
            .map(|e| e.aggregate_id.as_str())
            .collect();
        let rows: Vec<(String, String, Option<String>)> = if ids.is_empty() {
            vec![]
        } else {
            sqlx::query_as(
                "SELECT aggregate_id, host, docker_id FROM operation_containers WHERE aggregate_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?
        };
        Ok(ContainerMap {
            known: rows
                .into_iter()
                .map(|(id, host, docker_id)| (id, (host, docker_id)))
                .collect(),
            changed: Vec::new(),
        })
    }

    /// Takes in what a container event says about the container's host and id.
    fn follow(&mut self, event: &StoredEvent, fields: &Value) {
        let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
        let id = event.aggregate_id.clone();
        let entry = match event.event_type.as_str() {
            "ContainerCreateRequested" => (text("host").unwrap_or_default(), None),
            "ContainerDiscovered" => (text("host").unwrap_or_default(), text("docker_id")),
            "ContainerCreated" | "ContainerRecreated" => {
                let host = self
                    .known
                    .get(&id)
                    .map(|(host, _)| host.clone())
                    .or_else(|| text("host"))
                    .unwrap_or_default();
                (host, text("docker_id"))
            }
            _ => return,
        };
        self.known.insert(id.clone(), entry);
        self.changed.push(id);
    }

    fn get(&self, aggregate_id: &str) -> Option<&(String, Option<String>)> {
        self.known.get(aggregate_id)
    }

    async fn save(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        let mut ids: Vec<String> = self.changed;
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let (hosts, docker_ids): (Vec<String>, Vec<Option<String>>) =
            ids.iter().map(|id| self.known[id].clone()).unzip();
        sqlx::query(
            "INSERT INTO operation_containers (aggregate_id, host, docker_id) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (aggregate_id) DO UPDATE SET host = EXCLUDED.host, docker_id = EXCLUDED.docker_id",
        )
        .bind(&ids)
        .bind(&hosts)
        .bind(&docker_ids)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Projection for OperationsProjection {
    const NAME: &'static str = "operations";
    // 2: targets, and image, volume and network operations; 3: a create's volumes;
    // 4: containers' hosts and ids from its own map (recreates change a container's id).
    const VERSION: i32 = 4;
    const TABLES: &'static [&'static str] = &["operations", "operation_containers"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        // Requests and outcomes of this batch, folded in order; outcomes of earlier
        // requests become updates.
        let mut rows: HashMap<Uuid, OperationRow> = HashMap::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut containers = ContainerMap::load(conn, events).await?;
        for event in events
            .iter()
            .filter(|e| OPERATION_RESOURCES.contains(&e.aggregate_type.as_str()))
        {
            let fields = event.payload.get(&event.event_type).unwrap_or(&Value::Null);
            if event.aggregate_type == "container" {
                containers.follow(event, fields);
            }
            let Some(op_id) = fields
                .get("op_id")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<Uuid>().ok())
            else {
                continue;
            };
            let Some((action, phase)) =
                operation_event(&event.aggregate_type, &event.event_type, fields)
            else {
                continue;
            };
            let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
            match phase {
                "requested" => {
                    let container = containers.get(&event.aggregate_id);
                    let mut targets = targets_of(fields);
                    targets.extend(container.and_then(|(_, id)| id.clone()));
                    rows.insert(
                        op_id,
                        OperationRow {
                            id: op_id,
                            action,
                            resource_type: event.aggregate_type.clone(),
                            aggregate_id: event.aggregate_id.clone(),
                            host: text("host").or_else(|| container.map(|(host, _)| host.clone())),
                            status: "pending".into(),
                            error_code: None,
                            error_message: None,
                            requested_by: event
                                .meta(metadata::ACTOR_ID)
                                .and_then(|id| id.parse().ok()),
                            requested_at: event.recorded_at,
                            completed_at: None,
                            last_position: event.global_position,
                            targets,
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
                            row.targets.extend(targets_of(fields));
                        }
                        None => outcomes.push(Outcome {
                            id: op_id,
                            status: status.into(),
                            code,
                            message,
                            at: event.recorded_at,
                            position: event.global_position,
                            targets: targets_of(fields),
                        }),
                    }
                }
                _ => {}
            }
        }
        insert_rows(conn, rows.into_values().collect()).await?;
        containers.save(conn).await?;
        update_outcomes(conn, outcomes).await?;
        Ok(())
    }
}

/// Inserts the operations requested in a batch, in one statement.
async fn insert_rows(conn: &mut PgConnection, rows: Vec<OperationRow>) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    // Arrays of arrays must be rectangular in PostgreSQL: each row's targets travel as JSON.
    let targets: Vec<Value> = rows
        .iter()
        .map(|r| Value::from(r.targets.clone()))
        .collect();
    sqlx::query(
        "INSERT INTO operations (id, action, resource_type, aggregate_id, host, status, error_code, error_message, \
         requested_by, requested_at, completed_at, last_position, targets) \
         SELECT id, action, rtype, aggregate, host, status, code, message, requested_by, requested_at, completed_at, \
         position, ARRAY(SELECT jsonb_array_elements_text(targets)) \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::uuid[], $10::timestamptz[], $11::timestamptz[], $12::bigint[], $13::jsonb[]) \
         AS r(id, action, rtype, aggregate, host, status, code, message, requested_by, requested_at, completed_at, position, targets) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(column!(id))
    .bind(column!(action))
    .bind(column!(resource_type))
    .bind(column!(aggregate_id))
    .bind(column!(host))
    .bind(column!(status))
    .bind(column!(error_code))
    .bind(column!(error_message))
    .bind(column!(requested_by))
    .bind(column!(requested_at))
    .bind(column!(completed_at))
    .bind(column!(last_position))
    .bind(targets)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the outcomes of operations requested in earlier batches, in one statement.
async fn update_outcomes(conn: &mut PgConnection, outcomes: Vec<Outcome>) -> anyhow::Result<()> {
    // One outcome per operation (a re-recording is not an event); keep the last if not.
    let mut last: HashMap<Uuid, Outcome> = HashMap::new();
    for outcome in outcomes {
        last.insert(outcome.id, outcome);
    }
    if last.is_empty() {
        return Ok(());
    }
    let outcomes: Vec<Outcome> = last.into_values().collect();
    macro_rules! column {
        ($field:ident) => {
            outcomes
                .iter()
                .map(|o| o.$field.clone())
                .collect::<Vec<_>>()
        };
    }
    let targets: Vec<Value> = outcomes
        .iter()
        .map(|o| Value::from(o.targets.clone()))
        .collect();
    sqlx::query(
        "UPDATE operations o SET status = u.status, error_code = u.code, error_message = u.message, \
         completed_at = u.at, last_position = u.position, \
         targets = o.targets || ARRAY(SELECT jsonb_array_elements_text(u.targets)) \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::jsonb[]) \
         AS u(id, status, code, message, at, position, targets) WHERE o.id = u.id",
    )
    .bind(column!(id))
    .bind(column!(status))
    .bind(column!(code))
    .bind(column!(message))
    .bind(column!(at))
    .bind(column!(position))
    .bind(targets)
    .execute(conn)
    .await?;
    Ok(())
}
