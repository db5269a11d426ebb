//! The `Volume` aggregate: volumes dcp creates and removes, and the ones Docker reports
//! created or destroyed outside it.
//!
//! One aggregate per `(host, volume name)` (see [`crate::resource_key`]): a volume removed
//! and created again under the same name continues the same history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::operation::{
    docker_resource_event, validate_docker_action, validate_labels, validate_name, DockerActivity,
    OperationEventTypes, OperationPhase, OperationSlot, ResourceError,
};

/// What the pending operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeOperation {
    Create,
    Remove,
}

impl VolumeOperation {
    /// The verb in audit actions: `volume.<verb>`.
    pub fn verb(&self) -> &'static str {
        match self {
            VolumeOperation::Create => "create",
            VolumeOperation::Remove => "delete",
        }
    }
}

/// Commands accepted by [`Volume`].
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeCommand {
    /// Create `name` on `host`; the request is already policy-checked.
    RequestCreate {
        op_id: Uuid,
        host: String,
        name: String,
        driver: String,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        /// An admin's reason for options that reach the host.
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Remove the volume (the caller found it on the engine).
    RequestRemove {
        op_id: Uuid,
        host: String,
        name: String,
        force: bool,
        at: DateTime<Utc>,
    },
    RecordCreated {
        op_id: Uuid,
        mountpoint: String,
        at: DateTime<Utc>,
    },
    RecordRemoved {
        op_id: Uuid,
        at: DateTime<Utc>,
    },
    RecordFailed {
        op_id: Uuid,
        code: String,
        message: String,
        at: DateTime<Utc>,
    },
    /// Docker reported a change dcp did not make.
    Observe {
        host: String,
        name: String,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`Volume`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VolumeEvent {
    VolumeCreateRequested {
        op_id: Uuid,
        host: String,
        name: String,
        driver: String,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        reason: Option<String>,
        requested_at: DateTime<Utc>,
    },
    VolumeCreated {
        op_id: Uuid,
        mountpoint: String,
        created_at: DateTime<Utc>,
    },
    VolumeRemoveRequested {
        op_id: Uuid,
        host: String,
        name: String,
        force: bool,
        requested_at: DateTime<Utc>,
    },
    VolumeRemoved {
        op_id: Uuid,
        removed_at: DateTime<Utc>,
    },
    OperationFailed {
        op_id: Uuid,
        operation: String,
        code: String,
        message: String,
        failed_at: DateTime<Utc>,
    },
    /// A Docker event for this volume that no dcp operation explains.
    VolumeObserved {
        host: String,
        name: String,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        observed_at: DateTime<Utc>,
    },
}

impl DomainEvent for VolumeEvent {
    fn event_type(&self) -> String {
        match self {
            VolumeEvent::VolumeCreateRequested { .. } => "VolumeCreateRequested",
            VolumeEvent::VolumeCreated { .. } => "VolumeCreated",
            VolumeEvent::VolumeRemoveRequested { .. } => "VolumeRemoveRequested",
            VolumeEvent::VolumeRemoved { .. } => "VolumeRemoved",
            VolumeEvent::OperationFailed { .. } => "OperationFailed",
            VolumeEvent::VolumeObserved { .. } => "VolumeObserved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(Volume::TYPE, &self.event_type())
    }
}

impl VolumeEvent {
    /// The volume's operation events by name (see [`OperationEventTypes`]).
    pub const OPERATION_TYPES: OperationEventTypes = OperationEventTypes {
        requests: &[
            ("VolumeCreateRequested", "create"),
            ("VolumeRemoveRequested", "delete"),
        ],
        outcomes: &["VolumeCreated", "VolumeRemoved", "OperationFailed"],
    };

    /// What this event is to the volume's operations.
    fn activity(&self) -> DockerActivity<'_> {
        use OperationPhase::{Failed, Requested, Succeeded};
        use VolumeEvent as E;
        let (op_id, verb, phase) = match self {
            E::VolumeCreateRequested { op_id, .. } => (op_id, "create", Requested),
            E::VolumeCreated { op_id, .. } => (op_id, "create", Succeeded),
            E::VolumeRemoveRequested { op_id, .. } => (op_id, "delete", Requested),
            E::VolumeRemoved { op_id, .. } => (op_id, "delete", Succeeded),
            E::OperationFailed {
                op_id, operation, ..
            } => (op_id, operation.as_str(), Failed),
            E::VolumeObserved { .. } => return DockerActivity::observed(Volume::TYPE),
        };
        DockerActivity::step(Volume::TYPE, *op_id, verb, phase)
    }
}

docker_resource_event!(VolumeEvent);

/// The state the aggregate of a volume (one per host and name) decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    host: String,
    name: String,
    operations: OperationSlot<VolumeOperation>,
}

impl Volume {
    fn decide(&self, command: VolumeCommand) -> Result<Vec<VolumeEvent>, ResourceError> {
        let event = match command {
            VolumeCommand::RecordCreated {
                op_id,
                mountpoint,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(VolumeOperation::Create) => VolumeEvent::VolumeCreated {
                    op_id,
                    mountpoint,
                    created_at: at,
                },
                Some(_) => return Err(ResourceError::UnknownOperation(op_id)),
            },
            VolumeCommand::RecordRemoved { op_id, at } => {
                match self.operations.outcome_for(op_id)? {
                    None => return Ok(vec![]),
                    Some(VolumeOperation::Remove) => VolumeEvent::VolumeRemoved {
                        op_id,
                        removed_at: at,
                    },
                    Some(_) => return Err(ResourceError::UnknownOperation(op_id)),
                }
            }
            VolumeCommand::RecordFailed {
                op_id,
                code,
                message,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(operation) => VolumeEvent::OperationFailed {
                    op_id,
                    operation: operation.verb().to_string(),
                    code,
                    message,
                    failed_at: at,
                },
            },
            VolumeCommand::Observe {
                host,
                name,
                action,
                time_nano,
                attributes,
                at,
            } => {
                validate_docker_action(&action)?;
                if self.operations.seen(time_nano, &action) {
                    return Ok(vec![]);
                }
                VolumeEvent::VolumeObserved {
                    host,
                    name,
                    action,
                    time_nano,
                    attributes,
                    observed_at: at,
                }
            }
            request @ (VolumeCommand::RequestCreate { .. }
            | VolumeCommand::RequestRemove { .. }) => return self.request(request),
        };
        Ok(vec![event])
    }

    /// A request for an operation: accepted while no other operation is in flight.
    fn request(&self, command: VolumeCommand) -> Result<Vec<VolumeEvent>, ResourceError> {
        self.operations.require_idle()?;
        let event = match command {
            VolumeCommand::RequestCreate {
                op_id,
                host,
                name,
                driver,
                driver_opts,
                labels,
                reason,
                at,
            } => {
                validate_name("name", &name)?;
                crate::operation::validate_driver(&driver)?;
                validate_labels(labels.keys())?;
                VolumeEvent::VolumeCreateRequested {
                    op_id,
                    host,
                    name,
                    driver,
                    driver_opts,
                    labels,
                    reason,
                    requested_at: at,
                }
            }
            VolumeCommand::RequestRemove {
                op_id,
                host,
                name,
                force,
                at,
            } => VolumeEvent::VolumeRemoveRequested {
                op_id,
                host,
                name,
                force,
                requested_at: at,
            },
            // `decide` sends only requests here: another command is a bug, and
            // sending it back would loop.
            other => unreachable!("not one of requests: {other:?}"),
        };
        Ok(vec![event])
    }
}

impl Aggregate for Volume {
    const TYPE: &'static str = "volume";
    type Command = VolumeCommand;
    type Event = VolumeEvent;
    type Error = ResourceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: VolumeCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ResourceError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: VolumeEvent) {
        match event {
            VolumeEvent::VolumeCreateRequested {
                op_id, host, name, ..
            } => {
                self.host = host;
                self.name = name;
                self.operations.begin(op_id, VolumeOperation::Create);
            }
            VolumeEvent::VolumeRemoveRequested {
                op_id, host, name, ..
            } => {
                self.host = host;
                self.name = name;
                self.operations.begin(op_id, VolumeOperation::Remove);
            }
            VolumeEvent::VolumeCreated { op_id, .. }
            | VolumeEvent::VolumeRemoved { op_id, .. }
            | VolumeEvent::OperationFailed { op_id, .. } => self.operations.finish(op_id),
            VolumeEvent::VolumeObserved {
                host,
                name,
                action,
                time_nano,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.operations.remember(time_nano, &action);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    type VolumeTest = TestFramework<Volume>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
    }

    const OP: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);

    fn create(op_id: Uuid, name: &str, labels: &[(&str, &str)]) -> VolumeCommand {
        VolumeCommand::RequestCreate {
            op_id,
            host: "local".into(),
            name: name.into(),
            driver: "local".into(),
            driver_opts: BTreeMap::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            reason: None,
            at: at(),
        }
    }

    fn create_requested() -> VolumeEvent {
        VolumeEvent::VolumeCreateRequested {
            op_id: OP,
            host: "local".into(),
            name: "data".into(),
            driver: "local".into(),
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            reason: None,
            requested_at: at(),
        }
    }

    #[test]
    fn create_is_requested_then_recorded_once() {
        VolumeTest::with(())
            .given_no_previous_events()
            .when(create(OP, "data", &[]))
            .then_expect_events(vec![create_requested()]);
        let created = VolumeEvent::VolumeCreated {
            op_id: OP,
            mountpoint: "/var/lib/docker/volumes/data/_data".into(),
            created_at: at(),
        };
        VolumeTest::with(())
            .given(vec![create_requested()])
            .when(VolumeCommand::RecordCreated {
                op_id: OP,
                mountpoint: "/var/lib/docker/volumes/data/_data".into(),
                at: at(),
            })
            .then_expect_events(vec![created.clone()]);
        // The reconciler recording the same outcome again changes nothing.
        VolumeTest::with(())
            .given(vec![create_requested(), created])
            .when(VolumeCommand::RecordFailed {
                op_id: OP,
                code: "INTERRUPTED".into(),
                message: "x".into(),
                at: at(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn one_operation_at_a_time() {
        VolumeTest::with(())
            .given(vec![create_requested()])
            .when(VolumeCommand::RequestRemove {
                op_id: OTHER,
                host: "local".into(),
                name: "data".into(),
                force: false,
                at: at(),
            })
            .then_expect_error(ResourceError::OperationInProgress(OP));
    }

    #[test]
    fn an_outcome_needs_its_request() {
        VolumeTest::with(())
            .given(vec![create_requested()])
            .when(VolumeCommand::RecordRemoved {
                op_id: OTHER,
                at: at(),
            })
            .then_expect_error(ResourceError::UnknownOperation(OTHER));
        // The create's id with the wrong outcome is refused too.
        VolumeTest::with(())
            .given(vec![create_requested()])
            .when(VolumeCommand::RecordRemoved {
                op_id: OP,
                at: at(),
            })
            .then_expect_error(ResourceError::UnknownOperation(OP));
    }

    #[test]
    fn a_failure_names_the_operation() {
        VolumeTest::with(())
            .given(vec![create_requested()])
            .when(VolumeCommand::RecordFailed {
                op_id: OP,
                code: "DOCKER_OPERATION_FAILED".into(),
                message: "no such driver".into(),
                at: at(),
            })
            .then_expect_events(vec![VolumeEvent::OperationFailed {
                op_id: OP,
                operation: "create".into(),
                code: "DOCKER_OPERATION_FAILED".into(),
                message: "no such driver".into(),
                failed_at: at(),
            }]);
    }

    #[test]
    fn names_and_labels_are_checked() {
        assert!(matches!(
            Volume::default().decide(create(OP, "../etc", &[])),
            Err(ResourceError::Invalid { field: "name", .. })
        ));
        assert!(matches!(
            Volume::default().decide(create(OP, "data", &[("dcp.op", "x")])),
            Err(ResourceError::Invalid {
                field: "labels",
                ..
            })
        ));
    }

    #[test]
    fn an_observed_docker_event_is_recorded_once() {
        let observe = || VolumeCommand::Observe {
            host: "local".into(),
            name: "data".into(),
            action: "destroy".into(),
            time_nano: 42,
            attributes: BTreeMap::new(),
            at: at(),
        };
        let observed = VolumeEvent::VolumeObserved {
            host: "local".into(),
            name: "data".into(),
            action: "destroy".into(),
            time_nano: 42,
            attributes: BTreeMap::new(),
            observed_at: at(),
        };
        VolumeTest::with(())
            .given_no_previous_events()
            .when(observe())
            .then_expect_events(vec![observed.clone()]);
        VolumeTest::with(())
            .given(vec![observed])
            .when(observe())
            .then_expect_events(vec![]);
    }
}
