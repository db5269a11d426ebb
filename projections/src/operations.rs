//! The `operations` read model: each Docker operation dcp was asked for, its timings and
//! its outcome, for `GET /api/v1/operations/{id}`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use dcp_aggregates::container::{Container, ContainerEvent};
use dcp_aggregates::image::{Image, ImageEvent};
use dcp_aggregates::network::{Network, NetworkEvent};
use dcp_aggregates::operation::{OperationEvent, OperationPhase};
use dcp_aggregates::volume::{Volume, VolumeEvent};
use dcp_aggregates::AnyEvent;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

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

/// The aggregates whose events are Docker operations.
const OPERATED: [&str; 4] = [Container::TYPE, Image::TYPE, Volume::TYPE, Network::TYPE];

/// The Docker ids and names an event names (see the `targets` column), including the named
/// volumes a container create mounts (Docker creates the missing ones).
fn targets_of(event: &AnyEvent) -> Vec<String> {
    use ContainerEvent as C;
    use NetworkEvent as N;
    let named: Vec<&str> = match event {
        AnyEvent::Container(C::ContainerCreated {
            docker_id,
            name,
            image_id,
            ..
        }) => [Some(docker_id), Some(name), image_id.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect(),
        AnyEvent::Container(C::ContainerRecreated {
            docker_id,
            previous_docker_id,
            image_id,
            ..
        }) => [Some(docker_id), Some(previous_docker_id), image_id.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect(),
        AnyEvent::Container(C::ContainerRenameRequested { name, .. }) => vec![name],
        AnyEvent::Container(
            C::ContainerCreateRequested { spec, .. } | C::ContainerRecreateRequested { spec, .. },
        ) => volume_sources(spec),
        AnyEvent::Image(ImageEvent::ImagePullRequested { reference, .. }) => vec![reference],
        AnyEvent::Image(ImageEvent::ImagePulled { image_id, .. }) => vec![image_id],
        AnyEvent::Image(ImageEvent::ImageRemoveRequested {
            reference,
            image_id,
            ..
        }) => vec![reference, image_id],
        AnyEvent::Volume(
            VolumeEvent::VolumeCreateRequested { name, .. }
            | VolumeEvent::VolumeRemoveRequested { name, .. },
        )
        | AnyEvent::Network(N::NetworkCreateRequested { name, .. }) => vec![name],
        AnyEvent::Network(N::NetworkCreated { network_id, .. }) => vec![network_id],
        AnyEvent::Network(N::NetworkRemoveRequested {
            name, network_id, ..
        }) => vec![name, network_id],
        AnyEvent::Network(
            N::NetworkConnectRequested {
                name,
                container_id,
                container_name,
                ..
            }
            | N::NetworkDisconnectRequested {
                name,
                container_id,
                container_name,
                ..
            },
        ) => vec![name, container_id, container_name],
        _ => vec![],
    };
    named
        .into_iter()
        .filter(|value| !value.is_empty())
        .map(str::to_string)
        .collect()
}

/// The named volumes of a create request (`spec.volumes[].source`).
fn volume_sources(spec: &Value) -> Vec<&str> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|volume| volume.get("source").and_then(Value::as_str))
        .collect()
}

