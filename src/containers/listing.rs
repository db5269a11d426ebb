//! Containers live from each Docker engine, with what dcp knows of each.
//!
//! Lists ask Docker for the state now (status and label filters run in Docker; name and
//! image filters here) and page the result; a container is addressed by full id, unique
//! id prefix or name, as with the docker CLI.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use chrono::{DateTime, Utc};
use dcp_aggregates::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Containers, ContainersError};
use crate::auth::redaction;
use crate::docker::fanout::{hosts_of, list_on, HostAnswer};
use crate::docker::reach;
use crate::docker::{DockerError, DockerHosts, LOCAL_HOST};
use crate::read_models::{ReadModels, CONTAINERS};

/// Container states Docker reports, in the `status` filter's vocabulary.
pub const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A published or exposed port.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PortView {
    pub ip: Option<String>,
    pub private_port: u16,
    pub public_port: Option<u16>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: Option<String>,
}

/// A container as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContainerView {
    pub host: String,
    pub id: String,
    /// The first 12 characters of the id.
    pub short_id: String,
    /// The primary name, without the leading `/`.
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: String,
    pub created_at: Option<DateTime<Utc>>,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `removing` or `dead`.
    pub state: String,
    /// Docker's human status, e.g. `Up 5 minutes`.
    pub status: String,
    pub ports: Vec<PortView>,
    pub labels: BTreeMap<String, String>,
    /// Why the platform protects it (operators cannot act on it, admins only with a
    /// reason), when it does.
    pub protection: Option<String>,
    /// What dcp knows about it; absent for a container dcp has not seen yet.
    pub platform: Option<PlatformView>,
}

/// The platform's record of a container (the `containers` read model).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct PlatformView {
    /// The container's aggregate id (its history's key).
    pub aggregate_id: String,
    /// `dcp` (created through dcp) or `docker` (found on the engine).
    pub origin: String,
    pub created_by: Option<uuid::Uuid>,
    pub created_by_name: Option<String>,
    /// When dcp created it or first saw it.
    pub known_since: DateTime<Utc>,
    /// The last operation through dcp, e.g. `container.stop`.
    pub last_action: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub last_status: Option<String>,
    pub last_operation_id: Option<uuid::Uuid>,
    pub last_at: Option<DateTime<Utc>>,
    pub last_by_name: Option<String>,
}

/// The platform records of `docker_ids` on `host`.
async fn platform_records(
    reads: &ReadModels,
    host: &str,
    docker_ids: Vec<String>,
) -> Result<HashMap<String, PlatformView>, sqlx::Error> {
    if docker_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(sqlx::query_as::<_, PlatformRow>(
        "SELECT docker_id, aggregate_id, origin, created_by, created_by_name, known_since, last_action, last_status, \
         last_operation_id, last_at, last_by_name FROM containers WHERE host = $1 AND docker_id = ANY($2)",
    )
    .bind(host)
    .bind(docker_ids)
    .fetch_all(reads.pool())
    .await?
    .into_iter()
    .map(|row| (row.docker_id.clone(), row.into()))
    .collect())
}

#[derive(sqlx::FromRow)]
struct PlatformRow {
    docker_id: String,
    aggregate_id: String,
    origin: String,
    created_by: Option<uuid::Uuid>,
    created_by_name: Option<String>,
    known_since: DateTime<Utc>,
    last_action: Option<String>,
    last_status: Option<String>,
    last_operation_id: Option<uuid::Uuid>,
    last_at: Option<DateTime<Utc>>,
    last_by_name: Option<String>,
}

impl From<PlatformRow> for PlatformView {
    fn from(row: PlatformRow) -> Self {
        PlatformView {
            aggregate_id: row.aggregate_id,
            origin: row.origin,
            created_by: row.created_by,
            created_by_name: row.created_by_name,
            known_since: row.known_since,
            last_action: row.last_action,
            last_status: row.last_status,
            last_operation_id: row.last_operation_id,
            last_at: row.last_at,
            last_by_name: row.last_by_name,
        }
    }
}

