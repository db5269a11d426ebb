//! The network aggregate's cases.

use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

type NetworkTest = TestFramework<Network>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
}

const OP: Uuid = Uuid::from_u128(1);
const OTHER: Uuid = Uuid::from_u128(2);

fn connect_requested() -> NetworkEvent {
    NetworkEvent::NetworkConnectRequested {
        op_id: OP,
        host: "local".into(),
        name: "backend".into(),
        container_id: "abc".into(),
        container_name: "web".into(),
        aliases: vec!["api".into()],
        requested_at: at(),
    }
}

#[test]
fn each_operation_records_its_own_outcome() {
    NetworkTest::with(())
        .given(vec![connect_requested()])
        .when(NetworkCommand::RecordDone {
            op_id: OP,
            network_id: None,
            at: at(),
        })
        .then_expect_events(vec![NetworkEvent::NetworkConnected {
            op_id: OP,
            connected_at: at(),
        }]);
    NetworkTest::with(())
        .given(vec![connect_requested()])
        .when(NetworkCommand::RequestDisconnect {
            op_id: OTHER,
            host: "local".into(),
            name: "backend".into(),
            container_id: "abc".into(),
            container_name: "web".into(),
            force: false,
            at: at(),
        })
        .then_expect_error(ResourceError::OperationInProgress(OP));
    NetworkTest::with(())
        .given(vec![connect_requested()])
        .when(NetworkCommand::RecordFailed {
            op_id: OP,
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "already connected".into(),
            at: at(),
        })
        .then_expect_events(vec![NetworkEvent::OperationFailed {
            op_id: OP,
            operation: "connect".into(),
            code: "DOCKER_OPERATION_FAILED".into(),
            message: "already connected".into(),
            failed_at: at(),
        }]);
}

#[test]
fn create_checks_driver_and_aliases() {
    let create = |driver: &str| NetworkCommand::RequestCreate {
        op_id: OP,
        host: "local".into(),
        name: "backend".into(),
        driver: driver.into(),
        internal: false,
        attachable: false,
        subnet: None,
        gateway: None,
        labels: BTreeMap::new(),
        reason: None,
        at: at(),
    };
    assert!(Network::default().decide(create("bridge")).is_ok());
    assert!(matches!(
        Network::default().decide(create("host")),
        Err(ResourceError::Invalid {
            field: "driver",
            ..
        })
    ));
    let connect = NetworkCommand::RequestConnect {
        op_id: OP,
        host: "local".into(),
        name: "backend".into(),
        container_id: "abc".into(),
        container_name: "web".into(),
        aliases: vec!["bad alias".into()],
        at: at(),
    };
    assert!(matches!(
        Network::default().decide(connect),
        Err(ResourceError::Invalid {
            field: "aliases",
            ..
        })
    ));
}
