//! The `dcp.op` label: every container dcp creates carries the id of the operation that
//! created it, so a creation whose outcome was lost is found again, never made twice.

use uuid::Uuid;

use crate::docker::DockerHosts;
use crate::hosts::HostRegistry;

/// The label every container dcp creates carries: the id of the creating operation.
pub const OP_LABEL: &str = "dcp.op";

/// The containers on `host` labelled with operation `op_id`; `None` when Docker cannot tell now.
pub(super) async fn labelled(
    hosts: &HostRegistry,
    host: &str,
    op_id: Uuid,
) -> Option<Vec<bollard::models::ContainerSummary>> {
    let docker = hosts.client(host).ok()?;
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{OP_LABEL}={op_id}")],
    )]);
    docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .ok()
}
