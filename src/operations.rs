//! The operation runner: a Docker side effect recorded before and after it happens.
//!
//! 1. the handler has authorised the request; the aggregate accepts it (`…Requested`,
//!    committed means accepted);
//! 2. Docker is called (within the request task, which runs to completion even if the
//!    client leaves);
//! 3. the outcome is recorded (`ContainerStarted`, … or `OperationFailed`) and answered.

use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, RemoveContainerOptions, RenameContainerOptions,
    RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use chrono::Utc;
use dcp_aggregates::container::{Container, ContainerAction, ContainerCommand, ContainerError};
use dcp_projections::LogCursor;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{CommandError, CommandMeta};
use crate::docker::DockerError;
use crate::event_store::SideWrite;
use crate::http::error::{ApiError, ApiResult, ErrorCode};
use crate::http::AppState;

/// A Docker container and the aggregate that records what dcp does to it.
#[derive(Debug, Clone)]
pub struct ContainerTarget {
    pub host: String,
    pub docker_id: String,
    pub name: String,
    pub aggregate_id: Uuid,
}

/// What an operation came to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationOutcome {
    pub operation_id: Uuid,
    /// `start`, `stop`, … as in the audit action `container.<operation>`.
    pub operation: String,
    /// `succeeded` or `failed`.
    pub status: String,
    pub host: String,
    /// The Docker container id.
    pub container_id: String,
    /// The global position of the outcome's event.
    pub position: Option<i64>,
}

pub fn container_error(error: CommandError<ContainerError>) -> ApiError {
    match error {
        CommandError::Rejected(ContainerError::NotFound) => ApiError::not_found("container"),
        CommandError::Rejected(ContainerError::Invalid { field, message }) => {
            ApiError::validation(field, message)
        }
        CommandError::Rejected(e @ ContainerError::OperationInProgress(_)) => {
            ApiError::conflict(e.to_string())
        }
        CommandError::Rejected(
            e @ (ContainerError::AlreadyKnown | ContainerError::UnknownOperation(_)),
        ) => ApiError::conflict(e.to_string()),
        CommandError::Conflict => ApiError::conflict(
            "the container was changed by another request at the same time; retry",
        ),
        CommandError::Unavailable(e) => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable",
        )
        .with_source(e),
        CommandError::Other(e) => ApiError::internal(e),
    }
}

/// Finds the container a reference (id, id prefix or name) names on `host`, and its
/// aggregate; a container dcp has not seen before is discovered (recorded) first.
pub async fn resolve(
    state: &AppState,
    host: &str,
    reference: &str,
    meta: &CommandMeta,
) -> ApiResult<ContainerTarget> {
    let docker = state.docker.client(host)?;
    let inspect = docker
        .inspect_container(reference, None::<InspectContainerOptions>)
        .await
        .map_err(|error| match DockerError::from_bollard(host, error) {
            DockerError::Failed {
                status: 400 | 404, ..
            } => ApiError::not_found("container"),
            other => other.into(),
        })?;
    let docker_id = inspect.id.clone().unwrap_or_default();
    let name = inspect
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    for _ in 0..2 {
        if let Some(aggregate_id) = aggregate_of(state, host, &docker_id).await? {
            return Ok(ContainerTarget {
                host: host.to_string(),
                docker_id,
                name,
                aggregate_id,
            });
        }
        let aggregate_id = Uuid::now_v7();
        let command = ContainerCommand::Discover {
            host: host.to_string(),
            docker_id: docker_id.clone(),
            name: name.clone(),
            image: inspect
                .config
                .as_ref()
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            state: inspect
                .state
                .as_ref()
                .and_then(|s| s.status.map(|status| status.to_string()))
                .unwrap_or_default(),
            at: Utc::now(),
        };
        let mapping = SideWrite::MapContainer {
            host: host.to_string(),
            docker_id: docker_id.clone(),
            aggregate_id,
        };
        match state
            .commands
            .execute_with::<Container>(
                &aggregate_id.to_string(),
                command,
                &meta.observed_by_docker(),
                vec![mapping],
            )
            .await
        {
            Ok(_) => {
                return Ok(ContainerTarget {
                    host: host.to_string(),
                    docker_id,
                    name,
                    aggregate_id,
                })
            }
            // Discovered by someone else meanwhile: use theirs.
            Err(CommandError::Conflict) => continue,
            Err(other) => return Err(container_error(other)),
        }
    }
    Err(ApiError::conflict(
        "the container was discovered twice at the same time; retry",
    ))
}

async fn aggregate_of(
    state: &AppState,
    host: &str,
    docker_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT aggregate_id FROM container_ids WHERE host = $1 AND docker_id = $2")
        .bind(host)
        .bind(docker_id)
        .fetch_optional(&state.pool)
        .await
}

/// Docker says "nothing to do" with 304 (already started, already stopped): that is success.
fn already_done(error: &DockerError) -> bool {
    matches!(error, DockerError::Failed { status: 304, .. })
}

async fn call_docker(
    state: &AppState,
    target: &ContainerTarget,
    action: &ContainerAction,
) -> Result<(), DockerError> {
    let docker = state.docker.client(&target.host)?;
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

/// Records the request, performs it on Docker and records the outcome. A Docker failure
/// is recorded as `OperationFailed` and answered as its API error.
pub async fn run_action(
    state: &AppState,
    target: &ContainerTarget,
    action: ContainerAction,
    meta: &CommandMeta,
) -> ApiResult<OperationOutcome> {
    let op_id = Uuid::now_v7();
    let aggregate = target.aggregate_id.to_string();
    let operation = action.verb().to_string();
    let meta = meta.for_operation(op_id);
    let request = ContainerCommand::Request {
        op_id,
        action: action.clone(),
        at: Utc::now(),
    };
    state
        .commands
        .execute::<Container>(&aggregate, request, &meta)
        .await
        .map_err(container_error)?;
    let called = call_docker(state, target, &action).await;
    let (outcome, result): (ContainerCommand, Result<(), ApiError>) = match called {
        Ok(()) => (
            ContainerCommand::RecordDone {
                op_id,
                at: Utc::now(),
            },
            Ok(()),
        ),
        Err(error) => {
            let api: ApiError = error.clone().into();
            let command = ContainerCommand::RecordFailed {
                op_id,
                code: api.code.as_str().to_string(),
                message: error.to_string(),
                at: Utc::now(),
            };
            (command, Err(api))
        }
    };
    let cursor: Option<LogCursor> = state
        .commands
        .execute::<Container>(&aggregate, outcome, &meta)
        .await
        .map_err(container_error)?;
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
