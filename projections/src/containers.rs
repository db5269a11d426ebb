//! The `containers` read model: what the platform knows about each container — who created
//! it and when (or that it was found on the engine), its name, its last operation — merged
//! into the live container list from Docker.
//!
//! A batch is folded in memory: the rows of the containers it touches are read once, every
//! event is applied to them in order, and they are written back in one statement.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use dcp_aggregates::container::{Container, ContainerEvent};
use dcp_aggregates::operation::{OperationEvent, OperationPhase};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::metadata;
use crate::runner::Projection;

/// Maintains `containers` from `container` events.
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
        let events = events
            .iter()
            .filter(|e| e.aggregate_type == Container::TYPE)
            .map(|e| Ok((e, e.typed::<ContainerEvent>()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if events.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = events
            .iter()
            .map(|(e, _)| e.aggregate_id.as_str())
            .collect();
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
        for (event, typed) in events {
            if apply(&mut rows, event, typed) {
                touched.push(event.aggregate_id.clone());
            }
        }
        touched.sort_unstable();
        touched.dedup();
        save(conn, touched.iter().filter_map(|id| rows.get(id)).collect()).await
    }
}

/// Where a container became known from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Created through dcp.
    Dcp,
    /// Found on the engine.
    Docker,
}

/// What the event that made a container known says about it.
struct FirstSeen {
    host: String,
    docker_id: Option<String>,
    name: Option<String>,
    origin: Origin,
}

/// Applies one event to the rows; true when it changed one.
fn apply(
    rows: &mut HashMap<String, ContainerRow>,
    event: &StoredEvent,
    typed: ContainerEvent,
) -> bool {
    let first = match typed {
        ContainerEvent::ContainerCreateRequested { host, spec, .. } => FirstSeen {
            host,
            docker_id: None,
            name: spec.get("name").and_then(Value::as_str).map(str::to_string),
            origin: Origin::Dcp,
        },
        ContainerEvent::ContainerDiscovered {
            host,
            docker_id,
            name,
            ..
        } => FirstSeen {
            host,
            docker_id: Some(docker_id),
            name: Some(name),
            origin: Origin::Docker,
        },
        ContainerEvent::ContainerObserved {
            action, attributes, ..
        } => return observed(rows, event, &action, &attributes),
        other => return operated(rows, event, &other),
    };
    if rows.contains_key(&event.aggregate_id) {
        return false;
    }
    rows.insert(event.aggregate_id.clone(), first_row(event, first));
    true
}

/// The row of a container that has just become known.
fn first_row(event: &StoredEvent, first: FirstSeen) -> ContainerRow {
    let dcp = first.origin == Origin::Dcp;
    ContainerRow {
        aggregate_id: event.aggregate_id.clone(),
        host: first.host,
        docker_id: first.docker_id,
        name: first.name,
        origin: if dcp { "dcp" } else { "docker" }.into(),
        created_by: event
            .meta(metadata::ACTOR_ID)
            .and_then(|id| id.parse().ok())
            .filter(|_| dcp),
        created_by_name: event
            .meta(metadata::ACTOR_USERNAME)
            .map(str::to_string)
            .filter(|_| dcp),
        known_since: event.recorded_at,
        last_action: None,
        last_status: None,
        last_operation_id: None,
        last_at: None,
        last_by_name: None,
        removed: false,
        last_position: event.global_position,
    }
}

/// A change Docker reported: a removal or a rename made outside dcp.
fn observed(
    rows: &mut HashMap<String, ContainerRow>,
    event: &StoredEvent,
    action: &str,
    attributes: &BTreeMap<String, String>,
) -> bool {
    let Some(row) = rows.get_mut(&event.aggregate_id) else {
        return false;
    };
    row.removed |= action == "destroy";
    if action == "rename" {
        if let Some(name) = attributes.get("name") {
            row.name = Some(name.trim_start_matches('/').to_string());
        }
    }
    row.last_position = event.global_position;
    true
}

/// A step of an operation on the container: its last operation, and what an outcome
/// changed.
fn operated(
    rows: &mut HashMap<String, ContainerRow>,
    event: &StoredEvent,
    typed: &ContainerEvent,
) -> bool {
    let Some(step) = typed.operation() else {
        return false;
    };
    let Some(row) = rows.get_mut(&event.aggregate_id) else {
        return false;
    };
    row.last_at = Some(event.recorded_at);
    match step.phase {
        OperationPhase::Requested => {
            row.last_action = Some(step.action());
            row.last_status = Some("pending".into());
            row.last_operation_id = Some(step.op_id);
            row.last_by_name = event.meta(metadata::ACTOR_USERNAME).map(str::to_string);
        }
        OperationPhase::Succeeded | OperationPhase::Failed => {
            row.last_status = Some(step.phase.as_str().to_string());
            match typed {
                ContainerEvent::ContainerRemoved { .. } => row.removed = true,
                ContainerEvent::ContainerRenamed { to, .. } => row.name = Some(to.clone()),
                ContainerEvent::ContainerCreated {
                    docker_id, name, ..
                } => {
                    row.name = Some(name.clone());
                    row.docker_id = Some(docker_id.clone());
                }
                ContainerEvent::ContainerRecreated { docker_id, .. } => {
                    row.docker_id = Some(docker_id.clone());
                }
                _ => {}
            }
        }
    }
    row.last_position = event.global_position;
    true
}

/// Writes the rows back, in one statement.
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
