//! The `Host` aggregate: a remote Docker engine reached over SSH.
//!
//! A host is registered `setup_pending` with its address, its credentials (the id of a
//! sealed secret, never the secret) and the host key the admin confirmed, which is pinned:
//! a connection that meets another key is refused, and the refusal is recorded here. Checks
//! move it between `active` and `unreachable`; only changes are recorded, so a host that
//! stays up writes nothing. A disabled host is not used until enabled again.
//!
//! The engine dcp runs next to (`local`) is not a `Host`: it is always there.

mod events;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use events::{AuthMethod, HostEvent, HostSpec, HostStatus};

/// Commands accepted by [`Host`].
#[derive(Debug, Clone, PartialEq)]
pub enum HostCommand {
    Register {
        host_id: String,
        spec: HostSpec,
        at: DateTime<Utc>,
    },
    /// Rename or retag (the name is checked for uniqueness by the caller).
    Update {
        name: Option<String>,
        tags: Option<Vec<String>>,
        at: DateTime<Utc>,
    },
    /// New credentials (a new sealed secret), replacing `replaces` (refused if the host's
    /// secret is another one by now: the caller forgets `replaces` with the event).
    ChangeCredentials {
        auth_method: AuthMethod,
        secret_id: Uuid,
        replaces: Uuid,
        at: DateTime<Utc>,
    },
    /// Pin another host key (the host's key was legitimately replaced).
    PinHostKey {
        host_key: String,
        fingerprint: String,
        at: DateTime<Utc>,
    },
    Disable {
        at: DateTime<Utc>,
    },
    Enable {
        at: DateTime<Utc>,
    },
    /// The result of a check of the host's engine.
    RecordCheck {
        reachable: bool,
        engine_version: Option<String>,
        api_version: Option<String>,
        error: Option<String>,
        at: DateTime<Utc>,
    },
    /// A connection met a host key other than the pinned one (and was refused).
    RecordKeyMismatch {
        seen_fingerprint: String,
        at: DateTime<Utc>,
    },
    /// Remove the host; `secret` is the secret the caller forgets with it (refused if the
    /// host's secret is another one by now).
    Remove {
        secret: Uuid,
        at: DateTime<Utc>,
    },
    /// Several changes (update, credentials, pin, disable, enable) decided together and
    /// recorded in one append: all or none.
    Change {
        changes: Vec<HostCommand>,
    },
}

/// Why a [`HostCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host not found")]
    NotFound,
    #[error("this host already exists")]
    AlreadyRegistered,
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("the host is disabled")]
    Disabled,
    #[error("the host was changed meanwhile; read it again and retry")]
    Stale,
}

fn invalid(field: &str, message: &str) -> HostError {
    HostError::Invalid {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// Checks a host name: 1 to 64 characters, no control characters, no surrounding spaces,
/// not `local` (the engine dcp runs next to).
pub fn check_name(name: &str) -> Result<(), HostError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name.trim() == name
        && !name.chars().any(char::is_control)
        && !name.eq_ignore_ascii_case("local");
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "1 to 64 characters, no control characters or surrounding spaces, not 'local'",
        ))
    }
}

/// Checks tags: at most 32, each 1 to 64 letters, digits, `-`, `_`, `.`, `:`.
pub fn check_tags(tags: &[String]) -> Result<(), HostError> {
    let ok = tags.len() <= 32
        && tags.iter().all(|t| {
            (1..=64).contains(&t.len())
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "tags",
            "at most 32 tags of letters, digits, '-', '_', '.', ':'",
        ))
    }
}

/// Checks how a host is to be reached: its name and tags, a complete address and a
/// pinned host key.
fn check_spec(spec: &HostSpec) -> Result<(), HostError> {
    check_name(&spec.name)?;
    check_tags(&spec.tags)?;
    if spec.address.is_empty() || spec.user.is_empty() || spec.port == 0 {
        return Err(invalid("url", "ssh://user@host[:port]"));
    }
    if !spec.fingerprint.starts_with("SHA256:") || spec.host_key.is_empty() {
        return Err(invalid("host_key", "a pinned host key is required"));
    }
    Ok(())
}

