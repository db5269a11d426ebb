//! The `Container` aggregate: every operation dcp performs on a container, recorded before
//! and after it happens.
//!
//! The aggregate id is a platform id (a UUID) given when dcp first knows the container:
//! when it is asked to create one, or when it discovers one made outside dcp. The Docker
//! id arrives with `ContainerCreated` / `ContainerDiscovered`; the caller keeps the
//! `(host, docker id) → aggregate id` mapping in a side table written with that event.
//!
//! An operation is requested (`…Requested { op_id }`: committed means accepted), then the
//! operation runner calls Docker and records the outcome (`ContainerStarted`, … or
//! `OperationFailed`). One operation runs at a time per container; recording an outcome
//! twice (a reconciliation racing the runner) is harmless.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What an operation does to an existing container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum ContainerAction {
    Start,
    /// Seconds Docker waits before it kills the container.
    Stop {
        timeout: Option<u32>,
    },
    Restart {
        timeout: Option<u32>,
    },
    /// `SIGKILL`, `SIGTERM`, `HUP`, `9`, …
    Kill {
        signal: String,
    },
    Pause,
    Unpause,
    Rename {
        name: String,
    },
    /// Remove the container (`force` also stops a running one; `volumes` removes its anonymous volumes).
    Remove {
        force: bool,
        volumes: bool,
    },
}

impl ContainerAction {
    /// The verb in audit actions: `container.<verb>`.
    pub fn verb(&self) -> &'static str {
        match self {
            ContainerAction::Start => "start",
            ContainerAction::Stop { .. } => "stop",
            ContainerAction::Restart { .. } => "restart",
            ContainerAction::Kill { .. } => "kill",
            ContainerAction::Pause => "pause",
            ContainerAction::Unpause => "unpause",
            ContainerAction::Rename { .. } => "rename",
            ContainerAction::Remove { .. } => "delete",
        }
    }
}

/// The longest stop or restart timeout accepted, in seconds.
pub const MAX_STOP_TIMEOUT: u32 = 600;

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, here at most 128 characters.
pub fn validate_container_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let ok = (2..=128).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::Invalid {
            field: "name",
            message: "name must be 2 to 128 characters: letters, digits, '_', '.', '-', starting with a letter or digit".into(),
        })
    }
}

/// A signal name (`SIGTERM`, `TERM`) or number (1–64).
pub fn validate_signal(signal: &str) -> Result<(), ContainerError> {
    let name = signal.strip_prefix("SIG").unwrap_or(signal);
    let ok = match name.parse::<u8>() {
        Ok(number) => (1..=64).contains(&number),
        Err(_) => {
            (2..=10).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ContainerError::Invalid {
            field: "signal",
            message: format!("'{signal}' is not a signal name or number"),
        })
    }
}

fn validate(action: &ContainerAction) -> Result<(), ContainerError> {
    match action {
        ContainerAction::Stop { timeout: Some(t) }
        | ContainerAction::Restart { timeout: Some(t) }
            if *t > MAX_STOP_TIMEOUT =>
        {
            Err(ContainerError::Invalid {
                field: "timeout",
                message: format!("timeout must be at most {MAX_STOP_TIMEOUT} seconds"),
            })
        }
        ContainerAction::Kill { signal } => validate_signal(signal),
        ContainerAction::Rename { name } => validate_container_name(name),
        _ => Ok(()),
    }
}

