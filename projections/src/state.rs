//! What one aggregate looked like at a past moment, and what changed between two moments.
//!
//! The state is rebuilt by folding the aggregate's own events (in their current shapes, see
//! [`crate::current_shapes`]) into a view made for people: a container's platform-known
//! configuration and status, a user's profile and role, … Each event type changes named
//! fields, so a diff can say which events changed which fields, and who caused them.
//! Pure: the caller loads the events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use dcp_aggregates::container::ContainerEvent;
use dcp_aggregates::host::HostEvent;
use dcp_aggregates::image::ImageEvent;
use dcp_aggregates::network::NetworkEvent;
use dcp_aggregates::user::UserEvent;
use dcp_aggregates::volume::VolumeEvent;
use dcp_aggregates::wizard::WizardEvent;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::metadata;

/// The operation running on a resource at that moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingOperation {
    pub operation_id: Uuid,
    /// `start`, `create`, `recreate`, `pull`, …
    pub action: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UserState {
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub active: bool,
    pub must_change_password: bool,
    pub deleted: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub password_changed_at: Option<DateTime<Utc>>,
}

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

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageState {
    pub host: String,
    pub reference: String,
    pub image_id: Option<String>,
    pub digest: Option<String>,
    pub layers: Option<u32>,
    /// Whether the image was on the engine.
    pub present: bool,
    pub pending_operation: Option<PendingOperation>,
}

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

/// The folded state of one aggregate.
#[derive(Debug, Clone)]
pub enum AggregateState {
    User(UserState),
    Container(ContainerState),
    Image(ImageState),
    Volume(VolumeState),
    Network(NetworkState),
    Host(HostState),
    Wizard(WizardState),
}

/// Why an event could not be folded.
#[derive(Debug, thiserror::Error)]
#[error("event {event_type} at position {position} does not decode: {source}")]
pub struct FoldError {
    pub position: i64,
    pub event_type: String,
    #[source]
    pub source: serde_json::Error,
}

