//! Operations on images, volumes and networks, recorded before and after Docker performs
//! them, as container operations are (see [`crate::operations`]).
//!
//! Each resource has one aggregate per natural key (`(host, name)` for volumes and
//! networks, `(host, reference)` for images, see [`dcp_aggregates::resource_key`]). The
//! request is recorded (`…Requested`), Docker is called, the outcome is recorded. An engine
//! that does not answer leaves the operation pending; [`reconcile`] settles it later from
//! what Docker shows. Image pulls run in the background: the request answers 202 with the
//! operation id, progress is written to `operation_progress` while the pull runs, and
//! the outcome is recorded when it ends.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use bollard::models::{
    Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
    VolumeCreateRequest,
};
use bollard::query_parameters::{CreateImageOptions, RemoveImageOptions, RemoveVolumeOptions};
use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::image::{Image, ImageCommand};
use dcp_aggregates::network::{Network, NetworkCommand};
use dcp_aggregates::operation::ResourceError;
use dcp_aggregates::resource_key;
use dcp_aggregates::volume::{Volume, VolumeCommand};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{CommandBus, CommandError, CommandMeta, CqrsFor};
use crate::docker::DockerError;
use crate::http::error::{ApiError, ApiResult, ErrorCode};
use crate::http::AppState;
use crate::operations::OP_LABEL;

/// What an image, volume or network operation came to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceOutcome {
    pub operation_id: Uuid,
    /// The audit action, e.g. `volume.create`.
    pub action: String,
    /// `succeeded` (failures answer with an error).
    pub status: String,
    pub host: String,
    /// The resource: volume name, network name, image reference.
    pub resource: String,
    /// Docker's id when it has one (network id, image id).
    pub docker_id: Option<String>,
    /// The global position of the outcome's event.
    pub position: Option<i64>,
}

/// A long operation accepted: follow it at `GET /api/v1/operations/{operation_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AcceptedOperation {
    pub operation_id: Uuid,
    pub action: String,
    /// `pending`.
    pub status: String,
    pub host: String,
    pub resource: String,
    /// Where to follow it.
    pub location: String,
    /// The global position of the request's event.
    pub position: Option<i64>,
}

pub fn resource_error(what: &str, error: CommandError<ResourceError>) -> ApiError {
    match error {
        CommandError::Rejected(ResourceError::Invalid { field, message }) => {
            ApiError::validation(field, message)
        }
        CommandError::Rejected(e) => ApiError::conflict(e.to_string()),
        CommandError::Conflict => ApiError::conflict(format!(
            "the {what} was changed by another request at the same time; retry"
        )),
        CommandError::Unavailable(e) => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable",
        )
        .with_source(e),
        CommandError::Other(e) => ApiError::internal(e),
    }
}

/// An engine that did not answer: the operation stays pending for the reconciler.
fn left_pending(error: DockerError, op_id: Uuid) -> ApiError {
    let api: ApiError = error.into();
    api.with_details(json!({ "operation_id": op_id, "status": "pending" }))
}

/// One operation on one resource aggregate: how to record its outcome.
struct Operation<'a, A: Aggregate> {
    state: &'a AppState,
    what: &'static str,
    aggregate_id: String,
    op_id: Uuid,
    meta: CommandMeta,
    failed: fn(Uuid, String, String) -> A::Command,
}

impl<A> Operation<'_, A>
where
    A: Aggregate<Error = ResourceError>,
    A::Command: Clone,
    CommandBus: CqrsFor<A>,
{
    async fn record(&self, command: A::Command) -> ApiResult<Option<i64>> {
        Ok(self
            .state
            .commands
            .execute::<A>(&self.aggregate_id, command, &self.meta)
            .await
            .map_err(|e| resource_error(self.what, e))?
            .map(|cursor| cursor.position))
    }

    /// Records an outcome: what Docker did is recorded even when an observed change was
    /// appended to the same aggregate at the same moment.
    async fn record_outcome(&self, command: A::Command) -> ApiResult<Option<i64>>
    where
        A::Command: Clone,
    {
        Ok(self
            .state
            .commands
            .execute_retrying::<A>(&self.aggregate_id, command, &self.meta, vec![])
            .await
            .map_err(|e| resource_error(self.what, e))?
            .map(|cursor| cursor.position))
    }

    /// Records the request, makes the Docker call, records its outcome (`done` on
    /// success, `OperationFailed` on a refusal) and answers with it.
    async fn run<T>(
        &self,
        request: A::Command,
        call: impl Future<Output = Result<T, DockerError>>,
        done: impl FnOnce(&T) -> A::Command,
    ) -> ApiResult<(T, Option<i64>)> {
        self.record(request).await?;
        match call.await {
            Ok(value) => {
                let position = self.record_outcome(done(&value)).await?;
                Ok((value, position))
            }
            Err(error @ DockerError::Unavailable { .. }) => Err(left_pending(error, self.op_id)),
            Err(error) => {
                let api = refusal(&error);
                self.record_outcome((self.failed)(
                    self.op_id,
                    api.code.as_str().to_string(),
                    error.to_string(),
                ))
                .await?;
                Err(api)
            }
        }
    }
}

