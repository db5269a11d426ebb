//! What the judgement needs from the engine: one container resolved once (its effective
//! configuration), and the named volumes and networks around it. Lookups only; the
//! judgement itself is pure.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerInspectResponse, HostConfig};
use bollard::query_parameters::{
    InspectContainerOptions, InspectNetworkOptions, ListContainersOptions,
};
use bollard::Docker;
use dcp_aggregates::operation::{OWNER_LABEL, SHARED_LABEL};

use super::{
    judge, reaching_options, Deployment, Judgement, NetworkFacts, Subject, Surroundings,
    VolumeFacts,
};
use crate::docker::resource_policy::is_tmpfs;
use crate::docker::{DockerError, LOCAL_HOST};

/// One container, looked up once: every decision about it and the operation itself use
/// this Docker id, so a rename between two lookups cannot swap the container.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub host: String,
    pub inspect: ContainerInspectResponse,
}

impl Resolved {
    pub fn id(&self) -> &str {
        self.inspect.id.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.inspect
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
    }

    pub fn labels(&self) -> Option<&HashMap<String, String>> {
        self.inspect.config.as_ref().and_then(|c| c.labels.as_ref())
    }

    /// The named volumes it mounts.
    pub fn volumes(&self) -> Vec<String> {
        self.inspect
            .mounts
            .iter()
            .flatten()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| m.name.clone())
            .collect()
    }

    /// The networks it is attached to.
    pub fn networks(&self) -> Vec<String> {
        self.inspect
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .map(|n| {
                n.keys()
                    .filter(|name| !super::is_special_network(name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Why it is protected, if it is.
    pub async fn protection(&self, docker: &Docker, deployment: &Deployment) -> Option<String> {
        let project = own_project(docker, &self.host, deployment).await;
        deployment.protects(
            &self.host,
            &[self.id(), self.name()],
            self.labels(),
            project.as_deref(),
        )
    }

    /// The whole judgement of this container: its options, its volumes and networks, and
    /// whether it is protected.
    pub async fn judge(
        &self,
        docker: &Docker,
        deployment: &Deployment,
    ) -> Result<Judgement, DockerError> {
        let volumes = self.volumes();
        let networks = self.networks();
        let around = surroundings(docker, &self.host, &volumes, &networks, deployment).await?;
        let protected = self.protection(docker, deployment).await;
        let empty = HostConfig::default();
        Ok(judge(
            Subject {
                host_config: self.inspect.host_config.as_ref().unwrap_or(&empty),
                volumes: &volumes,
                networks: &networks,
                protected: protected.as_deref(),
            },
            &around,
        ))
    }
}

/// Looks up `reference` on `host` once.
pub async fn resolve(
    docker: &Docker,
    host: &str,
    reference: &str,
) -> Result<Resolved, DockerError> {
    let inspect = docker
        .inspect_container(reference, None::<InspectContainerOptions>)
        .await
        .map_err(|error| DockerError::from_bollard(host, error))?;
    Ok(Resolved {
        host: host.to_string(),
        inspect,
    })
}

/// dcp's own compose project, when `host` is the engine dcp runs on.
pub async fn own_project(docker: &Docker, host: &str, deployment: &Deployment) -> Option<String> {
    if host != LOCAL_HOST {
        return None;
    }
    deployment
        .own_project(|id| async move {
            match docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(own) => Ok(own.config.and_then(|c| c.labels)),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(None),
                Err(_) => Err(()),
            }
        })
        .await
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A container using a volume or attached to a network, as the list shows it: enough to
/// tell whether it is protected without inspecting it.
struct User {
    id: String,
    name: String,
    labels: HashMap<String, String>,
}

/// The containers using a volume or attached to a network, as `filter` (`volume` or
/// `network`) finds them: one list call.
async fn users_of(
    docker: &Docker,
    host: &str,
    filter: &str,
    name: &str,
) -> Result<Vec<User>, DockerError> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            filter.to_string(),
            vec![name.to_string()],
        )])),
        ..Default::default()
    };
    let listed = docker
        .list_containers(Some(options))
        .await
        .map_err(|error| DockerError::from_bollard(host, error))?;
    Ok(listed
        .into_iter()
        .filter_map(|summary| {
            let name = summary
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            Some(User {
                id: summary.id?,
                name,
                labels: summary.labels.unwrap_or_default(),
            })
        })
        .collect())
}

/// Why `user` is protected, if it is.
fn user_protection(
    user: &User,
    host: &str,
    deployment: &Deployment,
    project: Option<&str>,
) -> Option<String> {
    deployment.protects(host, &[&user.id, &user.name], Some(&user.labels), project)
}

/// What the engine says of the named `volumes` and `networks` on `host`. A volume that does
/// not exist is left out (Docker creates a plain local one); so is a network that does not
/// exist (the caller refuses it when it matters).
pub async fn surroundings(
    docker: &Docker,
    host: &str,
    volumes: &[String],
    networks: &[String],
    deployment: &Deployment,
) -> Result<Surroundings, DockerError> {
    let project = own_project(docker, host, deployment).await;
    let project = project.as_deref();
    let mut around = Surroundings::default();
    for name in volumes {
        let volume = match docker.inspect_volume(name).await {
            Ok(volume) => volume,
            Err(error) if is_not_found(&error) => continue,
            Err(error) => return Err(DockerError::from_bollard(host, error)),
        };
        let options: BTreeMap<String, String> = volume.options.into_iter().collect();
        let mut facts = VolumeFacts {
            host_backed: volume.driver != "local" || !(options.is_empty() || is_tmpfs(&options)),
            protected: deployment.protects(host, &[name], Some(&volume.labels), project),
            used_by_reaching: None,
        };
        for user in users_of(docker, host, "volume", name).await? {
            if facts.protected.is_none() {
                if let Some(why) = user_protection(&user, host, deployment, project) {
                    facts.protected = Some(format!("is used by '{}', which {why}", user.name));
                }
            }
            // What a user reaches is in its configuration: inspected until one is found.
            if facts.used_by_reaching.is_none() {
                let config = match resolve(docker, host, &user.id).await {
                    Ok(user) => user.inspect.host_config.unwrap_or_default(),
                    // Removed meanwhile.
                    Err(DockerError::Failed { status: 404, .. }) => continue,
                    Err(error) => return Err(error),
                };
                if !reaching_options(&config).is_empty() {
                    facts.used_by_reaching = Some(user.name.clone());
                }
            }
        }
        around.volumes.insert(name.clone(), facts);
    }
    for name in networks {
        let network = match docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(network) => network,
            Err(error) if is_not_found(&error) => continue,
            Err(error) => return Err(DockerError::from_bollard(host, error)),
        };
        let labels = network.labels.clone().unwrap_or_default();
        let label = |key: &str| labels.get(key).map(String::as_str);
        let id = network.id.clone().unwrap_or_default();
        let mut facts = NetworkFacts {
            driver: network.driver.clone().unwrap_or_default(),
            internal: network.internal == Some(true),
            protected: deployment.protects(host, &[name, &id], Some(&labels), project),
            isolating: label(OWNER_LABEL) == Some("admin") && label(SHARED_LABEL) != Some("true"),
            operators_own: label(OWNER_LABEL) == Some("operator"),
        };
        if facts.protected.is_none() {
            let users = users_of(docker, host, "network", name).await?;
            facts.protected = users.iter().find_map(|user| {
                user_protection(user, host, deployment, project)
                    .map(|why| format!("is joined by '{}', which {why}", user.name))
            });
        }
        around.networks.insert(name.clone(), facts);
    }
    Ok(around)
}