impl AggregateState {
    /// The empty state of `aggregate_type`, if it has a state view.
    pub fn empty(aggregate_type: &str) -> Option<Self> {
        Some(match aggregate_type {
            "user" => AggregateState::User(UserState::default()),
            "container" => AggregateState::Container(ContainerState::default()),
            "image" => AggregateState::Image(ImageState::default()),
            "volume" => AggregateState::Volume(VolumeState::default()),
            "network" => AggregateState::Network(NetworkState::default()),
            "host" => AggregateState::Host(HostState::default()),
            "wizard" => AggregateState::Wizard(WizardState::default()),
            _ => return None,
        })
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Value {
        let value = match self {
            AggregateState::User(s) => serde_json::to_value(s),
            AggregateState::Container(s) => serde_json::to_value(s),
            AggregateState::Image(s) => serde_json::to_value(s),
            AggregateState::Volume(s) => serde_json::to_value(s),
            AggregateState::Network(s) => serde_json::to_value(s),
            AggregateState::Host(s) => serde_json::to_value(s),
            AggregateState::Wizard(s) => serde_json::to_value(s),
        };
        value.unwrap_or(Value::Null)
    }

    /// Applies one event of this aggregate (already in its current shape).
    pub fn apply(&mut self, event: &StoredEvent) -> Result<(), FoldError> {
        let failed = |source| FoldError {
            position: event.global_position,
            event_type: event.event_type.clone(),
            source,
        };
        match self {
            AggregateState::User(s) => s.apply(event.decode().map_err(failed)?),
            AggregateState::Container(s) => s.apply(event.decode().map_err(failed)?),
            AggregateState::Image(s) => s.apply(event.decode().map_err(failed)?),
            AggregateState::Volume(s) => s.apply(event.decode().map_err(failed)?),
            AggregateState::Network(s) => s.apply(event.decode().map_err(failed)?),
            AggregateState::Host(s) => s.apply(event.decode().map_err(failed)?),
            AggregateState::Wizard(s) => s.apply(event.decode().map_err(failed)?),
        }
        Ok(())
    }
}

/// A remote Docker host as registered: how it is reached (its secret by id only), the
/// pinned host key, and what its checks found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HostState {
    pub id: String,
    pub name: String,
    /// `ssh://user@address:port`.
    pub url: String,
    pub user: String,
    pub address: String,
    pub port: u16,
    /// `generated_key`, `imported_key` or `password`.
    pub auth_method: String,
    /// The sealed secret holding the key or password (never the secret itself).
    pub secret_id: Option<Uuid>,
    /// The pinned host key (`ssh-ed25519 AAAA…`) and its SHA-256 fingerprint.
    pub host_key: String,
    pub fingerprint: String,
    pub tags: Vec<String>,
    /// `setup_pending`, `active`, `unreachable` or `disabled`.
    pub status: String,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    /// Why the last check failed.
    pub last_error: Option<String>,
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The last host key seen that was not the pinned one (refused).
    pub key_mismatch: Option<KeyMismatch>,
    pub wizard_id: Option<Uuid>,
    pub registered_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyMismatch {
    pub seen_fingerprint: String,
    pub seen_at: DateTime<Utc>,
}

impl HostState {
    fn apply(&mut self, event: HostEvent) {
        match event {
            HostEvent::HostRegistered {
                host_id,
                spec,
                registered_at,
            } => {
                *self = HostState {
                    id: host_id,
                    url: ssh_url(&spec.user, &spec.address, spec.port),
                    name: spec.name,
                    user: spec.user,
                    address: spec.address,
                    port: spec.port,
                    auth_method: spec.auth_method.as_str().to_string(),
                    secret_id: Some(spec.secret_id),
                    host_key: spec.host_key,
                    fingerprint: spec.fingerprint,
                    tags: spec.tags,
                    status: "setup_pending".into(),
                    wizard_id: spec.wizard_id,
                    registered_at: Some(registered_at),
                    updated_at: Some(registered_at),
                    ..HostState::default()
                };
            }
            HostEvent::HostUpdated {
                name,
                tags,
                updated_at,
            } => {
                if let Some(name) = name {
                    self.name = name;
                }
                if let Some(tags) = tags {
                    self.tags = tags;
                }
                self.updated_at = Some(updated_at);
            }
            HostEvent::HostCredentialsChanged {
                auth_method,
                secret_id,
                changed_at,
                ..
            } => {
                self.auth_method = auth_method.as_str().to_string();
                self.secret_id = Some(secret_id);
                self.updated_at = Some(changed_at);
            }
            HostEvent::HostKeyPinned {
                host_key,
                fingerprint,
                pinned_at,
                ..
            } => {
                self.host_key = host_key;
                self.fingerprint = fingerprint;
                self.key_mismatch = None;
                self.updated_at = Some(pinned_at);
            }
            HostEvent::HostKeyMismatch {
                seen_fingerprint,
                seen_at,
                ..
            } => {
                self.key_mismatch = Some(KeyMismatch {
                    seen_fingerprint,
                    seen_at,
                });
                self.updated_at = Some(seen_at);
            }
            HostEvent::HostStatusChanged {
                to,
                engine_version,
                api_version,
                error,
                changed_at,
                ..
            } => {
                self.status = to.as_str().to_string();
                if engine_version.is_some() {
                    self.engine_version = engine_version;
                    self.api_version = api_version;
                }
                self.last_error = error;
                self.status_changed_at = Some(changed_at);
                self.updated_at = Some(changed_at);
            }
            HostEvent::HostDisabled { disabled_at } => {
                self.status = "disabled".into();
                self.status_changed_at = Some(disabled_at);
                self.updated_at = Some(disabled_at);
            }
            HostEvent::HostEnabled { enabled_at } => {
                self.status = "setup_pending".into();
                self.status_changed_at = Some(enabled_at);
                self.updated_at = Some(enabled_at);
            }
            HostEvent::HostRemoved { removed_at, .. } => {
                self.removed = true;
                self.updated_at = Some(removed_at);
            }
        }
    }
}

/// `ssh://user@address[:port]` (IPv6 addresses in brackets).
pub fn ssh_url(user: &str, address: &str, port: u16) -> String {
    let address = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    format!("ssh://{user}@{address}:{port}")
}

/// A wizard as its user sees it: where it is, each step's data and last test, and what it
/// created. Secrets appear as sealed secret ids only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WizardState {
    pub id: Option<Uuid>,
    /// `ssh_host_setup`.
    pub wizard_type: String,
    pub user_id: Option<Uuid>,
    /// The caller's notes, as given at start.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// `in_progress`, `completed`, `cancelled` or `failed`.
    pub status: String,
    /// 0-based.
    pub current_step: u32,
    pub total_steps: u32,
    /// The name of the current step.
    pub step_name: String,
    pub steps: Vec<WizardStepState>,
    /// What the wizard created (`{"type": "host", "id": …}`).
    #[schema(value_type = Option<Object>)]
    pub resource: Option<Value>,
    pub failure_reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WizardStepState {
    pub name: String,
    /// Whether `next` needs a passed test of this step.
    pub tested: bool,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// `{passed, details, tested_at}`.
    #[schema(value_type = Option<Object>)]
    pub test: Option<Value>,
}

impl WizardState {
    fn apply(&mut self, event: WizardEvent) {
        match event {
            WizardEvent::WizardStarted {
                wizard_id,
                wizard_type,
                user_id,
                total_steps,
                metadata,
                started_at,
            } => {
                let steps = wizard_type
                    .steps()
                    .iter()
                    .map(|s| WizardStepState {
                        name: s.name.to_string(),
                        tested: s.tested,
                        data: None,
                        test: None,
                    })
                    .collect::<Vec<_>>();
                *self = WizardState {
                    id: Some(wizard_id),
                    wizard_type: serde_json::to_value(wizard_type)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    user_id: Some(user_id),
                    metadata,
                    status: "in_progress".into(),
                    current_step: 0,
                    total_steps,
                    step_name: steps.first().map(|s| s.name.clone()).unwrap_or_default(),
                    steps,
                    started_at: Some(started_at),
                    updated_at: Some(started_at),
                    ..WizardState::default()
                };
            }
            WizardEvent::StepDataSubmitted {
                step,
                data,
                submitted_at,
                ..
            } => {
                for later in self.steps.iter_mut().skip(step as usize + 1) {
                    later.test = None;
                }
                if let Some(s) = self.steps.get_mut(step as usize) {
                    s.data = Some(data);
                }
                self.updated_at = Some(submitted_at);
            }
            WizardEvent::StepAdvanced {
                to, advanced_at, ..
            } => self.move_to(to, advanced_at),
            WizardEvent::StepRetreated {
                to, retreated_at, ..
            } => self.move_to(to, retreated_at),
            WizardEvent::StepTested {
                step,
                passed,
                details,
                tested_at,
                ..
            } => {
                if let Some(s) = self.steps.get_mut(step as usize) {
                    s.test = Some(serde_json::json!({
                        "passed": passed,
                        "details": details,
                        "tested_at": tested_at,
                    }));
                }
                self.updated_at = Some(tested_at);
            }
            WizardEvent::WizardCompleted {
                resource_type,
                resource_id,
                completed_at,
            } => {
                self.status = "completed".into();
                self.resource = Some(serde_json::json!({"type": resource_type, "id": resource_id}));
                self.finish(completed_at);
            }
            WizardEvent::WizardCancelled { cancelled_at } => {
                self.status = "cancelled".into();
                self.finish(cancelled_at);
            }
            WizardEvent::WizardFailed { reason, failed_at } => {
                self.status = "failed".into();
                self.failure_reason = Some(reason);
                self.finish(failed_at);
            }
        }
    }

