//! Given/when/then tests for every `Host` command and rule.

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

#[test]
fn the_naming_events_are_the_registration_and_the_rename() {
    let renamed = HostEvent::HostUpdated {
        name: Some("build-2".into()),
        tags: None,
        updated_at: at(),
    };
    let named: Vec<String> = [registered(), renamed]
        .iter()
        .map(cqrs_es::DomainEvent::event_type)
        .collect();
    assert_eq!(named, HostEvent::NAMING);
}