/// The state a [`Host`] decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    spec: Option<HostSpec>,
    status: HostStatus,
    removed: bool,
    engine_version: Option<String>,
    /// The last foreign key recorded, so a host presenting it again is not recorded twice.
    last_mismatch: Option<String>,
}

impl Host {
    fn spec(&self) -> Result<&HostSpec, HostError> {
        match &self.spec {
            Some(spec) if !self.removed => Ok(spec),
            _ => Err(HostError::NotFound),
        }
    }

    fn decide(&self, command: HostCommand) -> Result<Vec<HostEvent>, HostError> {
        let events = match command {
            HostCommand::Register { host_id, spec, at } => {
                if self.spec.is_some() {
                    return Err(HostError::AlreadyRegistered);
                }
                check_spec(&spec)?;
                vec![HostEvent::HostRegistered {
                    host_id,
                    spec,
                    registered_at: at,
                }]
            }
            HostCommand::Update { name, tags, at } => {
                let spec = self.spec()?;
                if let Some(name) = &name {
                    check_name(name)?;
                }
                if let Some(tags) = &tags {
                    check_tags(tags)?;
                }
                let name = name.filter(|n| *n != spec.name);
                let tags = tags.filter(|t| *t != spec.tags);
                if name.is_none() && tags.is_none() {
                    vec![]
                } else {
                    vec![HostEvent::HostUpdated {
                        name,
                        tags,
                        updated_at: at,
                    }]
                }
            }
            HostCommand::ChangeCredentials {
                auth_method,
                secret_id,
                replaces,
                at,
            } => {
                let spec = self.spec()?;
                if spec.secret_id != replaces {
                    return Err(HostError::Stale);
                }
                vec![HostEvent::HostCredentialsChanged {
                    auth_method,
                    secret_id,
                    previous_secret_id: spec.secret_id,
                    changed_at: at,
                }]
            }
            HostCommand::PinHostKey {
                host_key,
                fingerprint,
                at,
            } => {
                let spec = self.spec()?;
                if !fingerprint.starts_with("SHA256:") || host_key.is_empty() {
                    return Err(invalid("host_key_fingerprint", "a SHA256 fingerprint"));
                }
                if fingerprint == spec.fingerprint {
                    vec![]
                } else {
                    vec![HostEvent::HostKeyPinned {
                        host_key,
                        fingerprint,
                        previous_fingerprint: spec.fingerprint.clone(),
                        pinned_at: at,
                    }]
                }
            }
            status @ (HostCommand::Disable { .. }
            | HostCommand::Enable { .. }
            | HostCommand::RecordCheck { .. }
            | HostCommand::RecordKeyMismatch { .. }) => return self.decide_status(status),
            HostCommand::Remove { secret, at } => {
                let spec = self.spec()?;
                if spec.secret_id != secret {
                    return Err(HostError::Stale);
                }
                vec![HostEvent::HostRemoved {
                    secret_id: spec.secret_id,
                    removed_at: at,
                }]
            }
            HostCommand::Change { changes } => self.change(changes)?,
        };
        Ok(events)
    }