    fn move_to(&mut self, step: u32, at: DateTime<Utc>) {
        self.current_step = step;
        self.step_name = self
            .steps
            .get(step as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.updated_at = Some(at);
    }

    fn finish(&mut self, at: DateTime<Utc>) {
        self.updated_at = Some(at);
        self.finished_at = Some(at);
    }
}

fn pending(op_id: Uuid, action: &str) -> Option<PendingOperation> {
    Some(PendingOperation {
        operation_id: op_id,
        action: action.to_string(),
    })
}

impl UserState {
    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserCreated {
                username,
                email,
                full_name,
                role,
                must_change_password,
                created_at,
                ..
            } => {
                self.username = username;
                self.email = email;
                self.full_name = full_name;
                self.role = role.as_str().to_string();
                self.must_change_password = must_change_password;
                self.active = true;
                self.created_at = Some(created_at);
            }
            UserEvent::UserProfileUpdated {
                email, full_name, ..
            } => {
                if let Some(email) = email {
                    self.email = email;
                }
                if let Some(full_name) = full_name {
                    self.full_name = full_name;
                }
            }
            UserEvent::UserRoleChanged { to, .. } => self.role = to.as_str().to_string(),
            UserEvent::UserDeactivated { .. } => self.active = false,
            UserEvent::UserReactivated { .. } => self.active = true,
            UserEvent::UserPasswordChanged {
                must_change_password,
                changed_at,
                ..
            } => {
                self.must_change_password = must_change_password;
                self.password_changed_at = Some(changed_at);
            }
            UserEvent::UserDeleted { .. } => {
                self.deleted = true;
                self.active = false;
            }
        }
    }
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

impl ContainerState {
    fn apply(&mut self, event: ContainerEvent) {
        use ContainerEvent as E;
        let finished = |s: &mut Self| s.pending_operation = None;
        match event {
            E::ContainerCreateRequested {
                op_id, host, spec, ..
            } => {
                self.host = host;
                self.origin = "dcp".into();
                self.status = "creating".into();
                self.name = spec
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.image = spec
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.config = config_of(&spec);
                self.pending_operation = pending(op_id, "create");
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
                finished(self);
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
            E::ContainerStartRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "start")
            }
            E::ContainerStopRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "stop")
            }
            E::ContainerRestartRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "restart")
            }
            E::ContainerKillRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "kill")
            }
            E::ContainerPauseRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "pause")
            }
            E::ContainerUnpauseRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "unpause")
            }
            E::ContainerRenameRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "rename")
            }
            E::ContainerRemoveRequested { op_id, .. } => {
                self.pending_operation = pending(op_id, "delete")
            }
            E::ContainerRecreateRequested { op_id, spec, .. } => {
                self.recreate_spec = Some(spec);
                self.pending_operation = pending(op_id, "recreate");
            }
            E::ContainerStarted { .. }
            | E::ContainerRestarted { .. }
            | E::ContainerUnpaused { .. } => {
                self.status = "running".into();
                self.exit_code = None;
                finished(self);
            }
            E::ContainerStopped { .. } => {
                self.status = "exited".into();
                finished(self);
            }
            E::ContainerKilled { signal, .. } => {
                // Other signals may be handled by the process: the status is what it was.
                if matches!(signal.as_str(), "SIGKILL" | "KILL" | "9") {
                    self.status = "exited".into();
                    self.exit_code = Some(137);
                }
                finished(self);
            }
            E::ContainerPaused { .. } => {
                self.status = "paused".into();
                finished(self);
            }
            E::ContainerRenamed { to, .. } => {
                self.name = to;
                finished(self);
            }
            E::ContainerRemoved { .. } => {
                self.status = "removed".into();
                finished(self);
            }
            E::ContainerRecreated {
                docker_id,
                image_id,
                running,
                ..
            } => {
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
                finished(self);
            }
            E::ContainerObserved {
                action,
                exit_code,
                attributes,
                ..
            } => match action.as_str() {
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
            },
            E::ContainerExecStarted { .. } | E::ContainerExecEnded { .. } => {}
            E::OperationFailed { operation, .. } => {
                if operation == "create" {
                    self.status = "create_failed".into();
                }
                self.recreate_spec = None;
                finished(self);
            }
        }
    }
}

