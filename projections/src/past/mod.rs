//! A resource as it was at a past moment, and what changed between two moments.
//!
//! The state is rebuilt by folding the aggregate's own events (in their current shapes, see
//! [`crate::current_shapes`]) into a view made for people: a container's platform-known
//! configuration and status, a user's profile and role, … one module per resource. Each
//! event changes named fields, so a diff ([`diff`]) can say which events changed which
//! fields, and who caused them. Pure: the caller loads the events.
//!
//! The `hosts` and `wizards` read models store [`HostState`] and [`WizardState`], folded by
//! this same code, so the present and the past never disagree.

mod container;
mod diff;
mod host;
mod image;
mod network;
#[cfg(test)]
mod tests;
mod user;
mod volume;
mod wizard;

use cqrs_es::Aggregate;
use dcp_aggregates::container::Container;
use dcp_aggregates::host::Host;
use dcp_aggregates::image::Image;
use dcp_aggregates::network::Network;
use dcp_aggregates::operation::{OperationEvent, OperationPhase};
use dcp_aggregates::user::User;
use dcp_aggregates::volume::Volume;
use dcp_aggregates::wizard::Wizard;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::log::StoredEvent;

pub use container::ContainerState;
pub use diff::{changed_paths, diff, ChangeEvent, EventActor, FieldChange, StateDiff};
pub use host::{ssh_url, HostState, KeyMismatch};
pub use image::ImageState;
pub use network::NetworkState;
pub use user::UserState;
pub use volume::VolumeState;
pub use wizard::{WizardState, WizardStepState};

/// The operation running on a resource at that moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingOperation {
    pub operation_id: Uuid,
    /// `start`, `create`, `recreate`, `pull`, …
    pub action: String,
}

impl PendingOperation {
    /// Moves `running` past `event`: a request starts an operation, its outcome ends it,
    /// and events outside operations leave it as it was.
    fn follow(running: &mut Option<PendingOperation>, event: &impl OperationEvent) {
        match event.operation() {
            Some(step) if step.phase == OperationPhase::Requested => {
                *running = Some(PendingOperation {
                    operation_id: step.op_id,
                    action: step.verb.to_string(),
                });
            }
            Some(_) => *running = None,
            None => {}
        }
    }
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
            User::TYPE => AggregateState::User(UserState::default()),
            Container::TYPE => AggregateState::Container(ContainerState::default()),
            Image::TYPE => AggregateState::Image(ImageState::default()),
            Volume::TYPE => AggregateState::Volume(VolumeState::default()),
            Network::TYPE => AggregateState::Network(NetworkState::default()),
            Host::TYPE => AggregateState::Host(HostState::default()),
            Wizard::TYPE => AggregateState::Wizard(WizardState::default()),
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