/// Commands accepted by [`Container`].
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerCommand {
    /// Accept a request to create a container on `host` from a normalized, policy-checked spec.
    RequestCreate {
        op_id: Uuid,
        host: String,
        spec: Value,
        at: DateTime<Utc>,
    },
    /// Docker created it (the runner, or a reconciliation that found it by its `dcp.op` label).
    RecordCreated {
        op_id: Uuid,
        docker_id: String,
        name: String,
        /// The image Docker resolved the reference to (`sha256:…`), when it said.
        image_id: Option<String>,
        at: DateTime<Utc>,
    },
    /// A container made outside dcp becomes known.
    Discover {
        host: String,
        docker_id: String,
        name: String,
        image: String,
        state: String,
        at: DateTime<Utc>,
    },
    /// Accept a request to act on the container.
    Request {
        op_id: Uuid,
        action: ContainerAction,
        at: DateTime<Utc>,
    },
    /// Docker reported a lifecycle change no dcp operation explains (`start`, `die`,
    /// `destroy`, `oom`, …); `time_nano` is Docker's event time.
    Observe {
        action: String,
        time_nano: i64,
        attributes: std::collections::BTreeMap<String, String>,
        at: DateTime<Utc>,
    },
    /// Accept a request to replace the container with one made from `spec` (a normalized,
    /// policy-checked create request), keeping its name and its history: how a
    /// container's environment, image, ports or limits change.
    RequestRecreate {
        op_id: Uuid,
        spec: Value,
        at: DateTime<Utc>,
    },
    /// The replacement exists (`docker_id`) and the previous container is gone.
    RecordRecreated {
        op_id: Uuid,
        docker_id: String,
        image_id: Option<String>,
        /// Whether the replacement was started.
        running: bool,
        at: DateTime<Utc>,
    },
    /// An interactive exec session opened (`command` is what runs, e.g. the detected shell).
    RecordExecStarted {
        exec_id: String,
        command: Vec<String>,
        at: DateTime<Utc>,
    },
    /// The exec session ended.
    RecordExecEnded {
        exec_id: String,
        exit_code: Option<i64>,
        duration_ms: i64,
        at: DateTime<Utc>,
    },
    /// The operation `op_id` succeeded.
    RecordDone { op_id: Uuid, at: DateTime<Utc> },
    /// The operation `op_id` failed; `code` is the API error code, `message` Docker's words.
    RecordFailed {
        op_id: Uuid,
        code: String,
        message: String,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`Container`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContainerEvent {
    ContainerCreateRequested {
        op_id: Uuid,
        host: String,
        spec: Value,
        requested_at: DateTime<Utc>,
    },
    /// Version 2 added `image_id` (upcast from version 1 as `None`: not recorded).
    ContainerCreated {
        op_id: Uuid,
        host: String,
        docker_id: String,
        name: String,
        /// The image the container was created from (`sha256:…`), as `docker inspect` shows it.
        image_id: Option<String>,
        created_at: DateTime<Utc>,
    },
    ContainerDiscovered {
        host: String,
        docker_id: String,
        name: String,
        image: String,
        state: String,
        discovered_at: DateTime<Utc>,
    },
    ContainerStartRequested {
        op_id: Uuid,
        requested_at: DateTime<Utc>,
    },
    ContainerStarted {
        op_id: Uuid,
        started_at: DateTime<Utc>,
    },
    ContainerStopRequested {
        op_id: Uuid,
        timeout: Option<u32>,
        requested_at: DateTime<Utc>,
    },
    ContainerStopped {
        op_id: Uuid,
        stopped_at: DateTime<Utc>,
    },
    ContainerRestartRequested {
        op_id: Uuid,
        timeout: Option<u32>,
        requested_at: DateTime<Utc>,
    },
    ContainerRestarted {
        op_id: Uuid,
        restarted_at: DateTime<Utc>,
    },
    ContainerKillRequested {
        op_id: Uuid,
        signal: String,
        requested_at: DateTime<Utc>,
    },
    ContainerKilled {
        op_id: Uuid,
        signal: String,
        killed_at: DateTime<Utc>,
    },
    ContainerPauseRequested {
        op_id: Uuid,
        requested_at: DateTime<Utc>,
    },
    ContainerPaused {
        op_id: Uuid,
        paused_at: DateTime<Utc>,
    },
    ContainerUnpauseRequested {
        op_id: Uuid,
        requested_at: DateTime<Utc>,
    },
    ContainerUnpaused {
        op_id: Uuid,
        unpaused_at: DateTime<Utc>,
    },
    ContainerRenameRequested {
        op_id: Uuid,
        name: String,
        requested_at: DateTime<Utc>,
    },
    ContainerRenamed {
        op_id: Uuid,
        from: String,
        to: String,
        renamed_at: DateTime<Utc>,
    },
    ContainerRemoveRequested {
        op_id: Uuid,
        force: bool,
        volumes: bool,
        requested_at: DateTime<Utc>,
    },
    ContainerRemoved {
        op_id: Uuid,
        removed_at: DateTime<Utc>,
    },
    ContainerRecreateRequested {
        op_id: Uuid,
        spec: Value,
        requested_at: DateTime<Utc>,
    },
    /// The container now is Docker container `docker_id`, made from the requested spec;
    /// `previous_docker_id` was removed.
    ContainerRecreated {
        op_id: Uuid,
        previous_docker_id: String,
        docker_id: String,
        image_id: Option<String>,
        running: bool,
        recreated_at: DateTime<Utc>,
    },
    /// A lifecycle change made outside dcp, as Docker reported it.
    ContainerObserved {
        action: String,
        /// The exit code of a `die`.
        exit_code: Option<i64>,
        time_nano: i64,
        attributes: std::collections::BTreeMap<String, String>,
        observed_at: DateTime<Utc>,
    },
    /// An interactive exec session opened by the event's actor.
    ContainerExecStarted {
        exec_id: String,
        command: Vec<String>,
        started_at: DateTime<Utc>,
    },
    ContainerExecEnded {
        exec_id: String,
        exit_code: Option<i64>,
        duration_ms: i64,
        ended_at: DateTime<Utc>,
    },
    /// Any requested operation that did not happen.
    OperationFailed {
        op_id: Uuid,
        operation: String,
        code: String,
        message: String,
        failed_at: DateTime<Utc>,
    },
}

impl DomainEvent for ContainerEvent {
    fn event_type(&self) -> String {
        let name = match self {
            ContainerEvent::ContainerCreateRequested { .. } => "ContainerCreateRequested",
            ContainerEvent::ContainerCreated { .. } => "ContainerCreated",
            ContainerEvent::ContainerDiscovered { .. } => "ContainerDiscovered",
            ContainerEvent::ContainerStartRequested { .. } => "ContainerStartRequested",
            ContainerEvent::ContainerStarted { .. } => "ContainerStarted",
            ContainerEvent::ContainerStopRequested { .. } => "ContainerStopRequested",
            ContainerEvent::ContainerStopped { .. } => "ContainerStopped",
            ContainerEvent::ContainerRestartRequested { .. } => "ContainerRestartRequested",
            ContainerEvent::ContainerRestarted { .. } => "ContainerRestarted",
            ContainerEvent::ContainerKillRequested { .. } => "ContainerKillRequested",
            ContainerEvent::ContainerKilled { .. } => "ContainerKilled",
            ContainerEvent::ContainerPauseRequested { .. } => "ContainerPauseRequested",
            ContainerEvent::ContainerPaused { .. } => "ContainerPaused",
            ContainerEvent::ContainerUnpauseRequested { .. } => "ContainerUnpauseRequested",
            ContainerEvent::ContainerUnpaused { .. } => "ContainerUnpaused",
            ContainerEvent::ContainerRenameRequested { .. } => "ContainerRenameRequested",
            ContainerEvent::ContainerRenamed { .. } => "ContainerRenamed",
            ContainerEvent::ContainerRemoveRequested { .. } => "ContainerRemoveRequested",
            ContainerEvent::ContainerRemoved { .. } => "ContainerRemoved",
            ContainerEvent::ContainerRecreateRequested { .. } => "ContainerRecreateRequested",
            ContainerEvent::ContainerRecreated { .. } => "ContainerRecreated",
            ContainerEvent::ContainerObserved { .. } => "ContainerObserved",
            ContainerEvent::ContainerExecStarted { .. } => "ContainerExecStarted",
            ContainerEvent::ContainerExecEnded { .. } => "ContainerExecEnded",
            ContainerEvent::OperationFailed { .. } => "OperationFailed",
        };
        name.to_string()
    }

    fn event_version(&self) -> String {
        crate::versioning::version_of("container", &self.event_type())
    }
}

/// Why a [`ContainerCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("container not found")]
    NotFound,
    #[error("this container is already known")]
    AlreadyKnown,
    #[error("operation {0} is still in progress on this container")]
    OperationInProgress(Uuid),
    #[error("no operation {0} is in progress on this container")]
    UnknownOperation(Uuid),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// The operation in progress, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOperation {
    pub op_id: Uuid,
    /// `create`, or a [`ContainerAction`].
    pub kind: PendingKind,
}

/// What the pending operation is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PendingKind {
    Create,
    Recreate,
    Action(ContainerAction),
}