impl ImageState {
    fn apply(&mut self, event: ImageEvent) {
        match event {
            ImageEvent::ImagePullRequested {
                op_id,
                host,
                reference,
                ..
            } => {
                self.host = host;
                self.reference = reference;
                self.pending_operation = pending(op_id, "pull");
            }
            ImageEvent::ImagePulled {
                image_id,
                digest,
                layers,
                ..
            } => {
                self.image_id = Some(image_id);
                self.digest = digest;
                self.layers = Some(layers);
                self.present = true;
                self.pending_operation = None;
            }
            ImageEvent::ImageRemoveRequested {
                op_id,
                host,
                reference,
                image_id,
                ..
            } => {
                self.host = host;
                self.reference = reference;
                self.image_id = Some(image_id);
                self.pending_operation = pending(op_id, "delete");
            }
            ImageEvent::ImageRemoved { .. } => {
                self.present = false;
                self.pending_operation = None;
            }
            ImageEvent::OperationFailed { .. } => self.pending_operation = None,
            ImageEvent::ImageObserved {
                host,
                reference,
                action,
                ..
            } => {
                self.host = host;
                if self.reference.is_empty() {
                    self.reference = reference;
                }
                match action.as_str() {
                    "pull" | "tag" | "import" | "load" => self.present = true,
                    "delete" | "untag" => self.present = false,
                    _ => {}
                }
            }
        }
    }
}

