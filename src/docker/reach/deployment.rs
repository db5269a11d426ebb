//! What the platform protects of its own deployment: the container dcp runs in (found from
//! its own mount table), that container's compose project (`com.docker.compose.project`),
//! whatever an admin labelled `dcp.protected=true`, and the names in `DCP_PROTECTED`.

use std::collections::{BTreeSet, HashMap};

use dcp_aggregates::operation::PROTECTED_LABEL;
use tokio::sync::OnceCell;

use crate::docker::LOCAL_HOST;

/// Docker Compose's label naming a container's, volume's or network's project.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

/// What the platform protects of its own deployment.
#[derive(Debug, Default)]
pub struct Deployment {
    /// The Docker id of the container dcp runs in, on the `local` host.
    own_container: Option<String>,
    /// Its compose project, looked up from the engine once it answers.
    own_project: OnceCell<Option<String>>,
    /// Names (of containers, volumes and networks, on every host) from `DCP_PROTECTED`.
    names: BTreeSet<String>,
}

impl Deployment {
    /// The deployment of this process: its own container (when it runs in one) and the
    /// names of the `DCP_PROTECTED` setting (comma-separated).
    pub fn detect(protected_names: &str) -> Self {
        let own_container = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|table| own_container_id(&table));
        if let Some(id) = &own_container {
            tracing::info!(container = %id, "dcp runs in a container: it and its compose project are protected");
        }
        Deployment::new(own_container, protected_names)
    }

    pub fn new(own_container: Option<String>, protected_names: &str) -> Self {
        Deployment {
            own_container,
            own_project: OnceCell::new(),
            names: protected_names
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// The compose project dcp's own container belongs to, looked up with `lookup` (the
    /// labels of that container) until the engine has answered once.
    pub async fn own_project<F, Fut>(&self, lookup: F) -> Option<String>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<Option<HashMap<String, String>>, ()>>,
    {
        let id = self.own_container.clone()?;
        let project = self
            .own_project
            .get_or_try_init(|| async move {
                let labels = lookup(id).await?;
                Ok::<_, ()>(labels.and_then(|l| l.get(COMPOSE_PROJECT_LABEL).cloned()))
            })
            .await;
        project.ok().cloned().flatten()
    }

    /// Why a container, volume or network on `host` is protected, if it is: `ids` are its
    /// full Docker id (where it has one) and its name, `labels` its labels, `project` dcp's
    /// own compose project.
    pub fn protects(
        &self,
        host: &str,
        ids: &[&str],
        labels: Option<&HashMap<String, String>>,
        project: Option<&str>,
    ) -> Option<String> {
        let local = host == LOCAL_HOST;
        if local
            && self
                .own_container
                .as_deref()
                .is_some_and(|own| ids.contains(&own))
        {
            return Some("is the container dcp runs in".into());
        }
        if let Some(name) = ids.iter().find(|id| self.names.contains(**id)) {
            return Some(format!("is named in DCP_PROTECTED ('{name}')"));
        }
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        if label(PROTECTED_LABEL) == Some("true") {
            return Some(format!("is labelled {PROTECTED_LABEL}=true"));
        }
        if local && project.is_some() && label(COMPOSE_PROJECT_LABEL) == project {
            return Some(format!(
                "belongs to dcp's own compose project '{}'",
                project.unwrap_or_default()
            ));
        }
        None
    }
}

/// The id of the container whose mount table this is: Docker bind-mounts the container's
/// own `hostname`, `hosts` and `resolv.conf` from `…/containers/<id>/`.
pub fn own_container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (_, rest) = line.split_once("/containers/")?;
        let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        let file = rest.get(id.len()..)?;
        let ours = ["/hostname", "/hosts", "/resolv.conf"]
            .iter()
            .any(|f| file.starts_with(f));
        (id.len() == 64 && ours).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_container_is_found_in_the_mount_table() {
        let id = "a".repeat(64);
        let table = format!(
            "600 590 0:52 / / rw,relatime - overlay overlay rw\n\
             611 590 254:1 /var/lib/docker/containers/{id}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(own_container_id(&table), Some(id));
        assert_eq!(
            own_container_id("25 1 0:22 / /sys rw - sysfs sysfs rw\n"),
            None
        );
    }

    #[test]
    fn protection_by_own_container_setting_label_and_project() {
        let own = "b".repeat(64);
        let deployment = Deployment::new(Some(own.clone()), "db, dcp-data");
        assert!(deployment.protects("local", &[&own], None, None).is_some());
        assert!(deployment.protects("remote", &[&own], None, None).is_none());
        assert!(deployment
            .protects("remote", &["x", "dcp-data"], None, None)
            .is_some());
        let labels: HashMap<String, String> = [(PROTECTED_LABEL.to_string(), "true".into())].into();
        assert!(deployment
            .protects("remote", &["x"], Some(&labels), None)
            .is_some());
        let compose: HashMap<String, String> =
            [(COMPOSE_PROJECT_LABEL.to_string(), "dcp".into())].into();
        assert!(deployment
            .protects("local", &["x"], Some(&compose), Some("dcp"))
            .is_some());
        assert!(deployment
            .protects("local", &["x"], Some(&compose), Some("other"))
            .is_none());
        assert!(deployment
            .protects("local", &["", "x"], None, None)
            .is_none());
    }
}