/// Docker's answer to a refused change. Its 403 means "not in this state" (a network with
/// containers attached, a container already connected): a conflict with the resource's
/// state, not a failure of the engine.
fn refusal(error: &DockerError) -> ApiError {
    match error {
        DockerError::Failed {
            status: 403,
            message,
        } => ApiError::conflict(message.clone()).with_details(json!({ "docker_status": 403 })),
        other => other.clone().into(),
    }
}

fn docker_result<T>(
    host: &str,
    result: Result<T, bollard::errors::Error>,
) -> Result<T, DockerError> {
    result.map_err(|error| DockerError::from_bollard(host, error))
}

// ---------------------------------------------------------------------------------------
// Volumes

/// A checked volume create request.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    pub name: String,
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub reason: Option<String>,
}

pub async fn create_volume(
    state: &AppState,
    host: &str,
    spec: VolumeSpec,
    meta: &CommandMeta,
) -> ApiResult<ResourceOutcome> {
    let op_id = Uuid::now_v7();
    let operation = Operation::<Volume> {
        state,
        what: "volume",
        aggregate_id: resource_key("volume", host, &spec.name).to_string(),
        op_id,
        meta: meta.for_operation(op_id),
        failed: volume_failed,
    };
    let docker = state.docker.client(host)?;
    // Docker answers a create of an existing volume with that volume: refuse it instead.
    match docker.inspect_volume(&spec.name).await {
        Ok(_) => {
            return Err(ApiError::conflict(format!(
                "a volume named '{}' already exists",
                spec.name
            ))
            .with_field("name"))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(error) => return Err(DockerError::from_bollard(host, error).into()),
    }
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(OP_LABEL.to_string(), op_id.to_string());
    let config = VolumeCreateRequest {
        name: Some(spec.name.clone()),
        driver: Some(spec.driver.clone()),
        driver_opts: Some(spec.driver_opts.clone().into_iter().collect()),
        labels: Some(labels),
        ..Default::default()
    };
    let request = VolumeCommand::RequestCreate {
        op_id,
        host: host.to_string(),
        name: spec.name.clone(),
        driver: spec.driver,
        driver_opts: spec.driver_opts,
        labels: spec.labels,
        reason: spec.reason,
        at: Utc::now(),
    };
    let call = async { docker_result(host, docker.create_volume(config).await) };
    let (volume, position) = operation
        .run(request, call, |volume| VolumeCommand::RecordCreated {
            op_id,
            mountpoint: volume.mountpoint.clone(),
            at: Utc::now(),
        })
        .await?;
    Ok(ResourceOutcome {
        operation_id: op_id,
        action: "volume.create".into(),
        status: "succeeded".into(),
        host: host.to_string(),
        resource: volume.name,
        docker_id: None,
        position,
    })
}

fn volume_failed(op_id: Uuid, code: String, message: String) -> VolumeCommand {
    VolumeCommand::RecordFailed {
        op_id,
        code,
        message,
        at: Utc::now(),
    }
}

pub async fn remove_volume(
    state: &AppState,
    host: &str,
    name: &str,
    force: bool,
    meta: &CommandMeta,
) -> ApiResult<ResourceOutcome> {
    let docker = state.docker.client(host)?;
    let found =
        docker.inspect_volume(name).await.map_err(|error| {
            match DockerError::from_bollard(host, error) {
                DockerError::Failed { status: 404, .. } => ApiError::not_found("volume"),
                other => other.into(),
            }
        })?;
    let op_id = Uuid::now_v7();
    let operation = Operation::<Volume> {
        state,
        what: "volume",
        aggregate_id: resource_key("volume", host, &found.name).to_string(),
        op_id,
        meta: meta.for_operation(op_id),
        failed: volume_failed,
    };
    let request = VolumeCommand::RequestRemove {
        op_id,
        host: host.to_string(),
        name: found.name.clone(),
        force,
        at: Utc::now(),
    };
    let call = async {
        docker_result(
            host,
            docker
                .remove_volume(&found.name, Some(RemoveVolumeOptions { force }))
                .await,
        )
    };
    let ((), position) = operation
        .run(request, call, |_| VolumeCommand::RecordRemoved {
            op_id,
            at: Utc::now(),
        })
        .await?;
    Ok(ResourceOutcome {
        operation_id: op_id,
        action: "volume.delete".into(),
        status: "succeeded".into(),
        host: host.to_string(),
        resource: found.name,
        docker_id: None,
        position,
    })
}

// ---------------------------------------------------------------------------------------
// Networks

/// A checked network create request.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub reason: Option<String>,
}

