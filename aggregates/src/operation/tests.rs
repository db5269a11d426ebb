//! The operation event types each Docker resource declares by name, held to what its
//! events say of themselves: a request or outcome left out of a list, or a list naming an
//! event that is not one, fails here instead of leaving an operation pending for ever.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{operation_event_types, OperationEvent, OperationPhase};
use crate::container::{Container, ContainerEvent};
use crate::image::{Image, ImageEvent};
use crate::network::{Network, NetworkEvent};
use crate::versioning::variants_of;
use crate::volume::{Volume, VolumeEvent};
use crate::AnyEvent;

const OP: Uuid = Uuid::from_u128(7);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn text(value: &str) -> String {
    value.to_string()
}

/// Checks one resource's lists against one event of each of its variants: every variant
/// has a sample, each request is listed with its verb, each outcome is listed, nothing
/// else is, and each sample's stored form decodes back to it by the aggregate type.
fn check<E>(aggregate_type: &str, samples: Vec<E>, wrap: fn(E) -> AnyEvent)
where
    E: DomainEvent + OperationEvent + Serialize + DeserializeOwned + PartialEq,
{
    let types = operation_event_types(aggregate_type).unwrap();
    let sampled: BTreeSet<String> = samples.iter().map(DomainEvent::event_type).collect();
    let variants: BTreeSet<String> = variants_of::<E>().iter().map(|v| v.to_string()).collect();
    assert_eq!(
        sampled, variants,
        "one sample of each {aggregate_type} event"
    );
    let listed: usize = types.requests.len() + types.outcomes.len();
    let mut classified = 0;
    for event in samples {
        let name = event.event_type();
        let requested = types
            .requests
            .iter()
            .find(|(event_type, _)| *event_type == name)
            .map(|(_, verb)| *verb);
        let outcome = types.outcomes.contains(&name.as_str());
        match event.operation() {
            Some(step) if step.phase == OperationPhase::Requested => {
                assert_eq!(requested, Some(step.verb), "{name} is a request");
                assert!(!outcome, "{name} is not an outcome");
                assert_eq!(types.request_for(step.verb), Some(name.as_str()));
                classified += 1;
            }
            Some(_) => {
                assert!(outcome, "{name} is an outcome");
                assert_eq!(requested, None, "{name} is not a request");
                classified += 1;
            }
            None => assert!(
                requested.is_none() && !outcome,
                "{name} is no step of an operation"
            ),
        }
        let payload = serde_json::to_value(&event).unwrap();
        let decoded = AnyEvent::decode(aggregate_type, &payload).unwrap();
        assert_eq!(decoded, Some(wrap(event)), "{name} decodes as itself");
    }
    assert_eq!(
        classified, listed,
        "each {aggregate_type} list names each event once"
    );
}