impl VolumeState {
    fn apply(&mut self, event: VolumeEvent) {
        match event {
            VolumeEvent::VolumeCreateRequested {
                op_id,
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
                self.pending_operation = pending(op_id, "create");
            }
            VolumeEvent::VolumeCreated { mountpoint, .. } => {
                self.mountpoint = Some(mountpoint);
                self.exists = true;
                self.pending_operation = None;
            }
            VolumeEvent::VolumeRemoveRequested {
                op_id, host, name, ..
            } => {
                self.host = host;
                self.name = name;
                self.pending_operation = pending(op_id, "delete");
            }
            VolumeEvent::VolumeRemoved { .. } => {
                self.exists = false;
                self.pending_operation = None;
            }
            VolumeEvent::OperationFailed { .. } => self.pending_operation = None,
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

impl NetworkState {
    fn apply(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::NetworkCreateRequested {
                op_id,
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
                self.pending_operation = pending(op_id, "create");
            }
            NetworkEvent::NetworkCreated { network_id, .. } => {
                self.network_id = Some(network_id);
                self.exists = true;
                self.containers.clear();
                self.pending_operation = None;
            }
            NetworkEvent::NetworkRemoveRequested {
                op_id,
                host,
                name,
                network_id,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.network_id = Some(network_id);
                self.pending_operation = pending(op_id, "delete");
            }
            NetworkEvent::NetworkRemoved { .. } => {
                self.exists = false;
                self.containers.clear();
                self.pending_operation = None;
            }
            NetworkEvent::NetworkConnectRequested {
                op_id,
                container_name,
                ..
            } => {
                self.pending_container = Some(container_name);
                self.pending_operation = pending(op_id, "connect");
            }
            NetworkEvent::NetworkConnected { .. } => {
                if let Some(name) = self.pending_container.take() {
                    if !self.containers.contains(&name) {
                        self.containers.push(name);
                    }
                }
                self.pending_operation = None;
            }
            NetworkEvent::NetworkDisconnectRequested {
                op_id,
                container_name,
                ..
            } => {
                self.pending_container = Some(container_name);
                self.pending_operation = pending(op_id, "disconnect");
            }
            NetworkEvent::NetworkDisconnected { .. } => {
                if let Some(name) = self.pending_container.take() {
                    self.containers.retain(|c| *c != name);
                }
                self.pending_operation = None;
            }
            NetworkEvent::OperationFailed { .. } => {
                self.pending_container = None;
                self.pending_operation = None;
            }
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

/// Who caused an event.
#[derive(Debug, Clone, Serialize)]
pub struct EventActor {
    pub id: Option<String>,
    pub username: Option<String>,
    pub role: Option<String>,
    /// `user` unless the platform or Docker did it (`docker`, `reconciler`, `system`).
    pub kind: String,
}

impl EventActor {
    pub fn of(event: &StoredEvent) -> Self {
        let text = |key| event.meta(key).map(str::to_string);
        EventActor {
            id: text(metadata::ACTOR_ID),
            username: text(metadata::ACTOR_USERNAME),
            role: text(metadata::ACTOR_ROLE),
            kind: text(metadata::ACTOR_KIND).unwrap_or_else(|| "user".into()),
        }
    }
}

/// One event between the two moments, and the fields it changed.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    pub global_position: i64,
    pub sequence: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub operation_id: Option<String>,
    pub actor: EventActor,
    /// Dotted paths of the state fields this event changed (`config.env.MODE`).
    pub changed: Vec<String>,
}

/// One field that differs between the two moments.
#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    /// Dotted path (`name`, `config.env.MODE`, `config.ports`).
    pub field: String,
    pub from: Value,
    pub to: Value,
    /// Global positions of the events that changed it in between.
    pub events: Vec<i64>,
}

/// What changed between two moments.
#[derive(Debug, Clone, Serialize)]
pub struct StateDiff {
    pub before: Value,
    pub after: Value,
    pub changes: Vec<FieldChange>,
    pub events: Vec<ChangeEvent>,
}

/// Folds `events` (the aggregate's, in order) into its state.
pub fn fold(aggregate_type: &str, events: &[StoredEvent]) -> Result<AggregateState, FoldError> {
    let mut state = AggregateState::empty(aggregate_type).ok_or_else(|| FoldError {
        position: 0,
        event_type: aggregate_type.to_string(),
        source: serde::de::Error::custom("this aggregate type has no state view"),
    })?;
    for event in events {
        state.apply(event)?;
    }
    Ok(state)
}

/// The difference between the state after `before` and after `before` + `between`, with
/// the fields each event of `between` changed.
pub fn diff(
    aggregate_type: &str,
    before: &[StoredEvent],
    between: &[StoredEvent],
) -> Result<StateDiff, FoldError> {
    let mut state = fold(aggregate_type, before)?;
    let start = state.to_json();
    let mut previous = start.clone();
    let mut touched: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut events = Vec::with_capacity(between.len());
    for event in between {
        state.apply(event)?;
        let next = state.to_json();
        let changed = changed_paths(&previous, &next);
        for path in &changed {
            touched
                .entry(path.clone())
                .or_default()
                .push(event.global_position);
        }
        events.push(ChangeEvent {
            global_position: event.global_position,
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            recorded_at: event.recorded_at,
            operation_id: event.meta(metadata::OPERATION_ID).map(str::to_string),
            actor: EventActor::of(event),
            changed,
        });
        previous = next;
    }
    let changes = changed_paths(&start, &previous)
        .into_iter()
        .map(|field| FieldChange {
            from: at_path(&start, &field),
            to: at_path(&previous, &field),
            // A field changed and changed back is not a change; the events that touched a
            // changed field include those of its intermediate values.
            events: touched
                .iter()
                .filter(|(path, _)| **path == field || is_within(path, &field))
                .flat_map(|(_, positions)| positions.iter().copied())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            field,
        })
        .collect();
    Ok(StateDiff {
        before: start,
        after: previous,
        changes,
        events,
    })
}

fn is_within(path: &str, parent: &str) -> bool {
    path.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('.'))
        || parent
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Dotted paths of the leaves that differ; objects are walked, anything else (arrays
/// included) is compared whole. A key with a dot in it is kept as it is.
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk("", before, after, &mut paths);
    paths
}

fn walk(prefix: &str, before: &Value, after: &Value, paths: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                walk(
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    paths,
                );
            }
        }
        (a, b) if a != b => paths.push(prefix.to_string()),
        _ => {}
    }
}

