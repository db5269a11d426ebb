//! Creating a container: the request is checked against the role policy (with what the
//! engine says of its volumes and network), recorded, performed with the `dcp.op` label that
//! makes it findable after a crash, and its outcome recorded with the `(host, docker id)`
//! mapping; it is started if asked.

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
use crate::denials::Refused;
use crate::docker::policy::{self, container_config, CreateContainerRequest};
use crate::docker::reach::{self, Deployment, Surroundings};
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
        route: Refused<'_>,
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
        route: Refused<'_>,
    ) -> Result<(), ContainersError> {
        let around = request_surroundings(&self.hosts, &self.deployment, host, request).await?;
        let verdict = policy::check(request, principal.role, &around);
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
            .create_container(
                Some(options),
                container_config(request, &[(OP_LABEL, op_id.to_string())]),
            )
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

/// What the engine says of the request's named volumes and network; a network that does
/// not exist is refused here.
async fn request_surroundings(
    hosts: &HostRegistry,
    deployment: &Deployment,
    host: &str,
    request: &CreateContainerRequest,
) -> Result<Surroundings, ContainersError> {
    let docker = hosts.client(host)?;
    let volumes = policy::request_volumes(request);
    let networks: Vec<String> = policy::request_network(request).into_iter().collect();
    let around = reach::surroundings(&docker, host, &volumes, &networks, deployment).await?;
    if let Some(missing) = networks.iter().find(|n| !around.networks.contains_key(*n)) {
        return Err(ContainersError::Invalid {
            field: "network".into(),
            message: format!("no network named '{missing}'"),
        });
    }
    Ok(around)
}
