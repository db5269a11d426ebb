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

mod commands;
mod events;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use commands::validate;
pub use commands::{
    validate_container_name, validate_signal, ContainerAction, ContainerCommand, MAX_STOP_TIMEOUT,
};
pub use events::ContainerEvent;

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

impl PendingKind {
    /// The verb in audit actions: `container.<verb>`.
    pub fn verb(&self) -> &'static str {
        match self {
            PendingKind::Create => "create",
            PendingKind::Recreate => "recreate",
            PendingKind::Action(action) => action.verb(),
        }
    }
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

    /// Takes in a change Docker reported, and remembers it so a repeat is recognised.
    fn observed(&mut self, action: String, time_nano: i64, attributes: &BTreeMap<String, String>) {
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

    fn begin(&mut self, op_id: Uuid, kind: PendingKind) {
        self.pending = Some(PendingOperation { op_id, kind });
    }

    fn finish(&mut self, op_id: Uuid) {
        self.pending = None;
        self.finished.push(op_id);
        if self.finished.len() > REMEMBERED_OPERATIONS {
            self.finished.remove(0);
        }
    }

    /// Whether the outcome of `op_id`, of the kind `expected`, is still to be recorded
    /// (`false`: it was recorded already, recording it again is a no-op).
    fn awaits(&self, op_id: Uuid, expected: &PendingKind) -> Result<bool, ContainerError> {
        match self.outcome_for(op_id)? {
            None => Ok(false),
            Some(pending) if pending.kind == *expected => Ok(true),
            Some(_) => Err(ContainerError::UnknownOperation(op_id)),
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
            ContainerCommand::Observe {
                action,
                time_nano,
                attributes,
                at,
            } => return self.observe(action, time_nano, attributes, at),
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
            outcome @ (ContainerCommand::RecordCreated { .. }
            | ContainerCommand::RecordRecreated { .. }
            | ContainerCommand::RecordDone { .. }
            | ContainerCommand::RecordFailed { .. }) => return self.record_outcome(outcome),
        };
        Ok(vec![event])
    }

    /// Records the outcome a runner or a reconciliation reports: once, for the pending
    /// operation it names.
    fn record_outcome(
        &self,
        command: ContainerCommand,
    ) -> Result<Vec<ContainerEvent>, ContainerError> {
        let event = match command {
            ContainerCommand::RecordCreated {
                op_id,
                docker_id,
                name,
                image_id,
                at,
            } => {
                if !self.awaits(op_id, &PendingKind::Create)? {
                    return Ok(vec![]);
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
            ContainerCommand::RecordRecreated {
                op_id,
                docker_id,
                image_id,
                running,
                at,
            } => {
                if !self.awaits(op_id, &PendingKind::Recreate)? {
                    return Ok(vec![]);
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
                ContainerEvent::OperationFailed {
                    op_id,
                    operation: pending.kind.verb().to_string(),
                    code,
                    message,
                    failed_at: at,
                }
            }
            // `decide` sends only outcomes here: another command is a bug, and
            // sending it back would loop.
            other => unreachable!("not one of outcomes: {other:?}"),
        };
        Ok(vec![event])
    }

    /// A lifecycle change Docker reported, recorded once.
    fn observe(
        &self,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> Result<Vec<ContainerEvent>, ContainerError> {
        if !self.known {
            return Err(ContainerError::NotFound);
        }
        crate::operation::validate_docker_action(&action).map_err(|_| ContainerError::Invalid {
            field: "action",
            message: format!("'{action}' is not a Docker event action"),
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
        Ok(vec![ContainerEvent::ContainerObserved {
            action,
            exit_code,
            time_nano,
            attributes,
            observed_at: at,
        }])
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
                self.begin(op_id, PendingKind::Create);
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
            E::ContainerRecreateRequested { op_id, .. } => self.begin(op_id, PendingKind::Recreate),
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
            } => self.observed(action, time_nano, &attributes),
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
