//! How each event reads in the audit log: the action `<area>.<verb>` it records, the
//! resource it concerns, and for Docker resources where it stands in its operation.
//!
//! The read side asks the events themselves (through [`Audited`]), so no reader keeps a
//! table of event names. These names are stored in every audit entry and covered by its
//! hash chain: an event type's action never changes.

use uuid::Uuid;

/// What an event's audit entry says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAction<'a> {
    /// The first part of the action: `user`, `auth`, `access`, `host`, `wizard`, or the
    /// Docker resource (`container`, `image`, `volume`, `network`).
    pub area: &'static str,
    /// The second part: `create`, `login`, `start`, `observed`, …
    pub verb: &'a str,
    /// For Docker resources, what the event is to its operation: `requested`,
    /// `succeeded`, `failed`, `observed`, `discovered`, `started` or `ended` (the entry's
    /// `details.outcome`).
    pub outcome: Option<&'static str>,
    /// The resource the entry concerns when it is not the event's own aggregate: a failed
    /// login concerns a user, a denied request a route.
    pub resource: Option<AuditResource>,
}

/// A resource an audit entry concerns other than the event's own aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditResource {
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
}

impl<'a> AuditAction<'a> {
    /// `<area>.<verb>` about the event's own aggregate.
    pub fn new(area: &'static str, verb: &'a str) -> Self {
        AuditAction {
            area,
            verb,
            outcome: None,
            resource: None,
        }
    }

    /// The same action about another resource.
    pub fn concerning(self, resource_type: &'static str, resource_id: Option<String>) -> Self {
        AuditAction {
            resource: Some(AuditResource {
                resource_type,
                resource_id,
            }),
            ..self
        }
    }

    /// The action as stored: `<area>.<verb>` (`user.create`, `auth.login`, `container.start`).
    pub fn action(&self) -> String {
        format!("{}.{}", self.area, self.verb)
    }
}

/// How an event reads in the audit log. Implemented by every aggregate's event enum and
/// by [`crate::AnyEvent`].
pub trait Audited {
    /// The action the event records and the resource it concerns.
    fn audit_action(&self) -> AuditAction<'_>;

    /// The user the event names in its own fields, if any: the audit entry's user when
    /// the metadata names no actor (a login is made by nobody yet).
    fn user_id(&self) -> Option<Uuid> {
        None
    }

    /// The username the event names in its own fields, if any (as [`Audited::user_id`]).
    fn username(&self) -> Option<&str> {
        None
    }
}