/// The state a [`Container`] decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    known: bool,
    host: String,
    docker_id: Option<String>,
    name: String,
    removed: bool,
    pending: Option<PendingOperation>,
    /// Operations that have an outcome, for idempotent re-recording.
    finished: Vec<Uuid>,
    /// `(time_nano, action)` of the Docker events already recorded.
    observed: Vec<(i64, String)>,
}

/// How many finished operation ids a container remembers (re-recordings come soon after).
const REMEMBERED_OPERATIONS: usize = 32;

impl Container {
    fn require_live(&self) -> Result<(), ContainerError> {
        if !self.known || self.removed {
            return Err(ContainerError::NotFound);
        }
        Ok(())
    }

    fn require_idle(&self) -> Result<(), ContainerError> {
        match &self.pending {
            Some(pending) => Err(ContainerError::OperationInProgress(pending.op_id)),
            None => Ok(()),
        }
    }

    /// Ready for an operation: known, not removed, created on Docker, and idle.
    fn require_ready(&self) -> Result<(), ContainerError> {
        self.require_live()?;
        if self.docker_id.is_none() {
            // Still being created.
            return Err(self
                .require_idle()
                .err()
                .unwrap_or(ContainerError::NotFound));
        }
        self.require_idle()
    }

    /// The pending operation `op_id`; `Ok(None)` when its outcome is already recorded.
    fn outcome_for(&self, op_id: Uuid) -> Result<Option<&PendingOperation>, ContainerError> {
        match &self.pending {
            Some(pending) if pending.op_id == op_id => Ok(Some(pending)),
            _ if self.finished.contains(&op_id) => Ok(None),
            _ => Err(ContainerError::UnknownOperation(op_id)),
        }
    }

