//! Given/when/then tests for the `Wizard` aggregate and the `ssh_host_setup` steps.

use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use serde_json::json;

type WizardTest = TestFramework<Wizard>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
}

const WIZARD: Uuid = Uuid::from_u128(10);
const ADMIN: Uuid = Uuid::from_u128(11);
const SECRET: Uuid = Uuid::from_u128(12);
const FINGERPRINT: &str = "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn started() -> WizardEvent {
    WizardEvent::WizardStarted {
        wizard_id: WIZARD,
        wizard_type: WizardType::SshHostSetup,
        user_id: ADMIN,
        total_steps: 5,
        metadata: Default::default(),
        started_at: at(),
    }
}

fn submitted(step: u32, name: &str, data: Value) -> WizardEvent {
    WizardEvent::StepDataSubmitted {
        step,
        step_name: name.into(),
        data,
        submitted_at: at(),
    }
}

fn advanced(from: u32) -> WizardEvent {
    WizardEvent::StepAdvanced {
        from,
        to: from + 1,
        advanced_at: at(),
    }
}

fn tested(step: u32, name: &str, passed: bool) -> WizardEvent {
    WizardEvent::StepTested {
        step,
        step_name: name.into(),
        passed,
        details: json!({"fingerprint": FINGERPRINT, "authenticated": true, "docker_version": "28.0"}),
        tested_at: at(),
    }
}

fn connection() -> Value {
    json!({"connection_name": "Production", "host_url": "ssh://deploy@10.0.0.5:2222"})
}

fn authentication() -> Value {
    json!({"method": "generated_key", "secret_id": SECRET, "public_key": "ssh-ed25519 AAAA dcp"})
}

/// Started, connection and authentication done, at the SSH test.
fn at_ssh_test() -> Vec<WizardEvent> {
    vec![
        started(),
        submitted(0, "connection", connection()),
        advanced(0),
        submitted(1, "authentication", authentication()),
        advanced(1),
    ]
}

/// Every step done, at the confirmation.
fn at_confirmation() -> Vec<WizardEvent> {
    let mut events = at_ssh_test();
    events.extend([
        tested(2, "ssh_test", true),
        submitted(2, "ssh_test", json!({"confirm_fingerprint": FINGERPRINT})),
        advanced(2),
        tested(3, "docker_test", true),
        advanced(3),
    ]);
    events
}

#[test]
fn a_wizard_starts_once_with_its_steps() {
    WizardTest::with(())
        .given_no_previous_events()
        .when(WizardCommand::Start {
            wizard_id: WIZARD,
            wizard_type: WizardType::SshHostSetup,
            user_id: ADMIN,
            metadata: Default::default(),
            at: at(),
        })
        .then_expect_events(vec![started()]);
    WizardTest::with(())
        .given(vec![started()])
        .when(WizardCommand::Start {
            wizard_id: WIZARD,
            wizard_type: WizardType::SshHostSetup,
            user_id: ADMIN,
            metadata: Default::default(),
            at: at(),
        })
        .then_expect_error(WizardError::AlreadyStarted);
    WizardTest::with(())
        .given_no_previous_events()
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::NotFound);
}

#[test]
fn steps_check_their_own_data() {
    WizardTest::with(())
        .given(vec![started()])
        .when(WizardCommand::SubmitStep {
            data: connection(),
            at: at(),
        })
        .then_expect_events(vec![submitted(0, "connection", connection())]);
    let cases = [
        (
            json!({"connection_name": "x", "host_url": "http://a"}),
            "host_url",
        ),
        (
            json!({"connection_name": "", "host_url": "ssh://a@b"}),
            "connection_name",
        ),
        (json!({"host_url": "ssh://a@b"}), "connection_name"),
        (
            json!({"connection_name": "x", "host_url": "ssh://a@b", "port": 1}),
            "port",
        ),
        (
            json!({"connection_name": "x", "host_url": "ssh://a@b:0"}),
            "host_url",
        ),
        (
            json!({"connection_name": "x", "host_url": "ssh://-oProxyCommand=x@b"}),
            "host_url",
        ),
        (
            json!({"connection_name": "x", "host_url": "ssh://a@b;rm"}),
            "host_url",
        ),
    ];
    for (data, field) in cases {
        let result = Wizard::default()
            .clone_with(vec![started()])
            .decide(WizardCommand::SubmitStep { data, at: at() });
        assert!(
            matches!(&result, Err(WizardError::Invalid { field: f, .. }) if f == field),
            "{field}: {result:?}"
        );
    }
    WizardTest::with(())
        .given(vec![started()])
        .when(WizardCommand::SubmitStep {
            data: json!(["not", "an", "object"]),
            at: at(),
        })
        .then_expect_error(invalid("step_data", "a JSON object"));
    // A secret never travels in the data: only a sealed secret's id does.
    WizardTest::with(())
        .given(vec![
            started(),
            submitted(0, "connection", connection()),
            advanced(0),
        ])
        .when(WizardCommand::SubmitStep {
            data: json!({"method": "password", "secret_id": "hunter2"}),
            at: at(),
        })
        .then_expect_error(invalid("secret_id", "the id of a sealed secret"));
}

