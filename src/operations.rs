//! The operation runner: a Docker side effect recorded before and after it happens.
//!
//! 1. the handler has authorised the request; the aggregate accepts it (`…Requested`,
//!    committed means accepted);
//! 2. Docker is called (within the request task, which runs to completion even if the
//!    client leaves);
//! 3. the outcome is recorded (`ContainerStarted`, … or `OperationFailed`) and answered;
//!    when the engine did not answer, the outcome is unknown and the operation stays pending
//!    until [`reconcile`] settles it from what Docker shows.

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
use std::time::Duration;

use crate::docker::{DockerError, CALL_TIMEOUT};
use crate::event_store::SideWrite;
use crate::http::error::{ApiError, ApiResult, ErrorCode};
use crate::http::AppState;
use dcp_aggregates::container::MAX_STOP_TIMEOUT;

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
    // A container dcp is still creating (or whose creation outcome was lost) belongs to
    // the aggregate of that create: record the creation there instead of discovering it.
    let op_label = inspect
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|labels| labels.get(OP_LABEL))
        .and_then(|op| op.parse::<Uuid>().ok());
    if let Some(op_id) = op_label {
        if aggregate_of(state, host, &docker_id).await?.is_none() {
            // A recreate's replacement belongs to the recreated container; it is mapped to it
            // when the recreate is recorded (until then, operations on it wait their turn).
            if let Some(aggregate_id) = crate::recreate::aggregate_of_recreate(state, op_id).await?
            {
                return Ok(ContainerTarget {
                    host: host.to_string(),
                    docker_id,
                    name,
                    aggregate_id,
                });
            }
            let image_id = inspect.image.clone();
            claim_created(state, host, &docker_id, &name, image_id, op_id, meta).await?;
        }
    }
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

/// Records `docker_id` as the outcome of create `op_id`, if that create is still pending.
async fn claim_created(
    state: &AppState,
    host: &str,
    docker_id: &str,
    name: &str,
    image_id: Option<String>,
    op_id: Uuid,
    meta: &CommandMeta,
) -> ApiResult<()> {
    // The operations read model, or (when it has not caught up with a create made a moment
    // ago) the store itself.
    let mut aggregate: Option<String> =
        sqlx::query_scalar("SELECT aggregate_id FROM operations WHERE id = $1")
            .bind(op_id)
            .fetch_optional(&state.pool)
            .await?;
    if aggregate.is_none() {
        aggregate = sqlx::query_scalar(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'container' AND event_type = 'ContainerCreateRequested' \
             AND payload::jsonb -> 'ContainerCreateRequested' ->> 'op_id' = $1 LIMIT 1",
        )
        .bind(op_id.to_string())
        .fetch_optional(&state.pool)
        .await?;
    }
    let Some(aggregate) = aggregate else {
        return Ok(());
    };
    let Ok(aggregate_id) = aggregate.parse::<Uuid>() else {
        return Ok(());
    };
    let command = ContainerCommand::RecordCreated {
        op_id,
        docker_id: docker_id.to_string(),
        name: name.to_string(),
        image_id,
        at: Utc::now(),
    };
    let mapping = SideWrite::MapContainer {
        host: host.to_string(),
        docker_id: docker_id.to_string(),
        aggregate_id,
    };
    match state
        .commands
        .execute_retrying::<Container>(
            &aggregate,
            command,
            &meta.for_operation(op_id),
            vec![mapping],
        )
        .await
    {
        // Recorded now, or by the creating request meanwhile, or the create ended otherwise.
        Ok(_) | Err(CommandError::Conflict | CommandError::Rejected(_)) => Ok(()),
        Err(other) => Err(container_error(other)),
    }
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
    let started = std::time::Instant::now();
    let result = call_docker_now(state, target, action).await;
    crate::metrics::docker_call(
        &target.host,
        action.verb(),
        result.is_ok(),
        started.elapsed(),
    );
    result
}

