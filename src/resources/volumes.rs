//! Volumes: listed live from each engine, created under the role policy, removed.

use std::collections::{BTreeMap, HashMap};

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};
use chrono::Utc;
use dcp_aggregates::resource_key;
use dcp_aggregates::volume::{Volume, VolumeCommand};
use serde::Serialize;
use utoipa::ToSchema;

use super::operation::{docker_result, volume_failed, Operation};
use super::{ResourceOutcome, Resources, ResourcesError};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::containers::OP_LABEL;
use crate::denials::Refused;
use crate::docker::fanout::{hosts_of, list_on, HostAnswer};
use crate::docker::resource_policy::{check_volume, CreateVolumeRequest};
use crate::docker::{DockerError, DockerHosts};

/// A volume as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VolumeView {
    pub host: String,
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    /// `local` or `global`.
    pub scope: Option<String>,
    /// As Docker reports it (RFC 3339).
    pub created_at: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Volumes, with how each host answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct VolumeList {
    pub items: Vec<VolumeView>,
    /// Without `host`, every host is listed at once; one that failed is `unreachable` here.
    pub hosts: Vec<HostAnswer>,
}

impl Resources {
    /// The volumes of `host`, or of every host at once.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local")), err(level = "debug"))]
    pub async fn list_volumes(&self, host: Option<&str>) -> Result<VolumeList, ResourcesError> {
        let host = hosts_of(self.hosts.as_ref(), host)?;
        let (mut views, hosts) = list_on(self.hosts.as_ref(), host, |host, docker| async move {
            let listed = docker
                .list_volumes(Some(ListVolumesOptions::default()))
                .await
                .map_err(|error| DockerError::from_bollard(&host, error))?;
            Ok(listed
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|volume| VolumeView {
                    host: host.clone(),
                    name: volume.name,
                    driver: volume.driver,
                    mountpoint: volume.mountpoint,
                    scope: volume.scope.map(|s| s.to_string()),
                    created_at: volume.created_at.map(|t| t.to_string()),
                    labels: volume.labels.into_iter().collect(),
                })
                .collect::<Vec<_>>())
        })
        .await?;
        views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.host.cmp(&b.host)));
        Ok(VolumeList {
            items: views,
            hosts,
        })
    }

    /// Creates a volume on `host` (default `local`) as `principal`'s policy allows (a
    /// refusal recorded as a denied request of `route`).
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local")), err(level = "debug"))]
    pub async fn create_volume(
        &self,
        principal: &Principal,
        host: Option<&str>,
        request: CreateVolumeRequest,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<ResourceOutcome, ResourcesError> {
        let host = self.hosts.enabled_host(host)?;
        let host = host.as_str();
        let verdict = check_volume(request, principal.role);
        let spec = self
            .denials
            .enforce(principal, meta, route, verdict)
            .await?;
        let operation = Operation::<Volume>::new(
            &self.commands,
            resource_key("volume", host, &spec.name).to_string(),
            meta,
            volume_failed,
        );
        let op_id = operation.op_id;
        let docker = self.hosts.client(host)?;
        // Docker answers a create of an existing volume with that volume: refuse it instead.
        match docker.inspect_volume(&spec.name).await {
            Ok(_) => {
                return Err(ResourcesError::Exists {
                    kind: "volume",
                    name: spec.name,
                })
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

    /// Removes volume `name` from `host` (default `local`), unless the platform protects it
    /// from `principal` (admins give a reason, `meta.reason`; a refusal is recorded as a
    /// denied request of `route`).
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), name = %name), err(level = "debug"))]
    pub async fn remove_volume(
        &self,
        principal: &Principal,
        (host, name): (Option<&str>, &str),
        force: bool,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<ResourceOutcome, ResourcesError> {
        if dcp_aggregates::operation::validate_name("name", name).is_err() {
            return Err(ResourcesError::Invalid {
                field: "name",
                message: "a volume name".into(),
            });
        }
        let host = self.hosts.enabled_host(host)?;
        let host = host.as_str();
        let docker = self.hosts.client(host)?;
        let found = docker.inspect_volume(name).await.map_err(|error| {
            match DockerError::from_bollard(host, error) {
                DockerError::Failed { status: 404, .. } => ResourcesError::NotFound("volume"),
                other => other.into(),
            }
        })?;
        let names = [found.name.clone()];
        self.guard_protected(principal, (host, &names, &[]), meta, route)
            .await?;
        let operation = Operation::<Volume>::new(
            &self.commands,
            resource_key("volume", host, &found.name).to_string(),
            meta,
            volume_failed,
        );
        let op_id = operation.op_id;
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
}