#[test]
fn next_needs_a_complete_step_and_a_passed_test() {
    WizardTest::with(())
        .given(vec![started()])
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::StepIncomplete("connection"));
    WizardTest::with(())
        .given(vec![started(), submitted(0, "connection", connection())])
        .when(WizardCommand::Next { at: at() })
        .then_expect_events(vec![advanced(0)]);
    WizardTest::with(())
        .given(at_ssh_test())
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::TestNotPassed("ssh_test"));
    let mut failed = at_ssh_test();
    failed.push(tested(2, "ssh_test", false));
    WizardTest::with(())
        .given(failed)
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::TestNotPassed("ssh_test"));
    // Passed, but the admin has not confirmed the host key yet.
    let mut passed = at_ssh_test();
    passed.push(tested(2, "ssh_test", true));
    WizardTest::with(())
        .given(passed.clone())
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::StepIncomplete("ssh_test"));
    WizardTest::with(())
        .given(passed.clone())
        .when(WizardCommand::SubmitStep {
            data: json!({"confirm_fingerprint": "SHA256:someone-else"}),
            at: at(),
        })
        .then_expect_error(invalid(
            "confirm_fingerprint",
            "not the host key fingerprint the SSH test saw",
        ));
    passed.push(submitted(
        2,
        "ssh_test",
        json!({"confirm_fingerprint": FINGERPRINT}),
    ));
    WizardTest::with(())
        .given(passed.clone())
        .when(WizardCommand::Next { at: at() })
        .then_expect_events(vec![advanced(2)]);
    // A password test that only read the key (before it was confirmed) is not enough: the
    // test runs again, authenticating to the confirmed key.
    let mut probed = passed;
    probed.push(WizardEvent::StepTested {
        step: 2,
        step_name: "ssh_test".into(),
        passed: true,
        details: json!({"fingerprint": FINGERPRINT, "authenticated": false}),
        tested_at: at(),
    });
    WizardTest::with(())
        .given(probed)
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::TestNotPassed("ssh_test"));
}

#[test]
fn changing_earlier_data_forgets_the_later_tests() {
    // Back at the authentication with both tests passed: new authentication data.
    let mut events = at_confirmation();
    events.extend([
        WizardEvent::StepRetreated {
            from: 4,
            to: 3,
            retreated_at: at(),
        },
        WizardEvent::StepRetreated {
            from: 3,
            to: 2,
            retreated_at: at(),
        },
        WizardEvent::StepRetreated {
            from: 2,
            to: 1,
            retreated_at: at(),
        },
        submitted(1, "authentication", authentication()),
        advanced(1),
    ]);
    WizardTest::with(())
        .given(events)
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::TestNotPassed("ssh_test"));
}

#[test]
fn tests_belong_to_tested_steps() {
    WizardTest::with(())
        .given(vec![started()])
        .when(WizardCommand::RecordTest {
            passed: true,
            details: json!({}),
            at: at(),
        })
        .then_expect_error(WizardError::NoTest("connection"));
    WizardTest::with(())
        .given(at_ssh_test())
        .when(WizardCommand::RecordTest {
            passed: true,
            details: json!({"fingerprint": FINGERPRINT, "authenticated": true, "docker_version": "28.0"}),
            at: at(),
        })
        .then_expect_events(vec![tested(2, "ssh_test", true)]);
}

