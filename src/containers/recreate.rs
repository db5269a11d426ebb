//! Recreating a container: Docker cannot change a container's environment, image, ports or
//! mounts in place, so the container is replaced by one made from the new configuration,
//! under the same name and the same platform id (one history).
//!
//! The steps, each undone if a later one fails so the old container comes back as it was:
//! 1. stop the old container if it runs;
//! 2. rename it out of the way (`<name>-dcp-replaced-<op>`);
//! 3. create the replacement, labelled `dcp.op=<op id>`;
//! 4. start it if the old one was running (or `start` says so);
//! 5. remove the old container.
//!
//! The outcome is `ContainerRecreated`, which moves the `(host, docker id)` mapping to the
//! replacement in the same transaction. A server that stops halfway leaves the operation
//! pending; [`Containers::settle_recreate`] finishes it from what Docker shows: the labelled replacement
//! exists → done (the old one is removed); it does not → failed, the old one renamed back.

use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveContainerOptions,
    RenameContainerOptions, StartContainerOptions, StopContainerOptions,
};
use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::container::{Container, ContainerCommand};
use dcp_projections::GlobalLogReader;
use uuid::Uuid;

use super::labels::{labelled, OP_LABEL};
use super::listing::check_reference;
use super::{ContainerTarget, Containers, ContainersError, OperationOutcome};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::denials::Refused;
use crate::docker::policy::{container_config, CreateContainerRequest};
use crate::docker::{DockerError, DockerHosts};
use crate::errors::{ErrorCode, ServiceError};
use crate::event_store::SideWrite;
use crate::hosts::HostRegistry;

/// Seconds the old container gets to stop before it is killed.
const STOP_TIMEOUT: i32 = 10;

/// The longest a recreate's Docker calls can take (the stop's grace period, up to seven
/// calls and three more to undo them), before which a pending recreate may still be running
/// and is not reconciled.
pub const LONGEST: std::time::Duration = std::time::Duration::from_secs(
    STOP_TIMEOUT as u64 + 10 * crate::docker::CALL_TIMEOUT.as_secs(),
);

/// The name the old container has between its replacement's creation and its removal.
fn parked_name(name: &str, op_id: Uuid) -> String {
    let op = op_id.simple().to_string();
    format!("{name}-dcp-replaced-{}", &op[op.len() - 12..])
}

/// What was done to Docker so far, to undo it.
struct Progress {
    stopped: bool,
    parked: bool,
    created: Option<String>,
}

impl Containers {
    /// Replaces the container `reference` names on `host` with one made from `request`,
    /// checked by the role policy as a create is (a refusal recorded as a denied request of
    /// `route`); the name cannot change here, and `start` defaults to whether it ran.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), reference = %reference), err(level = "debug"))]
    pub async fn recreate(
        &self,
        principal: &Principal,
        host: Option<&str>,
        reference: &str,
        request: CreateContainerRequest,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<OperationOutcome, ContainersError> {
        check_reference(reference)?;
        let host = self.hosts.enabled_host(host)?;
        // The container replaced (what the platform protects) and the one replacing it (the
        // create policy), both judged before anything is recorded.
        let meta = &meta.with_reason(request.reason.as_deref());
        let resolved = self
            .resolve_to_act(principal, (&host, reference), meta, route)
            .await?;
        self.check_policy(principal, &host, &request, meta, route)
            .await?;
        let target = self.target_of(&resolved, meta).await?;
        if request.name.as_deref().is_some_and(|n| n != target.name) {
            return Err(ContainersError::Invalid {
                field: "name".into(),
                message: "a recreate keeps the container's name; rename it separately".into(),
            });
        }
        let op_id = Uuid::now_v7();
        let meta = meta.for_operation(op_id);
        let spec = serde_json::to_value(CreateContainerRequest {
            name: Some(target.name.clone()),
            ..request.clone()
        })
        .map_err(anyhow::Error::from)?;
        let command = ContainerCommand::RequestRecreate {
            op_id,
            spec,
            at: Utc::now(),
        };
        self.commands
            .execute::<Container>(&target.aggregate_id.to_string(), command, &meta)
            .await?;
        let mut progress = Progress {
            stopped: false,
            parked: false,
            created: None,
        };
        // A missing image fails here, before the running container is touched.
        let replaced = match self.image_present(&target.host, &request.image).await {
            Ok(()) => replace(&self.hosts, &target, &request, op_id, &mut progress)
                .await
                .map_err(ContainersError::from),
            Err(error) => Err(error),
        };
        self.record_recreate(&target, op_id, &meta, replaced, &progress)
            .await
    }

    async fn image_present(&self, host: &str, image: &str) -> Result<(), ContainersError> {
        let docker = self.hosts.client(host)?;
        match docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(error) => match DockerError::from_bollard(host, error) {
                DockerError::Failed {
                    status: 404,
                    message,
                } => Err(ContainersError::ImageMissing { message }),
                other => Err(other.into()),
            },
        }
    }

