//! Start, stop, restart, kill, pause, unpause, rename and remove: each recorded before and
//! after Docker performs it.

use std::time::Duration;

use bollard::query_parameters::{
    KillContainerOptions, RemoveContainerOptions, RenameContainerOptions, RestartContainerOptions,
    StartContainerOptions, StopContainerOptions,
};
use chrono::Utc;
use dcp_aggregates::container::{Container, ContainerAction, ContainerCommand, MAX_STOP_TIMEOUT};
use dcp_projections::LogCursor;
use uuid::Uuid;

use super::listing::check_reference;
use super::{ContainerTarget, Containers, ContainersError, OperationOutcome};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::denials::Refused;
use crate::docker::{DockerError, DockerHosts, CALL_TIMEOUT};
use crate::errors::ServiceError;
use crate::hosts::HostRegistry;

impl Containers {
    /// Performs `action` on the container `reference` names on `host` (default `local`), as
    /// `principal` may: a container the platform protects is for admins who give a reason
    /// (`meta.reason`, kept with the operation's events); a refusal is recorded as a
    /// denied request of `route`.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), reference = %reference, action = action.verb()), err(level = "debug"))]
    pub async fn act(
        &self,
        principal: &Principal,
        host: Option<&str>,
        reference: &str,
        action: ContainerAction,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<OperationOutcome, ContainersError> {
        check_reference(reference)?;
        let host = self.hosts.enabled_host(host)?;
        let resolved = self
            .resolve_to_act(principal, (&host, reference), meta, route)
            .await?;
        let target = self.target_of(&resolved, meta).await?;
        self.run_action(&target, action, meta).await
    }

    /// Records the request, performs it on Docker and records the outcome. A refusal by
    /// Docker is recorded as `OperationFailed` and answered as its error; an engine that
    /// does not answer leaves the operation pending for the reconciler.
    pub async fn run_action(
        &self,
        target: &ContainerTarget,
        action: ContainerAction,
        meta: &CommandMeta,
    ) -> Result<OperationOutcome, ContainersError> {
        let op_id = Uuid::now_v7();
        let aggregate = target.aggregate_id.to_string();
        let operation = action.verb().to_string();
        let meta = meta.for_operation(op_id);
        let request = ContainerCommand::Request {
            op_id,
            action: action.clone(),
            at: Utc::now(),
        };
        self.commands
            .execute::<Container>(&aggregate, request, &meta)
            .await?;
        let (outcome, result) = match call_docker(&self.hosts, target, &action).await {
            Ok(()) => (
                ContainerCommand::RecordDone {
                    op_id,
                    at: Utc::now(),
                },
                Ok(()),
            ),
            // The engine did not answer: the operation may or may not have happened. It
            // stays pending, and the reconciler settles it from what Docker shows later.
            Err(error @ DockerError::Unavailable { .. }) => {
                return Err(ContainersError::Pending {
                    operation_id: op_id,
                    error,
                })
            }
            Err(error) => (
                ContainerCommand::RecordFailed {
                    op_id,
                    code: error.code().as_str().to_string(),
                    message: error.to_string(),
                    at: Utc::now(),
                },
                Err(error),
            ),
        };
        let cursor: Option<LogCursor> = self
            .commands
            .execute_retrying::<Container>(&aggregate, outcome, &meta, vec![])
            .await?;
        result?;
        Ok(OperationOutcome {
            operation_id: op_id,
            operation,
            status: "succeeded".into(),
            host: target.host.clone(),
            container_id: target.docker_id.clone(),
            position: cursor.map(|c| c.position),
        })
    }
}

/// Docker says "nothing to do" with 304 (already started, already stopped): that is success.
fn already_done(error: &DockerError) -> bool {
    matches!(error, DockerError::Failed { status: 304, .. })
}

/// Performs `action` on Docker, counted in the metrics.
#[tracing::instrument(skip_all, fields(host = %target.host, container = %target.docker_id, action = action.verb()), err(level = "debug"))]
async fn call_docker(
    hosts: &HostRegistry,
    target: &ContainerTarget,
    action: &ContainerAction,
) -> Result<(), DockerError> {
    let started = std::time::Instant::now();
    let result = call_docker_now(hosts, target, action).await;
    crate::metrics::docker_call(
        &target.host,
        action.verb(),
        result.is_ok(),
        started.elapsed(),
    );
    result
}

async fn call_docker_now(
    hosts: &HostRegistry,
    target: &ContainerTarget,
    action: &ContainerAction,
) -> Result<(), DockerError> {
    let docker = hosts.client(&target.host)?;
    // Stopping waits for the container's own timeout first.
    let docker = match action {
        ContainerAction::Stop { timeout } | ContainerAction::Restart { timeout } => {
            let wait = timeout.unwrap_or(MAX_STOP_TIMEOUT);
            docker.with_timeout(CALL_TIMEOUT + Duration::from_secs(u64::from(wait)))
        }
        _ => docker,
    };
    let id = target.docker_id.as_str();
    let seconds = |timeout: &Option<u32>| timeout.map(|t| t as i32);
    let result = match action {
        ContainerAction::Start => {
            docker
                .start_container(id, None::<StartContainerOptions>)
                .await
        }
        ContainerAction::Stop { timeout } => {
            docker
                .stop_container(
                    id,
                    Some(StopContainerOptions {
                        t: seconds(timeout),
                        ..Default::default()
                    }),
                )
                .await
        }
        ContainerAction::Restart { timeout } => {
            docker
                .restart_container(
                    id,
                    Some(RestartContainerOptions {
                        t: seconds(timeout),
                        ..Default::default()
                    }),
                )
                .await
        }
        ContainerAction::Kill { signal } => {
            docker
                .kill_container(
                    id,
                    Some(KillContainerOptions {
                        signal: signal.clone(),
                    }),
                )
                .await
        }
        ContainerAction::Pause => docker.pause_container(id).await,
        ContainerAction::Unpause => docker.unpause_container(id).await,
        ContainerAction::Rename { name } => {
            docker
                .rename_container(id, RenameContainerOptions { name: name.clone() })
                .await
        }
        ContainerAction::Remove { force, volumes } => {
            docker
                .remove_container(
                    id,
                    Some(RemoveContainerOptions {
                        force: *force,
                        v: *volumes,
                        ..Default::default()
                    }),
                )
                .await
        }
    };
    match result.map_err(|error| DockerError::from_bollard(&target.host, error)) {
        Err(error) if already_done(&error) => Ok(()),
        other => other,
    }
}
