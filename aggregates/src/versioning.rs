//! Event versions: which event types each aggregate knows, at which version, and the
//! upcasters that bring an older stored shape up to the current one.
//!
//! A persisted event type is never renamed or removed, and its stored payload is never
//! rewritten. When a shape changes, the event is written with a new `event_version` and an
//! upcaster here turns every older version into the next one on read: the command side
//! (through cqrs-es, see `dcp::event_store`) and every projection load the current shape,
//! whatever the store holds.
//!
//! An event this build does not know (a type or a version from a newer dcp) is reported
//! as such, so that live processing can skip it and a rebuild can refuse to produce a
//! read model that silently lacks it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::Value;

use cqrs_es::Aggregate;

use crate::access_attempt::{AccessAttempt, AccessAttemptEvent};
use crate::container::{Container, ContainerEvent};
use crate::host::{Host, HostEvent};
use crate::image::{Image, ImageEvent};
use crate::network::{Network, NetworkEvent};
use crate::session::{Session, SessionEvent};
use crate::user::{User, UserEvent};
use crate::volume::{Volume, VolumeEvent};
use crate::wizard::{Wizard, WizardEvent};

use crate::upcasting::{current_version, UPCASTERS};

/// Why a stored event cannot be brought to a shape this build understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("unknown aggregate type '{0}'")]
    UnknownAggregate(String),
    #[error("unknown event type '{event_type}' of aggregate '{aggregate_type}'")]
    UnknownType {
        aggregate_type: String,
        event_type: String,
    },
    #[error("event '{event_type}' has version {stored}; this build knows up to {known}")]
    NewerVersion {
        event_type: String,
        stored: String,
        known: String,
    },
    #[error("event '{event_type}' version {version} is not an object of its type")]
    Malformed { event_type: String, version: String },
}

impl VersionError {
    /// True when the event comes from a newer dcp (as opposed to damage).
    pub fn is_unknown(&self) -> bool {
        !matches!(self, VersionError::Malformed { .. })
    }
}

/// Every aggregate type and the event types it knows (the variants of its event enum).
static KNOWN: LazyLock<BTreeMap<&'static str, &'static [&'static str]>> = LazyLock::new(|| {
    BTreeMap::from([
        (User::TYPE, variants_of::<UserEvent>()),
        (Session::TYPE, variants_of::<SessionEvent>()),
        (AccessAttempt::TYPE, variants_of::<AccessAttemptEvent>()),
        (Container::TYPE, variants_of::<ContainerEvent>()),
        (Image::TYPE, variants_of::<ImageEvent>()),
        (Volume::TYPE, variants_of::<VolumeEvent>()),
        (Network::TYPE, variants_of::<NetworkEvent>()),
        (Wizard::TYPE, variants_of::<WizardEvent>()),
        (Host::TYPE, variants_of::<HostEvent>()),
    ])
});

/// True when this build knows `event_type` of `aggregate_type` (at some version).
pub fn is_known(aggregate_type: &str, event_type: &str) -> bool {
    KNOWN
        .get(aggregate_type)
        .is_some_and(|types| types.contains(&event_type))
}

/// True when this build knows `event_type` of `aggregate_type` and `version` is its
/// current one: the event needs no upcasting (cheap; no allocation).
pub fn is_current(aggregate_type: &str, event_type: &str, version: &str) -> bool {
    is_known(aggregate_type, event_type) && version == current_version(aggregate_type, event_type)
}

/// Brings a stored event to the current shape of its type: returns the current version
/// and rewrites `payload` (`{"EventType": {fields}}`) in place. Events already current
/// are left untouched.
pub fn upcast(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: &mut Value,
) -> Result<&'static str, VersionError> {
    let types = KNOWN
        .get(aggregate_type)
        .ok_or_else(|| VersionError::UnknownAggregate(aggregate_type.to_string()))?;
    if !types.contains(&event_type) {
        return Err(VersionError::UnknownType {
            aggregate_type: aggregate_type.to_string(),
            event_type: event_type.to_string(),
        });
    }
    let current = current_version(aggregate_type, event_type);
    let mut at = version.to_string();
    while at != current {
        let Some(step) = UPCASTERS.iter().find(|u| {
            u.aggregate_type == aggregate_type && u.event_type == event_type && u.from == at
        }) else {
            return Err(VersionError::NewerVersion {
                event_type: event_type.to_string(),
                stored: version.to_string(),
                known: current.to_string(),
            });
        };
        let fields = payload
            .get_mut(event_type)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| VersionError::Malformed {
                event_type: event_type.to_string(),
                version: at.clone(),
            })?;
        (step.upcast)(fields);
        at = step.to.to_string();
    }
    Ok(current)
}