    /// Records how the recreate ended: the replacement (moving the mapping to it), or the
    /// failure after the old container was put back; an engine that did not answer leaves
    /// it pending for the reconciler.
    async fn record_recreate(
        &self,
        target: &ContainerTarget,
        op_id: Uuid,
        meta: &CommandMeta,
        replaced: Result<(String, Option<String>, bool), ContainersError>,
        progress: &Progress,
    ) -> Result<OperationOutcome, ContainersError> {
        let (command, side_writes, answer) = match replaced {
            Ok((docker_id, image_id, running)) => {
                let remap = SideWrite::RemapContainer {
                    host: target.host.clone(),
                    from: target.docker_id.clone(),
                    to: docker_id.clone(),
                    aggregate_id: target.aggregate_id,
                };
                let command = ContainerCommand::RecordRecreated {
                    op_id,
                    docker_id: docker_id.clone(),
                    image_id,
                    running,
                    at: Utc::now(),
                };
                (command, vec![remap], Ok(docker_id))
            }
            Err(ContainersError::Docker(error @ DockerError::Unavailable { .. })) => {
                return Err(ContainersError::Pending {
                    operation_id: op_id,
                    error,
                })
            }
            Err(error) => {
                undo(&self.hosts, target, progress).await;
                let command = ContainerCommand::RecordFailed {
                    op_id,
                    code: error.code().as_str().to_string(),
                    message: error.to_string(),
                    at: Utc::now(),
                };
                (command, vec![], Err(error))
            }
        };
        let cursor = self
            .commands
            .execute_retrying::<Container>(
                &target.aggregate_id.to_string(),
                command,
                meta,
                side_writes,
            )
            .await?;
        Ok(OperationOutcome {
            operation_id: op_id,
            operation: "recreate".into(),
            status: "succeeded".into(),
            host: target.host.clone(),
            container_id: answer?,
            position: cursor.map(|c| c.position),
        })
    }
    /// Settles a recreate whose outcome was not recorded, from what Docker shows: `Some("done")`
    /// or `Some("failed")` once recorded, `None` when Docker cannot tell now.
    pub(super) async fn settle_recreate(
        &self,
        aggregate_id: &str,
        op_id: Uuid,
    ) -> anyhow::Result<Option<&'static str>> {
        let current: Option<(String, String)> = sqlx::query_as(
            "SELECT host, docker_id FROM container_ids WHERE aggregate_id = $1::uuid",
        )
        .bind(aggregate_id)
        .fetch_optional(self.reads.pool())
        .await?;
        let Some((host, old_id)) = current else {
            return Ok(None);
        };
        // The read model naming it pending may lag: settled already, it must not be touched
        // (the mapping now names the replacement, which would be taken for the old container).
        if GlobalLogReader::outcome_recorded(
            self.reads.pool(),
            Container::TYPE,
            aggregate_id,
            op_id,
        )
        .await?
        {
            return Ok(None);
        }
        let Ok(docker) = self.hosts.client(&host) else {
            return Ok(None);
        };
        let Some(found) = labelled(&self.hosts, &host, op_id).await else {
            return Ok(None);
        };
        let (command, side_writes, outcome) = match found.first() {
            Some(replacement) => {
                let docker_id = replacement.id.clone().unwrap_or_default();
                if docker_id == old_id || remove_old(&self.hosts, &host, &old_id).await.is_err() {
                    return Ok(None);
                }
                let remap = SideWrite::RemapContainer {
                    host: host.clone(),
                    from: old_id,
                    to: docker_id.clone(),
                    aggregate_id: aggregate_id.parse()?,
                };
                let command = ContainerCommand::RecordRecreated {
                    op_id,
                    docker_id,
                    image_id: replacement.image_id.clone(),
                    running: replacement.state
                        == Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
                    at: Utc::now(),
                };
                (command, vec![remap], "done")
            }
            None => {
                // The replacement was never made: give the old container its name back.
                let name: Option<String> =
                    sqlx::query_scalar("SELECT name FROM containers WHERE aggregate_id = $1")
                        .bind(aggregate_id)
                        .fetch_optional(self.reads.pool())
                        .await?
                        .flatten();
                if let Some(name) = name {
                    let _ = docker
                        .rename_container(&old_id, RenameContainerOptions { name })
                        .await;
                }
                let command = ContainerCommand::RecordFailed {
                    op_id,
                    code: ErrorCode::Interrupted.as_str().into(),
                    message: "the server stopped before the replacement container was created"
                        .into(),
                    at: Utc::now(),
                };
                (command, vec![], "failed")
            }
        };
        self.record_settled(aggregate_id, op_id, command, side_writes, outcome)
            .await
    }
}