    fn finish(&mut self, op_id: Uuid) {
        self.pending = None;
        self.finished.push(op_id);
        if self.finished.len() > REMEMBERED_OPERATIONS {
            self.finished.remove(0);
        }
    }

    fn decide(&self, command: ContainerCommand) -> Result<Vec<ContainerEvent>, ContainerError> {
        let event = match command {
            ContainerCommand::RequestCreate {
                op_id,
                host,
                spec,
                at,
            } => {
                if self.known {
                    return Err(ContainerError::AlreadyKnown);
                }
                ContainerEvent::ContainerCreateRequested {
                    op_id,
                    host,
                    spec,
                    requested_at: at,
                }
            }
            ContainerCommand::Discover {
                host,
                docker_id,
                name,
                image,
                state,
                at,
            } => {
                if self.known {
                    return Err(ContainerError::AlreadyKnown);
                }
                ContainerEvent::ContainerDiscovered {
                    host,
                    docker_id,
                    name,
                    image,
                    state,
                    discovered_at: at,
                }
            }
            ContainerCommand::RecordCreated {
                op_id,
                docker_id,
                name,
                image_id,
                at,
            } => {
                match self.outcome_for(op_id)? {
                    None => return Ok(vec![]),
                    Some(PendingOperation {
                        kind: PendingKind::Create,
                        ..
                    }) => {}
                    Some(_) => return Err(ContainerError::UnknownOperation(op_id)),
                }
                ContainerEvent::ContainerCreated {
                    op_id,
                    host: self.host.clone(),
                    docker_id,
                    name,
                    image_id,
                    created_at: at,
                }
            }
            ContainerCommand::Request { op_id, action, at } => {
                self.require_ready()?;
                validate(&action)?;
                requested(op_id, action, at)
            }
            ContainerCommand::RequestRecreate { op_id, spec, at } => {
                self.require_ready()?;
                ContainerEvent::ContainerRecreateRequested {
                    op_id,
                    spec,
                    requested_at: at,
                }
            }
            ContainerCommand::RecordRecreated {
                op_id,
                docker_id,
                image_id,
                running,
                at,
            } => {
                match self.outcome_for(op_id)? {
                    None => return Ok(vec![]),
                    Some(PendingOperation {
                        kind: PendingKind::Recreate,
                        ..
                    }) => {}
                    Some(_) => return Err(ContainerError::UnknownOperation(op_id)),
                }
                ContainerEvent::ContainerRecreated {
                    op_id,
                    previous_docker_id: self.docker_id.clone().unwrap_or_default(),
                    docker_id,
                    image_id,
                    running,
                    recreated_at: at,
                }
            }
            ContainerCommand::Observe {
                action,
                time_nano,
                attributes,
                at,
            } => {
                if !self.known {
                    return Err(ContainerError::NotFound);
                }
                crate::operation::validate_docker_action(&action).map_err(|_| {
                    ContainerError::Invalid {
                        field: "action",
                        message: format!("'{action}' is not a Docker event action"),
                    }
                })?;
                if self
                    .observed
                    .iter()
                    .any(|(t, a)| *t == time_nano && *a == action)
                {
                    return Ok(vec![]);
                }
                let exit_code = attributes
                    .get("exitCode")
                    .and_then(|code| code.parse().ok());
                ContainerEvent::ContainerObserved {
                    action,
                    exit_code,
                    time_nano,
                    attributes,
                    observed_at: at,
                }
            }
            ContainerCommand::RecordExecStarted {
                exec_id,
                command,
                at,
            } => {
                self.require_live()?;
                ContainerEvent::ContainerExecStarted {
                    exec_id,
                    command,
                    started_at: at,
                }
            }
            ContainerCommand::RecordExecEnded {
                exec_id,
                exit_code,
                duration_ms,
                at,
            } => {
                if !self.known {
                    return Err(ContainerError::NotFound);
                }
                ContainerEvent::ContainerExecEnded {
                    exec_id,
                    exit_code,
                    duration_ms,
                    ended_at: at,
                }
            }
            ContainerCommand::RecordDone { op_id, at } => {
                let Some(pending) = self.outcome_for(op_id)? else {
                    return Ok(vec![]);
                };
                match &pending.kind {
                    PendingKind::Create | PendingKind::Recreate => {
                        return Err(ContainerError::UnknownOperation(op_id))
                    }
                    PendingKind::Action(action) => done(op_id, action, &self.name, at),
                }
            }
            ContainerCommand::RecordFailed {
                op_id,
                code,
                message,
                at,
            } => {
                let Some(pending) = self.outcome_for(op_id)? else {
                    return Ok(vec![]);
                };
                let operation = match &pending.kind {
                    PendingKind::Create => "create",
                    PendingKind::Recreate => "recreate",
                    PendingKind::Action(action) => action.verb(),
                };
                ContainerEvent::OperationFailed {
                    op_id,
                    operation: operation.to_string(),
                    code,
                    message,
                    failed_at: at,
                }
            }
        };
        Ok(vec![event])
    }
}

