//! A container at a past moment: what dcp asked Docker for, and what dcp did or observed.

use dcp_aggregates::container::ContainerEvent;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::PendingOperation;

/// A container as the platform knew it: its configuration is what dcp asked Docker for
/// (none for a container found on the engine), its status what dcp did or observed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerState {
    pub host: String,
    pub docker_id: Option<String>,
    pub name: String,
    /// `dcp` (created through dcp) or `docker` (found on the engine).
    pub origin: String,
    /// `creating`, `created`, `running`, `paused`, `exited`, `removed`, or `create_failed`.
    pub status: String,
    /// The exit code of the last observed exit.
    pub exit_code: Option<i64>,
    pub image: String,
    /// The image id (`sha256:…`) Docker created it from; `None` when not recorded.
    pub image_id: Option<String>,
    /// The requested configuration (create or recreate request): command, entrypoint,
    /// env, labels, ports, volumes, binds, restart policy, limits, network, …
    pub config: Option<Map<String, Value>>,
    pub pending_operation: Option<PendingOperation>,
    #[serde(skip)]
    recreate_spec: Option<Value>,
}

/// The configuration part of a create request: everything but the request's own switches.
fn config_of(spec: &Value) -> Option<Map<String, Value>> {
    let mut config = spec.as_object()?.clone();
    for key in ["name", "start", "allow_privileged", "reason"] {
        config.remove(key);
    }
    config.retain(|_, value| !value.is_null());
    Some(config)
}

/// A text field of a create request, empty when absent.
fn spec_text(spec: &Value, field: &str) -> String {
    spec.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl ContainerState {
    pub(super) fn apply(&mut self, event: ContainerEvent) {
        use ContainerEvent as E;
        PendingOperation::follow(&mut self.pending_operation, &event);
        match event {
            E::ContainerCreateRequested { host, spec, .. } => {
                self.host = host;
                self.origin = "dcp".into();
                self.status = "creating".into();
                self.name = spec_text(&spec, "name");
                self.image = spec_text(&spec, "image");
                self.config = config_of(&spec);
            }
            E::ContainerCreated {
                docker_id,
                name,
                image_id,
                ..
            } => {
                self.docker_id = Some(docker_id);
                self.name = name;
                self.image_id = image_id;
                self.status = "created".into();
            }
            E::ContainerDiscovered {
                host,
                docker_id,
                name,
                image,
                state,
                ..
            } => {
                self.host = host;
                self.origin = "docker".into();
                self.docker_id = Some(docker_id);
                self.name = name;
                self.image = image;
                self.status = state;
            }
            E::ContainerRecreateRequested { spec, .. } => self.recreate_spec = Some(spec),
            E::ContainerStartRequested { .. }
            | E::ContainerStopRequested { .. }
            | E::ContainerRestartRequested { .. }
            | E::ContainerKillRequested { .. }
            | E::ContainerPauseRequested { .. }
            | E::ContainerUnpauseRequested { .. }
            | E::ContainerRenameRequested { .. }
            | E::ContainerRemoveRequested { .. }
            | E::ContainerExecStarted { .. }
            | E::ContainerExecEnded { .. } => {}
            E::ContainerStarted { .. }
            | E::ContainerRestarted { .. }
            | E::ContainerUnpaused { .. } => {
                self.status = "running".into();
                self.exit_code = None;
            }
            E::ContainerStopped { .. } => self.status = "exited".into(),
            E::ContainerKilled { signal, .. } => {
                // Other signals may be handled by the process: the status is what it was.
                if matches!(signal.as_str(), "SIGKILL" | "KILL" | "9") {
                    self.status = "exited".into();
                    self.exit_code = Some(137);
                }
            }
            E::ContainerPaused { .. } => self.status = "paused".into(),
            E::ContainerRenamed { to, .. } => self.name = to,
            E::ContainerRemoved { .. } => self.status = "removed".into(),
            E::ContainerRecreated {
                docker_id,
                image_id,
                running,
                ..
            } => self.recreated(docker_id, image_id, running),
            E::ContainerObserved {
                action,
                exit_code,
                attributes,
                ..
            } => self.observed(&action, exit_code, &attributes),
            E::OperationFailed { operation, .. } => {
                if operation == "create" {
                    self.status = "create_failed".into();
                }
                self.recreate_spec = None;
            }
        }
    }

    /// The replacement made from the requested spec now is the container.
    fn recreated(&mut self, docker_id: String, image_id: Option<String>, running: bool) {
        if let Some(spec) = self.recreate_spec.take() {
            if let Some(image) = spec.get("image").and_then(Value::as_str) {
                self.image = image.to_string();
            }
            self.config = config_of(&spec);
        }
        self.docker_id = Some(docker_id);
        self.image_id = image_id;
        self.status = if running { "running" } else { "created" }.into();
        self.exit_code = None;
    }

    /// A lifecycle change Docker reported.
    fn observed(
        &mut self,
        action: &str,
        exit_code: Option<i64>,
        attributes: &BTreeMap<String, String>,
    ) {
        match action {
            "start" | "restart" | "unpause" => {
                self.status = "running".into();
                self.exit_code = None;
            }
            "die" => {
                self.status = "exited".into();
                self.exit_code = exit_code;
            }
            "stop" => self.status = "exited".into(),
            "pause" => self.status = "paused".into(),
            "destroy" => self.status = "removed".into(),
            "rename" => {
                if let Some(name) = attributes.get("name") {
                    self.name = name.trim_start_matches('/').to_string();
                }
            }
            _ => {}
        }
    }
}