/// The value at a path produced by [`changed_paths`] (`null` when absent).
fn at_path(value: &Value, path: &str) -> Value {
    // Keys may contain dots (labels): match the longest key at each level.
    fn find<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
        if path.is_empty() {
            return Some(value);
        }
        let object = value.as_object()?;
        if let Some(found) = object.get(path) {
            return Some(found);
        }
        let mut candidates: Vec<(&String, &Value)> = object
            .iter()
            .filter(|(key, _)| {
                path.strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .collect();
        candidates.sort_by_key(|(key, _)| std::cmp::Reverse(key.len()));
        candidates
            .into_iter()
            .find_map(|(key, child)| find(child, &path[key.len() + 1..]))
    }
    find(value, path).cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(position: i64, event_type: &str, fields: Value, actor: &str) -> StoredEvent {
        StoredEvent {
            global_position: position,
            transaction_id: position as u64,
            event_id: Uuid::now_v7(),
            aggregate_type: "container".into(),
            aggregate_id: "c1".into(),
            sequence: position,
            event_type: event_type.into(),
            event_version: "1".into(),
            payload: json!({ event_type: fields }),
            metadata: json!({"actor_username": actor, "actor_role": "operator", "operation_id": "op"}),
            recorded_at: Utc::now(),
        }
    }

    fn history() -> Vec<StoredEvent> {
        let op = Uuid::now_v7();
        let at = Utc::now();
        vec![
            event(
                1,
                "ContainerCreateRequested",
                json!({"op_id": op, "host": "local", "requested_at": at,
                    "spec": {"image": "busybox:latest", "name": "web", "env": {"MODE": "a", "KEEP": "1"},
                        "command": ["sleep", "60"], "start": null, "labels": {"app.tier": "front"}}}),
                "alice",
            ),
            event(
                2,
                "ContainerCreated",
                json!({"op_id": op, "host": "local", "docker_id": "d1", "name": "web",
                    "image_id": "sha256:1", "created_at": at}),
                "alice",
            ),
            event(
                3,
                "ContainerRenameRequested",
                json!({"op_id": op, "name": "api", "requested_at": at}),
                "bob",
            ),
            event(
                4,
                "ContainerRenamed",
                json!({"op_id": op, "from": "web", "to": "api", "renamed_at": at}),
                "bob",
            ),
            event(
                5,
                "ContainerRecreateRequested",
                json!({"op_id": op, "requested_at": at,
                    "spec": {"image": "busybox:latest", "name": "api", "env": {"MODE": "b", "KEEP": "1"},
                        "command": ["sleep", "60"], "labels": {"app.tier": "front"}}}),
                "carol",
            ),
            event(
                6,
                "ContainerRecreated",
                json!({"op_id": op, "previous_docker_id": "d1", "docker_id": "d2",
                    "image_id": "sha256:1", "running": true, "recreated_at": at}),
                "carol",
            ),
        ]
    }

    #[test]
    fn a_container_is_folded_into_its_configuration_and_status() {
        let events = history();
        let state = fold("container", &events[..2]).unwrap().to_json();
        assert_eq!(state["name"], "web");
        assert_eq!(state["status"], "created");
        assert_eq!(state["docker_id"], "d1");
        assert_eq!(state["image_id"], "sha256:1");
        assert_eq!(state["config"]["env"]["MODE"], "a");
        assert_eq!(state["config"]["command"], json!(["sleep", "60"]));
        assert!(state["config"].get("name").is_none());
        assert!(state["config"].get("start").is_none());
        assert_eq!(state["pending_operation"], Value::Null);

        let pending = fold("container", &events[..3]).unwrap().to_json();
        assert_eq!(pending["pending_operation"]["action"], "rename");

        let state = fold("container", &events).unwrap().to_json();
        assert_eq!(state["name"], "api");
        assert_eq!(state["status"], "running");
        assert_eq!(state["docker_id"], "d2");
        assert_eq!(state["config"]["env"]["MODE"], "b");
    }

    #[test]
    fn a_diff_names_exactly_the_changed_fields_and_their_events() {
        let events = history();
        let diff = diff("container", &events[..2], &events[2..]).unwrap();
        let fields: Vec<&str> = diff.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["config.env.MODE", "docker_id", "name", "status"],
            "{:#?}",
            diff.changes
        );
        let name = &diff.changes[2];
        assert_eq!(
            (name.from.clone(), name.to.clone()),
            (json!("web"), json!("api"))
        );
        assert_eq!(name.events, vec![4]);
        let env = &diff.changes[0];
        assert_eq!((env.from.clone(), env.to.clone()), (json!("a"), json!("b")));
        assert_eq!(env.events, vec![6]);
        // Every event is listed with its actor; the pending operation comes and goes.
        assert_eq!(diff.events.len(), 4);
        assert_eq!(diff.events[0].actor.username.as_deref(), Some("bob"));
        assert_eq!(diff.events[0].changed, vec!["pending_operation"]);
        assert_eq!(diff.events[3].actor.username.as_deref(), Some("carol"));
        assert!(diff.events[3]
            .changed
            .contains(&"config.env.MODE".to_string()));
    }

    #[test]
    fn paths_with_dotted_keys_resolve() {
        let before = json!({"config": {"labels": {"app.tier": "front"}}});
        let after = json!({"config": {"labels": {"app.tier": "back"}}});
        let paths = changed_paths(&before, &after);
        assert_eq!(paths, vec!["config.labels.app.tier"]);
        assert_eq!(at_path(&after, &paths[0]), json!("back"));
        assert_eq!(at_path(&after, "config.missing"), Value::Null);
    }
}