fn requested(op_id: Uuid, action: ContainerAction, at: DateTime<Utc>) -> ContainerEvent {
    match action {
        ContainerAction::Start => ContainerEvent::ContainerStartRequested {
            op_id,
            requested_at: at,
        },
        ContainerAction::Stop { timeout } => ContainerEvent::ContainerStopRequested {
            op_id,
            timeout,
            requested_at: at,
        },
        ContainerAction::Restart { timeout } => ContainerEvent::ContainerRestartRequested {
            op_id,
            timeout,
            requested_at: at,
        },
        ContainerAction::Kill { signal } => ContainerEvent::ContainerKillRequested {
            op_id,
            signal,
            requested_at: at,
        },
        ContainerAction::Pause => ContainerEvent::ContainerPauseRequested {
            op_id,
            requested_at: at,
        },
        ContainerAction::Unpause => ContainerEvent::ContainerUnpauseRequested {
            op_id,
            requested_at: at,
        },
        ContainerAction::Rename { name } => ContainerEvent::ContainerRenameRequested {
            op_id,
            name,
            requested_at: at,
        },
        ContainerAction::Remove { force, volumes } => ContainerEvent::ContainerRemoveRequested {
            op_id,
            force,
            volumes,
            requested_at: at,
        },
    }
}

fn done(
    op_id: Uuid,
    action: &ContainerAction,
    current_name: &str,
    at: DateTime<Utc>,
) -> ContainerEvent {
    match action {
        ContainerAction::Start => ContainerEvent::ContainerStarted {
            op_id,
            started_at: at,
        },
        ContainerAction::Stop { .. } => ContainerEvent::ContainerStopped {
            op_id,
            stopped_at: at,
        },
        ContainerAction::Restart { .. } => ContainerEvent::ContainerRestarted {
            op_id,
            restarted_at: at,
        },
        ContainerAction::Kill { signal } => ContainerEvent::ContainerKilled {
            op_id,
            signal: signal.clone(),
            killed_at: at,
        },
        ContainerAction::Pause => ContainerEvent::ContainerPaused {
            op_id,
            paused_at: at,
        },
        ContainerAction::Unpause => ContainerEvent::ContainerUnpaused {
            op_id,
            unpaused_at: at,
        },
        ContainerAction::Rename { name } => ContainerEvent::ContainerRenamed {
            op_id,
            from: current_name.to_string(),
            to: name.clone(),
            renamed_at: at,
        },
        ContainerAction::Remove { .. } => ContainerEvent::ContainerRemoved {
            op_id,
            removed_at: at,
        },
    }
}