/// The Docker host a request names. A container's actions do not name one: its host is
/// known from its creation (see [`ContainerMap`]).
fn host_of(event: &AnyEvent) -> Option<&str> {
    use NetworkEvent as N;
    match event {
        AnyEvent::Container(ContainerEvent::ContainerCreateRequested { host, .. })
        | AnyEvent::Image(
            ImageEvent::ImagePullRequested { host, .. }
            | ImageEvent::ImageRemoveRequested { host, .. },
        )
        | AnyEvent::Volume(
            VolumeEvent::VolumeCreateRequested { host, .. }
            | VolumeEvent::VolumeRemoveRequested { host, .. },
        )
        | AnyEvent::Network(
            N::NetworkCreateRequested { host, .. }
            | N::NetworkRemoveRequested { host, .. }
            | N::NetworkConnectRequested { host, .. }
            | N::NetworkDisconnectRequested { host, .. },
        ) => Some(host),
        _ => None,
    }
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
            .filter(|e| e.aggregate_type == Container::TYPE)
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
    fn follow(&mut self, aggregate_id: &str, event: &ContainerEvent) {
        let entry = match event {
            ContainerEvent::ContainerCreateRequested { host, .. } => (host.clone(), None),
            ContainerEvent::ContainerDiscovered {
                host, docker_id, ..
            } => (host.clone(), Some(docker_id.clone())),
            ContainerEvent::ContainerCreated {
                host, docker_id, ..
            } => (self.host_or(aggregate_id, host), Some(docker_id.clone())),
            ContainerEvent::ContainerRecreated { docker_id, .. } => {
                (self.host_or(aggregate_id, ""), Some(docker_id.clone()))
            }
            _ => return,
        };
        self.known.insert(aggregate_id.to_string(), entry);
        self.changed.push(aggregate_id.to_string());
    }

    /// The host already known for the container, else `named`.
    fn host_or(&self, aggregate_id: &str, named: &str) -> String {
        self.known
            .get(aggregate_id)
            .map_or(named, |(host, _)| host.as_str())
            .to_string()
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
        let mut batch = Batch {
            rows: HashMap::new(),
            outcomes: Vec::new(),
            containers: ContainerMap::load(conn, events).await?,
        };
        for event in events
            .iter()
            .filter(|e| OPERATED.contains(&e.aggregate_type.as_str()))
        {
            if let Some(typed) = event.typed_any()? {
                batch.take(event, &typed);
            }
        }
        insert_rows(conn, batch.rows.into_values().collect()).await?;
        batch.containers.save(conn).await?;
        update_outcomes(conn, batch.outcomes).await?;
        Ok(())
    }
}

/// One batch's operations, as its events are taken in.
struct Batch {
    /// Operations requested in this batch.
    rows: HashMap<Uuid, OperationRow>,
    /// Outcomes of operations requested in earlier batches.
    outcomes: Vec<Outcome>,
    containers: ContainerMap,
}

impl Batch {
    fn take(&mut self, event: &StoredEvent, typed: &AnyEvent) {
        if let AnyEvent::Container(container) = typed {
            self.containers.follow(&event.aggregate_id, container);
        }
        let Some(step) = typed.operation() else {
            return;
        };
        if step.phase == OperationPhase::Requested {
            let container = self.containers.get(&event.aggregate_id);
            let mut targets = targets_of(typed);
            targets.extend(container.and_then(|(_, id)| id.clone()));
            let host = host_of(typed)
                .map(str::to_string)
                .or_else(|| container.map(|(host, _)| host.clone()));
            self.rows.insert(
                step.op_id,
                OperationRow {
                    id: step.op_id,
                    action: step.action(),
                    resource_type: event.aggregate_type.clone(),
                    aggregate_id: event.aggregate_id.clone(),
                    host,
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
            return;
        }
        let (code, message) = match typed {
            AnyEvent::Container(ContainerEvent::OperationFailed { code, message, .. })
            | AnyEvent::Image(ImageEvent::OperationFailed { code, message, .. })
            | AnyEvent::Volume(VolumeEvent::OperationFailed { code, message, .. })
            | AnyEvent::Network(NetworkEvent::OperationFailed { code, message, .. }) => {
                (Some(code.clone()), Some(message.clone()))
            }
            _ => (None, None),
        };
        let status = step.phase.as_str().to_string();
        match self.rows.get_mut(&step.op_id) {
            Some(row) => {
                row.status = status;
                row.error_code = code;
                row.error_message = message;
                row.completed_at = Some(event.recorded_at);
                row.last_position = event.global_position;
                row.targets.extend(targets_of(typed));
            }
            None => self.outcomes.push(Outcome {
                id: step.op_id,
                status,
                code,
                message,
                at: event.recorded_at,
                position: event.global_position,
                targets: targets_of(typed),
            }),
        }
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