/// The event types among `samples` whose stored fields include `field`.
fn carrying<E: DomainEvent + Serialize>(samples: &[E], field: &str) -> BTreeSet<String> {
    samples
        .iter()
        .filter(|event| {
            let payload = serde_json::to_value(event).unwrap();
            payload[event.event_type()].get(field).is_some()
        })
        .map(DomainEvent::event_type)
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

fn container_samples() -> Vec<ContainerEvent> {
    use ContainerEvent as E;
    vec![
        E::ContainerCreateRequested {
            op_id: OP,
            host: text("local"),
            spec: json!({"image": "busybox"}),
            requested_at: at(),
        },
        E::ContainerCreated {
            op_id: OP,
            host: text("local"),
            docker_id: text("abc"),
            name: text("web"),
            image_id: None,
            created_at: at(),
        },
        E::ContainerDiscovered {
            host: text("local"),
            docker_id: text("abc"),
            name: text("web"),
            image: text("busybox"),
            state: text("running"),
            discovered_at: at(),
        },
        E::ContainerStartRequested {
            op_id: OP,
            requested_at: at(),
        },
        E::ContainerStarted {
            op_id: OP,
            started_at: at(),
        },
        E::ContainerStopRequested {
            op_id: OP,
            timeout: Some(3),
            requested_at: at(),
        },
        E::ContainerStopped {
            op_id: OP,
            stopped_at: at(),
        },
        E::ContainerRestartRequested {
            op_id: OP,
            timeout: None,
            requested_at: at(),
        },
        E::ContainerRestarted {
            op_id: OP,
            restarted_at: at(),
        },
        E::ContainerKillRequested {
            op_id: OP,
            signal: text("SIGKILL"),
            requested_at: at(),
        },
        E::ContainerKilled {
            op_id: OP,
            signal: text("SIGKILL"),
            killed_at: at(),
        },
        E::ContainerPauseRequested {
            op_id: OP,
            requested_at: at(),
        },
        E::ContainerPaused {
            op_id: OP,
            paused_at: at(),
        },
        E::ContainerUnpauseRequested {
            op_id: OP,
            requested_at: at(),
        },
        E::ContainerUnpaused {
            op_id: OP,
            unpaused_at: at(),
        },
        E::ContainerRenameRequested {
            op_id: OP,
            name: text("api"),
            requested_at: at(),
        },
        E::ContainerRenamed {
            op_id: OP,
            from: text("web"),
            to: text("api"),
            renamed_at: at(),
        },
        E::ContainerRemoveRequested {
            op_id: OP,
            force: true,
            volumes: false,
            requested_at: at(),
        },
        E::ContainerRemoved {
            op_id: OP,
            removed_at: at(),
        },
        E::ContainerRecreateRequested {
            op_id: OP,
            spec: json!({"image": "busybox"}),
            requested_at: at(),
        },
        E::ContainerRecreated {
            op_id: OP,
            previous_docker_id: text("abc"),
            docker_id: text("def"),
            image_id: Some(text("sha256:1")),
            running: true,
            recreated_at: at(),
        },
        E::ContainerObserved {
            action: text("die"),
            exit_code: Some(1),
            time_nano: 1,
            attributes: BTreeMap::new(),
            observed_at: at(),
        },
        E::ContainerExecStarted {
            exec_id: text("x1"),
            command: vec![text("sh")],
            started_at: at(),
        },
        E::ContainerExecEnded {
            exec_id: text("x1"),
            exit_code: Some(0),
            duration_ms: 10,
            ended_at: at(),
        },
        E::OperationFailed {
            op_id: OP,
            operation: text("start"),
            code: text("DOCKER_ERROR"),
            message: text("no such image"),
            failed_at: at(),
        },
    ]
}

fn image_samples() -> Vec<ImageEvent> {
    use ImageEvent as E;
    vec![
        E::ImagePullRequested {
            op_id: OP,
            host: text("local"),
            reference: text("busybox:latest"),
            requested_at: at(),
        },
        E::ImagePulled {
            op_id: OP,
            image_id: text("sha256:1"),
            digest: None,
            layers: 1,
            pulled_at: at(),
        },
        E::ImageRemoveRequested {
            op_id: OP,
            host: text("local"),
            reference: text("busybox:latest"),
            image_id: text("sha256:1"),
            force: false,
            requested_at: at(),
        },
        E::ImageRemoved {
            op_id: OP,
            deleted: vec![text("sha256:1")],
            untagged: vec![],
            removed_at: at(),
        },
        E::OperationFailed {
            op_id: OP,
            operation: text("pull"),
            code: text("DOCKER_ERROR"),
            message: text("not found"),
            failed_at: at(),
        },
        E::ImageObserved {
            host: text("local"),
            reference: text("busybox:latest"),
            action: text("delete"),
            time_nano: 1,
            attributes: BTreeMap::new(),
            observed_at: at(),
        },
    ]
}

fn volume_samples() -> Vec<VolumeEvent> {
    use VolumeEvent as E;
    vec![
        E::VolumeCreateRequested {
            op_id: OP,
            host: text("local"),
            name: text("data"),
            driver: text("local"),
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            reason: None,
            requested_at: at(),
        },
        E::VolumeCreated {
            op_id: OP,
            mountpoint: text("/var/lib/docker/volumes/data"),
            created_at: at(),
        },
        E::VolumeRemoveRequested {
            op_id: OP,
            host: text("local"),
            name: text("data"),
            force: false,
            requested_at: at(),
        },
        E::VolumeRemoved {
            op_id: OP,
            removed_at: at(),
        },
        E::OperationFailed {
            op_id: OP,
            operation: text("create"),
            code: text("DOCKER_ERROR"),
            message: text("in use"),
            failed_at: at(),
        },
        E::VolumeObserved {
            host: text("local"),
            name: text("data"),
            action: text("destroy"),
            time_nano: 1,
            attributes: BTreeMap::new(),
            observed_at: at(),
        },
    ]
}

fn network_samples() -> Vec<NetworkEvent> {
    use NetworkEvent as E;
    vec![
        E::NetworkCreateRequested {
            op_id: OP,
            host: text("local"),
            name: text("backend"),
            driver: text("bridge"),
            internal: false,
            attachable: true,
            subnet: None,
            gateway: None,
            labels: BTreeMap::new(),
            reason: None,
            requested_at: at(),
        },
        E::NetworkCreated {
            op_id: OP,
            network_id: text("n1"),
            created_at: at(),
        },
        E::NetworkRemoveRequested {
            op_id: OP,
            host: text("local"),
            name: text("backend"),
            network_id: text("n1"),
            requested_at: at(),
        },
        E::NetworkRemoved {
            op_id: OP,
            removed_at: at(),
        },
        E::NetworkConnectRequested {
            op_id: OP,
            host: text("local"),
            name: text("backend"),
            container_id: text("abc"),
            container_name: text("web"),
            aliases: vec![],
            requested_at: at(),
        },
        E::NetworkConnected {
            op_id: OP,
            connected_at: at(),
        },
        E::NetworkDisconnectRequested {
            op_id: OP,
            host: text("local"),
            name: text("backend"),
            container_id: text("abc"),
            container_name: text("web"),
            force: false,
            requested_at: at(),
        },
        E::NetworkDisconnected {
            op_id: OP,
            disconnected_at: at(),
        },
        E::OperationFailed {
            op_id: OP,
            operation: text("connect"),
            code: text("DOCKER_ERROR"),
            message: text("no such container"),
            failed_at: at(),
        },
        E::NetworkObserved {
            host: text("local"),
            name: text("backend"),
            network_id: text("n1"),
            action: text("destroy"),
            time_nano: 1,
            attributes: BTreeMap::new(),
            observed_at: at(),
        },
    ]
}

#[test]
fn each_resource_lists_exactly_its_requests_and_outcomes() {
    check(Container::TYPE, container_samples(), AnyEvent::Container);
    check(Image::TYPE, image_samples(), AnyEvent::Image);
    check(Volume::TYPE, volume_samples(), AnyEvent::Volume);
    check(Network::TYPE, network_samples(), AnyEvent::Network);
    assert_eq!(operation_event_types("user"), None);
    assert_eq!(
        ContainerEvent::OPERATION_TYPES.request_for("recreate"),
        Some("ContainerRecreateRequested")
    );
    assert_eq!(
        ContainerEvent::OPERATION_TYPES.request_for("teleport"),
        None
    );
}

#[test]
fn the_events_recording_a_docker_id_are_those_that_carry_it() {
    assert_eq!(
        carrying(&container_samples(), "docker_id"),
        names(ContainerEvent::RECORDING_DOCKER_ID)
    );
    assert_eq!(
        carrying(&network_samples(), "network_id"),
        names(NetworkEvent::RECORDING_NETWORK_ID)
    );
}