    /// What the admin's switches and the host's checks change of its status; only
    /// changes are recorded.
    fn decide_status(&self, command: HostCommand) -> Result<Vec<HostEvent>, HostError> {
        let events = match command {
            HostCommand::Disable { at } => {
                self.spec()?;
                if self.status == HostStatus::Disabled {
                    vec![]
                } else {
                    vec![HostEvent::HostDisabled { disabled_at: at }]
                }
            }
            HostCommand::Enable { at } => {
                self.spec()?;
                if self.status == HostStatus::Disabled {
                    vec![HostEvent::HostEnabled { enabled_at: at }]
                } else {
                    vec![]
                }
            }
            HostCommand::RecordCheck {
                reachable,
                engine_version,
                api_version,
                error,
                at,
            } => {
                self.spec()?;
                if self.status == HostStatus::Disabled {
                    return Err(HostError::Disabled);
                }
                let to = if reachable {
                    HostStatus::Active
                } else {
                    HostStatus::Unreachable
                };
                let version_changed = reachable && engine_version != self.engine_version;
                (to != self.status || version_changed)
                    .then_some(HostEvent::HostStatusChanged {
                        from: self.status,
                        to,
                        engine_version,
                        api_version,
                        error,
                        changed_at: at,
                    })
                    .into_iter()
                    .collect()
            }
            HostCommand::RecordKeyMismatch {
                seen_fingerprint,
                at,
            } => {
                let spec = self.spec()?;
                if seen_fingerprint == spec.fingerprint
                    || self.last_mismatch.as_deref() == Some(seen_fingerprint.as_str())
                {
                    vec![]
                } else {
                    vec![HostEvent::HostKeyMismatch {
                        expected_fingerprint: spec.fingerprint.clone(),
                        seen_fingerprint,
                        seen_at: at,
                    }]
                }
            }
            // `decide` sends only status commands here: another command is a bug, and
            // sending it back would loop.
            other => unreachable!("not one of status commands: {other:?}"),
        };
        Ok(events)
    }

    /// Decides each change on the state the previous ones left; one refused change
    /// refuses them all.
    fn change(&self, changes: Vec<HostCommand>) -> Result<Vec<HostEvent>, HostError> {
        let mut state = self.clone();
        let mut events = Vec::new();
        for change in changes {
            if matches!(
                change,
                HostCommand::Register { .. }
                    | HostCommand::Remove { .. }
                    | HostCommand::Change { .. }
                    | HostCommand::RecordCheck { .. }
                    | HostCommand::RecordKeyMismatch { .. }
            ) {
                return Err(invalid(
                    "changes",
                    "only updates, credentials, a pinned key, disable or enable",
                ));
            }
            for event in state.decide(change)? {
                state.apply(event.clone());
                events.push(event);
            }
        }
        Ok(events)
    }
}

impl Aggregate for Host {
    const TYPE: &'static str = "host";
    type Command = HostCommand;
    type Event = HostEvent;
    type Error = HostError;
    type Services = ();

    async fn handle(
        &mut self,
        command: HostCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), HostError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: HostEvent) {
        match event {
            HostEvent::HostRegistered { spec, .. } => {
                self.spec = Some(spec);
                self.status = HostStatus::SetupPending;
            }
            HostEvent::HostUpdated { name, tags, .. } => {
                if let Some(spec) = self.spec.as_mut() {
                    if let Some(name) = name {
                        spec.name = name;
                    }
                    if let Some(tags) = tags {
                        spec.tags = tags;
                    }
                }
            }
            HostEvent::HostCredentialsChanged {
                auth_method,
                secret_id,
                ..
            } => {
                if let Some(spec) = self.spec.as_mut() {
                    spec.auth_method = auth_method;
                    spec.secret_id = secret_id;
                }
            }
            HostEvent::HostKeyPinned {
                host_key,
                fingerprint,
                ..
            } => {
                if let Some(spec) = self.spec.as_mut() {
                    spec.host_key = host_key;
                    spec.fingerprint = fingerprint;
                }
                self.last_mismatch = None;
            }
            HostEvent::HostKeyMismatch {
                seen_fingerprint, ..
            } => self.last_mismatch = Some(seen_fingerprint),
            HostEvent::HostStatusChanged {
                to, engine_version, ..
            } => {
                self.status = to;
                if to == HostStatus::Active {
                    self.engine_version = engine_version;
                }
            }
            HostEvent::HostDisabled { .. } => self.status = HostStatus::Disabled,
            HostEvent::HostEnabled { .. } => self.status = HostStatus::SetupPending,
            HostEvent::HostRemoved { .. } => self.removed = true,
        }
    }
}
