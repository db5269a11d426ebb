//! The upcasters that bring an older stored shape of an event up to the current one, and
//! the version each event type is written with now. Aggregates ask it for their events'
//! versions; [`crate::versioning`] applies it to stored events. It names aggregate types as
//! the strings they are stored under (checked against their `TYPE`s in the tests of
//! `versioning`), so it depends on no aggregate.

use serde_json::Value;

/// One step from `from` to `to` for one event type of one aggregate.
pub(crate) struct Upcaster {
    pub aggregate_type: &'static str,
    pub event_type: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub upcast: fn(&mut serde_json::Map<String, Value>),
}

/// Every upcaster, oldest first within an event type.
pub(crate) const UPCASTERS: &[Upcaster] = &[Upcaster {
    aggregate_type: "container",
    event_type: "ContainerCreated",
    from: "1",
    to: "2",
    upcast: container_created_v1_to_v2,
}];

/// `ContainerCreated` v2 records the id of the image the container was created from
/// (`sha256:…`, what `docker inspect` shows as `Image`), so the state of a container at a
/// past moment names the exact image even after its tag moved. Version 1 did not record
/// it: it is `null`, "not recorded", never a guess.
fn container_created_v1_to_v2(fields: &mut serde_json::Map<String, Value>) {
    fields.entry("image_id").or_insert(Value::Null);
}

/// The version an event type is written with now: `"1"` unless an upcaster raised it.
pub(crate) fn current_version(aggregate_type: &str, event_type: &str) -> &'static str {
    UPCASTERS
        .iter()
        .filter(|u| u.aggregate_type == aggregate_type && u.event_type == event_type)
        .map(|u| u.to)
        .next_back()
        .unwrap_or(crate::EVENT_VERSION_1)
}

/// The version `event_type` of `A` is written with now (for `DomainEvent::event_version`).
pub(crate) fn version_of(aggregate_type: &str, event_type: &str) -> String {
    current_version(aggregate_type, event_type).to_string()
}
