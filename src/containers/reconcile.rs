//! Operations whose outcome was never recorded (the server stopped between the request and
//! the outcome, or the engine stopped answering) are settled from what Docker shows now:
//! done if the container is in the state the operation leads to, failed (`INTERRUPTED`)
//! otherwise, left pending while Docker cannot tell.

use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::container::{Container, ContainerCommand, MAX_STOP_TIMEOUT};
use dcp_projections::GlobalLogReader;
use serde_json::Value;
use uuid::Uuid;

use super::labels::labelled;
use super::Containers;
use crate::commands::{CommandError, CommandMeta};
use crate::docker::{DockerError, DockerHosts};
use crate::errors::ErrorCode;
use crate::event_store::SideWrite;
use crate::hosts::HostRegistry;

/// What reconciliation found for one interrupted operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub aggregate_id: String,
    pub op_id: Uuid,
    /// `done` or `failed`.
    pub outcome: &'static str,
}

/// A container operation without an outcome: its request event and how old it is.
struct Pending {
    aggregate_id: String,
    event_type: String,
    /// The request's fields.
    fields: Value,
    age: Duration,
}

/// What Docker shows of a container now.
enum Observation {
    Present { status: String, name: String },
    Gone,
    Unknown,
}

impl Containers {
    /// Settles the operations left without an outcome for longer than `settle_after`
    /// (plus the longest their Docker call can take); returns what it settled.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn reconcile(&self, settle_after: Duration) -> anyhow::Result<Vec<Reconciled>> {
        let mut settled = Vec::new();
        for pending in self.pending_operations().await? {
            // An operation may still be running on this or another replica: it is settled
            // only once it is older than the longest its Docker call can take.
            if pending.age < settle_after + longest_call(&pending) {
                continue;
            }
            let Some(op_id) = pending
                .fields
                .get("op_id")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<Uuid>().ok())
            else {
                continue;
            };
            let outcome = match pending.event_type.as_str() {
                "ContainerRecreateRequested" => {
                    self.settle_recreate(&pending.aggregate_id, op_id).await
                }
                "ContainerCreateRequested" => self.settle_create(&pending, op_id).await,
                _ => self.settle_action(&pending, op_id).await,
            };
            match outcome {
                Ok(Some(outcome)) => settled.push(Reconciled {
                    aggregate_id: pending.aggregate_id,
                    op_id,
                    outcome,
                }),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(aggregate_id = %pending.aggregate_id, %op_id, event_type = %pending.event_type,
                        error = format!("{error:#}"), "operation left pending")
                }
            }
        }
        Ok(settled)
    }

    /// The container operations without an outcome, each with its request event.
    async fn pending_operations(&self) -> Result<Vec<Pending>, sqlx::Error> {
        // One whose outcome the read model has not applied yet is settled again
        // harmlessly: recording an outcome twice changes nothing.
        let requests =
            GlobalLogReader::pending_requests(self.reads.pool(), &[Container::TYPE]).await?;
        Ok(requests
            .into_iter()
            .map(|request| Pending {
                fields: request.fields(),
                aggregate_id: request.event.aggregate_id,
                event_type: request.event.event_type,
                age: Duration::from_secs_f64(request.age_secs.max(0.0)),
            })
            .collect())
    }

    /// An action (start, stop, …) settled from the container's state now.
    async fn settle_action(
        &self,
        pending: &Pending,
        op_id: Uuid,
    ) -> anyhow::Result<Option<&'static str>> {
        let target: Option<(String, String)> = sqlx::query_as(
            "SELECT host, docker_id FROM container_ids WHERE aggregate_id = $1::uuid",
        )
        .bind(&pending.aggregate_id)
        .fetch_optional(self.reads.pool())
        .await?;
        let observed = match &target {
            Some((host, docker_id)) => observe(&self.hosts, host, docker_id).await,
            None => Observation::Unknown,
        };
        let Some(done) = action_done(&pending.event_type, &pending.fields, &observed) else {
            // Docker cannot tell now (engine unreachable): left pending, tried again later.
            tracing::warn!(aggregate_id = %pending.aggregate_id, %op_id, event_type = %pending.event_type,
                "operation left pending: its outcome cannot be determined now");
            return Ok(None);
        };
        let command = if done {
            ContainerCommand::RecordDone {
                op_id,
                at: Utc::now(),
            }
        } else {
            ContainerCommand::RecordFailed {
                op_id,
                code: ErrorCode::Interrupted.as_str().into(),
                message: "the server stopped before the outcome was known, and the container is not in the state the operation leads to".into(),
                at: Utc::now(),
            }
        };
        let outcome = if done { "done" } else { "failed" };
        self.record_settled(&pending.aggregate_id, op_id, command, vec![], outcome)
            .await
    }

    /// A create whose outcome was not recorded: the container carries the operation's label
    /// if Docker created it. Found: recorded as created (never created twice). Not found:
    /// failed.
    async fn settle_create(
        &self,
        pending: &Pending,
        op_id: Uuid,
    ) -> anyhow::Result<Option<&'static str>> {
        let host = pending
            .fields
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(found) = labelled(&self.hosts, host, op_id).await else {
            return Ok(None);
        };
        let (command, side_writes, outcome) = match found.first() {
            Some(container) => {
                let docker_id = container.id.clone().unwrap_or_default();
                let name = container
                    .names
                    .as_ref()
                    .and_then(|names| names.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                let mapping = SideWrite::MapContainer {
                    host: host.to_string(),
                    docker_id: docker_id.clone(),
                    aggregate_id: pending.aggregate_id.parse()?,
                };
                let command = ContainerCommand::RecordCreated {
                    op_id,
                    docker_id,
                    name,
                    image_id: container.image_id.clone(),
                    at: Utc::now(),
                };
                (command, vec![mapping], "done")
            }
            None => (
                ContainerCommand::RecordFailed {
                    op_id,
                    code: ErrorCode::Interrupted.as_str().into(),
                    message: "the server stopped before Docker created the container".into(),
                    at: Utc::now(),
                },
                vec![],
                "failed",
            ),
        };
        self.record_settled(&pending.aggregate_id, op_id, command, side_writes, outcome)
            .await
    }

    /// Records a settled outcome; `None` when another replica settled it meanwhile.
    pub(super) async fn record_settled(
        &self,
        aggregate_id: &str,
        op_id: Uuid,
        command: ContainerCommand,
        side_writes: Vec<SideWrite>,
        outcome: &'static str,
    ) -> anyhow::Result<Option<&'static str>> {
        match self
            .commands
            .execute_retrying::<Container>(
                aggregate_id,
                command,
                &CommandMeta::reconciler(op_id),
                side_writes,
            )
            .await
        {
            Ok(_) => Ok(Some(outcome)),
            Err(CommandError::Conflict(_) | CommandError::Rejected(_)) => Ok(None),
            Err(other) => Err(anyhow::anyhow!(
                "Failed to record the outcome of operation {op_id}: {other}"
            )),
        }
    }
}

