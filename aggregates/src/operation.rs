//! What the Docker resource aggregates (`Image`, `Volume`, `Network`) share: one operation
//! at a time, outcomes recorded once, and observed Docker events recorded once.
//!
//! These aggregates do not decide whether a resource exists: Docker is the truth for that,
//! and the caller looks it up before it sends a command. They decide what may be asked
//! while something else is in flight, and keep the record idempotent when the runner, the
//! reconciler and the Docker event watcher all report the same thing.
//!
//! Every event of these resources says which step of an operation it records
//! ([`OperationEvent`]), for the operations read model, the audit log and the server.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::AuditAction;

/// Where an event stands in its Docker operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationPhase {
    /// dcp accepted the request (`…Requested`): the operation is pending.
    Requested,
    /// Docker did it (`ContainerStarted`, `ImagePulled`, …).
    Succeeded,
    /// It did not happen (`OperationFailed`).
    Failed,
}

impl OperationPhase {
    /// `requested`, `succeeded` or `failed`: the audit log's `details.outcome` and the
    /// operations read model's `status` of a finished operation.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationPhase::Requested => "requested",
            OperationPhase::Succeeded => "succeeded",
            OperationPhase::Failed => "failed",
        }
    }
}

/// One step of a Docker operation, as the event that records it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationStep<'a> {
    /// The operation (`op_id` of the request and of its outcome).
    pub op_id: Uuid,
    /// The aggregate type of the resource operated on: `container`, `image`, `volume` or
    /// `network`.
    pub resource: &'static str,
    /// What the operation does: `create`, `start`, `delete`, `pull`, `connect`, … (a
    /// failure names the operation that failed).
    pub verb: &'a str,
    pub phase: OperationPhase,
}

impl OperationStep<'_> {
    /// `<resource>.<verb>` (`container.start`): the action the audit log and the
    /// operations read model give every step of the operation.
    pub fn action(&self) -> String {
        format!("{}.{}", self.resource, self.verb)
    }
}

/// An event that may record a step of a Docker operation: the events of containers,
/// images, volumes and networks, and [`crate::AnyEvent`].
///
/// This is how a reader finds operation requests and outcomes without matching event
/// names: `event.operation()` is `Some` with [`OperationPhase::Requested`] exactly for the
/// `…Requested` events, and names the `op_id` their outcome will carry.
pub trait OperationEvent {
    /// The operation step this event records; `None` for events outside operations
    /// (Docker's own changes observed, containers discovered, exec sessions, and every
    /// event of users, sessions, access attempts, hosts and wizards).
    fn operation(&self) -> Option<OperationStep<'_>>;
}

/// The event types of one Docker resource that record the steps of its operations, by
/// name: for readers that look an operation up in the store, whose queries narrow by event
/// type before they read a payload. Each resource declares its own beside its events
/// (`ContainerEvent::OPERATION_TYPES`, …). This module's tests hold every name to what the
/// event says of itself ([`OperationEvent::operation`]), with one event of each type, so a
/// new request or outcome cannot be left out unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationEventTypes {
    /// The requests (`…Requested`), each with the verb it asks for.
    pub requests: &'static [(&'static str, &'static str)],
    /// The outcomes: each success, and `OperationFailed`.
    pub outcomes: &'static [&'static str],
}

impl OperationEventTypes {
    /// The names of the request events.
    pub fn request_types(&self) -> impl Iterator<Item = &'static str> {
        let requests = self.requests;
        requests.iter().map(|(event_type, _)| *event_type)
    }

    /// The request event that asks for `verb` (`create`, `recreate`, …), if the resource
    /// has that operation.
    pub fn request_for(&self, verb: &str) -> Option<&'static str> {
        self.requests
            .iter()
            .find(|(_, requested)| *requested == verb)
            .map(|(event_type, _)| *event_type)
    }
}

/// The operation event types of the resource stored as `aggregate_type`; `None` for an
/// aggregate without Docker operations (users, sessions, hosts, …).
pub fn operation_event_types(aggregate_type: &str) -> Option<OperationEventTypes> {
    use crate::container::{Container, ContainerEvent};
    use crate::image::{Image, ImageEvent};
    use crate::network::{Network, NetworkEvent};
    use crate::volume::{Volume, VolumeEvent};
    use cqrs_es::Aggregate;
    match aggregate_type {
        Container::TYPE => Some(ContainerEvent::OPERATION_TYPES),
        Image::TYPE => Some(ImageEvent::OPERATION_TYPES),
        Volume::TYPE => Some(VolumeEvent::OPERATION_TYPES),
        Network::TYPE => Some(NetworkEvent::OPERATION_TYPES),
        _ => None,
    }
}

