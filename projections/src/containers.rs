//! The `containers` read model: what the platform knows about each container — who created
//! it and when (or that it was found on the engine), its name, its last operation — merged
//! into the live container list from Docker.
//!
//! A batch is folded in memory: the rows of the containers it touches are read once, every
//! event is applied to them in order, and they are written back in one statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::operation_event;
use crate::log::StoredEvent;
use crate::metadata;
use crate::runner::Projection;

pub struct ContainersProjection;

/// One row of `containers`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ContainerRow {
    aggregate_id: String,
    host: String,
    docker_id: Option<String>,
    name: Option<String>,
    origin: String,
    created_by: Option<Uuid>,
    created_by_name: Option<String>,
    known_since: DateTime<Utc>,
    last_action: Option<String>,
    last_status: Option<String>,
    last_operation_id: Option<Uuid>,
    last_at: Option<DateTime<Utc>>,
    last_by_name: Option<String>,
    removed: bool,
    last_position: i64,
}

#[async_trait::async_trait]
impl Projection for ContainersProjection {
    const NAME: &'static str = "containers";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &["containers"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        let events: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.aggregate_type == "container")
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: HashMap<String, ContainerRow> = sqlx::query_as::<_, ContainerRow>(
            "SELECT * FROM containers WHERE aggregate_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.aggregate_id.clone(), row))
        .collect();
        let mut touched: Vec<String> = Vec::new();
        for event in events {
            if apply(&mut rows, event) {
                touched.push(event.aggregate_id.clone());
            }
        }
        touched.sort_unstable();
        touched.dedup();
        save(conn, touched.iter().filter_map(|id| rows.get(id)).collect()).await
    }
}

/// Applies one event to the rows; true when it changed one.
fn apply(rows: &mut HashMap<String, ContainerRow>, event: &StoredEvent) -> bool {
    let fields = event.payload.get(&event.event_type).unwrap_or(&Value::Null);
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
    let actor_id: Option<Uuid> = event
        .meta(metadata::ACTOR_ID)
        .and_then(|id| id.parse().ok());
    let actor_name = event.meta(metadata::ACTOR_USERNAME).map(str::to_string);
    let id = &event.aggregate_id;
    match event.event_type.as_str() {
        "ContainerCreateRequested" | "ContainerDiscovered" => {
            if rows.contains_key(id) {
                return false;
            }
            let dcp = event.event_type == "ContainerCreateRequested";
            let name = if dcp {
                fields
                    .get("spec")
                    .and_then(|spec| spec.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            } else {
                text("name")
            };
            rows.insert(
                id.clone(),
                ContainerRow {
                    aggregate_id: id.clone(),
                    host: text("host").unwrap_or_default(),
                    docker_id: text("docker_id"),
                    name,
                    origin: if dcp { "dcp" } else { "docker" }.into(),
                    created_by: actor_id.filter(|_| dcp),
                    created_by_name: actor_name.filter(|_| dcp),
                    known_since: event.recorded_at,
                    last_action: None,
                    last_status: None,
                    last_operation_id: None,
                    last_at: None,
                    last_by_name: None,
                    removed: false,
                    last_position: event.global_position,
                },
            );
            return true;
        }
        "ContainerObserved" => {
            let Some(row) = rows.get_mut(id) else {
                return false;
            };
            let action = text("action").unwrap_or_default();
            row.removed |= action == "destroy";
            if action == "rename" {
                if let Some(name) = fields
                    .get("attributes")
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                {
                    row.name = Some(name.trim_start_matches('/').to_string());
                }
            }
            row.last_position = event.global_position;
            return true;
        }
        _ => {}
    }
    let Some((action, phase)) = operation_event("container", &event.event_type, fields) else {
        return false;
    };
    let Some(row) = rows.get_mut(id) else {
        return false;
    };
    match phase {
        "requested" => {
            row.last_action = Some(action);
            row.last_status = Some("pending".into());
            row.last_operation_id = text("op_id").and_then(|v| v.parse().ok());
            row.last_at = Some(event.recorded_at);
            row.last_by_name = actor_name;
        }
        "succeeded" | "failed" => {
            row.last_status = Some(phase.to_string());
            row.last_at = Some(event.recorded_at);
            row.removed |= event.event_type == "ContainerRemoved";
            let renamed_to = match event.event_type.as_str() {
                "ContainerRenamed" => text("to"),
                "ContainerCreated" => text("name"),
                _ => None,
            };
            if renamed_to.is_some() {
                row.name = renamed_to;
            }
            if let Some(docker_id) = text("docker_id") {
                row.docker_id = Some(docker_id);
            }
        }
        _ => return false,
    }
    row.last_position = event.global_position;
    true
}

async fn save(conn: &mut PgConnection, rows: Vec<&ContainerRow>) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "INSERT INTO containers (aggregate_id, host, docker_id, name, origin, created_by, created_by_name, \
         known_since, last_action, last_status, last_operation_id, last_at, last_by_name, removed, last_position) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[], \
         $8::timestamptz[], $9::text[], $10::text[], $11::uuid[], $12::timestamptz[], $13::text[], $14::bool[], $15::bigint[]) \
         ON CONFLICT (aggregate_id) DO UPDATE SET host = EXCLUDED.host, docker_id = EXCLUDED.docker_id, \
         name = EXCLUDED.name, origin = EXCLUDED.origin, created_by = EXCLUDED.created_by, \
         created_by_name = EXCLUDED.created_by_name, known_since = EXCLUDED.known_since, \
         last_action = EXCLUDED.last_action, last_status = EXCLUDED.last_status, \
         last_operation_id = EXCLUDED.last_operation_id, last_at = EXCLUDED.last_at, \
         last_by_name = EXCLUDED.last_by_name, removed = EXCLUDED.removed, last_position = EXCLUDED.last_position",
    )
    .bind(column!(aggregate_id))
    .bind(column!(host))
    .bind(column!(docker_id))
    .bind(column!(name))
    .bind(column!(origin))
    .bind(column!(created_by))
    .bind(column!(created_by_name))
    .bind(column!(known_since))
    .bind(column!(last_action))
    .bind(column!(last_status))
    .bind(column!(last_operation_id))
    .bind(column!(last_at))
    .bind(column!(last_by_name))
    .bind(column!(removed))
    .bind(column!(last_position))
    .execute(conn)
    .await?;
    Ok(())
}