#[test]
fn complete_once_from_the_last_step_and_nothing_after() {
    let completed = WizardEvent::WizardCompleted {
        resource_type: "host".into(),
        resource_id: "host-1".into(),
        completed_at: at(),
    };
    let complete = || WizardCommand::Complete {
        resource_type: "host".into(),
        resource_id: "host-1".into(),
        at: at(),
    };
    WizardTest::with(())
        .given(at_ssh_test())
        .when(complete())
        .then_expect_error(WizardError::NotAtLastStep);
    WizardTest::with(())
        .given(at_confirmation())
        .when(complete())
        .then_expect_events(vec![completed.clone()]);
    let mut done = at_confirmation();
    done.push(completed);
    WizardTest::with(())
        .given(done.clone())
        .when(complete())
        .then_expect_error(WizardError::Finished(WizardStatus::Completed));
    WizardTest::with(())
        .given(done)
        .when(WizardCommand::Cancel { at: at() })
        .then_expect_error(WizardError::Finished(WizardStatus::Completed));
    // Tags are checked at the confirmation.
    WizardTest::with(())
        .given(at_confirmation())
        .when(WizardCommand::SubmitStep {
            data: json!({"tags": ["prod", "eu-west-1"]}),
            at: at(),
        })
        .then_expect_events(vec![submitted(
            4,
            "confirmation",
            json!({"tags": ["prod", "eu-west-1"]}),
        )]);
    WizardTest::with(())
        .given(at_confirmation())
        .when(WizardCommand::SubmitStep {
            data: json!({"tags": ["no spaces"]}),
            at: at(),
        })
        .then_expect_error(invalid(
            "tags",
            "at most 32 tags of letters, digits, '-', '_', '.', ':'",
        ));
}

#[test]
fn previous_cancel_and_fail() {
    WizardTest::with(())
        .given(vec![started()])
        .when(WizardCommand::Previous { at: at() })
        .then_expect_error(WizardError::AtFirstStep);
    WizardTest::with(())
        .given(at_ssh_test())
        .when(WizardCommand::Previous { at: at() })
        .then_expect_events(vec![WizardEvent::StepRetreated {
            from: 2,
            to: 1,
            retreated_at: at(),
        }]);
    WizardTest::with(())
        .given(at_ssh_test())
        .when(WizardCommand::Cancel { at: at() })
        .then_expect_events(vec![WizardEvent::WizardCancelled { cancelled_at: at() }]);
    let mut cancelled = at_ssh_test();
    cancelled.push(WizardEvent::WizardCancelled { cancelled_at: at() });
    WizardTest::with(())
        .given(cancelled)
        .when(WizardCommand::Next { at: at() })
        .then_expect_error(WizardError::Finished(WizardStatus::Cancelled));
    WizardTest::with(())
        .given(at_ssh_test())
        .when(WizardCommand::Fail {
            reason: "the host was removed".into(),
            at: at(),
        })
        .then_expect_events(vec![WizardEvent::WizardFailed {
            reason: "the host was removed".into(),
            failed_at: at(),
        }]);
}

#[test]
fn ssh_urls() {
    let ok = |url: &str| parse_ssh_url(url).unwrap();
    assert_eq!(
        ok("ssh://deploy@host.example.com"),
        SshTarget {
            user: "deploy".into(),
            host: "host.example.com".into(),
            port: 22
        }
    );
    assert_eq!(ok("ssh://a@10.0.0.5:2222").port, 2222);
    assert_eq!(ok("ssh://a@[::1]:2200").host, "::1");
    for bad in [
        "ssh://host",
        "ssh://@host",
        "ssh://a@",
        "ssh://a@host:99999",
        "ssh://a@[nope]:22",
        "ssh://a@-host",
        "ssh://a b@host",
        "ssh://a@host/path",
        "sftp://a@host",
    ] {
        assert!(parse_ssh_url(bad).is_err(), "{bad}");
    }
}

impl Wizard {
    /// The state after `events` (for table-driven cases).
    fn clone_with(mut self, events: Vec<WizardEvent>) -> Self {
        for event in events {
            cqrs_es::Aggregate::apply(&mut self, event);
        }
        self
    }
}