impl Aggregate for Container {
    const TYPE: &'static str = "container";
    type Command = ContainerCommand;
    type Event = ContainerEvent;
    type Error = ContainerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ContainerCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ContainerError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ContainerEvent) {
        use ContainerEvent as E;
        let pending = |op_id: Uuid, action: ContainerAction| {
            Some(PendingOperation {
                op_id,
                kind: PendingKind::Action(action),
            })
        };
        match event {
            E::ContainerCreateRequested { op_id, host, .. } => {
                self.known = true;
                self.host = host;
                self.pending = Some(PendingOperation {
                    op_id,
                    kind: PendingKind::Create,
                });
            }
            E::ContainerCreated {
                op_id,
                docker_id,
                name,
                ..
            } => {
                self.docker_id = Some(docker_id);
                self.name = name;
                self.finish(op_id);
            }
            E::ContainerDiscovered {
                host,
                docker_id,
                name,
                ..
            } => {
                self.known = true;
                self.host = host;
                self.docker_id = Some(docker_id);
                self.name = name;
            }
            E::ContainerStartRequested { op_id, .. } => {
                self.pending = pending(op_id, ContainerAction::Start)
            }
            E::ContainerStopRequested { op_id, timeout, .. } => {
                self.pending = pending(op_id, ContainerAction::Stop { timeout })
            }
            E::ContainerRestartRequested { op_id, timeout, .. } => {
                self.pending = pending(op_id, ContainerAction::Restart { timeout })
            }
            E::ContainerKillRequested { op_id, signal, .. } => {
                self.pending = pending(op_id, ContainerAction::Kill { signal })
            }
            E::ContainerPauseRequested { op_id, .. } => {
                self.pending = pending(op_id, ContainerAction::Pause)
            }
            E::ContainerUnpauseRequested { op_id, .. } => {
                self.pending = pending(op_id, ContainerAction::Unpause)
            }
            E::ContainerRenameRequested { op_id, name, .. } => {
                self.pending = pending(op_id, ContainerAction::Rename { name })
            }
            E::ContainerRemoveRequested {
                op_id,
                force,
                volumes,
                ..
            } => self.pending = pending(op_id, ContainerAction::Remove { force, volumes }),
            E::ContainerRecreateRequested { op_id, .. } => {
                self.pending = Some(PendingOperation {
                    op_id,
                    kind: PendingKind::Recreate,
                });
            }
            E::ContainerRecreated {
                op_id, docker_id, ..
            } => {
                self.docker_id = Some(docker_id);
                self.finish(op_id);
            }
            E::ContainerRenamed { op_id, to, .. } => {
                self.name = to;
                self.finish(op_id);
            }
            E::ContainerRemoved { op_id, .. } => {
                self.removed = true;
                self.finish(op_id);
            }
            E::ContainerObserved {
                action,
                time_nano,
                attributes,
                ..
            } => {
                match action.as_str() {
                    "destroy" => self.removed = true,
                    "rename" => {
                        if let Some(name) = attributes.get("name") {
                            self.name = name.trim_start_matches('/').to_string();
                        }
                    }
                    _ => {}
                }
                self.observed.push((time_nano, action));
                if self.observed.len() > REMEMBERED_OPERATIONS {
                    self.observed.remove(0);
                }
            }
            E::ContainerExecStarted { .. } | E::ContainerExecEnded { .. } => {}
            E::ContainerStarted { op_id, .. }
            | E::ContainerStopped { op_id, .. }
            | E::ContainerRestarted { op_id, .. }
            | E::ContainerKilled { op_id, .. }
            | E::ContainerPaused { op_id, .. }
            | E::ContainerUnpaused { op_id, .. }
            | E::OperationFailed { op_id, .. } => self.finish(op_id),
        }
    }
}
