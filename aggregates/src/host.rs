//! The `Host` aggregate: a remote Docker engine reached over SSH.
//!
//! A host is registered `setup_pending` with its address, its credentials (the id of a
//! sealed secret, never the secret) and the host key the admin confirmed, which is pinned:
//! a connection that meets another key is refused, and the refusal is recorded here. Checks
//! move it between `active` and `unreachable`; only changes are recorded, so a host that
//! stays up writes nothing. A disabled host is not used until enabled again.
//!
//! The engine dcp runs next to (`local`) is not a `Host`: it is always there.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How dcp authenticates to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An ED25519 key dcp generated (its public key is in the host's `authorized_keys`).
    GeneratedKey,
    /// A private key the admin imported.
    ImportedKey,
    Password,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::GeneratedKey => "generated_key",
            AuthMethod::ImportedKey => "imported_key",
            AuthMethod::Password => "password",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "generated_key" => Some(AuthMethod::GeneratedKey),
            "imported_key" => Some(AuthMethod::ImportedKey),
            "password" => Some(AuthMethod::Password),
            _ => None,
        }
    }
}

/// Where a host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Registered; no check has passed yet.
    #[default]
    SetupPending,
    /// The last check reached its engine.
    Active,
    /// The last check did not.
    Unreachable,
    /// An admin took it out of use.
    Disabled,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::SetupPending => "setup_pending",
            HostStatus::Active => "active",
            HostStatus::Unreachable => "unreachable",
            HostStatus::Disabled => "disabled",
        }
    }
}

/// How to reach a host, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub name: String,
    pub user: String,
    pub address: String,
    pub port: u16,
    pub auth_method: AuthMethod,
    /// The sealed secret (private key or password).
    pub secret_id: Uuid,
    /// The pinned host key, OpenSSH public key form (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    /// Its SHA-256 fingerprint (`SHA256:…`).
    pub fingerprint: String,
    pub tags: Vec<String>,
    /// The wizard that set it up, if one did.
    pub wizard_id: Option<Uuid>,
}

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

/// Events emitted by [`Host`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostEvent {
    HostRegistered {
        host_id: String,
        spec: HostSpec,
        registered_at: DateTime<Utc>,
    },
    HostUpdated {
        name: Option<String>,
        tags: Option<Vec<String>>,
        updated_at: DateTime<Utc>,
    },
    HostCredentialsChanged {
        auth_method: AuthMethod,
        secret_id: Uuid,
        /// The secret no longer used (forgotten with this event).
        previous_secret_id: Uuid,
        changed_at: DateTime<Utc>,
    },
    HostKeyPinned {
        host_key: String,
        fingerprint: String,
        previous_fingerprint: String,
        pinned_at: DateTime<Utc>,
    },
    HostKeyMismatch {
        expected_fingerprint: String,
        seen_fingerprint: String,
        seen_at: DateTime<Utc>,
    },
    HostStatusChanged {
        from: HostStatus,
        to: HostStatus,
        engine_version: Option<String>,
        api_version: Option<String>,
        error: Option<String>,
        changed_at: DateTime<Utc>,
    },
    HostDisabled {
        disabled_at: DateTime<Utc>,
    },
    HostEnabled {
        enabled_at: DateTime<Utc>,
    },
    HostRemoved {
        /// The secret forgotten with it.
        secret_id: Uuid,
        removed_at: DateTime<Utc>,
    },
}