/// What an event of a Docker resource is: a step of an operation dcp performs, or
/// something that happened outside dcp's operations. Each resource's events say which
/// (one match per enum), and both [`OperationEvent`] and the audit action follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DockerActivity<'a> {
    Operation(OperationStep<'a>),
    /// Docker changed the resource on its own or it was found there (`observed`), or an
    /// exec session ran in it (`exec`); `outcome` says which (`observed`, `discovered`,
    /// `started`, `ended`).
    Outside {
        resource: &'static str,
        verb: &'static str,
        outcome: &'static str,
    },
}

/// Implements [`OperationEvent`] and [`Audited`](crate::audit::Audited) for the event enum
/// of a Docker resource from its `activity()`, the one place that says what each event is.
macro_rules! docker_resource_event {
    ($event:ty) => {
        impl $crate::operation::OperationEvent for $event {
            fn operation(&self) -> Option<$crate::operation::OperationStep<'_>> {
                self.activity().operation()
            }
        }

        impl $crate::audit::Audited for $event {
            fn audit_action(&self) -> $crate::audit::AuditAction<'_> {
                self.activity().audit_action()
            }
        }
    };
}
pub(crate) use docker_resource_event;

impl<'a> DockerActivity<'a> {
    pub(crate) fn step(
        resource: &'static str,
        op_id: Uuid,
        verb: &'a str,
        phase: OperationPhase,
    ) -> Self {
        DockerActivity::Operation(OperationStep {
            op_id,
            resource,
            verb,
            phase,
        })
    }

    /// A Docker event dcp did not cause, recorded as `<resource>.observed`.
    pub(crate) fn observed(resource: &'static str) -> Self {
        DockerActivity::Outside {
            resource,
            verb: "observed",
            outcome: "observed",
        }
    }

    pub(crate) fn operation(self) -> Option<OperationStep<'a>> {
        match self {
            DockerActivity::Operation(step) => Some(step),
            DockerActivity::Outside { .. } => None,
        }
    }

    /// Every step of one operation shares the action `<resource>.<verb>`, told apart by
    /// its outcome.
    pub(crate) fn audit_action(self) -> AuditAction<'a> {
        match self {
            DockerActivity::Operation(step) => AuditAction {
                area: step.resource,
                verb: step.verb,
                outcome: Some(step.phase.as_str()),
                resource: None,
            },
            DockerActivity::Outside {
                resource,
                verb,
                outcome,
            } => AuditAction {
                area: resource,
                verb,
                outcome: Some(outcome),
                resource: None,
            },
        }
    }
}

/// Why a command on a Docker resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("operation {0} is still in progress on this resource")]
    OperationInProgress(Uuid),
    #[error("no operation {0} is in progress on this resource")]
    UnknownOperation(Uuid),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// How many finished operations and observed Docker events an aggregate remembers to
/// recognise a repeat (repeats come soon after the original).
const REMEMBERED: usize = 32;

/// The operation in flight on a resource and the ones recently finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationSlot<K> {
    pending: Option<(Uuid, K)>,
    finished: Vec<Uuid>,
    /// `(time_nano, action)` of the Docker events already recorded.
    observed: Vec<(i64, String)>,
}

impl<K> Default for OperationSlot<K> {
    fn default() -> Self {
        OperationSlot {
            pending: None,
            finished: Vec::new(),
            observed: Vec::new(),
        }
    }
}

impl<K: Clone> OperationSlot<K> {
    /// Refuses a new operation while one is in flight.
    pub fn require_idle(&self) -> Result<(), ResourceError> {
        match &self.pending {
            Some((op_id, _)) => Err(ResourceError::OperationInProgress(*op_id)),
            None => Ok(()),
        }
    }

