//! Networks: listed live from each engine, created under the role policy, removed, and
//! containers connected to and disconnected from them.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::ListNetworksOptions;
use chrono::Utc;
use dcp_aggregates::network::{Network, NetworkCommand};
use dcp_aggregates::operation::OWNER_LABEL;
use dcp_aggregates::resource_key;
use serde::Serialize;
use utoipa::ToSchema;

use super::operation::{docker_result, network_failed, Operation};
use super::{ResourceOutcome, Resources, ResourcesError};
use crate::auth::policy::Judgement;
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::containers::{valid_reference, ContainerTarget, Intent, OP_LABEL};
use crate::denials::Refused;
use crate::docker::fanout::{hosts_of, list_on, HostAnswer};
use crate::docker::reach;
use crate::docker::resource_policy::{check_network, CreateNetworkRequest, PREDEFINED_NETWORKS};
use crate::docker::{DockerError, DockerHosts};

/// A network as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NetworkView {
    pub host: String,
    pub id: String,
    pub name: String,
    pub driver: Option<String>,
    pub scope: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    /// As Docker reports it (RFC 3339).
    pub created_at: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Networks, with how each host answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkList {
    pub items: Vec<NetworkView>,
    /// Without `host`, every host is listed at once; one that failed is `unreachable` here.
    pub hosts: Vec<HostAnswer>,
}

/// A network found on the engine.
pub struct FoundNetwork {
    pub id: String,
    pub name: String,
}

/// A network as a request names it: id, id prefix or name, on a host (default `local`).
#[derive(Debug, Clone, Copy)]
pub struct NetworkOnHost<'a> {
    pub host: Option<&'a str>,
    pub reference: &'a str,
}

/// What to do with a container on a network.
#[derive(Debug, Clone)]
pub enum Attachment {
    /// Connect it, with these extra DNS names.
    Connect { aliases: Vec<String> },
    /// Disconnect it (`force`: even if it is not running cleanly).
    Disconnect { force: bool },
}

impl Resources {
    /// The networks of `host`, or of every host at once.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local")), err(level = "debug"))]
    pub async fn list_networks(&self, host: Option<&str>) -> Result<NetworkList, ResourcesError> {
        let host = hosts_of(self.hosts.as_ref(), host)?;
        let (networks, hosts) = list_on(self.hosts.as_ref(), host, |host, docker| async move {
            let networks = docker
                .list_networks(Some(ListNetworksOptions::default()))
                .await
                .map_err(|error| DockerError::from_bollard(&host, error))?;
            Ok(networks
                .into_iter()
                .map(|n| (host.clone(), n))
                .collect::<Vec<_>>())
        })
        .await?;
        let mut views: Vec<NetworkView> = networks
            .into_iter()
            .map(|(host, network)| NetworkView {
                host,
                id: network.id.unwrap_or_default(),
                name: network.name.unwrap_or_default(),
                driver: network.driver,
                scope: network.scope,
                internal: network.internal.unwrap_or(false),
                attachable: network.attachable.unwrap_or(false),
                created_at: network.created.map(|t| t.to_string()),
                labels: network.labels.unwrap_or_default().into_iter().collect(),
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.host.cmp(&b.host)));
        Ok(NetworkList {
            items: views,
            hosts,
        })
    }

