//! Given/when/then tests for every `Container` command and rule.

use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use serde_json::json;

type ContainerTest = TestFramework<Container>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
}

const CREATE_OP: Uuid = Uuid::from_u128(1);
const OP: Uuid = Uuid::from_u128(2);
const OTHER_OP: Uuid = Uuid::from_u128(3);

fn create_requested() -> ContainerEvent {
    ContainerEvent::ContainerCreateRequested {
        op_id: CREATE_OP,
        host: "local".into(),
        spec: json!({"image": "busybox:latest", "name": "web"}),
        requested_at: at(),
    }
}

fn created() -> ContainerEvent {
    ContainerEvent::ContainerCreated {
        op_id: CREATE_OP,
        host: "local".into(),
        docker_id: "abc123".into(),
        name: "web".into(),
        image_id: Some("sha256:feed".into()),
        created_at: at(),
    }
}

fn live() -> Vec<ContainerEvent> {
    vec![create_requested(), created()]
}

fn request(action: ContainerAction) -> ContainerCommand {
    ContainerCommand::Request {
        op_id: OP,
        action,
        at: at(),
    }
}

#[test]
fn create_is_requested_then_recorded() {
    ContainerTest::with(())
        .given_no_previous_events()
        .when(ContainerCommand::RequestCreate {
            op_id: CREATE_OP,
            host: "local".into(),
            spec: json!({"image": "busybox:latest", "name": "web"}),
            at: at(),
        })
        .then_expect_events(vec![create_requested()]);
    ContainerTest::with(())
        .given(vec![create_requested()])
        .when(ContainerCommand::RecordCreated {
            op_id: CREATE_OP,
            docker_id: "abc123".into(),
            name: "web".into(),
            image_id: Some("sha256:feed".into()),
            at: at(),
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn recording_an_outcome_twice_is_harmless() {
    ContainerTest::with(())
        .given(live())
        .when(ContainerCommand::RecordCreated {
            op_id: CREATE_OP,
            docker_id: "abc123".into(),
            name: "web".into(),
            image_id: Some("sha256:feed".into()),
            at: at(),
        })
        .then_expect_events(vec![]);
    ContainerTest::with(())
        .given(vec![
            create_requested(),
            created(),
            ContainerEvent::ContainerStartRequested {
                op_id: OP,
                requested_at: at(),
            },
            ContainerEvent::ContainerStarted {
                op_id: OP,
                started_at: at(),
            },
        ])
        .when(ContainerCommand::RecordFailed {
            op_id: OP,
            code: "INTERRUPTED".into(),
            message: "late".into(),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_known_container_is_not_created_or_discovered_again() {
    ContainerTest::with(())
        .given(live())
        .when(ContainerCommand::RequestCreate {
            op_id: OTHER_OP,
            host: "local".into(),
            spec: json!({}),
            at: at(),
        })
        .then_expect_error(ContainerError::AlreadyKnown);
    ContainerTest::with(())
        .given(live())
        .when(ContainerCommand::Discover {
            host: "local".into(),
            docker_id: "abc123".into(),
            name: "web".into(),
            image: "busybox".into(),
            state: "running".into(),
            at: at(),
        })
        .then_expect_error(ContainerError::AlreadyKnown);
}

#[test]
fn a_discovered_container_takes_operations() {
    let discovered = ContainerEvent::ContainerDiscovered {
        host: "local".into(),
        docker_id: "def456".into(),
        name: "made-outside".into(),
        image: "busybox".into(),
        state: "exited".into(),
        discovered_at: at(),
    };
    ContainerTest::with(())
        .given(vec![discovered])
        .when(request(ContainerAction::Start))
        .then_expect_events(vec![ContainerEvent::ContainerStartRequested {
            op_id: OP,
            requested_at: at(),
        }]);
}

/// Starting, stopping, restarting and killing: each action, its request and its outcome.
fn start_stop_cases() -> Vec<(ContainerAction, ContainerEvent, ContainerEvent)> {
    vec![
        (
            ContainerAction::Start,
            ContainerEvent::ContainerStartRequested {
                op_id: OP,
                requested_at: at(),
            },
            ContainerEvent::ContainerStarted {
                op_id: OP,
                started_at: at(),
            },
        ),
        (
            ContainerAction::Stop { timeout: Some(5) },
            ContainerEvent::ContainerStopRequested {
                op_id: OP,
                timeout: Some(5),
                requested_at: at(),
            },
            ContainerEvent::ContainerStopped {
                op_id: OP,
                stopped_at: at(),
            },
        ),
        (
            ContainerAction::Restart { timeout: None },
            ContainerEvent::ContainerRestartRequested {
                op_id: OP,
                timeout: None,
                requested_at: at(),
            },
            ContainerEvent::ContainerRestarted {
                op_id: OP,
                restarted_at: at(),
            },
        ),
        (
            ContainerAction::Kill {
                signal: "SIGKILL".into(),
            },
            ContainerEvent::ContainerKillRequested {
                op_id: OP,
                signal: "SIGKILL".into(),
                requested_at: at(),
            },
            ContainerEvent::ContainerKilled {
                op_id: OP,
                signal: "SIGKILL".into(),
                killed_at: at(),
            },
        ),
    ]
}

/// Pausing, renaming and removing: each action, its request and its outcome.
fn other_action_cases() -> Vec<(ContainerAction, ContainerEvent, ContainerEvent)> {
    vec![
        (
            ContainerAction::Pause,
            ContainerEvent::ContainerPauseRequested {
                op_id: OP,
                requested_at: at(),
            },
            ContainerEvent::ContainerPaused {
                op_id: OP,
                paused_at: at(),
            },
        ),
        (
            ContainerAction::Unpause,
            ContainerEvent::ContainerUnpauseRequested {
                op_id: OP,
                requested_at: at(),
            },
            ContainerEvent::ContainerUnpaused {
                op_id: OP,
                unpaused_at: at(),
            },
        ),
        (
            ContainerAction::Rename { name: "api".into() },
            ContainerEvent::ContainerRenameRequested {
                op_id: OP,
                name: "api".into(),
                requested_at: at(),
            },
            ContainerEvent::ContainerRenamed {
                op_id: OP,
                from: "web".into(),
                to: "api".into(),
                renamed_at: at(),
            },
        ),
        (
            ContainerAction::Remove {
                force: true,
                volumes: false,
            },
            ContainerEvent::ContainerRemoveRequested {
                op_id: OP,
                force: true,
                volumes: false,
                requested_at: at(),
            },
            ContainerEvent::ContainerRemoved {
                op_id: OP,
                removed_at: at(),
            },
        ),
    ]
}

#[test]
fn every_action_is_requested_then_done() {
    let cases = start_stop_cases().into_iter().chain(other_action_cases());
    for (action, requested_event, done_event) in cases {
        ContainerTest::with(())
            .given(live())
            .when(request(action.clone()))
            .then_expect_events(vec![requested_event.clone()]);
        let mut history = live();
        history.push(requested_event);
        ContainerTest::with(())
            .given(history)
            .when(ContainerCommand::RecordDone {
                op_id: OP,
                at: at(),
            })
            .then_expect_events(vec![done_event]);
    }
}

#[test]
fn one_operation_at_a_time() {
    let mut history = live();
    history.push(ContainerEvent::ContainerStopRequested {
        op_id: OP,
        timeout: None,
        requested_at: at(),
    });
    ContainerTest::with(())
        .given(history)
        .when(ContainerCommand::Request {
            op_id: OTHER_OP,
            action: ContainerAction::Start,
            at: at(),
        })
        .then_expect_error(ContainerError::OperationInProgress(OP));
    ContainerTest::with(())
        .given(vec![create_requested()])
        .when(request(ContainerAction::Start))
        .then_expect_error(ContainerError::OperationInProgress(CREATE_OP));
}

#[test]
fn outcomes_must_name_the_pending_operation() {
    let mut history = live();
    history.push(ContainerEvent::ContainerStartRequested {
        op_id: OP,
        requested_at: at(),
    });
    ContainerTest::with(())
        .given(history)
        .when(ContainerCommand::RecordDone {
            op_id: OTHER_OP,
            at: at(),
        })
        .then_expect_error(ContainerError::UnknownOperation(OTHER_OP));
    ContainerTest::with(())
        .given(vec![create_requested()])
        .when(ContainerCommand::RecordDone {
            op_id: CREATE_OP,
            at: at(),
        })
        .then_expect_error(ContainerError::UnknownOperation(CREATE_OP));
}

#[test]
fn a_failed_operation_frees_the_container() {
    let mut history = live();
    history.push(ContainerEvent::ContainerStartRequested {
        op_id: OP,
        requested_at: at(),
    });
    ContainerTest::with(())
        .given(history.clone())
        .when(ContainerCommand::RecordFailed {
            op_id: OP,
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "no such file".into(),
            at: at(),
        })
        .then_expect_events(vec![ContainerEvent::OperationFailed {
            op_id: OP,
            operation: "start".into(),
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "no such file".into(),
            failed_at: at(),
        }]);
    history.push(ContainerEvent::OperationFailed {
        op_id: OP,
        operation: "start".into(),
        code: "X".into(),
        message: "y".into(),
        failed_at: at(),
    });
    ContainerTest::with(())
        .given(history)
        .when(ContainerCommand::Request {
            op_id: OTHER_OP,
            action: ContainerAction::Pause,
            at: at(),
        })
        .then_expect_events(vec![ContainerEvent::ContainerPauseRequested {
            op_id: OTHER_OP,
            requested_at: at(),
        }]);
}

#[test]
fn a_failed_create_leaves_nothing_to_act_on() {
    let failed = ContainerEvent::OperationFailed {
        op_id: CREATE_OP,
        operation: "create".into(),
        code: "DOCKER_OPERATION_FAILED".into(),
        message: "No such image".into(),
        failed_at: at(),
    };
    ContainerTest::with(())
        .given(vec![create_requested()])
        .when(ContainerCommand::RecordFailed {
            op_id: CREATE_OP,
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "No such image".into(),
            at: at(),
        })
        .then_expect_events(vec![failed.clone()]);
    ContainerTest::with(())
        .given(vec![create_requested(), failed])
        .when(request(ContainerAction::Start))
        .then_expect_error(ContainerError::NotFound);
}

#[test]
fn unknown_and_removed_containers_are_not_found() {
    ContainerTest::with(())
        .given_no_previous_events()
        .when(request(ContainerAction::Start))
        .then_expect_error(ContainerError::NotFound);
    let mut history = live();
    history.push(ContainerEvent::ContainerRemoveRequested {
        op_id: OP,
        force: false,
        volumes: false,
        requested_at: at(),
    });
    history.push(ContainerEvent::ContainerRemoved {
        op_id: OP,
        removed_at: at(),
    });
    ContainerTest::with(())
        .given(history)
        .when(ContainerCommand::Request {
            op_id: OTHER_OP,
            action: ContainerAction::Start,
            at: at(),
        })
        .then_expect_error(ContainerError::NotFound);
}

#[test]
fn action_arguments_are_validated() {
    for (action, field) in [
        (
            ContainerAction::Rename {
                name: "-bad".into(),
            },
            "name",
        ),
        (ContainerAction::Rename { name: "a".into() }, "name"),
        (
            ContainerAction::Rename {
                name: "has space".into(),
            },
            "name",
        ),
        (
            ContainerAction::Kill {
                signal: "SIGNOPE!".into(),
            },
            "signal",
        ),
        (
            ContainerAction::Kill {
                signal: "99".into(),
            },
            "signal",
        ),
        (
            ContainerAction::Stop {
                timeout: Some(MAX_STOP_TIMEOUT + 1),
            },
            "timeout",
        ),
        (
            ContainerAction::Restart {
                timeout: Some(100_000),
            },
            "timeout",
        ),
    ] {
        let result = ContainerTest::with(())
            .given(live())
            .when(request(action.clone()))
            .inspect_result();
        match result {
            Err(ContainerError::Invalid { field: f, .. }) => assert_eq!(f, field, "{action:?}"),
            other => panic!("{action:?}: expected invalid {field}, got {other:?}"),
        }
    }
    for signal in ["SIGTERM", "TERM", "9", "SIGRTMIN+3"] {
        assert!(validate_signal(signal).is_ok(), "{signal}");
    }
}

#[test]
fn events_serialise_with_stable_names_and_verbs() {
    let json = serde_json::to_value(created()).unwrap();
    assert_eq!(json["ContainerCreated"]["docker_id"], "abc123");
    assert_eq!(created().event_type(), "ContainerCreated");
    assert_eq!(
        ContainerAction::Remove {
            force: false,
            volumes: false
        }
        .verb(),
        "delete"
    );
    let action = serde_json::to_value(ContainerAction::Kill {
        signal: "HUP".into(),
    })
    .unwrap();
    assert_eq!(action, json!({"action": "kill", "signal": "HUP"}));
}

fn observe(action: &str, time_nano: i64, attributes: &[(&str, &str)]) -> ContainerCommand {
    ContainerCommand::Observe {
        action: action.into(),
        time_nano,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        at: at(),
    }
}

#[test]
fn an_observed_die_keeps_its_exit_code_and_is_recorded_once() {
    let observed = ContainerEvent::ContainerObserved {
        action: "die".into(),
        exit_code: Some(137),
        time_nano: 7,
        attributes: [("exitCode".to_string(), "137".to_string())].into(),
        observed_at: at(),
    };
    ContainerTest::with(())
        .given(live())
        .when(observe("die", 7, &[("exitCode", "137")]))
        .then_expect_events(vec![observed.clone()]);
    let mut again = live();
    again.push(observed);
    ContainerTest::with(())
        .given(again)
        .when(observe("die", 7, &[("exitCode", "137")]))
        .then_expect_events(vec![]);
}

#[test]
fn an_observed_destroy_ends_the_container() {
    let mut events = live();
    events.push(ContainerEvent::ContainerObserved {
        action: "destroy".into(),
        exit_code: None,
        time_nano: 8,
        attributes: Default::default(),
        observed_at: at(),
    });
    ContainerTest::with(())
        .given(events)
        .when(request(ContainerAction::Start))
        .then_expect_error(ContainerError::NotFound);
}

#[test]
fn an_unknown_container_is_discovered_before_it_is_observed() {
    ContainerTest::with(())
        .given_no_previous_events()
        .when(observe("start", 1, &[]))
        .then_expect_error(ContainerError::NotFound);
}

#[test]
fn exec_sessions_are_recorded_on_live_containers() {
    let started = ContainerEvent::ContainerExecStarted {
        exec_id: "e1".into(),
        command: vec!["sh".into()],
        started_at: at(),
    };
    ContainerTest::with(())
        .given(live())
        .when(ContainerCommand::RecordExecStarted {
            exec_id: "e1".into(),
            command: vec!["sh".into()],
            at: at(),
        })
        .then_expect_events(vec![started]);
    ContainerTest::with(())
        .given_no_previous_events()
        .when(ContainerCommand::RecordExecStarted {
            exec_id: "e1".into(),
            command: vec!["sh".into()],
            at: at(),
        })
        .then_expect_error(ContainerError::NotFound);
}

fn recreate_requested() -> ContainerEvent {
    ContainerEvent::ContainerRecreateRequested {
        op_id: OP,
        spec: json!({"image": "busybox:latest", "env": {"MODE": "b"}}),
        requested_at: at(),
    }
}

#[test]
fn a_recreate_replaces_the_docker_container_and_keeps_the_history() {
    ContainerTest::with(())
        .given(live())
        .when(ContainerCommand::RequestRecreate {
            op_id: OP,
            spec: json!({"image": "busybox:latest", "env": {"MODE": "b"}}),
            at: at(),
        })
        .then_expect_events(vec![recreate_requested()]);
    let recreated = ContainerEvent::ContainerRecreated {
        op_id: OP,
        previous_docker_id: "abc123".into(),
        docker_id: "def456".into(),
        image_id: Some("sha256:feed".into()),
        running: true,
        recreated_at: at(),
    };
    let record = ContainerCommand::RecordRecreated {
        op_id: OP,
        docker_id: "def456".into(),
        image_id: Some("sha256:feed".into()),
        running: true,
        at: at(),
    };
    ContainerTest::with(())
        .given(vec![create_requested(), created(), recreate_requested()])
        .when(record.clone())
        .then_expect_events(vec![recreated.clone()]);
    // Recorded twice (the reconciler racing the request): nothing more.
    ContainerTest::with(())
        .given(vec![
            create_requested(),
            created(),
            recreate_requested(),
            recreated.clone(),
        ])
        .when(record)
        .then_expect_events(vec![]);
    // The next operation acts on the replacement.
    let mut container = Container::default();
    for event in [
        create_requested(),
        created(),
        recreate_requested(),
        recreated,
    ] {
        cqrs_es::Aggregate::apply(&mut container, event);
    }
    assert_eq!(container.docker_id.as_deref(), Some("def456"));
    assert!(container.pending.is_none());
}

#[test]
fn a_recreate_waits_for_other_operations_and_is_not_settled_as_a_plain_action() {
    let mut busy = live();
    busy.push(ContainerEvent::ContainerStartRequested {
        op_id: CREATE_OP,
        requested_at: at(),
    });
    ContainerTest::with(())
        .given(busy)
        .when(ContainerCommand::RequestRecreate {
            op_id: OP,
            spec: json!({}),
            at: at(),
        })
        .then_expect_error(ContainerError::OperationInProgress(CREATE_OP));
    ContainerTest::with(())
        .given(vec![create_requested(), created(), recreate_requested()])
        .when(ContainerCommand::RecordDone {
            op_id: OP,
            at: at(),
        })
        .then_expect_error(ContainerError::UnknownOperation(OP));
    ContainerTest::with(())
        .given(vec![create_requested(), created(), recreate_requested()])
        .when(ContainerCommand::RecordFailed {
            op_id: OP,
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "no such image".into(),
            at: at(),
        })
        .then_expect_events(vec![ContainerEvent::OperationFailed {
            op_id: OP,
            operation: "recreate".into(),
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "no such image".into(),
            failed_at: at(),
        }]);
    ContainerTest::with(())
        .given_no_previous_events()
        .when(ContainerCommand::RequestRecreate {
            op_id: OP,
            spec: json!({}),
            at: at(),
        })
        .then_expect_error(ContainerError::NotFound);
}
