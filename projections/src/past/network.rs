//! A network on one engine at a past moment, with the containers dcp connected to it.

use std::collections::BTreeMap;

use dcp_aggregates::network::NetworkEvent;
use serde::Serialize;

use super::PendingOperation;

/// A network as dcp created, removed, connected or saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkState {
    pub host: String,
    pub name: String,
    pub network_id: Option<String>,
    pub driver: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub exists: bool,
    /// Containers dcp connected (by name), as of that moment.
    pub containers: Vec<String>,
    pub pending_operation: Option<PendingOperation>,
    #[serde(skip)]
    pending_container: Option<String>,
}

impl NetworkState {
    pub(super) fn apply(&mut self, event: NetworkEvent) {
        PendingOperation::follow(&mut self.pending_operation, &event);
        match event {
            NetworkEvent::NetworkCreateRequested {
                host,
                name,
                driver,
                internal,
                attachable,
                subnet,
                gateway,
                labels,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.driver = Some(driver);
                self.internal = internal;
                self.attachable = attachable;
                self.subnet = subnet;
                self.gateway = gateway;
                self.labels = labels;
            }
            NetworkEvent::NetworkCreated { network_id, .. } => {
                self.network_id = Some(network_id);
                self.exists = true;
                self.containers.clear();
            }
            NetworkEvent::NetworkRemoveRequested {
                host,
                name,
                network_id,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.network_id = Some(network_id);
            }
            NetworkEvent::NetworkRemoved { .. } => {
                self.exists = false;
                self.containers.clear();
            }
            NetworkEvent::NetworkConnectRequested { container_name, .. }
            | NetworkEvent::NetworkDisconnectRequested { container_name, .. } => {
                self.pending_container = Some(container_name);
            }
            NetworkEvent::NetworkConnected { .. } => {
                if let Some(name) = self.pending_container.take() {
                    if !self.containers.contains(&name) {
                        self.containers.push(name);
                    }
                }
            }
            NetworkEvent::NetworkDisconnected { .. } => {
                if let Some(name) = self.pending_container.take() {
                    self.containers.retain(|c| *c != name);
                }
            }
            NetworkEvent::OperationFailed { .. } => self.pending_container = None,
            NetworkEvent::NetworkObserved {
                host,
                name,
                network_id,
                action,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.network_id = Some(network_id);
                match action.as_str() {
                    "create" => self.exists = true,
                    "destroy" => {
                        self.exists = false;
                        self.containers.clear();
                    }
                    _ => {}
                }
            }
        }
    }
}