async fn call_docker_now(
    state: &AppState,
    target: &ContainerTarget,
    action: &ContainerAction,
) -> Result<(), DockerError> {
    let docker = state.docker.client(&target.host)?;
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

/// Records the request, performs it on Docker and records the outcome. A refusal by Docker
/// is recorded as `OperationFailed` and answered as its API error; an engine that does not
/// answer leaves the operation pending for the reconciler (503, with the operation id).
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
    if let Err(DockerError::Unavailable { .. }) = &called {
        // The engine did not answer: the operation may or may not have happened. It stays
        // pending, and the reconciler settles it from what Docker shows later.
        let error: ApiError = called.unwrap_err().into();
        return Err(
            error.with_details(serde_json::json!({ "operation_id": op_id, "status": "pending" }))
        );
    }
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
        .execute_retrying::<Container>(&aggregate, outcome, &meta, vec![])
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

/// What reconciliation found for one interrupted operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub aggregate_id: String,
    pub op_id: Uuid,
    /// `done` or `failed`.
    pub outcome: &'static str,
}

/// The container operations without an outcome, each with its request event.
/// aggregate id, event type, payload, seconds since the request
type PendingRow = (String, String, serde_json::Value, f64);

async fn pending_operations(state: &AppState) -> Result<Vec<PendingRow>, sqlx::Error> {
    // The operations read model names the candidates (an indexed read, not a scan of the
    // store); the request is found by its operation id, whatever was recorded after it (an
    // observed change does not hide it). One whose outcome the read model has not applied
    // yet is settled again harmlessly: recording an outcome twice changes nothing.
    sqlx::query_as(
        "SELECT o.aggregate_id, e.event_type, e.payload::jsonb, EXTRACT(EPOCH FROM now() - e.recorded_at)::float8 \
         FROM operations o CROSS JOIN LATERAL ( \
             SELECT event_type, payload, recorded_at FROM events \
             WHERE aggregate_type = o.resource_type AND aggregate_id = o.aggregate_id \
             AND event_type LIKE '%Requested' AND payload::jsonb -> event_type ->> 'op_id' = o.id::text \
             ORDER BY sequence DESC LIMIT 1) e \
         WHERE o.status = 'pending' AND o.resource_type = 'container'",
    )
    .fetch_all(&state.pool)
    .await
}