/// Steps 1–5; returns the replacement's id, its image id and whether it runs.
async fn replace(
    hosts: &HostRegistry,
    target: &ContainerTarget,
    request: &CreateContainerRequest,
    op_id: Uuid,
    progress: &mut Progress,
) -> Result<(String, Option<String>, bool), DockerError> {
    let host = target.host.as_str();
    let docker = hosts.client(host)?;
    let fail = |error| DockerError::from_bollard(host, error);
    let old = docker
        .inspect_container(&target.docker_id, None::<InspectContainerOptions>)
        .await
        .map_err(fail)?;
    let was_running = old.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if was_running {
        docker
            .clone()
            .with_timeout(crate::docker::CALL_TIMEOUT + std::time::Duration::from_secs(10))
            .stop_container(
                &target.docker_id,
                Some(StopContainerOptions {
                    t: Some(STOP_TIMEOUT),
                    ..Default::default()
                }),
            )
            .await
            .map_err(fail)?;
        progress.stopped = true;
    }
    docker
        .rename_container(
            &target.docker_id,
            RenameContainerOptions {
                name: parked_name(&target.name, op_id),
            },
        )
        .await
        .map_err(fail)?;
    progress.parked = true;
    let options = CreateContainerOptions {
        name: Some(target.name.clone()),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(options),
            container_config(request, &[(OP_LABEL, op_id.to_string())]),
        )
        .await
        .map_err(fail)?;
    progress.created = Some(created.id.clone());
    let start = request.start.unwrap_or(was_running);
    if start {
        docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(fail)?;
    }
    // What Docker shows now: a replacement that exited at once is recorded as not running.
    let shown = docker
        .inspect_container(&created.id, None::<InspectContainerOptions>)
        .await
        .ok();
    let image_id = shown.as_ref().and_then(|inspect| inspect.image.clone());
    let running = shown
        .as_ref()
        .and_then(|inspect| inspect.state.as_ref())
        .and_then(|s| s.running)
        .unwrap_or(start);
    remove_old(hosts, host, &target.docker_id).await?;
    Ok((created.id, image_id, running))
}

async fn remove_old(hosts: &HostRegistry, host: &str, docker_id: &str) -> Result<(), DockerError> {
    let docker = hosts.client(host)?;
    match docker
        .remove_container(
            docker_id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|error| DockerError::from_bollard(host, error))
    {
        Err(DockerError::Failed { status: 404, .. }) | Ok(()) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Puts the old container back as it was; each step is tried whatever the others do.
async fn undo(hosts: &HostRegistry, target: &ContainerTarget, progress: &Progress) {
    let Ok(docker) = hosts.client(&target.host) else {
        return;
    };
    if let Some(created) = &progress.created {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if let Err(error) = docker.remove_container(created, Some(options)).await {
            tracing::warn!(%error, container = %created, "could not remove a failed replacement");
        }
    }
    if progress.parked {
        let name = RenameContainerOptions {
            name: target.name.clone(),
        };
        if let Err(error) = docker.rename_container(&target.docker_id, name).await {
            tracing::warn!(%error, container = %target.docker_id, "could not restore the container's name");
        }
    }
    if progress.stopped {
        if let Err(error) = docker
            .start_container(&target.docker_id, None::<StartContainerOptions>)
            .await
        {
            tracing::warn!(%error, container = %target.docker_id, "could not restart the container");
        }
    }
}