    /// Creates a network on `host` (default `local`) as `principal`'s policy allows (a
    /// refusal recorded as a denied request of `route`).
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local")), err(level = "debug"))]
    pub async fn create_network(
        &self,
        principal: &Principal,
        host: Option<&str>,
        request: CreateNetworkRequest,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<ResourceOutcome, ResourcesError> {
        let host = self.hosts.enabled_host(host)?;
        let host = host.as_str();
        let verdict = check_network(request, principal.role);
        let spec = self
            .denials
            .enforce(principal, meta, route, verdict)
            .await?;
        let docker = self.hosts.client(host)?;
        match docker
            .inspect_network(
                &spec.name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => {
                return Err(ResourcesError::Exists {
                    kind: "network",
                    name: spec.name,
                })
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => return Err(DockerError::from_bollard(host, error).into()),
        }
        let operation = self.network_operation(host, &spec.name, meta);
        let op_id = operation.op_id;
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(OP_LABEL.to_string(), op_id.to_string());
        // Whose it is decides who may join it (an admin's network isolates: see `docker::reach`).
        labels.insert(OWNER_LABEL.to_string(), principal.role.as_str().to_string());
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

    /// Removes a network (not Docker's own `bridge`, `host`, `none`) from `host`, unless the
    /// platform protects it from `principal` (admins give a reason, `meta.reason`; a refusal
    /// is recorded as a denied request of `route`).
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), reference = %reference), err(level = "debug"))]
    pub async fn remove_network(
        &self,
        principal: &Principal,
        (host, reference): (Option<&str>, &str),
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<ResourceOutcome, ResourcesError> {
        check_network_reference(reference)?;
        let host = self.hosts.enabled_host(host)?;
        let host = host.as_str();
        let FoundNetwork {
            id: network_id,
            name,
            ..
        } = self.find_network(host, reference).await?;
        if PREDEFINED_NETWORKS.contains(&name.as_str()) {
            return Err(ResourcesError::Predefined(name));
        }
        let names = [name.clone()];
        self.guard_protected(principal, (host, &[], &names), meta, route)
            .await?;
        let docker = self.hosts.client(host)?;
        let operation = self.network_operation(host, &name, meta);
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

    /// Connects a container to, or disconnects it from, the network `reference` names on
    /// `host`. Connecting is judged as entering the container (what it reaches) and joining
    /// the network (its driver, whether it is internal, an admin's or protected);
    /// disconnecting as acting on both (whether either is protected). A refusal is recorded
    /// as a denied request of `route`; `meta.reason` is an admin's, for what the platform
    /// protects.
    #[tracing::instrument(skip_all, fields(host = network.host.unwrap_or("local"), network = network.reference), err(level = "debug"))]
    pub async fn attach(
        &self,
        principal: &Principal,
        network: NetworkOnHost<'_>,
        container: &str,
        attachment: Attachment,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<ResourceOutcome, ResourcesError> {
        let NetworkOnHost { host, reference } = network;
        check_network_reference(reference)?;
        if !valid_reference(container) {
            return Err(ResourcesError::Invalid {
                field: "container",
                message: "a container id, id prefix or name".into(),
            });
        }
        if let Attachment::Connect { aliases } = &attachment {
            check_aliases(aliases)?;
        }
        let host = self.hosts.enabled_host(host)?;
        // Both judged first: a refused or impossible request records nothing (not even the
        // discovery of the container).
        let network = self.find_network(&host, reference).await?;
        let docker = self.hosts.client(&host)?;
        let names = [network.name.clone()];
        let around =
            reach::surroundings(&docker, &host, &[], &names, self.containers.deployment()).await?;
        let mut joining = around
            .networks
            .get(&network.name)
            .map(|facts| reach::judge_network(&network.name, facts))
            .unwrap_or_default();
        let intent = match attachment {
            Attachment::Connect { .. } => Intent::Enter,
            Attachment::Disconnect { .. } => {
                joining = Judgement {
                    protected: joining.protected,
                    ..Judgement::default()
                };
                Intent::Act
            }
        };
        let resolved = self
            .containers
            .resolve_for(principal, (&host, container), intent, joining, meta, route)
            .await?;
        let target = self.containers.target_of(&resolved, meta).await?;
        self.attach_network(&host, network, &target, attachment, meta)
            .await
    }

    /// Finds a network by id, id prefix or name.
    async fn find_network(
        &self,
        host: &str,
        reference: &str,
    ) -> Result<FoundNetwork, ResourcesError> {
        let docker = self.hosts.client(host)?;
        let found = docker
            .inspect_network(
                reference,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .map_err(|error| {
                ResourcesError::lookup("network", DockerError::from_bollard(host, error))
            })?;
        Ok(FoundNetwork {
            id: found.id.unwrap_or_default(),
            name: found.name.unwrap_or_default(),
        })
    }

    /// Connects or disconnects a container; the caller found both and applied the role's policy.
    async fn attach_network(
        &self,
        host: &str,
        network: FoundNetwork,
        container: &ContainerTarget,
        attachment: Attachment,
        meta: &CommandMeta,
    ) -> Result<ResourceOutcome, ResourcesError> {
        let FoundNetwork {
            id: network_id,
            name,
            ..
        } = network;
        let docker = self.hosts.client(host)?;
        let operation = self.network_operation(host, &name, meta);
        let op_id = operation.op_id;
        let done = |_: &()| NetworkCommand::RecordDone {
            op_id,
            network_id: None,
            at: Utc::now(),
        };
        let (action, position) = match attachment {
            Attachment::Connect { aliases } => {
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
                    endpoint_config: (!aliases.is_empty()).then(|| {
                        bollard::models::EndpointSettings {
                            aliases: Some(aliases),
                            ..Default::default()
                        }
                    }),
                };
                let call = async {
                    docker_result(host, docker.connect_network(&network_id, config).await)
                };
                (
                    "network.connect",
                    operation.run(request, call, done).await?.1,
                )
            }
            Attachment::Disconnect { force } => {
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
                let call = async {
                    docker_result(host, docker.disconnect_network(&network_id, config).await)
                };
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

    fn network_operation(
        &self,
        host: &str,
        name: &str,
        meta: &CommandMeta,
    ) -> Operation<'_, Network> {
        Operation::new(
            &self.commands,
            resource_key("network", host, name).to_string(),
            meta,
            network_failed,
        )
    }
}

fn check_network_reference(reference: &str) -> Result<(), ResourcesError> {
    if valid_reference(reference) {
        Ok(())
    } else {
        Err(ResourcesError::Invalid {
            field: "id",
            message: "a network id, id prefix or name".into(),
        })
    }
}

fn check_aliases(aliases: &[String]) -> Result<(), ResourcesError> {
    if aliases.len() > 32 {
        return Err(ResourcesError::Invalid {
            field: "aliases",
            message: "at most 32 aliases".into(),
        });
    }
    if let Some(bad) = aliases
        .iter()
        .find(|a| dcp_aggregates::operation::validate_name("aliases", a).is_err())
    {
        return Err(ResourcesError::Invalid {
            field: "aliases",
            message: format!("'{bad}' is not a valid alias (letters, digits, '_', '.', '-')"),
        });
    }
    Ok(())
}
