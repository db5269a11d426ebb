//! Which aggregate a past-state request names, by resource: a user by id; a container by
//! platform id, Docker id, id prefix or name (a removed one by its id); an image, volume or
//! network by its natural key on a host; a host by id or by any name it had.

use dcp_aggregates::resource_key;
use dcp_projections::GlobalLogReader;
use uuid::Uuid;

use super::{History, HistoryError};
use crate::commands::CommandMeta;
use crate::containers::{valid_reference, ContainersError};
use crate::docker::normalize_reference;
use crate::docker::DockerHosts;

/// The kinds of resource whose past can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastKind {
    User,
    Container,
    Image,
    Volume,
    Network,
    Host,
}

impl PastKind {
    /// The aggregate type recording it.
    pub fn aggregate_type(self) -> &'static str {
        match self {
            PastKind::User => "user",
            PastKind::Container => "container",
            PastKind::Image => "image",
            PastKind::Volume => "volume",
            PastKind::Network => "network",
            PastKind::Host => "host",
        }
    }
}

/// A resource as a request names it.
#[derive(Debug, Clone, Copy)]
pub struct PastTarget<'a> {
    pub kind: PastKind,
    /// The id, name or reference in the path.
    pub key: &'a str,
}

impl History {
    /// The aggregate id `target` names (on `host`, default `local`, for Docker resources).
    pub(super) async fn aggregate_of(
        &self,
        target: PastTarget<'_>,
        host: Option<&str>,
        meta: &CommandMeta,
    ) -> Result<String, HistoryError> {
        let key = target.key;
        match target.kind {
            PastKind::User => key
                .parse::<Uuid>()
                .map(|id| id.to_string())
                .map_err(|_| HistoryError::invalid("id", "a user id (UUID)")),
            PastKind::Container => self.container_aggregate(meta, key, host).await,
            PastKind::Image => self.image_aggregate(key, host).await,
            PastKind::Volume => self.keyed_aggregate("volume", key, host),
            PastKind::Network => self.network_aggregate(key, host).await,
            PastKind::Host => self.host_aggregate(key).await,
        }
    }

    /// The aggregate of a container: its platform id, or a Docker id, id prefix or name
    /// (a removed container by its id or a unique prefix, as in its history).
    async fn container_aggregate(
        &self,
        meta: &CommandMeta,
        reference: &str,
        host: Option<&str>,
    ) -> Result<String, HistoryError> {
        if let Ok(id) = reference.parse::<Uuid>() {
            return Ok(id.to_string());
        }
        if !valid_reference(reference) {
            return Err(HistoryError::invalid(
                "id",
                "a platform id, container id, id prefix or name",
            ));
        }
        let host = self.registry.enabled_host(host)?;
        match self.containers.resolve(&host, reference, meta).await {
            Ok(target) => Ok(target.aggregate_id.to_string()),
            Err(error @ ContainersError::NotFound { .. }) => {
                let pool = self.reads.pool();
                let known = GlobalLogReader::aggregates_with_id_prefix(
                    pool,
                    "container",
                    "docker_id",
                    reference,
                    2,
                )
                .await?;
                match known.as_slice() {
                    [one] => Ok(one.clone()),
                    _ => Err(error.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The aggregate of a Docker resource known by name (volumes, networks) or reference (images).
    fn keyed_aggregate(
        &self,
        kind: &str,
        key: &str,
        host: Option<&str>,
    ) -> Result<String, HistoryError> {
        if let Ok(id) = key.parse::<Uuid>() {
            return Ok(id.to_string());
        }
        if key.is_empty() || key.len() > 512 || key.chars().any(char::is_control) {
            return Err(HistoryError::invalid("id", format!("a {kind} name or id")));
        }
        let host = self.registry.enabled_host(host)?;
        let key = if kind == "image" {
            normalize_reference(key)
        } else {
            key.to_string()
        };
        Ok(resource_key(kind, &host, &key).to_string())
    }

    /// A network by name, or else by (a prefix of) the Docker id its events recorded.
    async fn network_aggregate(
        &self,
        key: &str,
        host: Option<&str>,
    ) -> Result<String, HistoryError> {
        let by_name = self.keyed_aggregate("network", key, host)?;
        let pool = self.reads.pool();
        if GlobalLogReader::aggregate_exists(pool, "network", &by_name).await?
            || !key.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Ok(by_name);
        }
        let by_id =
            GlobalLogReader::aggregates_with_id_prefix(pool, "network", "network_id", key, 2)
                .await?;
        match by_id.as_slice() {
            [one] => Ok(one.clone()),
            _ => Ok(by_name),
        }
    }

    /// An image by reference, or else by the image id its removal was recorded under.
    async fn image_aggregate(&self, key: &str, host: Option<&str>) -> Result<String, HistoryError> {
        let by_reference = self.keyed_aggregate("image", key, host)?;
        let known =
            GlobalLogReader::aggregate_exists(self.reads.pool(), "image", &by_reference).await?;
        if known || key.parse::<Uuid>().is_ok() {
            return Ok(by_reference);
        }
        let host = self.registry.enabled_host(host)?;
        let id = format!("sha256:{}", key.trim_start_matches("sha256:"));
        Ok(resource_key("image", &host, &id).to_string())
    }

    /// A remote host by id, by its current name, or by a name it was registered under.
    async fn host_aggregate(&self, key: &str) -> Result<String, HistoryError> {
        let pool = self.reads.pool();
        if GlobalLogReader::aggregate_exists(pool, "host", key).await? {
            return Ok(key.to_string());
        }
        GlobalLogReader::host_once_named(pool, key)
            .await?
            .ok_or(HistoryError::NotFound("host"))
    }
}
