//! From a reference (id, id prefix or name) to the container and the aggregate that records
//! what dcp does to it; a container dcp has not seen before is discovered (recorded) first.

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::InspectContainerOptions;
use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::container::{Container, ContainerCommand};
use dcp_projections::GlobalLogReader;
use uuid::Uuid;

use super::labels::OP_LABEL;
use super::{ContainerTarget, Containers, ContainersError};
use crate::commands::{CommandError, CommandMeta};
use crate::docker::{DockerError, DockerHosts};
use crate::event_store::SideWrite;

impl Containers {
    /// The container `reference` names on `host` and its aggregate.
    #[tracing::instrument(skip_all, fields(host = %host, reference = %reference), err(level = "debug"))]
    pub async fn resolve(
        &self,
        host: &str,
        reference: &str,
        meta: &CommandMeta,
    ) -> Result<ContainerTarget, ContainersError> {
        let docker = self.hosts.client(host)?;
        let inspect = docker
            .inspect_container(reference, None::<InspectContainerOptions>)
            .await
            .map_err(|error| ContainersError::lookup(DockerError::from_bollard(host, error)))?;
        self.resolve_inspected(host, &inspect, meta).await
    }

    /// The container `inspect` shows on `host` and its aggregate.
    pub(super) async fn resolve_inspected(
        &self,
        host: &str,
        inspect: &ContainerInspectResponse,
        meta: &CommandMeta,
    ) -> Result<ContainerTarget, ContainersError> {
        let target = |aggregate_id| ContainerTarget {
            host: host.to_string(),
            docker_id: inspect.id.clone().unwrap_or_default(),
            name: inspect
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            aggregate_id,
        };
        let docker_id = inspect.id.clone().unwrap_or_default();
        if let Some(aggregate_id) = self.aggregate_of(host, &docker_id).await? {
            return Ok(target(aggregate_id));
        }
        let unmapped = target(Uuid::nil());
        if let Some(aggregate_id) = self.claim_being_created(&unmapped, inspect, meta).await? {
            return Ok(target(aggregate_id));
        }
        for _ in 0..2 {
            if let Some(aggregate_id) = self.aggregate_of(host, &unmapped.docker_id).await? {
                return Ok(target(aggregate_id));
            }
            match self.discover(&unmapped, inspect, meta).await {
                Ok(aggregate_id) => return Ok(target(aggregate_id)),
                // Discovered by someone else meanwhile: use theirs.
                Err(CommandError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ContainersError::DiscoveredTwice)
    }

    /// A container not mapped yet that dcp is still creating or recreating (or whose
    /// creation outcome was lost) carries its operation's label and belongs to that operation's aggregate: the
    /// creation is recorded there instead of the container being discovered. A recreate's
    /// replacement is mapped when the recreate is recorded (until then, operations on it
    /// wait their turn); its aggregate is returned as is.
    async fn claim_being_created(
        &self,
        container: &ContainerTarget,
        inspect: &ContainerInspectResponse,
        meta: &CommandMeta,
    ) -> Result<Option<Uuid>, ContainersError> {
        let op_label = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|labels| labels.get(OP_LABEL))
            .and_then(|op| op.parse::<Uuid>().ok());
        let Some(op_id) = op_label else {
            return Ok(None);
        };
        if let Some(aggregate_id) = self.aggregate_of_recreate(op_id).await? {
            return Ok(Some(aggregate_id));
        }
        self.claim_created(container, inspect.image.clone(), op_id, meta)
            .await?;
        Ok(None)
    }

    /// Records a container dcp has not seen before, with its `(host, docker id)` mapping.
    async fn discover(
        &self,
        container: &ContainerTarget,
        inspect: &ContainerInspectResponse,
        meta: &CommandMeta,
    ) -> Result<Uuid, CommandError<dcp_aggregates::container::ContainerError>> {
        let aggregate_id = Uuid::now_v7();
        let command = ContainerCommand::Discover {
            host: container.host.clone(),
            docker_id: container.docker_id.clone(),
            name: container.name.clone(),
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
            host: container.host.clone(),
            docker_id: container.docker_id.clone(),
            aggregate_id,
        };
        self.commands
            .execute_with::<Container>(
                &aggregate_id.to_string(),
                command,
                &meta.observed_by_docker(),
                vec![mapping],
            )
            .await?;
        Ok(aggregate_id)
    }

    /// Records `container` as the outcome of create `op_id`, if that create is still pending.
    async fn claim_created(
        &self,
        container: &ContainerTarget,
        image_id: Option<String>,
        op_id: Uuid,
        meta: &CommandMeta,
    ) -> Result<(), ContainersError> {
        // The operations read model, or (when it has not caught up with a create made a
        // moment ago) the store itself.
        let mut aggregate: Option<String> =
            sqlx::query_scalar("SELECT aggregate_id FROM operations WHERE id = $1")
                .bind(op_id)
                .fetch_optional(self.reads.pool())
                .await?;
        if aggregate.is_none() {
            aggregate = GlobalLogReader::aggregate_requesting(
                self.reads.pool(),
                Container::TYPE,
                "create",
                op_id,
            )
            .await?;
        }
        let Some(aggregate_id) = aggregate.and_then(|a| a.parse::<Uuid>().ok()) else {
            return Ok(());
        };
        let command = ContainerCommand::RecordCreated {
            op_id,
            docker_id: container.docker_id.clone(),
            name: container.name.clone(),
            image_id,
            at: Utc::now(),
        };
        let mapping = SideWrite::MapContainer {
            host: container.host.clone(),
            docker_id: container.docker_id.clone(),
            aggregate_id,
        };
        match self
            .commands
            .execute_retrying::<Container>(
                &aggregate_id.to_string(),
                command,
                &meta.for_operation(op_id),
                vec![mapping],
            )
            .await
        {
            // Recorded now, or by the creating request meanwhile, or the create ended otherwise.
            Ok(_) | Err(CommandError::Conflict(_) | CommandError::Rejected(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// The aggregate `(host, docker_id)` is mapped to.
    pub(crate) async fn aggregate_of(
        &self,
        host: &str,
        docker_id: &str,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT aggregate_id FROM container_ids WHERE host = $1 AND docker_id = $2",
        )
        .bind(host)
        .bind(docker_id)
        .fetch_optional(self.reads.pool())
        .await
    }

    /// The container a recreate `op_id` was asked for, if `op_id` is a recreate.
    async fn aggregate_of_recreate(&self, op_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
        let aggregate = GlobalLogReader::aggregate_requesting(
            self.reads.pool(),
            Container::TYPE,
            "recreate",
            op_id,
        )
        .await?;
        Ok(aggregate.and_then(|id| id.parse().ok()))
    }
}