fn network_failed(op_id: Uuid, code: String, message: String) -> NetworkCommand {
    NetworkCommand::RecordFailed {
        op_id,
        code,
        message,
        at: Utc::now(),
    }
}

fn network_operation<'a>(
    state: &'a AppState,
    host: &str,
    name: &str,
    meta: &CommandMeta,
) -> Operation<'a, Network> {
    let op_id = Uuid::now_v7();
    Operation {
        state,
        what: "network",
        aggregate_id: resource_key("network", host, name).to_string(),
        op_id,
        meta: meta.for_operation(op_id),
        failed: network_failed,
    }
}

pub async fn create_network(
    state: &AppState,
    host: &str,
    spec: NetworkSpec,
    meta: &CommandMeta,
) -> ApiResult<ResourceOutcome> {
    let docker = state.docker.client(host)?;
    match docker
        .inspect_network(
            &spec.name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(_) => {
            return Err(ApiError::conflict(format!(
                "a network named '{}' already exists",
                spec.name
            ))
            .with_field("name"))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(error) => return Err(DockerError::from_bollard(host, error).into()),
    }
    let operation = network_operation(state, host, &spec.name, meta);
    let op_id = operation.op_id;
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(OP_LABEL.to_string(), op_id.to_string());
    let ipam = (spec.subnet.is_some() || spec.gateway.is_some()).then(|| Ipam {
        config: Some(vec![IpamConfig {
            subnet: spec.subnet.clone(),
            gateway: spec.gateway.clone(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let config = NetworkCreateRequest {
        name: spec.name.clone(),
        driver: Some(spec.driver.clone()),
        internal: Some(spec.internal),
        attachable: Some(spec.attachable),
        ipam,
        labels: Some(labels),
        ..Default::default()
    };
    let request = NetworkCommand::RequestCreate {
        op_id,
        host: host.to_string(),
        name: spec.name.clone(),
        driver: spec.driver,
        internal: spec.internal,
        attachable: spec.attachable,
        subnet: spec.subnet,
        gateway: spec.gateway,
        labels: spec.labels,
        reason: spec.reason,
        at: Utc::now(),
    };
    let call = async { docker_result(host, docker.create_network(config).await) };
    let (created, position) = operation
        .run(request, call, |created| NetworkCommand::RecordDone {
            op_id,
            network_id: Some(created.id.clone()),
            at: Utc::now(),
        })
        .await?;
    Ok(ResourceOutcome {
        operation_id: op_id,
        action: "network.create".into(),
        status: "succeeded".into(),
        host: host.to_string(),
        resource: spec.name,
        docker_id: Some(created.id),
        position,
    })
}

/// A network found on the engine.
pub struct FoundNetwork {
    pub id: String,
    pub name: String,
    pub driver: String,
}

/// Finds a network by id, id prefix or name.
pub async fn find_network(
    state: &AppState,
    host: &str,
    reference: &str,
) -> ApiResult<FoundNetwork> {
    let docker = state.docker.client(host)?;
    let found = docker
        .inspect_network(
            reference,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .map_err(|error| match DockerError::from_bollard(host, error) {
            DockerError::Failed {
                status: 400 | 404, ..
            } => ApiError::not_found("network"),
            other => other.into(),
        })?;
    Ok(FoundNetwork {
        id: found.id.unwrap_or_default(),
        name: found.name.unwrap_or_default(),
        driver: found.driver.unwrap_or_default(),
    })
}

/// Docker's own networks, which no one removes.
pub const PREDEFINED_NETWORKS: &[&str] = &["bridge", "host", "none"];

pub async fn remove_network(
    state: &AppState,
    host: &str,
    reference: &str,
    meta: &CommandMeta,
) -> ApiResult<ResourceOutcome> {
    let FoundNetwork {
        id: network_id,
        name,
        ..
    } = find_network(state, host, reference).await?;
    if PREDEFINED_NETWORKS.contains(&name.as_str()) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("'{name}' is one of Docker's predefined networks and cannot be removed"),
        ));
    }
    let docker = state.docker.client(host)?;
    let operation = network_operation(state, host, &name, meta);
    let op_id = operation.op_id;
    let request = NetworkCommand::RequestRemove {
        op_id,
        host: host.to_string(),
        name: name.clone(),
        network_id: network_id.clone(),
        at: Utc::now(),
    };
    let call = async { docker_result(host, docker.remove_network(&network_id).await) };
    let ((), position) = operation
        .run(request, call, |_| NetworkCommand::RecordDone {
            op_id,
            network_id: None,
            at: Utc::now(),
        })
        .await?;
    Ok(ResourceOutcome {
        operation_id: op_id,
        action: "network.delete".into(),
        status: "succeeded".into(),
        host: host.to_string(),
        resource: name,
        docker_id: Some(network_id),
        position,
    })
}

/// Connects (`connect: Some(aliases)`) or disconnects a container; the caller found both
/// and applied the role's policy.
pub async fn attach_network(
    state: &AppState,
    host: &str,
    network: FoundNetwork,
    container: &crate::operations::ContainerTarget,
    connect: Option<Vec<String>>,
    force: bool,
    meta: &CommandMeta,
) -> ApiResult<ResourceOutcome> {
    let FoundNetwork {
        id: network_id,
        name,
        ..
    } = network;
    let docker = state.docker.client(host)?;
    let operation = network_operation(state, host, &name, meta);
    let op_id = operation.op_id;
    let done = |_: &()| NetworkCommand::RecordDone {
        op_id,
        network_id: None,
        at: Utc::now(),
    };
    let (action, position) = match connect {
        Some(aliases) => {
            let request = NetworkCommand::RequestConnect {
                op_id,
                host: host.to_string(),
                name: name.clone(),
                container_id: container.docker_id.clone(),
                container_name: container.name.clone(),
                aliases: aliases.clone(),
                at: Utc::now(),
            };
            let config = NetworkConnectRequest {
                container: container.docker_id.clone(),
                endpoint_config: (!aliases.is_empty()).then(|| bollard::models::EndpointSettings {
                    aliases: Some(aliases),
                    ..Default::default()
                }),
            };
            let call =
                async { docker_result(host, docker.connect_network(&network_id, config).await) };
            (
                "network.connect",
                operation.run(request, call, done).await?.1,
            )
        }
        None => {
            let request = NetworkCommand::RequestDisconnect {
                op_id,
                host: host.to_string(),
                name: name.clone(),
                container_id: container.docker_id.clone(),
                container_name: container.name.clone(),
                force,
                at: Utc::now(),
            };
            let config = NetworkDisconnectRequest {
                container: container.docker_id.clone(),
                force: Some(force),
            };
            let call =
                async { docker_result(host, docker.disconnect_network(&network_id, config).await) };
            (
                "network.disconnect",
                operation.run(request, call, done).await?.1,
            )
        }
    };
    Ok(ResourceOutcome {
        operation_id: op_id,
        action: action.into(),
        status: "succeeded".into(),
        host: host.to_string(),
        resource: name,
        docker_id: Some(network_id),
        position,
    })
}

// ---------------------------------------------------------------------------------------
// Images

/// `name` → `name:latest`; a reference with a tag or digest is kept.
pub fn normalize_reference(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

fn image_failed(op_id: Uuid, code: String, message: String) -> ImageCommand {
    ImageCommand::RecordFailed {
        op_id,
        code,
        message,
        at: Utc::now(),
    }
}

/// How long a pull may go without a word from the engine before it counts as failed.
const PULL_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How often pull progress is written while layers download.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Records the pull request and starts the pull in the background (202).
pub async fn pull_image(
    state: &AppState,
    host: &str,
    reference: &str,
    meta: &CommandMeta,
) -> ApiResult<AcceptedOperation> {
    // Fails fast on an unknown or unreachable host, before anything is recorded.
    state.docker.ping(host).await?;
    let reference = normalize_reference(reference);
    let op_id = Uuid::now_v7();
    let aggregate_id = resource_key("image", host, &reference).to_string();
    let meta = meta.for_operation(op_id);
    let request = ImageCommand::RequestPull {
        op_id,
        host: host.to_string(),
        reference: reference.clone(),
        at: Utc::now(),
    };
    let position = state
        .commands
        .execute::<Image>(&aggregate_id, request, &meta)
        .await
        .map_err(|e| resource_error("image", e))?
        .map(|cursor| cursor.position);
    let task_state = state.clone();
    let task_host = host.to_string();
    let task_reference = reference.clone();
    // Tracked: a stopping server lets it finish (see `Application::run_until_stopped`).
    state.background.spawn(async move {
        let operation = Operation::<Image> {
            state: &task_state,
            what: "image",
            aggregate_id,
            op_id,
            meta,
            failed: image_failed,
        };
        let outcome = run_pull(&task_state, &task_host, &task_reference, op_id).await;
        let command = match outcome {
            Ok(pulled) => ImageCommand::RecordPulled {
                op_id,
                image_id: pulled.image_id,
                digest: pulled.digest,
                layers: pulled.layers,
                at: Utc::now(),
            },
            Err(PullError::Unavailable(message)) => {
                // The engine went away mid-pull: the reconciler settles it later.
                tracing::warn!(%op_id, %message, "image pull left pending");
                return;
            }
            Err(PullError::Failed { code, message }) => {
                image_failed(op_id, code.as_str().to_string(), message)
            }
        };
        if let Err(error) = operation.record_outcome(command).await {
            tracing::error!(%op_id, error = %error.message, "Failed to record the outcome of an image pull");
        }
    });
    Ok(AcceptedOperation {
        operation_id: op_id,
        action: "image.pull".into(),
        status: "pending".into(),
        host: host.to_string(),
        resource: reference,
        location: format!("/api/v1/operations/{op_id}"),
        position,
    })
}

struct Pulled {
    image_id: String,
    digest: Option<String>,
    layers: u32,
}

enum PullError {
    Unavailable(String),
    Failed { code: ErrorCode, message: String },
}

fn pull_failure(host: &str, error: bollard::errors::Error) -> PullError {
    use bollard::errors::Error as E;
    let (status, message) = match error {
        E::DockerResponseServerError {
            status_code,
            message,
        } => (Some(status_code), message),
        E::DockerStreamError { error } => (None, error),
        other => match DockerError::from_bollard(host, other) {
            DockerError::Unavailable { message, .. } => return PullError::Unavailable(message),
            other => (None, other.to_string()),
        },
    };
    let lower = message.to_lowercase();
    let missing = status == Some(404)
        || lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("does not exist");
    PullError::Failed {
        code: if missing {
            ErrorCode::NotFound
        } else {
            ErrorCode::DockerOperationFailed
        },
        message,
    }
}

/// Per-layer progress, as written to `operation_progress`.
#[derive(Debug, Default, Serialize)]
struct PullProgress {
    status: Option<String>,
    layers: BTreeMap<String, LayerProgress>,
}

#[derive(Debug, Default, Serialize)]
struct LayerProgress {
    status: String,
    current: Option<i64>,
    total: Option<i64>,
}

async fn write_progress(state: &AppState, op_id: Uuid, progress: &PullProgress) {
    let Ok(value) = serde_json::to_value(progress) else {
        return;
    };
    let written = sqlx::query(
        "INSERT INTO operation_progress (op_id, progress) VALUES ($1, $2) \
         ON CONFLICT (op_id) DO UPDATE SET progress = EXCLUDED.progress, updated_at = now()",
    )
    .bind(op_id)
    .bind(value)
    .execute(&state.pool)
    .await;
    if let Err(error) = written {
        tracing::warn!(%op_id, %error, "Failed to write pull progress");
    }
}

async fn run_pull(
    state: &AppState,
    host: &str,
    reference: &str,
    op_id: Uuid,
) -> Result<Pulled, PullError> {
    let docker = state
        .docker
        .client(host)
        .map_err(|e| PullError::Unavailable(e.to_string()))?;
    let options = CreateImageOptions {
        from_image: Some(reference.to_string()),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, None);
    let mut progress = PullProgress::default();
    let mut last_write = tokio::time::Instant::now() - PROGRESS_EVERY;
    loop {
        let next = match tokio::time::timeout(PULL_IDLE_TIMEOUT, stream.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(PullError::Failed {
                    code: ErrorCode::DockerOperationFailed,
                    message: format!(
                        "the engine reported no progress for {} s",
                        PULL_IDLE_TIMEOUT.as_secs()
                    ),
                })
            }
        };
        let Some(item) = next else { break };
        let info = item.map_err(|error| pull_failure(host, error))?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(pull_failure(
                host,
                bollard::errors::Error::DockerStreamError { error },
            ));
        }
        let status = info.status.unwrap_or_default();
        match info.id {
            // Per-layer lines carry the layer id; the others describe the whole pull.
            Some(id) if status != "Pulling from" && !status.starts_with("Pulling from") => {
                let detail = info.progress_detail.unwrap_or_default();
                progress.layers.insert(
                    id,
                    LayerProgress {
                        status,
                        current: detail.current,
                        total: detail.total,
                    },
                );
            }
            _ => progress.status = Some(status),
        }
        if last_write.elapsed() >= PROGRESS_EVERY {
            write_progress(state, op_id, &progress).await;
            last_write = tokio::time::Instant::now();
        }
    }
    write_progress(state, op_id, &progress).await;
    let inspect = docker
        .inspect_image(reference)
        .await
        .map_err(|error| pull_failure(host, error))?;
    let repository = reference
        .split('@')
        .next()
        .map(|r| match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => r,
        })
        .unwrap_or(reference)
        .to_string();
    let digest = inspect
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.starts_with(&format!("{repository}@")))
        .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_string()));
    Ok(Pulled {
        image_id: inspect.id.unwrap_or_default(),
        digest,
        layers: progress.layers.len() as u32,
    })
}

