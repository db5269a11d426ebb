//! The `containers` read model: what the platform knows about each container — who created
//! it and when (or that it was found on the engine), its name, its last operation — merged
//! into the live container list from Docker.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::operation_event;
use crate::log::StoredEvent;
use crate::metadata;
use crate::runner::Projection;

pub struct ContainersProjection;

#[async_trait::async_trait]
impl Projection for ContainersProjection {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn version(&self) -> i32 {
        1
    }

    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query("TRUNCATE containers").execute(conn).await?;
        Ok(())
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        for event in events.iter().filter(|e| e.aggregate_type == "container") {
            apply(conn, event).await?;
        }
        Ok(())
    }
}

async fn apply(conn: &mut PgConnection, event: &StoredEvent) -> anyhow::Result<()> {
    let fields = event
        .payload
        .get(&event.event_type)
        .cloned()
        .unwrap_or(Value::Null);
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
    let actor_id: Option<Uuid> = event
        .meta(metadata::ACTOR_ID)
        .and_then(|id| id.parse().ok());
    let actor_name = event.meta(metadata::ACTOR_USERNAME).map(str::to_string);
    let id = &event.aggregate_id;
    match event.event_type.as_str() {
        "ContainerCreateRequested" | "ContainerDiscovered" => {
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
            sqlx::query(
                "INSERT INTO containers (aggregate_id, host, docker_id, name, origin, created_by, created_by_name, \
                 known_since, last_position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (aggregate_id) DO NOTHING",
            )
            .bind(id)
            .bind(text("host").unwrap_or_default())
            .bind(text("docker_id"))
            .bind(name)
            .bind(if dcp { "dcp" } else { "docker" })
            .bind(actor_id.filter(|_| dcp))
            .bind(actor_name.clone().filter(|_| dcp))
            .bind(event.recorded_at)
            .bind(event.global_position)
            .execute(&mut *conn)
            .await?;
        }
        "ContainerObserved" => {
            let action = text("action").unwrap_or_default();
            let name = fields
                .get("attributes")
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string());
            sqlx::query(
                "UPDATE containers SET removed = removed OR $2, name = CASE WHEN $3 THEN coalesce($4, name) ELSE name END, \
                 last_position = $5 WHERE aggregate_id = $1",
            )
            .bind(id)
            .bind(action == "destroy")
            .bind(action == "rename")
            .bind(name)
            .bind(event.global_position)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        _ => {}
    }
    let Some((action, phase)) = operation_event("container", &event.event_type, &fields) else {
        return Ok(());
    };
    let op_id: Option<Uuid> = text("op_id").and_then(|v| v.parse().ok());
    match phase {
        "requested" => {
            sqlx::query(
                "UPDATE containers SET last_action = $2, last_status = 'pending', last_operation_id = $3, last_at = $4, \
                 last_by_name = $5, last_position = $6 WHERE aggregate_id = $1",
            )
            .bind(id)
            .bind(&action)
            .bind(op_id)
            .bind(event.recorded_at)
            .bind(&actor_name)
            .bind(event.global_position)
            .execute(&mut *conn)
            .await?;
        }
        "succeeded" | "failed" => {
            let removed = event.event_type == "ContainerRemoved";
            let renamed_to = if event.event_type == "ContainerRenamed" {
                text("to")
            } else if event.event_type == "ContainerCreated" {
                text("name")
            } else {
                None
            };
            sqlx::query(
                "UPDATE containers SET last_status = $2, last_at = $3, removed = removed OR $4, \
                 name = coalesce($5, name), docker_id = coalesce($6, docker_id), last_position = $7 \
                 WHERE aggregate_id = $1",
            )
            .bind(id)
            .bind(phase)
            .bind(event.recorded_at)
            .bind(removed)
            .bind(renamed_to)
            .bind(text("docker_id"))
            .bind(event.global_position)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