/// The longest the Docker call of a pending operation can take.
fn longest_call(pending: &Pending) -> Duration {
    match pending.event_type.as_str() {
        "ContainerStopRequested" | "ContainerRestartRequested" => {
            let timeout = pending.fields.get("timeout").and_then(Value::as_u64);
            Duration::from_secs(timeout.unwrap_or(u64::from(MAX_STOP_TIMEOUT)))
        }
        "ContainerRecreateRequested" => super::recreate::LONGEST,
        _ => Duration::ZERO,
    }
}

/// Whether the action of request `event_type` happened, judged from what Docker shows;
/// `None` when that cannot be told.
fn action_done(event_type: &str, fields: &Value, observed: &Observation) -> Option<bool> {
    match (event_type, observed) {
        (_, Observation::Unknown) => None,
        ("ContainerRemoveRequested", Observation::Gone) => Some(true),
        // A stopped `--rm` container removes itself.
        ("ContainerStopRequested" | "ContainerKillRequested", Observation::Gone) => Some(true),
        (_, Observation::Gone) => Some(false),
        (
            "ContainerStartRequested" | "ContainerRestartRequested" | "ContainerUnpauseRequested",
            Observation::Present { status, .. },
        ) => Some(status == "running"),
        (
            "ContainerStopRequested" | "ContainerKillRequested",
            Observation::Present { status, .. },
        ) => Some(status != "running" && status != "paused"),
        ("ContainerPauseRequested", Observation::Present { status, .. }) => {
            Some(status == "paused")
        }
        ("ContainerRenameRequested", Observation::Present { name, .. }) => {
            Some(fields.get("name").and_then(Value::as_str) == Some(name.as_str()))
        }
        ("ContainerRemoveRequested", Observation::Present { .. }) => Some(false),
        _ => None,
    }
}

async fn observe(hosts: &HostRegistry, host: &str, docker_id: &str) -> Observation {
    let Ok(docker) = hosts.client(host) else {
        return Observation::Unknown;
    };
    match docker
        .inspect_container(docker_id, None::<InspectContainerOptions>)
        .await
    {
        Ok(inspect) => Observation::Present {
            status: inspect
                .state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
        },
        Err(error) => match DockerError::from_bollard(host, error) {
            DockerError::Failed { status: 404, .. } => Observation::Gone,
            _ => Observation::Unknown,
        },
    }
}
