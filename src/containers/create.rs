//! Creating a container: the request is checked against the role policy (with what the
//! engine says of its volumes and network), recorded, performed with the `dcp.op` label that
//! makes it findable after a crash, and its outcome recorded with the `(host, docker id)`
//! mapping; it is started if asked.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
use chrono::Utc;
use dcp_aggregates::container::{Container, ContainerAction, ContainerCommand};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::labels::OP_LABEL;
use super::{ContainerTarget, Containers, ContainersError};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::docker::policy::{self, CreateContainerRequest};
use crate::docker::{DockerError, DockerHosts};
use crate::errors::ServiceError;
use crate::event_store::SideWrite;
use crate::hosts::HostRegistry;

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

impl Containers {
    /// Checks `request` against `principal`'s policy on `host` (default `local`), then creates
    /// the container and starts it if asked. A refused option is recorded as a denied
    /// request of `route`.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local")), err(level = "debug"))]
    pub async fn create(
        &self,
        principal: &Principal,
        host: Option<&str>,
        request: CreateContainerRequest,
        meta: &CommandMeta,
        route: &str,
    ) -> Result<CreateOutcome, ContainersError> {
        let host = self.hosts.enabled_host(host)?;
        self.check_policy(principal, &host, &request, meta, route)
            .await?;
        let op_id = Uuid::now_v7();
        let aggregate_id = Uuid::now_v7();
        let meta = meta.for_operation(op_id);
        let command = ContainerCommand::RequestCreate {
            op_id,
            host: host.clone(),
            spec: serde_json::to_value(&request).map_err(anyhow::Error::from)?,
            at: Utc::now(),
        };
        self.commands
            .execute::<Container>(&aggregate_id.to_string(), command, &meta)
            .await?;
        let (created, image_id) = self
            .create_on_docker(&host, &request, op_id, aggregate_id, &meta)
            .await?;
        let mut outcome = CreateOutcome {
            operation_id: op_id,
            host: host.clone(),
            container_id: created.docker_id.clone(),
            name: created.name.clone(),
            started: false,
            start_error: None,
            position: self
                .record_created(&created, image_id, op_id, &meta)
                .await?,
        };
        if request.start == Some(true) {
            // The container exists whatever the start does: a failed start is reported
            // with it, not as a failed create (a client retrying would make a second one).
            match self
                .run_action(&created, ContainerAction::Start, &meta)
                .await
            {
                Ok(started) => {
                    outcome.started = true;
                    outcome.position = started.position.or(outcome.position);
                }
                Err(error) => {
                    outcome.start_error = Some(format!(
                        "{}: {}",
                        error.code().as_str(),
                        error.public_message()
                    ))
                }
            }
        }
        Ok(outcome)
    }

    /// The role policy for `request` on `host`, with what the engine says of its volumes
    /// and network.
    pub(super) async fn check_policy(
        &self,
        principal: &Principal,
        host: &str,
        request: &CreateContainerRequest,
        meta: &CommandMeta,
        route: &str,
    ) -> Result<(), ContainersError> {
        let facts = engine_facts(&self.hosts, host, request).await?;
        let verdict = policy::check(request, principal.role, &facts);
        self.denials
            .enforce(principal, meta, route, verdict)
            .await?;
        Ok(())
    }

    /// Creates the container on Docker; a refusal is recorded as the create's failure, an
    /// engine that does not answer leaves the create pending (the reconciler finds the
    /// container by its label, or records the failure).
    async fn create_on_docker(
        &self,
        host: &str,
        request: &CreateContainerRequest,
        op_id: Uuid,
        aggregate_id: Uuid,
        meta: &CommandMeta,
    ) -> Result<(ContainerTarget, Option<String>), ContainersError> {
        let docker = self.hosts.client(host)?;
        let options = CreateContainerOptions {
            name: request.name.clone(),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(options), container_config(request, op_id))
            .await
            .map_err(|error| DockerError::from_bollard(host, error));
        let docker_id = match created {
            Ok(created) => created.id,
            Err(error @ DockerError::Unavailable { .. }) => {
                return Err(ContainersError::Pending {
                    operation_id: op_id,
                    error,
                })
            }
            Err(error) => {
                let refusal = match &error {
                    DockerError::Failed {
                        status: 404,
                        message,
                    } => ContainersError::ImageMissing {
                        message: message.clone(),
                    },
                    other => ContainersError::Docker(other.clone()),
                };
                let failed = ContainerCommand::RecordFailed {
                    op_id,
                    code: refusal.code().as_str().into(),
                    message: error.to_string(),
                    at: Utc::now(),
                };
                self.commands
                    .execute_retrying::<Container>(&aggregate_id.to_string(), failed, meta, vec![])
                    .await?;
                return Err(refusal);
            }
        };
        let inspect = docker
            .inspect_container(&docker_id, None::<InspectContainerOptions>)
            .await
            .ok();
        let image_id = inspect.as_ref().and_then(|i| i.image.clone());
        let name = inspect
            .and_then(|i| i.name)
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let created = ContainerTarget {
            host: host.to_string(),
            docker_id,
            name,
            aggregate_id,
        };
        Ok((created, image_id))
    }

