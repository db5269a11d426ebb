//! The `Network` aggregate: networks dcp creates, removes, connects containers to and
//! disconnects them from, and the ones Docker reports created or destroyed outside it.
//!
//! One aggregate per `(host, network name)` (see [`crate::resource_key`]).

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
pub enum NetworkOperation {
    Create,
    Remove,
    Connect,
    Disconnect,
}

impl NetworkOperation {
    /// The verb in audit actions: `network.<verb>`.
    pub fn verb(&self) -> &'static str {
        match self {
            NetworkOperation::Create => "create",
            NetworkOperation::Remove => "delete",
            NetworkOperation::Connect => "connect",
            NetworkOperation::Disconnect => "disconnect",
        }
    }
}

/// The drivers dcp creates networks with.
pub const DRIVERS: &[&str] = &["bridge", "macvlan", "ipvlan", "overlay"];

/// Commands accepted by [`Network`].
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkCommand {
    /// Create `name` on `host`; the request is already policy-checked.
    RequestCreate {
        op_id: Uuid,
        host: String,
        name: String,
        driver: String,
        internal: bool,
        attachable: bool,
        subnet: Option<String>,
        gateway: Option<String>,
        labels: BTreeMap<String, String>,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Remove it (the caller found it on the engine).
    RequestRemove {
        op_id: Uuid,
        host: String,
        name: String,
        network_id: String,
        at: DateTime<Utc>,
    },
    /// Connect a container (the caller resolved it).
    RequestConnect {
        op_id: Uuid,
        host: String,
        name: String,
        container_id: String,
        container_name: String,
        aliases: Vec<String>,
        at: DateTime<Utc>,
    },
    RequestDisconnect {
        op_id: Uuid,
        host: String,
        name: String,
        container_id: String,
        container_name: String,
        force: bool,
        at: DateTime<Utc>,
    },
    /// The pending operation happened; `network_id` is Docker's id of a created network.
    RecordDone {
        op_id: Uuid,
        network_id: Option<String>,
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
        network_id: String,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`Network`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NetworkEvent {
    NetworkCreateRequested {
        op_id: Uuid,
        host: String,
        name: String,
        driver: String,
        internal: bool,
        attachable: bool,
        subnet: Option<String>,
        gateway: Option<String>,
        labels: BTreeMap<String, String>,
        reason: Option<String>,
        requested_at: DateTime<Utc>,
    },
    NetworkCreated {
        op_id: Uuid,
        network_id: String,
        created_at: DateTime<Utc>,
    },
    NetworkRemoveRequested {
        op_id: Uuid,
        host: String,
        name: String,
        network_id: String,
        requested_at: DateTime<Utc>,
    },
    NetworkRemoved {
        op_id: Uuid,
        removed_at: DateTime<Utc>,
    },
    NetworkConnectRequested {
        op_id: Uuid,
        host: String,
        name: String,
        container_id: String,
        container_name: String,
        aliases: Vec<String>,
        requested_at: DateTime<Utc>,
    },
    NetworkConnected {
        op_id: Uuid,
        connected_at: DateTime<Utc>,
    },
    NetworkDisconnectRequested {
        op_id: Uuid,
        host: String,
        name: String,
        container_id: String,
        container_name: String,
        force: bool,
        requested_at: DateTime<Utc>,
    },
    NetworkDisconnected {
        op_id: Uuid,
        disconnected_at: DateTime<Utc>,
    },
    OperationFailed {
        op_id: Uuid,
        operation: String,
        code: String,
        message: String,
        failed_at: DateTime<Utc>,
    },
    /// A Docker event for this network that no dcp operation explains.
    NetworkObserved {
        host: String,
        name: String,
        network_id: String,
        action: String,
        time_nano: i64,
        attributes: BTreeMap<String, String>,
        observed_at: DateTime<Utc>,
    },
}

impl DomainEvent for NetworkEvent {
    fn event_type(&self) -> String {
        match self {
            NetworkEvent::NetworkCreateRequested { .. } => "NetworkCreateRequested",
            NetworkEvent::NetworkCreated { .. } => "NetworkCreated",
            NetworkEvent::NetworkRemoveRequested { .. } => "NetworkRemoveRequested",
            NetworkEvent::NetworkRemoved { .. } => "NetworkRemoved",
            NetworkEvent::NetworkConnectRequested { .. } => "NetworkConnectRequested",
            NetworkEvent::NetworkConnected { .. } => "NetworkConnected",
            NetworkEvent::NetworkDisconnectRequested { .. } => "NetworkDisconnectRequested",
            NetworkEvent::NetworkDisconnected { .. } => "NetworkDisconnected",
            NetworkEvent::OperationFailed { .. } => "OperationFailed",
            NetworkEvent::NetworkObserved { .. } => "NetworkObserved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(Network::TYPE, &self.event_type())
    }
}

impl NetworkEvent {
    /// The network's operation events by name (see [`OperationEventTypes`]).
    pub const OPERATION_TYPES: OperationEventTypes = OperationEventTypes {
        requests: &[
            ("NetworkCreateRequested", "create"),
            ("NetworkRemoveRequested", "delete"),
            ("NetworkConnectRequested", "connect"),
            ("NetworkDisconnectRequested", "disconnect"),
        ],
        outcomes: &[
            "NetworkCreated",
            "NetworkRemoved",
            "NetworkConnected",
            "NetworkDisconnected",
            "OperationFailed",
        ],
    };

    /// The events that record the network's Docker id (`network_id`): where a network is
    /// found by (a prefix of) its id.
    pub const RECORDING_NETWORK_ID: &'static [&'static str] = &[
        "NetworkCreated",
        "NetworkRemoveRequested",
        "NetworkObserved",
    ];

    /// What this event is to the network's operations.
    fn activity(&self) -> DockerActivity<'_> {
        use NetworkEvent as E;
        use OperationPhase::{Failed, Requested, Succeeded};
        let (op_id, verb, phase) = match self {
            E::NetworkCreateRequested { op_id, .. } => (op_id, "create", Requested),
            E::NetworkCreated { op_id, .. } => (op_id, "create", Succeeded),
            E::NetworkRemoveRequested { op_id, .. } => (op_id, "delete", Requested),
            E::NetworkRemoved { op_id, .. } => (op_id, "delete", Succeeded),
            E::NetworkConnectRequested { op_id, .. } => (op_id, "connect", Requested),
            E::NetworkConnected { op_id, .. } => (op_id, "connect", Succeeded),
            E::NetworkDisconnectRequested { op_id, .. } => (op_id, "disconnect", Requested),
            E::NetworkDisconnected { op_id, .. } => (op_id, "disconnect", Succeeded),
            E::OperationFailed {
                op_id, operation, ..
            } => (op_id, operation.as_str(), Failed),
            E::NetworkObserved { .. } => return DockerActivity::observed(Network::TYPE),
        };
        DockerActivity::step(Network::TYPE, *op_id, verb, phase)
    }
}

docker_resource_event!(NetworkEvent);

/// The state the aggregate of a network (one per host and name) decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    host: String,
    name: String,
    network_id: Option<String>,
    operations: OperationSlot<NetworkOperation>,
}

impl Network {
    fn decide(&self, command: NetworkCommand) -> Result<Vec<NetworkEvent>, ResourceError> {
        let event = match command {
            NetworkCommand::RecordDone {
                op_id,
                network_id,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(NetworkOperation::Create) => NetworkEvent::NetworkCreated {
                    op_id,
                    network_id: network_id.unwrap_or_default(),
                    created_at: at,
                },
                Some(NetworkOperation::Remove) => NetworkEvent::NetworkRemoved {
                    op_id,
                    removed_at: at,
                },
                Some(NetworkOperation::Connect) => NetworkEvent::NetworkConnected {
                    op_id,
                    connected_at: at,
                },
                Some(NetworkOperation::Disconnect) => NetworkEvent::NetworkDisconnected {
                    op_id,
                    disconnected_at: at,
                },
            },
            NetworkCommand::RecordFailed {
                op_id,
                code,
                message,
                at,
            } => match self.operations.outcome_for(op_id)? {
                None => return Ok(vec![]),
                Some(operation) => NetworkEvent::OperationFailed {
                    op_id,
                    operation: operation.verb().to_string(),
                    code,
                    message,
                    failed_at: at,
                },
            },
            NetworkCommand::Observe {
                host,
                name,
                network_id,
                action,
                time_nano,
                attributes,
                at,
            } => {
                validate_docker_action(&action)?;
                if self.operations.seen(time_nano, &action) {
                    return Ok(vec![]);
                }
                NetworkEvent::NetworkObserved {
                    host,
                    name,
                    network_id,
                    action,
                    time_nano,
                    attributes,
                    observed_at: at,
                }
            }
            request @ (NetworkCommand::RequestCreate { .. }
            | NetworkCommand::RequestRemove { .. }
            | NetworkCommand::RequestConnect { .. }
            | NetworkCommand::RequestDisconnect { .. }) => return self.request(request),
        };
        Ok(vec![event])
    }

    /// A request for an operation: accepted while no other operation is in flight.
    fn request(&self, command: NetworkCommand) -> Result<Vec<NetworkEvent>, ResourceError> {
        self.operations.require_idle()?;
        let event = match command {
            NetworkCommand::RequestCreate {
                op_id,
                host,
                name,
                driver,
                internal,
                attachable,
                subnet,
                gateway,
                labels,
                reason,
                at,
            } => {
                validate_name("name", &name)?;
                if !DRIVERS.contains(&driver.as_str()) {
                    return Err(ResourceError::Invalid {
                        field: "driver",
                        message: format!("driver must be one of {}", DRIVERS.join(", ")),
                    });
                }
                validate_labels(labels.keys())?;
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
                    reason,
                    requested_at: at,
                }
            }
            NetworkCommand::RequestRemove {
                op_id,
                host,
                name,
                network_id,
                at,
            } => NetworkEvent::NetworkRemoveRequested {
                op_id,
                host,
                name,
                network_id,
                requested_at: at,
            },
            NetworkCommand::RequestConnect {
                op_id,
                host,
                name,
                container_id,
                container_name,
                aliases,
                at,
            } => {
                for alias in &aliases {
                    validate_name("aliases", alias)?;
                }
                NetworkEvent::NetworkConnectRequested {
                    op_id,
                    host,
                    name,
                    container_id,
                    container_name,
                    aliases,
                    requested_at: at,
                }
            }
            NetworkCommand::RequestDisconnect {
                op_id,
                host,
                name,
                container_id,
                container_name,
                force,
                at,
            } => NetworkEvent::NetworkDisconnectRequested {
                op_id,
                host,
                name,
                container_id,
                container_name,
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

impl Aggregate for Network {
    const TYPE: &'static str = "network";
    type Command = NetworkCommand;
    type Event = NetworkEvent;
    type Error = ResourceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: NetworkCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ResourceError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: NetworkEvent) {
        use NetworkEvent as E;
        let mut begin = |op_id, host, name, operation| {
            self.host = host;
            self.name = name;
            self.operations.begin(op_id, operation);
        };
        match event {
            E::NetworkCreateRequested {
                op_id, host, name, ..
            } => begin(op_id, host, name, NetworkOperation::Create),
            E::NetworkRemoveRequested {
                op_id, host, name, ..
            } => begin(op_id, host, name, NetworkOperation::Remove),
            E::NetworkConnectRequested {
                op_id, host, name, ..
            } => begin(op_id, host, name, NetworkOperation::Connect),
            E::NetworkDisconnectRequested {
                op_id, host, name, ..
            } => begin(op_id, host, name, NetworkOperation::Disconnect),
            E::NetworkCreated {
                op_id, network_id, ..
            } => {
                self.network_id = Some(network_id);
                self.operations.finish(op_id);
            }
            E::NetworkRemoved { op_id, .. } => {
                self.network_id = None;
                self.operations.finish(op_id);
            }
            E::NetworkConnected { op_id, .. }
            | E::NetworkDisconnected { op_id, .. }
            | E::OperationFailed { op_id, .. } => self.operations.finish(op_id),
            E::NetworkObserved {
                host,
                name,
                network_id,
                action,
                time_nano,
                ..
            } => {
                self.host = host;
                self.name = name;
                self.network_id = (action != "destroy").then_some(network_id);
                self.operations.remember(time_nano, &action);
            }
        }
    }
}

#[cfg(test)]
mod tests;