impl DomainEvent for HostEvent {
    fn event_type(&self) -> String {
        match self {
            HostEvent::HostRegistered { .. } => "HostRegistered",
            HostEvent::HostUpdated { .. } => "HostUpdated",
            HostEvent::HostCredentialsChanged { .. } => "HostCredentialsChanged",
            HostEvent::HostKeyPinned { .. } => "HostKeyPinned",
            HostEvent::HostKeyMismatch { .. } => "HostKeyMismatch",
            HostEvent::HostStatusChanged { .. } => "HostStatusChanged",
            HostEvent::HostDisabled { .. } => "HostDisabled",
            HostEvent::HostEnabled { .. } => "HostEnabled",
            HostEvent::HostRemoved { .. } => "HostRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::versioning::version_of("host", &self.event_type())
    }
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
                check_name(&spec.name)?;
                check_tags(&spec.tags)?;
                if spec.address.is_empty() || spec.user.is_empty() || spec.port == 0 {
                    return Err(invalid("url", "ssh://user@host[:port]"));
                }
                if !spec.fingerprint.starts_with("SHA256:") || spec.host_key.is_empty() {
                    return Err(invalid("host_key", "a pinned host key is required"));
                }
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
                if to == self.status && !version_changed {
                    vec![]
                } else {
                    vec![HostEvent::HostStatusChanged {
                        from: self.status,
                        to,
                        engine_version,
                        api_version,
                        error,
                        changed_at: at,
                    }]
                }
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
            HostCommand::Change { changes } => {
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
                events
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type HostTest = TestFramework<Host>;

    fn at() -> DateTime<Utc> {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn spec() -> HostSpec {
        HostSpec {
            name: "build-1".into(),
            user: "deploy".into(),
            address: "10.0.0.5".into(),
            port: 22,
            auth_method: AuthMethod::GeneratedKey,
            secret_id: Uuid::nil(),
            host_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "SHA256:abc".into(),
            tags: vec!["prod".into()],
            wizard_id: None,
        }
    }

    fn registered() -> HostEvent {
        HostEvent::HostRegistered {
            host_id: "h".into(),
            spec: spec(),
            registered_at: at(),
        }
    }

    fn check(reachable: bool, version: &str) -> HostCommand {
        HostCommand::RecordCheck {
            reachable,
            engine_version: Some(version.into()),
            api_version: Some("1.45".into()),
            error: (!reachable).then(|| "refused".into()),
            at: at(),
        }
    }

    #[test]
    fn a_host_registers_once_with_a_valid_name_and_a_pinned_key() {
        HostTest::with(())
            .given_no_previous_events()
            .when(HostCommand::Register {
                host_id: "h".into(),
                spec: spec(),
                at: at(),
            })
            .then_expect_events(vec![registered()]);
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Register {
                host_id: "h".into(),
                spec: spec(),
                at: at(),
            })
            .then_expect_error(HostError::AlreadyRegistered);
        for (name, fingerprint) in [
            ("local", "SHA256:x"),
            (" a", "SHA256:x"),
            ("a\nb", "SHA256:x"),
            ("ok", ""),
        ] {
            let mut spec = spec();
            spec.name = name.into();
            spec.fingerprint = fingerprint.into();
            let result = HostTest::with(())
                .given_no_previous_events()
                .when(HostCommand::Register {
                    host_id: "h".into(),
                    spec,
                    at: at(),
                })
                .inspect_result();
            assert!(matches!(result, Err(HostError::Invalid { .. })), "{name}");
        }
    }

    #[test]
    fn checks_record_only_changes_of_status_or_version() {
        let active = HostEvent::HostStatusChanged {
            from: HostStatus::SetupPending,
            to: HostStatus::Active,
            engine_version: Some("26.1".into()),
            api_version: Some("1.45".into()),
            error: None,
            changed_at: at(),
        };
        HostTest::with(())
            .given(vec![registered()])
            .when(check(true, "26.1"))
            .then_expect_events(vec![active.clone()]);
        HostTest::with(())
            .given(vec![registered(), active.clone()])
            .when(check(true, "26.1"))
            .then_expect_events(vec![]);
        HostTest::with(())
            .given(vec![registered(), active.clone()])
            .when(check(false, "26.1"))
            .then_expect_events(vec![HostEvent::HostStatusChanged {
                from: HostStatus::Active,
                to: HostStatus::Unreachable,
                engine_version: Some("26.1".into()),
                api_version: Some("1.45".into()),
                error: Some("refused".into()),
                changed_at: at(),
            }]);
        HostTest::with(())
            .given(vec![
                registered(),
                HostEvent::HostDisabled { disabled_at: at() },
            ])
            .when(check(true, "26.1"))
            .then_expect_error(HostError::Disabled);
    }

    #[test]
    fn a_foreign_host_key_is_recorded_once_until_a_new_key_is_pinned() {
        let mismatch = HostEvent::HostKeyMismatch {
            expected_fingerprint: "SHA256:abc".into(),
            seen_fingerprint: "SHA256:evil".into(),
            seen_at: at(),
        };
        let record = HostCommand::RecordKeyMismatch {
            seen_fingerprint: "SHA256:evil".into(),
            at: at(),
        };
        HostTest::with(())
            .given(vec![registered()])
            .when(record.clone())
            .then_expect_events(vec![mismatch.clone()]);
        HostTest::with(())
            .given(vec![registered(), mismatch.clone()])
            .when(record.clone())
            .then_expect_events(vec![]);
        let pinned = HostEvent::HostKeyPinned {
            host_key: "ssh-ed25519 BBBB".into(),
            fingerprint: "SHA256:new".into(),
            previous_fingerprint: "SHA256:abc".into(),
            pinned_at: at(),
        };
        HostTest::with(())
            .given(vec![registered(), mismatch, pinned])
            .when(record)
            .then_expect_events(vec![HostEvent::HostKeyMismatch {
                expected_fingerprint: "SHA256:new".into(),
                seen_fingerprint: "SHA256:evil".into(),
                seen_at: at(),
            }]);
    }

    #[test]
    fn a_removed_host_refuses_everything_and_forgets_its_secret() {
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Remove {
                secret: Uuid::nil(),
                at: at(),
            })
            .then_expect_events(vec![HostEvent::HostRemoved {
                secret_id: Uuid::nil(),
                removed_at: at(),
            }]);
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Remove {
                secret: Uuid::from_u128(9),
                at: at(),
            })
            .then_expect_error(HostError::Stale);
        HostTest::with(())
            .given(vec![
                registered(),
                HostEvent::HostRemoved {
                    secret_id: Uuid::nil(),
                    removed_at: at(),
                },
            ])
            .when(HostCommand::Disable { at: at() })
            .then_expect_error(HostError::NotFound);
    }