/// Removes an image by id, id prefix or reference.
pub async fn remove_image(
    state: &AppState,
    host: &str,
    reference: &str,
    force: bool,
    meta: &CommandMeta,
) -> ApiResult<ResourceOutcome> {
    let docker = state.docker.client(host)?;
    let found = docker.inspect_image(reference).await.map_err(|error| {
        match DockerError::from_bollard(host, error) {
            DockerError::Failed {
                status: 400 | 404, ..
            } => ApiError::not_found("image"),
            other => other.into(),
        }
    })?;
    let image_id = found.id.clone().unwrap_or_default();
    // Docker resolves a name before an id prefix: `cafe` is the tag `cafe:latest` if the
    // image has it, even when the id starts with `cafe`.
    let tagged = found
        .repo_tags
        .iter()
        .flatten()
        .any(|tag| *tag == normalize_reference(reference));
    let by_id = !tagged
        && !reference.contains('@')
        && image_id
            .trim_start_matches("sha256:")
            .starts_with(reference.trim_start_matches("sha256:"));
    // The aggregate of the tag removed, or of the image itself when removed by id.
    let key = if by_id {
        image_id.clone()
    } else {
        normalize_reference(reference)
    };
    let op_id = Uuid::now_v7();
    let operation = Operation::<Image> {
        state,
        what: "image",
        aggregate_id: resource_key("image", host, &key).to_string(),
        op_id,
        meta: meta.for_operation(op_id),
        failed: image_failed,
    };
    let request = ImageCommand::RequestRemove {
        op_id,
        host: host.to_string(),
        reference: key.clone(),
        image_id: image_id.clone(),
        force,
        at: Utc::now(),
    };
    let target = if by_id { image_id.clone() } else { key.clone() };
    let call = async {
        docker_result(
            host,
            docker
                .remove_image(
                    &target,
                    Some(RemoveImageOptions {
                        force,
                        ..Default::default()
                    }),
                    None,
                )
                .await,
        )
    };
    let (_, position) = operation
        .run(request, call, |items| ImageCommand::RecordRemoved {
            op_id,
            deleted: items.iter().filter_map(|i| i.deleted.clone()).collect(),
            untagged: items.iter().filter_map(|i| i.untagged.clone()).collect(),
            at: Utc::now(),
        })
        .await?;
    Ok(ResourceOutcome {
        operation_id: op_id,
        action: "image.delete".into(),
        status: "succeeded".into(),
        host: host.to_string(),
        resource: key,
        docker_id: Some(image_id),
        position,
    })
}

