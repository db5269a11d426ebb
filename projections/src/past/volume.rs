//! A volume on one engine at a past moment.

use std::collections::BTreeMap;

use dcp_aggregates::volume::VolumeEvent;
use serde::Serialize;

use super::PendingOperation;

/// A volume as dcp created, removed or saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VolumeState {
    pub host: String,
    pub name: String,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: Option<String>,
    pub exists: bool,
    pub pending_operation: Option<PendingOperation>,
}

impl VolumeState {
    pub(super) fn apply(&mut self, event: VolumeEvent) {
        PendingOperation::follow(&mut self.pending_operation, &event);
        match event {
            VolumeEvent::VolumeCreateRequested {
                host,
                name,
                driver,
                driver_opts,
                labels,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.driver = Some(driver);
                self.driver_opts = driver_opts;
                self.labels = labels;
            }
            VolumeEvent::VolumeCreated { mountpoint, .. } => {
                self.mountpoint = Some(mountpoint);
                self.exists = true;
            }
            VolumeEvent::VolumeRemoveRequested { host, name, .. } => {
                self.host = host;
                self.name = name;
            }
            VolumeEvent::VolumeRemoved { .. } => self.exists = false,
            VolumeEvent::OperationFailed { .. } => {}
            VolumeEvent::VolumeObserved {
                host, name, action, ..
            } => {
                self.host = host;
                self.name = name;
                match action.as_str() {
                    "create" => self.exists = true,
                    "destroy" => self.exists = false,
                    _ => {}
                }
            }
        }
    }
}