    #[test]
    fn changes_together_are_all_or_nothing() {
        let new_secret = Uuid::from_u128(5);
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Change {
                changes: vec![
                    HostCommand::Update {
                        name: Some("build-2".into()),
                        tags: None,
                        at: at(),
                    },
                    HostCommand::ChangeCredentials {
                        auth_method: AuthMethod::Password,
                        secret_id: new_secret,
                        replaces: Uuid::nil(),
                        at: at(),
                    },
                    HostCommand::Disable { at: at() },
                ],
            })
            .then_expect_events(vec![
                HostEvent::HostUpdated {
                    name: Some("build-2".into()),
                    tags: None,
                    updated_at: at(),
                },
                HostEvent::HostCredentialsChanged {
                    auth_method: AuthMethod::Password,
                    secret_id: new_secret,
                    previous_secret_id: Uuid::nil(),
                    changed_at: at(),
                },
                HostEvent::HostDisabled { disabled_at: at() },
            ]);
        // One stale part refuses the whole change.
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Change {
                changes: vec![
                    HostCommand::Update {
                        name: Some("build-2".into()),
                        tags: None,
                        at: at(),
                    },
                    HostCommand::ChangeCredentials {
                        auth_method: AuthMethod::Password,
                        secret_id: new_secret,
                        replaces: Uuid::from_u128(77),
                        at: at(),
                    },
                ],
            })
            .then_expect_error(HostError::Stale);
    }

    #[test]
    fn updates_without_a_change_record_nothing() {
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Update {
                name: Some("build-1".into()),
                tags: Some(vec!["prod".into()]),
                at: at(),
            })
            .then_expect_events(vec![]);
        HostTest::with(())
            .given(vec![registered()])
            .when(HostCommand::Enable { at: at() })
            .then_expect_events(vec![]);
    }
}