    /// The kind of the pending operation `op_id`; `Ok(None)` when its outcome is already
    /// recorded (recording it again is a no-op).
    pub fn outcome_for(&self, op_id: Uuid) -> Result<Option<K>, ResourceError> {
        match &self.pending {
            Some((pending, kind)) if *pending == op_id => Ok(Some(kind.clone())),
            _ if self.finished.contains(&op_id) => Ok(None),
            _ => Err(ResourceError::UnknownOperation(op_id)),
        }
    }

    /// The operation in flight, if any.
    pub fn pending(&self) -> Option<&(Uuid, K)> {
        self.pending.as_ref()
    }

    /// A request was accepted: `op_id` is in flight.
    pub fn begin(&mut self, op_id: Uuid, kind: K) {
        self.pending = Some((op_id, kind));
    }

    /// The outcome of `op_id` is recorded; it is remembered to recognise a repeat.
    pub fn finish(&mut self, op_id: Uuid) {
        if matches!(&self.pending, Some((pending, _)) if *pending == op_id) {
            self.pending = None;
        }
        self.finished.push(op_id);
        if self.finished.len() > REMEMBERED {
            self.finished.remove(0);
        }
    }

    /// Whether this Docker event was recorded already (the watcher resumes with an
    /// overlap after a restart).
    pub fn seen(&self, time_nano: i64, action: &str) -> bool {
        self.observed
            .iter()
            .any(|(t, a)| *t == time_nano && a == action)
    }

    /// Remembers a recorded Docker event, to recognise a repeat.
    pub fn remember(&mut self, time_nano: i64, action: &str) {
        self.observed.push((time_nano, action.to_string()));
        if self.observed.len() > REMEMBERED {
            self.observed.remove(0);
        }
    }
}

/// Docker's event actions are short lowercase words (`create`, `destroy`, `exec_die`, …).
pub fn validate_docker_action(action: &str) -> Result<(), ResourceError> {
    let ok = (1..=32).contains(&action.len())
        && action
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == ' ' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(ResourceError::Invalid {
            field: "action",
            message: format!("'{action}' is not a Docker event action"),
        })
    }
}

/// Marks a container, volume or network as part of what the platform protects: operators
/// cannot act on it, mount it or join it, and admins only with a reason. Admins may set it.
pub const PROTECTED_LABEL: &str = "dcp.protected";
/// On a network an admin made: operators may join it after all (admins' networks isolate
/// by default). Admins may set it.
pub const SHARED_LABEL: &str = "dcp.shared";
/// The role of whoever made a volume or network through dcp (set by the platform).
pub const OWNER_LABEL: &str = "dcp.owner";
/// The `dcp.` labels a request may carry (admins only: the role policy decides who).
pub const SETTABLE_LABELS: &[&str] = &[PROTECTED_LABEL, SHARED_LABEL];

/// Labels on resources dcp creates: `dcp.` is reserved for the platform's own, but for
/// [`SETTABLE_LABELS`].
pub fn validate_labels<'a>(
    mut keys: impl Iterator<Item = &'a String>,
) -> Result<(), ResourceError> {
    if let Some(reserved) = keys
        .find(|k| (k.starts_with("dcp.") && !SETTABLE_LABELS.contains(&k.as_str())) || k.is_empty())
    {
        return Err(ResourceError::Invalid {
            field: "labels",
            message: format!(
                "label '{reserved}': the dcp. prefix is reserved (but for dcp.protected and dcp.shared) and keys are not empty"
            ),
        });
    }
    Ok(())
}

/// A volume driver: `local`, or a plugin reference such as `vieux/sshfs:latest`.
pub fn validate_driver(driver: &str) -> Result<(), ResourceError> {
    let mut chars = driver.chars();
    let ok = (1..=255).contains(&driver.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':'))
        && !driver.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ResourceError::Invalid {
            field: "driver",
            message: "driver must be `local` or a plugin reference such as vieux/sshfs:latest"
                .into(),
        })
    }
}

/// Docker's rule for volume and network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, 2–128 characters.
pub fn validate_name(field: &'static str, name: &str) -> Result<(), ResourceError> {
    let mut chars = name.chars();
    let ok = (2..=128).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ResourceError::Invalid {
            field,
            message: format!(
                "{field} must be 2 to 128 characters: letters, digits, '_', '.', '-', starting with a letter or digit"
            ),
        })
    }
}

#[cfg(test)]
mod tests;