fn view(host: &str, summary: bollard::models::ContainerSummary) -> ContainerView {
    let id = summary.id.unwrap_or_default();
    let name = summary
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    let enum_text = |value: Option<String>| value.unwrap_or_default();
    ContainerView {
        host: host.to_string(),
        short_id: id.chars().take(12).collect(),
        id,
        name,
        image: summary.image.unwrap_or_default(),
        image_id: summary.image_id.unwrap_or_default(),
        command: summary.command.unwrap_or_default(),
        created_at: summary.created.and_then(|t| DateTime::from_timestamp(t, 0)),
        state: enum_text(summary.state.map(|s| s.to_string())),
        status: summary.status.unwrap_or_default(),
        ports: summary
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| PortView {
                ip: p.ip,
                private_port: p.private_port,
                public_port: p.public_port,
                protocol: p.typ.map(|t| t.to_string()),
            })
            .collect(),
        labels: summary.labels.unwrap_or_default().into_iter().collect(),
        protection: None,
        platform: None,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContainerListQuery {
    /// The Docker host (id or name); default: every host at once.
    pub host: Option<String>,
    /// Include stopped containers (default false, like `docker ps`).
    pub all: Option<bool>,
    /// Only containers in these states (comma-separated: created, restarting, running,
    /// removing, paused, exited, dead). Implies `all`.
    pub status: Option<String>,
    /// Case-insensitive part of the name.
    pub name: Option<String>,
    /// `key` or `key=value`, comma-separated; all must match.
    pub label: Option<String>,
    /// Case-insensitive part of the image reference.
    pub image: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<usize>,
    /// Rows to skip.
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContainerList {
    pub items: Vec<ContainerView>,
    /// Matching containers in all pages.
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    /// How each host answered (without `host`, every host is listed at once; a host that
    /// failed or did not answer in time is `unreachable` here and adds no items).
    pub hosts: Vec<HostAnswer>,
}

fn comma_list(value: &Option<String>) -> Vec<String> {
    value
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// A container reference: a full id, a unique id prefix or a name.
pub fn valid_reference(reference: &str) -> bool {
    let mut chars = reference.chars();
    (1..=255).contains(&reference.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// One container, as `docker inspect` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContainerDetail {
    pub host: String,
    pub id: String,
    pub name: String,
    /// Docker's inspect document, with the values that may be secrets (`Config.Env`) hidden
    /// from the roles that may not read them.
    #[schema(value_type = Object)]
    pub inspect: serde_json::Value,
    /// Why the platform protects it (operators cannot act on it, admins only with a
    /// reason), when it does.
    pub protection: Option<String>,
    /// What dcp knows about it; absent for a container dcp has not seen yet.
    pub platform: Option<PlatformView>,
}

impl Containers {
    /// The containers matching `query`, a page of them, with what dcp knows of each.
    #[tracing::instrument(skip_all, fields(host = query.host.as_deref()), err(level = "debug"))]
    pub async fn list(&self, query: ContainerListQuery) -> Result<ContainerList, ContainersError> {
        let host = hosts_of(self.hosts.as_ref(), query.host.as_deref())?;
        let limit = query.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ContainersError::Invalid {
                field: "limit".into(),
                message: "limit must be between 1 and 1000".into(),
            });
        }
        let offset = query.offset.unwrap_or(0);
        let statuses = comma_list(&query.status);
        if let Some(bad) = statuses.iter().find(|s| !STATES.contains(&s.as_str())) {
            return Err(ContainersError::Invalid {
                field: "status".into(),
                message: format!(
                    "unknown state '{bad}': expected one of {}",
                    STATES.join(", ")
                ),
            });
        }
        let options = list_options(&query, &statuses);
        let (listed, hosts) = list_on(self.hosts.as_ref(), host, |host, docker| {
            let options = options.clone();
            async move {
                let summaries = docker
                    .list_containers(Some(options))
                    .await
                    .map_err(|error| DockerError::from_bollard(&host, error))?;
                Ok(summaries
                    .into_iter()
                    .map(|summary| view(&host, summary))
                    .collect::<Vec<_>>())
            }
        })
        .await?;
        let mut items = matching(listed, &query);
        let total = items.len();
        items = items.into_iter().skip(offset).take(limit).collect();
        self.add_platform_records(&mut items).await?;
        self.add_protection(&mut items).await;
        Ok(ContainerList {
            items,
            total,
            limit,
            offset,
            hosts,
        })
    }

    /// Says which containers of a page the platform protects, from what the list shows of
    /// them (their labels; dcp's own compose project is looked up once).
    async fn add_protection(&self, items: &mut [ContainerView]) {
        let project = match self.hosts.client(LOCAL_HOST) {
            Ok(docker) => reach::own_project(&docker, LOCAL_HOST, &self.deployment).await,
            Err(_) => None,
        };
        for item in items.iter_mut() {
            let labels = item.labels.clone().into_iter().collect();
            item.protection = self
                .deployment
                .protects(
                    &item.host,
                    &[&item.id, &item.name],
                    Some(&labels),
                    project.as_deref(),
                )
                .map(|why| format!("this container {why}"));
        }
    }

    /// Adds the platform's record to each container of a page.
    async fn add_platform_records(&self, items: &mut [ContainerView]) -> Result<(), sqlx::Error> {
        let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in items.iter() {
            by_host
                .entry(item.host.clone())
                .or_default()
                .push(item.id.clone());
        }
        let mut records = HashMap::new();
        for (host, ids) in by_host {
            for (id, record) in platform_records(&self.reads, &host, ids).await? {
                records.insert((host.clone(), id), record);
            }
        }
        for item in items.iter_mut() {
            item.platform = records.remove(&(item.host.clone(), item.id.clone()));
        }
        Ok(())
    }

    /// One container by id, id prefix or name on `host` (default `local`), as `docker
    /// inspect` shows it to `role`; what dcp knows of it once the read model has applied position
    /// `wait_for`, when given.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), reference = %reference), err(level = "debug"))]
    pub async fn inspect(
        &self,
        role: Role,
        host: Option<&str>,
        reference: &str,
        wait_for: Option<i64>,
    ) -> Result<ContainerDetail, ContainersError> {
        check_reference(reference)?;
        let host = self.hosts.enabled_host(host)?;
        let docker = self.hosts.client(&host)?;
        let inspect = docker
            .inspect_container(reference, None::<InspectContainerOptions>)
            .await
            .map_err(|error| {
                ContainersError::lookup_saying(DockerError::from_bollard(&host, error))
            })?;
        let id = inspect.id.clone().unwrap_or_default();
        let name = inspect
            .name
            .clone()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let resolved = reach::Resolved {
            host: host.clone(),
            inspect,
        };
        let protection = resolved
            .protection(&docker, &self.deployment)
            .await
            .map(|why| format!("this container {why}"));
        let mut inspect = serde_json::to_value(&resolved.inspect).map_err(anyhow::Error::from)?;
        redaction::redact_for(role, &mut inspect);
        if let Some(position) = wait_for {
            self.reads.settle_at(position, CONTAINERS).await?;
        }
        let platform = platform_records(&self.reads, &host, vec![id.clone()])
            .await?
            .remove(&id);
        Ok(ContainerDetail {
            host,
            id,
            name,
            inspect,
            protection,
            platform,
        })
    }
}

/// Refuses what cannot name a container before anything is asked of Docker.
pub(crate) fn check_reference(reference: &str) -> Result<(), ContainersError> {
    if valid_reference(reference) {
        Ok(())
    } else {
        Err(ContainersError::BadReference)
    }
}

/// What Docker filters: states and labels (`all` when states are asked for).
fn list_options(query: &ContainerListQuery, statuses: &[String]) -> ListContainersOptions {
    let labels = comma_list(&query.label);
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if !statuses.is_empty() {
        filters.insert("status".into(), statuses.to_vec());
    }
    if !labels.is_empty() {
        filters.insert("label".into(), labels);
    }
    ListContainersOptions {
        all: query.all.unwrap_or(false) || !statuses.is_empty(),
        filters: (!filters.is_empty()).then_some(filters),
        ..Default::default()
    }
}

/// What dcp filters (parts of the name and image), newest first, then by name: a stable
/// order for paging.
fn matching(listed: Vec<ContainerView>, query: &ContainerListQuery) -> Vec<ContainerView> {
    let name = query.name.as_deref().map(str::to_lowercase);
    let image = query.image.as_deref().map(str::to_lowercase);
    let mut items: Vec<ContainerView> = listed
        .into_iter()
        .filter(|c| {
            name.as_deref()
                .is_none_or(|n| c.name.to_lowercase().contains(n))
        })
        .filter(|c| {
            image
                .as_deref()
                .is_none_or(|i| c.image.to_lowercase().contains(i))
        })
        .collect();
    items.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    items
}

#[cfg(test)]
mod tests {
    use super::valid_reference;

    #[test]
    fn references_are_ids_prefixes_or_names() {
        assert!(valid_reference("3f2a"));
        assert!(valid_reference("my-app_1.web"));
        assert!(!valid_reference(""));
        assert!(!valid_reference("-flag"));
        assert!(!valid_reference("../etc"));
        assert!(!valid_reference("a/b"));
        assert!(!valid_reference(&"a".repeat(256)));
    }
}