/// The variant names of an externally tagged enum, as serde's derive declares them.
pub(crate) fn variants_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut probe = VariantProbe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

/// A deserializer that only records the variant list a derived enum asks it for.
struct VariantProbe(Option<&'static [&'static str]>);

#[derive(Debug)]
struct Probed;

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("variant probe")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Probed
    }
}

impl<'de> de::Deserializer<'de> for &mut VariantProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        self.0 = Some(variants);
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upcasting::version_of;
    use serde_json::json;

    #[test]
    fn every_upcaster_names_a_known_event_type() {
        for upcaster in UPCASTERS {
            assert!(
                is_known(upcaster.aggregate_type, upcaster.event_type),
                "{} {}",
                upcaster.aggregate_type,
                upcaster.event_type
            );
        }
        assert_eq!(
            current_version(Container::TYPE, "ContainerCreated"),
            "2",
            "the upcasters name aggregates by their TYPE"
        );
    }

    #[test]
    fn every_aggregate_lists_its_event_types() {
        assert!(is_known("container", "ContainerCreated"));
        assert!(is_known("container", "OperationFailed"));
        assert!(is_known("user", "UserCreated"));
        assert!(!is_known("container", "ContainerTeleported"));
        assert!(!is_known("host", "HostCreated"));
        for (aggregate, types) in KNOWN.iter() {
            assert!(types.len() >= 2, "{aggregate} lists {types:?}");
        }
    }

    #[test]
    fn a_v1_container_created_is_upcast_to_v2_with_no_image_id() {
        let mut payload = json!({"ContainerCreated": {"op_id": "0190a000-0000-7000-8000-000000000000",
            "host": "local", "docker_id": "abc", "name": "web", "created_at": "2026-01-01T00:00:00Z"}});
        let version = upcast("container", "ContainerCreated", "1", &mut payload).unwrap();
        assert_eq!(version, "2");
        assert_eq!(payload["ContainerCreated"]["image_id"], Value::Null);
        assert_eq!(payload["ContainerCreated"]["name"], "web");
        let event: ContainerEvent = serde_json::from_value(payload).unwrap();
        assert!(matches!(
            event,
            ContainerEvent::ContainerCreated { image_id: None, .. }
        ));
    }

    #[test]
    fn current_events_pass_untouched_and_unknown_ones_are_named() {
        let original = json!({"ContainerCreated": {"image_id": "sha256:1"}});
        let mut payload = original.clone();
        assert_eq!(
            upcast("container", "ContainerCreated", "2", &mut payload),
            Ok("2")
        );
        assert_eq!(payload, original);
        assert!(!is_current("container", "ContainerCreated", "1"));
        assert!(is_current("container", "ContainerCreated", "2"));
        assert!(is_current("container", "ContainerStarted", "1"));
        assert!(!is_current("container", "ContainerTeleported", "1"));
        assert_eq!(version_of("container", "ContainerCreated"), "2");
        assert_eq!(version_of("container", "ContainerStarted"), "1");

        let unknown = upcast("container", "ContainerTeleported", "1", &mut json!({}));
        assert!(matches!(unknown, Err(VersionError::UnknownType { .. })));
        assert!(unknown.unwrap_err().is_unknown());
        let newer = upcast("container", "ContainerCreated", "3", &mut json!({}));
        assert!(matches!(newer, Err(VersionError::NewerVersion { .. })));
        let future_start = upcast("container", "ContainerStarted", "2", &mut json!({}));
        assert!(matches!(
            future_start,
            Err(VersionError::NewerVersion { .. })
        ));
        let malformed = upcast("container", "ContainerCreated", "1", &mut json!([]));
        assert!(matches!(malformed, Err(VersionError::Malformed { .. })));
        assert!(matches!(
            upcast("swarm", "SwarmCreated", "1", &mut json!({})),
            Err(VersionError::UnknownAggregate(_))
        ));
    }
}