    /// Records the create's outcome with the `(host, docker id)` mapping; the position.
    async fn record_created(
        &self,
        created: &ContainerTarget,
        image_id: Option<String>,
        op_id: Uuid,
        meta: &CommandMeta,
    ) -> Result<Option<i64>, ContainersError> {
        let recorded = ContainerCommand::RecordCreated {
            op_id,
            docker_id: created.docker_id.clone(),
            name: created.name.clone(),
            image_id,
            at: Utc::now(),
        };
        let mapping = SideWrite::MapContainer {
            host: created.host.clone(),
            docker_id: created.docker_id.clone(),
            aggregate_id: created.aggregate_id,
        };
        Ok(self
            .commands
            .execute_retrying::<Container>(
                &created.aggregate_id.to_string(),
                recorded,
                meta,
                vec![mapping],
            )
            .await?
            .map(|cursor| cursor.position))
    }
}

/// Looks up, on the engine, whether the request's named volumes and network reach the host.
async fn engine_facts(
    hosts: &HostRegistry,
    host: &str,
    request: &CreateContainerRequest,
) -> Result<policy::EngineFacts, ContainersError> {
    let docker = hosts.client(host)?;
    let mut facts = policy::EngineFacts::default();
    // Only well-formed names are looked up; the policy refuses the others.
    let named = request
        .volumes
        .iter()
        .flatten()
        .filter(|v| policy::volume_name("volumes.source", &v.source).is_ok());
    for volume in named {
        match docker.inspect_volume(&volume.source).await {
            Ok(found) => {
                // A tmpfs volume holds nothing of the host; other options can mount a
                // host path or device.
                let options: BTreeMap<String, String> = found.options.into_iter().collect();
                if found.driver != "local"
                    || !(options.is_empty() || crate::docker::resource_policy::is_tmpfs(&options))
                {
                    facts.host_backed_volumes.push(volume.source.clone());
                }
            }
            // Missing: Docker creates a plain local volume.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => return Err(DockerError::from_bollard(host, error).into()),
        }
    }
    if let Some(network) = request.network.as_deref().filter(|n| {
        !matches!(*n, "bridge" | "none" | "default" | "host") && !n.starts_with("container:")
    }) {
        match docker
            .inspect_network(
                network,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(found) => {
                if found.driver.as_deref() != Some("bridge") {
                    facts.host_attached_network = Some(network.to_string());
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(ContainersError::Invalid {
                    field: "network".into(),
                    message: format!("no network named '{network}'"),
                });
            }
            Err(error) => return Err(DockerError::from_bollard(host, error).into()),
        }
    }
    Ok(facts)
}

/// The Docker configuration of a checked request: only the fields the request type has,
/// plus the `dcp.op` label that makes the creation findable after a crash.
pub fn container_config(
    request: &crate::docker::policy::CreateContainerRequest,
    op_id: Uuid,
) -> bollard::models::ContainerCreateBody {
    let mut labels: HashMap<String, String> = request
        .labels
        .clone()
        .unwrap_or_default()
        .0
        .into_iter()
        .collect();
    labels.insert(OP_LABEL.to_string(), op_id.to_string());
    let (exposed, bindings) = ports_of(request);
    let binds = binds_of(request);
    let restart_policy = request.restart_policy.as_ref().map(restart_policy_of);
    let devices = request.devices.as_deref().map(devices_of);
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

/// Exposed ports (`80/tcp`) and their bindings on the host, when published.
fn ports_of(
    request: &CreateContainerRequest,
) -> (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>) {
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
    (exposed, bindings)
}

/// Named volumes and host binds, as Docker's `source:target[:ro]`.
fn binds_of(request: &CreateContainerRequest) -> Vec<String> {
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
    binds
}

fn restart_policy_of(p: &crate::docker::policy::RestartPolicyRequest) -> RestartPolicy {
    RestartPolicy {
        name: Some(match p.name.as_str() {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: p.max_retries.map(i64::from),
    }
}

/// `host[:container[:permissions]]` as Docker's device mappings.
fn devices_of(devices: &[String]) -> Vec<DeviceMapping> {
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
}