/// Operations whose outcome was never recorded (the server stopped between the request
/// and the outcome) are settled from what Docker shows now: done if the container is in
/// the state the operation leads to, failed (`INTERRUPTED`) otherwise. Run at startup.
pub async fn reconcile(
    state: &AppState,
    settle_after: Duration,
) -> anyhow::Result<Vec<Reconciled>> {
    let mut settled = Vec::new();
    for (aggregate_id, event_type, payload, age) in pending_operations(state).await? {
        let fields = payload.get(&event_type).cloned().unwrap_or_default();
        // An operation may still be running on this or another replica: it is settled only
        // once it is older than the longest its Docker call can take.
        let stop_timeout = fields.get("timeout").and_then(|t| t.as_u64());
        let longest = match event_type.as_str() {
            "ContainerStopRequested" | "ContainerRestartRequested" => {
                settle_after
                    + Duration::from_secs(stop_timeout.unwrap_or(u64::from(MAX_STOP_TIMEOUT)))
            }
            "ContainerRecreateRequested" => settle_after + crate::recreate::LONGEST,
            _ => settle_after,
        };
        if age < longest.as_secs_f64() {
            continue;
        }
        let Some(op_id) = fields
            .get("op_id")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Uuid>().ok())
        else {
            continue;
        };
        if event_type == "ContainerRecreateRequested" {
            match crate::recreate::settle_recreate(state, &aggregate_id, op_id).await {
                Ok(Some(outcome)) => settled.push(Reconciled {
                    aggregate_id,
                    op_id,
                    outcome,
                }),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%aggregate_id, %op_id, error = format!("{error:#}"), "recreate left pending")
                }
            }
            continue;
        }
        if event_type == "ContainerCreateRequested" {
            let host = fields
                .get("host")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            match settle_create(state, &aggregate_id, &host, op_id).await {
                Ok(Some(outcome)) => settled.push(Reconciled {
                    aggregate_id,
                    op_id,
                    outcome,
                }),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%aggregate_id, %op_id, error = format!("{error:#}"), "create left pending")
                }
            }
            continue;
        }
        let target: Option<(String, String)> = sqlx::query_as(
            "SELECT host, docker_id FROM container_ids WHERE aggregate_id = $1::uuid",
        )
        .bind(&aggregate_id)
        .fetch_optional(&state.pool)
        .await?;
        let observed = match &target {
            Some((host, docker_id)) => observe(state, host, docker_id).await,
            None => Observation::Unknown,
        };
        let done = match (event_type.as_str(), &observed) {
            (_, Observation::Unknown) => None,
            ("ContainerRemoveRequested", Observation::Gone) => Some(true),
            // A stopped `--rm` container removes itself.
            ("ContainerStopRequested" | "ContainerKillRequested", Observation::Gone) => Some(true),
            (_, Observation::Gone) => Some(false),
            (
                "ContainerStartRequested"
                | "ContainerRestartRequested"
                | "ContainerUnpauseRequested",
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
                Some(fields.get("name").and_then(|v| v.as_str()) == Some(name.as_str()))
            }
            ("ContainerRemoveRequested", Observation::Present { .. }) => Some(false),
            _ => None,
        };
        let Some(done) = done else {
            // Docker cannot tell now (engine unreachable, or a create that is not
            // reconciled yet): left pending, tried again at the next start.
            tracing::warn!(%aggregate_id, %op_id, %event_type, "operation left pending: its outcome cannot be determined now");
            continue;
        };
        let meta = reconciler_meta(op_id);
        let command = if done {
            ContainerCommand::RecordDone {
                op_id,
                at: Utc::now(),
            }
        } else {
            ContainerCommand::RecordFailed {
                op_id,
                code: "INTERRUPTED".into(),
                message: "the server stopped before the outcome was known, and the container is not in the state the operation leads to".into(),
                at: Utc::now(),
            }
        };
        match state
            .commands
            .execute_retrying::<Container>(&aggregate_id, command, &meta, vec![])
            .await
        {
            Ok(_) => settled.push(Reconciled {
                aggregate_id,
                op_id,
                outcome: if done { "done" } else { "failed" },
            }),
            // Another replica settled it meanwhile.
            Err(CommandError::Conflict | CommandError::Rejected(_)) => {}
            Err(other) => {
                return Err(anyhow::anyhow!(
                    "Failed to record the outcome of operation {op_id}: {other}"
                ))
            }
        }
    }
    Ok(settled)
}

/// The containers on `host` labelled with operation `op_id`; `None` when Docker cannot tell now.
pub(crate) async fn labelled(
    state: &AppState,
    host: &str,
    op_id: Uuid,
) -> Option<Vec<bollard::models::ContainerSummary>> {
    let docker = state.docker.client(host).ok()?;
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{OP_LABEL}={op_id}")],
    )]);
    docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .ok()
}

/// Who records what the reconciler settles.
pub(crate) fn reconciler_meta(op_id: Uuid) -> CommandMeta {
    CommandMeta {
        actor_kind: Some("reconciler"),
        ..CommandMeta::system()
    }
    .for_operation(op_id)
}

/// A create whose outcome was not recorded: the container carries the operation's label
/// if Docker created it. Found: recorded as created (never created twice). Not found: failed.
async fn settle_create(
    state: &AppState,
    aggregate_id: &str,
    host: &str,
    op_id: Uuid,
) -> anyhow::Result<Option<&'static str>> {
    let Some(found) = labelled(state, host, op_id).await else {
        return Ok(None);
    };
    let meta = reconciler_meta(op_id);
    let (command, side_writes, outcome) = match found.first() {
        Some(container) => {
            let docker_id = container.id.clone().unwrap_or_default();
            let name = container
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let aggregate: Uuid = aggregate_id.parse()?;
            let mapping = SideWrite::MapContainer {
                host: host.to_string(),
                docker_id: docker_id.clone(),
                aggregate_id: aggregate,
            };
            (
                ContainerCommand::RecordCreated {
                    op_id,
                    docker_id,
                    name,
                    image_id: container.image_id.clone(),
                    at: Utc::now(),
                },
                vec![mapping],
                "done",
            )
        }
        None => (
            ContainerCommand::RecordFailed {
                op_id,
                code: "INTERRUPTED".into(),
                message: "the server stopped before Docker created the container".into(),
                at: Utc::now(),
            },
            vec![],
            "failed",
        ),
    };
    match state
        .commands
        .execute_retrying::<Container>(aggregate_id, command, &meta, side_writes)
        .await
    {
        Ok(_) => Ok(Some(outcome)),
        Err(CommandError::Conflict | CommandError::Rejected(_)) => Ok(None),
        Err(other) => Err(anyhow::anyhow!("{other}")),
    }
}