// ---------------------------------------------------------------------------------------
// Reconciliation

/// resource type, aggregate id, event type, payload, seconds since the request, seconds
/// since the last progress (pulls)
type PendingRow = (String, String, String, serde_json::Value, f64, Option<f64>);

/// Image, volume and network operations left without an outcome are settled from what
/// Docker shows now: done if the resource is in the state the operation leads to, failed
/// (`INTERRUPTED`) if not, left pending if the engine cannot tell. Returns how many were settled.
pub async fn reconcile(state: &AppState, settle_after: Duration) -> anyhow::Result<usize> {
    // Progress matters while an operation runs; a week later the outcome says it all.
    sqlx::query("DELETE FROM operation_progress WHERE updated_at < now() - interval '7 days'")
        .execute(&state.pool)
        .await?;
    let rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT o.resource_type, o.aggregate_id, e.event_type, e.payload::jsonb, EXTRACT(EPOCH FROM now() - e.recorded_at)::float8, \
         (SELECT EXTRACT(EPOCH FROM now() - p.updated_at)::float8 FROM operation_progress p WHERE p.op_id = o.id) \
         FROM operations o CROSS JOIN LATERAL ( \
             SELECT event_type, payload, recorded_at FROM events \
             WHERE aggregate_type = o.resource_type AND aggregate_id = o.aggregate_id \
             AND event_type LIKE '%Requested' AND payload::jsonb -> event_type ->> 'op_id' = o.id::text \
             ORDER BY sequence DESC LIMIT 1) e \
         WHERE o.status = 'pending' AND o.resource_type IN ('image', 'volume', 'network')",
    )
    .fetch_all(&state.pool)
    .await?;
    let mut settled = 0;
    for (resource_type, aggregate_id, event_type, payload, age, progress_age) in rows {
        // A pull may run long: it is settled only once it has made no progress for longer
        // than a running pull may stay silent.
        let (age, wait) = if event_type == "ImagePullRequested" {
            (
                progress_age.map_or(age, |p| p.min(age)),
                settle_after + PULL_IDLE_TIMEOUT,
            )
        } else {
            (age, settle_after)
        };
        if age < wait.as_secs_f64() {
            continue;
        }
        let fields = payload.get(&event_type).cloned().unwrap_or_default();
        let text = |key: &str| {
            fields
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let Ok(op_id) = text("op_id").parse::<Uuid>() else {
            continue;
        };
        let host = text("host");
        let Ok(docker) = state.docker.client(&host) else {
            continue;
        };
        let meta = CommandMeta {
            actor_kind: Some("reconciler"),
            ..CommandMeta::system()
        }
        .for_operation(op_id);
        let interrupted =
            "the server stopped before the outcome was known, and Docker does not show the change"
                .to_string();
        // Some(true): it happened; Some(false): it did not; None: cannot tell now.
        let found = |result: Result<bool, bollard::errors::Error>| match result {
            Ok(present) => Some(present),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Some(false),
            Err(_) => None,
        };
        let op_label = |labels: Option<&HashMap<String, String>>| {
            labels.and_then(|l| l.get(OP_LABEL)) == Some(&op_id.to_string())
        };
        let result = match event_type.as_str() {
            "VolumeCreateRequested" | "VolumeRemoveRequested" => {
                let inspect = docker.inspect_volume(&text("name")).await;
                let mountpoint = inspect
                    .as_ref()
                    .map(|v| v.mountpoint.clone())
                    .unwrap_or_default();
                let creating = event_type == "VolumeCreateRequested";
                // Created: the volume carries this operation's label. Removed: it is gone.
                let present = found(inspect.map(|v| !creating || op_label(Some(&v.labels))));
                let command = match present {
                    None => continue,
                    Some(true) if creating => VolumeCommand::RecordCreated {
                        op_id,
                        mountpoint,
                        at: Utc::now(),
                    },
                    Some(false) if !creating => VolumeCommand::RecordRemoved {
                        op_id,
                        at: Utc::now(),
                    },
                    _ => volume_failed(op_id, "INTERRUPTED".into(), interrupted),
                };
                state
                    .commands
                    .execute_retrying::<Volume>(&aggregate_id, command, &meta, vec![])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            "NetworkCreateRequested"
            | "NetworkRemoveRequested"
            | "NetworkConnectRequested"
            | "NetworkDisconnectRequested" => {
                let reference = match event_type.as_str() {
                    "NetworkCreateRequested" => text("name"),
                    _ => text("network_id"),
                };
                let reference = if reference.is_empty() {
                    text("name")
                } else {
                    reference
                };
                let inspect = docker
                    .inspect_network(
                        &reference,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await;
                let network_id = inspect.as_ref().ok().and_then(|n| n.id.clone());
                let container = text("container_id");
                let present = match event_type.as_str() {
                    "NetworkCreateRequested" => found(inspect.map(|n| op_label(n.labels.as_ref()))),
                    "NetworkRemoveRequested" => found(inspect.map(|_| true)),
                    // Attached: the container lists the network (the network itself lists
                    // running endpoints only).
                    _ => {
                        let network_name = text("name");
                        let attached = docker
                            .inspect_container(
                                &container,
                                None::<bollard::query_parameters::InspectContainerOptions>,
                            )
                            .await
                            .map(|c| {
                                c.network_settings
                                    .and_then(|n| n.networks)
                                    .is_some_and(|n| n.contains_key(&network_name))
                            });
                        found(attached)
                    }
                };
                let done = match (event_type.as_str(), present) {
                    (_, None) => continue,
                    ("NetworkRemoveRequested" | "NetworkDisconnectRequested", Some(present)) => {
                        !present
                    }
                    (_, Some(present)) => present,
                };
                let command = if done {
                    NetworkCommand::RecordDone {
                        op_id,
                        network_id,
                        at: Utc::now(),
                    }
                } else {
                    network_failed(op_id, "INTERRUPTED".into(), interrupted)
                };
                state
                    .commands
                    .execute_retrying::<Network>(&aggregate_id, command, &meta, vec![])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            "ImagePullRequested" | "ImageRemoveRequested" => {
                let pulling = event_type == "ImagePullRequested";
                // The pulled reference; the removed tag, or the image id when removed by id.
                let reference = text("reference");
                let inspect = docker.inspect_image(&reference).await;
                let image_id = inspect.as_ref().ok().and_then(|i| i.id.clone());
                let command = match (found(inspect.map(|_| true)), pulling) {
                    (None, _) => continue,
                    (Some(true), true) => ImageCommand::RecordPulled {
                        op_id,
                        image_id: image_id.unwrap_or_default(),
                        digest: None,
                        layers: 0,
                        at: Utc::now(),
                    },
                    (Some(false), false) => {
                        let by_id = reference == text("image_id");
                        ImageCommand::RecordRemoved {
                            op_id,
                            deleted: if by_id {
                                vec![reference.clone()]
                            } else {
                                vec![]
                            },
                            untagged: if by_id {
                                vec![]
                            } else {
                                vec![reference.clone()]
                            },
                            at: Utc::now(),
                        }
                    }
                    _ => image_failed(op_id, "INTERRUPTED".into(), interrupted),
                };
                state
                    .commands
                    .execute_retrying::<Image>(&aggregate_id, command, &meta, vec![])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            _ => continue,
        };
        match result {
            Ok(()) => settled += 1,
            Err(error) => {
                tracing::warn!(%resource_type, %aggregate_id, %op_id, %error, "operation left pending")
            }
        }
    }
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use super::normalize_reference;

    #[test]
    fn references_get_a_tag_unless_they_have_one() {
        assert_eq!(normalize_reference("busybox"), "busybox:latest");
        assert_eq!(normalize_reference("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            normalize_reference("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/team/app:2"),
            "127.0.0.1:5000/team/app:2"
        );
        let digest = format!("app@sha256:{}", "a".repeat(64));
        assert_eq!(normalize_reference(&digest), digest);
    }
}
