//! What happened to a container: the events of the [`Container`](super::Container)
//! aggregate, and what each is to its operation and to the audit log.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Container;
use crate::operation::{
    docker_resource_event, DockerActivity, OperationEventTypes, OperationPhase,
};

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
        crate::upcasting::version_of(Container::TYPE, &self.event_type())
    }
}

impl ContainerEvent {
    /// The container's operation events by name (see [`OperationEventTypes`]).
    pub const OPERATION_TYPES: OperationEventTypes = OperationEventTypes {
        requests: &[
            ("ContainerCreateRequested", "create"),
            ("ContainerStartRequested", "start"),
            ("ContainerStopRequested", "stop"),
            ("ContainerRestartRequested", "restart"),
            ("ContainerKillRequested", "kill"),
            ("ContainerPauseRequested", "pause"),
            ("ContainerUnpauseRequested", "unpause"),
            ("ContainerRenameRequested", "rename"),
            ("ContainerRemoveRequested", "delete"),
            ("ContainerRecreateRequested", "recreate"),
        ],
        outcomes: &[
            "ContainerCreated",
            "ContainerStarted",
            "ContainerStopped",
            "ContainerRestarted",
            "ContainerKilled",
            "ContainerPaused",
            "ContainerUnpaused",
            "ContainerRenamed",
            "ContainerRemoved",
            "ContainerRecreated",
            "OperationFailed",
        ],
    };

    /// The events that record the container's Docker id (`docker_id`): where a removed
    /// container is found by (a prefix of) its id.
    pub const RECORDING_DOCKER_ID: &'static [&'static str] = &[
        "ContainerCreated",
        "ContainerDiscovered",
        "ContainerRecreated",
    ];

    /// What this event is to the container's operations.
    fn activity(&self) -> DockerActivity<'_> {
        use ContainerEvent as E;
        use OperationPhase::{Failed, Requested, Succeeded};
        let (op_id, verb, phase) = match self {
            E::ContainerCreateRequested { op_id, .. } => (op_id, "create", Requested),
            E::ContainerCreated { op_id, .. } => (op_id, "create", Succeeded),
            E::ContainerStartRequested { op_id, .. } => (op_id, "start", Requested),
            E::ContainerStarted { op_id, .. } => (op_id, "start", Succeeded),
            E::ContainerStopRequested { op_id, .. } => (op_id, "stop", Requested),
            E::ContainerStopped { op_id, .. } => (op_id, "stop", Succeeded),
            E::ContainerRestartRequested { op_id, .. } => (op_id, "restart", Requested),
            E::ContainerRestarted { op_id, .. } => (op_id, "restart", Succeeded),
            E::ContainerKillRequested { op_id, .. } => (op_id, "kill", Requested),
            E::ContainerKilled { op_id, .. } => (op_id, "kill", Succeeded),
            E::ContainerPauseRequested { op_id, .. } => (op_id, "pause", Requested),
            E::ContainerPaused { op_id, .. } => (op_id, "pause", Succeeded),
            E::ContainerUnpauseRequested { op_id, .. } => (op_id, "unpause", Requested),
            E::ContainerUnpaused { op_id, .. } => (op_id, "unpause", Succeeded),
            E::ContainerRenameRequested { op_id, .. } => (op_id, "rename", Requested),
            E::ContainerRenamed { op_id, .. } => (op_id, "rename", Succeeded),
            E::ContainerRemoveRequested { op_id, .. } => (op_id, "delete", Requested),
            E::ContainerRemoved { op_id, .. } => (op_id, "delete", Succeeded),
            E::ContainerRecreateRequested { op_id, .. } => (op_id, "recreate", Requested),
            E::ContainerRecreated { op_id, .. } => (op_id, "recreate", Succeeded),
            E::OperationFailed {
                op_id, operation, ..
            } => (op_id, operation.as_str(), Failed),
            E::ContainerObserved { .. } => return DockerActivity::observed(Container::TYPE),
            E::ContainerDiscovered { .. } => return outside("observed", "discovered"),
            E::ContainerExecStarted { .. } => return outside("exec", "started"),
            E::ContainerExecEnded { .. } => return outside("exec", "ended"),
        };
        DockerActivity::step(Container::TYPE, *op_id, verb, phase)
    }
}

fn outside(verb: &'static str, outcome: &'static str) -> DockerActivity<'static> {
    DockerActivity::Outside {
        resource: Container::TYPE,
        verb,
        outcome,
    }
}

docker_resource_event!(ContainerEvent);