enum Observation {
    Present { status: String, name: String },
    Gone,
    Unknown,
}

async fn observe(state: &AppState, host: &str, docker_id: &str) -> Observation {
    let Ok(docker) = state.docker.client(host) else {
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

/// The Docker configuration of a checked request: only the fields the request type has,
/// plus the `dcp.op` label that makes the creation findable after a crash.
pub fn container_config(
    request: &crate::docker::policy::CreateContainerRequest,
    op_id: Uuid,
) -> bollard::models::ContainerCreateBody {
    use bollard::models::{
        ContainerCreateBody, DeviceMapping, HostConfig, PortBinding, RestartPolicy,
        RestartPolicyNameEnum,
    };
    use std::collections::HashMap;

    let mut labels: HashMap<String, String> = request
        .labels
        .clone()
        .unwrap_or_default()
        .0
        .into_iter()
        .collect();
    labels.insert(OP_LABEL.to_string(), op_id.to_string());
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in request.ports.iter().flatten() {
        let key = format!(
            "{}/{}",
            port.container_port,
            port.protocol.as_deref().unwrap_or("tcp")
        );
        exposed.push(key.clone());
        if let Some(host_port) = port.host_port {
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: port.host_ip.clone(),
                    host_port: Some(host_port.to_string()),
                });
        }
    }
    let mode = |read_only: Option<bool>| if read_only == Some(true) { ":ro" } else { "" };
    let mut binds: Vec<String> = request
        .volumes
        .iter()
        .flatten()
        .map(|v| format!("{}:{}{}", v.source, v.target, mode(v.read_only)))
        .collect();
    binds.extend(
        request
            .binds
            .iter()
            .flatten()
            .map(|b| format!("{}:{}{}", b.source, b.target, mode(b.read_only))),
    );
    let restart_policy = request.restart_policy.as_ref().map(|p| RestartPolicy {
        name: Some(match p.name.as_str() {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: p.max_retries.map(i64::from),
    });
    let devices = request.devices.as_ref().map(|devices| {
        devices
            .iter()
            .map(|d| {
                let mut parts = d.splitn(3, ':');
                let on_host = parts.next().unwrap_or_default().to_string();
                let in_container = parts
                    .next()
                    .map(str::to_string)
                    .unwrap_or_else(|| on_host.clone());
                DeviceMapping {
                    path_on_host: Some(on_host),
                    path_in_container: Some(in_container),
                    cgroup_permissions: Some(parts.next().unwrap_or("rwm").to_string()),
                }
            })
            .collect()
    });
    ContainerCreateBody {
        image: Some(request.image.clone()),
        cmd: request.command.clone(),
        entrypoint: request.entrypoint.clone(),
        env: request
            .env
            .as_ref()
            .map(|env| env.0.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        working_dir: request.working_dir.clone(),
        user: request.user.clone(),
        tty: request.tty,
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            binds: (!binds.is_empty()).then_some(binds),
            restart_policy,
            memory: request.memory_bytes,
            nano_cpus: request.cpus.map(|c| (c * 1e9) as i64),
            pids_limit: request.pids_limit,
            network_mode: request.network.clone(),
            privileged: request.privileged,
            cap_add: request.cap_add.clone(),
            devices,
            security_opt: request.security_opt.clone(),
            pid_mode: request.pid_mode.clone(),
            ipc_mode: request.ipc_mode.clone(),
            uts_mode: request.uts_mode.clone(),
            sysctls: request
                .sysctls
                .as_ref()
                .map(|s| s.0.clone().into_iter().collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The label every container dcp creates carries: the id of the creating operation.
pub const OP_LABEL: &str = "dcp.op";

/// What a create came to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreateOutcome {
    pub operation_id: Uuid,
    pub host: String,
    pub container_id: String,
    pub name: String,
    pub started: bool,
    /// Why the start failed, when `start` was asked for and did not happen.
    pub start_error: Option<String>,
    pub position: Option<i64>,
}

/// Records the create request, creates the container (labelled with the operation), records
/// the outcome with the `(host, docker id)` mapping, and starts it if asked.
pub async fn create_container(
    state: &AppState,
    host: &str,
    request: crate::docker::policy::CreateContainerRequest,
    meta: &CommandMeta,
) -> ApiResult<CreateOutcome> {
    let op_id = Uuid::now_v7();
    let aggregate_id = Uuid::now_v7();
    let aggregate = aggregate_id.to_string();
    let meta = meta.for_operation(op_id);
    let spec = serde_json::to_value(&request).map_err(|e| ApiError::internal(e.into()))?;
    let command = ContainerCommand::RequestCreate {
        op_id,
        host: host.to_string(),
        spec,
        at: Utc::now(),
    };
    state
        .commands
        .execute::<Container>(&aggregate, command, &meta)
        .await
        .map_err(container_error)?;
    let docker = state.docker.client(host)?;
    let options = bollard::query_parameters::CreateContainerOptions {
        name: request.name.clone(),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), container_config(&request, op_id))
        .await
        .map_err(|error| DockerError::from_bollard(host, error));
    let created = match created {
        Ok(created) => created,
        // No answer: Docker may have created it. The create stays pending; the reconciler
        // finds the container by its label, or records the failure.
        Err(error @ DockerError::Unavailable { .. }) => {
            let api: ApiError = error.into();
            return Err(
                api.with_details(serde_json::json!({ "operation_id": op_id, "status": "pending" }))
            );
        }
        Err(error) => {
            let api: ApiError = match &error {
                DockerError::Failed {
                    status: 404,
                    message,
                } => ApiError::new(ErrorCode::DockerOperationFailed, message.clone())
                    .with_field("image")
                    .with_details(serde_json::json!({ "docker_status": 404 })),
                other => other.clone().into(),
            };
            let failed = ContainerCommand::RecordFailed {
                op_id,
                code: api.code.as_str().into(),
                message: error.to_string(),
                at: Utc::now(),
            };
            state
                .commands
                .execute_retrying::<Container>(&aggregate, failed, &meta, vec![])
                .await
                .map_err(container_error)?;
            return Err(api);
        }
    };
    let docker_id = created.id;
    let inspect = docker
        .inspect_container(&docker_id, None::<InspectContainerOptions>)
        .await
        .ok();
    let image_id = inspect.as_ref().and_then(|i| i.image.clone());
    let name = inspect
        .and_then(|i| i.name)
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let recorded = ContainerCommand::RecordCreated {
        op_id,
        docker_id: docker_id.clone(),
        name: name.clone(),
        image_id,
        at: Utc::now(),
    };
    let mapping = SideWrite::MapContainer {
        host: host.to_string(),
        docker_id: docker_id.clone(),
        aggregate_id,
    };
    let mut position = state
        .commands
        .execute_retrying::<Container>(&aggregate, recorded, &meta, vec![mapping])
        .await
        .map_err(container_error)?
        .map(|cursor| cursor.position);
    let mut started = false;
    let mut start_error = None;
    if request.start == Some(true) {
        let target = ContainerTarget {
            host: host.to_string(),
            docker_id: docker_id.clone(),
            name: name.clone(),
            aggregate_id,
        };
        // The container exists whatever the start does: a failed start is reported with it,
        // not as a failed create (a client retrying would make a second container).
        match run_action(state, &target, ContainerAction::Start, &meta).await {
            Ok(outcome) => {
                started = true;
                position = outcome.position.or(position);
            }
            Err(error) => start_error = Some(format!("{}: {}", error.code.as_str(), error.message)),
        }
    }
    Ok(CreateOutcome {
        operation_id: op_id,
        host: host.to_string(),
        container_id: docker_id,
        name,
        started,
        start_error,
        position,
    })
}
