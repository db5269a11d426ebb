//! Operations whose outcome was never recorded (the server stopped between the request and
//! the outcome, or the engine stopped answering) are settled from what Docker shows now:
//! done if the container is in the state the operation leads to, failed (`INTERRUPTED`)
//! otherwise, left pending while Docker cannot tell.

use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use chrono::Utc;
use cqrs_es::{Aggregate, DomainEvent};
use dcp_aggregates::container::{Container, ContainerCommand, ContainerEvent, MAX_STOP_TIMEOUT};
use dcp_aggregates::AnyEvent;
use dcp_projections::GlobalLogReader;
use uuid::Uuid;

use super::labels::labelled;
use super::Containers;
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

/// A container operation without an outcome: its request and how old it is.
struct Pending {
    aggregate_id: String,
    op_id: Uuid,
    request: ContainerEvent,
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
            if pending.age < settle_after + longest_call(&pending.request) {
                continue;
            }
            let op_id = pending.op_id;
            let outcome = match &pending.request {
                ContainerEvent::ContainerRecreateRequested { .. } => {
                    self.settle_recreate(&pending.aggregate_id, op_id).await
                }
                ContainerEvent::ContainerCreateRequested { host, .. } => {
                    self.settle_create(&pending, host).await
                }
                _ => self.settle_action(&pending).await,
            };
            match outcome {
                Ok(Some(outcome)) => settled.push(Reconciled {
                    aggregate_id: pending.aggregate_id,
                    op_id,
                    outcome,
                }),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(aggregate_id = %pending.aggregate_id, %op_id,
                        event_type = %pending.request.event_type(), error = format!("{error:#}"),
                        "operation left pending")
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
            .filter_map(|pending| match pending.request {
                AnyEvent::Container(request) => Some(Pending {
                    aggregate_id: pending.aggregate_id,
                    op_id: pending.op_id,
                    request,
                    age: Duration::from_secs_f64(pending.age_secs.max(0.0)),
                }),
                // Only containers' requests were asked for.
                _ => None,
            })
            .collect())
    }

    /// An action (start, stop, …) settled from the container's state now.
    async fn settle_action(&self, pending: &Pending) -> anyhow::Result<Option<&'static str>> {
        let op_id = pending.op_id;
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
        let Some(done) = action_done(&pending.request, &observed) else {
            // Docker cannot tell now (engine unreachable): left pending, tried again later.
            tracing::warn!(aggregate_id = %pending.aggregate_id, %op_id,
                event_type = %pending.request.event_type(),
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
        host: &str,
    ) -> anyhow::Result<Option<&'static str>> {
        let op_id = pending.op_id;
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

    /// Records a settled outcome; `None` when it was settled elsewhere meanwhile.
    pub(super) async fn record_settled(
        &self,
        aggregate_id: &str,
        op_id: Uuid,
        command: ContainerCommand,
        side_writes: Vec<SideWrite>,
        outcome: &'static str,
    ) -> anyhow::Result<Option<&'static str>> {
        let recorded = self
            .commands
            .record_settled::<Container>(aggregate_id, op_id, command, side_writes)
            .await?;
        Ok(recorded.then_some(outcome))
    }
}

/// The longest the Docker call of a pending operation can take.
fn longest_call(request: &ContainerEvent) -> Duration {
    match request {
        ContainerEvent::ContainerStopRequested { timeout, .. }
        | ContainerEvent::ContainerRestartRequested { timeout, .. } => {
            Duration::from_secs(u64::from(timeout.unwrap_or(MAX_STOP_TIMEOUT)))
        }
        ContainerEvent::ContainerRecreateRequested { .. } => super::recreate::LONGEST,
        _ => Duration::ZERO,
    }
}

/// Whether the action `request` asked for happened, judged from what Docker shows; `None`
/// when that cannot be told.
fn action_done(request: &ContainerEvent, observed: &Observation) -> Option<bool> {
    use ContainerEvent as E;
    match (request, observed) {
        (_, Observation::Unknown) => None,
        (E::ContainerRemoveRequested { .. }, Observation::Gone) => Some(true),
        // A stopped `--rm` container removes itself.
        (
            E::ContainerStopRequested { .. } | E::ContainerKillRequested { .. },
            Observation::Gone,
        ) => Some(true),
        (_, Observation::Gone) => Some(false),
        (
            E::ContainerStartRequested { .. }
            | E::ContainerRestartRequested { .. }
            | E::ContainerUnpauseRequested { .. },
            Observation::Present { status, .. },
        ) => Some(status == "running"),
        (
            E::ContainerStopRequested { .. } | E::ContainerKillRequested { .. },
            Observation::Present { status, .. },
        ) => Some(status != "running" && status != "paused"),
        (E::ContainerPauseRequested { .. }, Observation::Present { status, .. }) => {
            Some(status == "paused")
        }
        (E::ContainerRenameRequested { name: wanted, .. }, Observation::Present { name, .. }) => {
            Some(wanted == name)
        }
        (E::ContainerRemoveRequested { .. }, Observation::Present { .. }) => Some(false),
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
