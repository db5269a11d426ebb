//! Any aggregate's event, decoded by its aggregate type: for readers of the whole log
//! (the audit log, the operations read model, the server's lookups), which meet every kind.

use cqrs_es::Aggregate;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::access_attempt::{AccessAttempt, AccessAttemptEvent};
use crate::audit::{AuditAction, Audited};
use crate::container::{Container, ContainerEvent};
use crate::host::{Host, HostEvent};
use crate::image::{Image, ImageEvent};
use crate::network::{Network, NetworkEvent};
use crate::operation::{OperationEvent, OperationStep};
use crate::session::{Session, SessionEvent};
use crate::user::{User, UserEvent};
use crate::volume::{Volume, VolumeEvent};
use crate::wizard::{Wizard, WizardEvent};

/// An event of any aggregate, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    User(UserEvent),
    Session(SessionEvent),
    AccessAttempt(AccessAttemptEvent),
    Container(ContainerEvent),
    Image(ImageEvent),
    Volume(VolumeEvent),
    Network(NetworkEvent),
    Host(HostEvent),
    Wizard(WizardEvent),
}

impl AnyEvent {
    /// Decodes a stored payload (`{"EventType": {fields}}`, already in its current shape:
    /// see [`crate::versioning::upcast`]) of an aggregate of type `aggregate_type`.
    /// `Ok(None)` for an aggregate type this build has no events of.
    pub fn decode(
        aggregate_type: &str,
        payload: &Value,
    ) -> Result<Option<Self>, serde_json::Error> {
        fn typed<E: DeserializeOwned>(
            payload: &Value,
            wrap: fn(E) -> AnyEvent,
        ) -> Result<Option<AnyEvent>, serde_json::Error> {
            E::deserialize(payload).map(|event| Some(wrap(event)))
        }
        match aggregate_type {
            User::TYPE => typed(payload, AnyEvent::User),
            Session::TYPE => typed(payload, AnyEvent::Session),
            AccessAttempt::TYPE => typed(payload, AnyEvent::AccessAttempt),
            Container::TYPE => typed(payload, AnyEvent::Container),
            Image::TYPE => typed(payload, AnyEvent::Image),
            Volume::TYPE => typed(payload, AnyEvent::Volume),
            Network::TYPE => typed(payload, AnyEvent::Network),
            Host::TYPE => typed(payload, AnyEvent::Host),
            Wizard::TYPE => typed(payload, AnyEvent::Wizard),
            _ => Ok(None),
        }
    }
}

/// Calls the same method on whichever event `$any` holds.
macro_rules! on_each {
    ($any:expr, $event:ident => $call:expr) => {
        match $any {
            AnyEvent::User($event) => $call,
            AnyEvent::Session($event) => $call,
            AnyEvent::AccessAttempt($event) => $call,
            AnyEvent::Container($event) => $call,
            AnyEvent::Image($event) => $call,
            AnyEvent::Volume($event) => $call,
            AnyEvent::Network($event) => $call,
            AnyEvent::Host($event) => $call,
            AnyEvent::Wizard($event) => $call,
        }
    };
}

impl Audited for AnyEvent {
    fn audit_action(&self) -> AuditAction<'_> {
        on_each!(self, event => event.audit_action())
    }

    fn user_id(&self) -> Option<Uuid> {
        on_each!(self, event => event.user_id())
    }

    fn username(&self) -> Option<&str> {
        on_each!(self, event => event.username())
    }
}

impl OperationEvent for AnyEvent {
    fn operation(&self) -> Option<OperationStep<'_>> {
        match self {
            AnyEvent::Container(event) => event.operation(),
            AnyEvent::Image(event) => event.operation(),
            AnyEvent::Volume(event) => event.operation(),
            AnyEvent::Network(event) => event.operation(),
            AnyEvent::User(_)
            | AnyEvent::Session(_)
            | AnyEvent::AccessAttempt(_)
            | AnyEvent::Host(_)
            | AnyEvent::Wizard(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OperationPhase;
    use serde_json::json;

    #[test]
    fn a_payload_decodes_by_its_aggregate_type() {
        let op = Uuid::from_u128(7);
        let payload = json!({"ImagePullRequested": {"op_id": op, "host": "local",
            "reference": "busybox:latest", "requested_at": "2026-01-01T00:00:00Z"}});
        let event = AnyEvent::decode("image", &payload).unwrap().unwrap();
        let step = event.operation().unwrap();
        assert_eq!(
            (step.op_id, step.action(), step.phase),
            (op, "image.pull".to_string(), OperationPhase::Requested)
        );
        assert_eq!(event.audit_action().action(), "image.pull");
        assert!(AnyEvent::decode("swarm", &payload).unwrap().is_none());
        assert!(AnyEvent::decode("container", &payload).is_err());
    }
}
