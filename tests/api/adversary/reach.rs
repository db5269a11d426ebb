//! One host-reach judgement for create, recreate, exec and network connect: an operator
//! cannot borrow what reaches the host, through any of them.

use reqwest::Method;
use serde_json::json;

use super::*;
use crate::containers::{docker, Containers};

/// The attack of the issue: an admin runs a privileged container that executes scripts from
/// volume `agent-scripts`; an operator mounts `agent-scripts` in their own container to
/// write a script. Refused, and so is every other way to a volume that reaches the host.
#[tokio::test]
async fn an_operator_cannot_mount_a_volume_that_a_host_reaching_container_uses() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("mallory", "operator").await;
    let run = Containers::new();
    let mut made = Leftovers::new();
    let scripts = made.volume(&format!("agent-scripts-{}", &run.run[..8]), &[]);
    run.create(
        "agent",
        &["--privileged", "-v", &format!("{scripts}:/scripts")],
    );
    let etc = made.volume(
        &format!("etc-{}", &run.run[..8]),
        &[
            "--opt",
            "type=none",
            "--opt",
            "o=bind",
            "--opt",
            "device=/etc",
        ],
    );
    for volume in [&scripts, &etc] {
        let name = format!("thief-{}", &run.run[..8]);
        let body = create_body(
            &name,
            json!({"volumes": [{"source": volume, "target": "/loot"}]}),
        );
        let error = refused(
            &app,
            &operator,
            (Method::POST, "/api/v1/containers", Some(body)),
            Some("volumes"),
        )
        .await;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(volume.as_str()),
            "{error}"
        );
        assert!(!exists("container", &name), "no container after a refusal");
    }
    // A plain volume of nobody's is the operator's to mount.
    let plain = made.volume(&format!("plain-{}", &run.run[..8]), &[]);
    let name = format!("mine-{}", &run.run[..8]);
    let body = create_body(
        &name,
        json!({"volumes": [{"source": plain, "target": "/data"}]}),
    );
    let created = app.post("/api/v1/containers", &operator, body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    docker(&["rm", "-f", &name]);
}

/// Containers whose effective configuration reaches the host, one option each (made
/// outside dcp, as an admin on the host would): an operator opens no shell in any of them,
/// recreates none of its options, and connects none of them to a network.
#[tokio::test]
async fn the_escape_corpus_is_refused_to_operators_on_exec_recreate_and_connect() {
    let app = spawn_app().await;
    // One operator per kind of attack: each stays under the refusals throttle.
    let (_, operator) = app.user_with_token("eve", "operator").await;
    let (_, joiner) = app.user_with_token("eve-joins", "operator").await;
    let (_, recreator) = app.user_with_token("eve-recreates", "operator").await;
    let run = Containers::new();
    let mut made = Leftovers::new();
    let short = &run.run[..8];
    let etc = made.volume(
        &format!("etc-{short}"),
        &[
            "--opt",
            "type=none",
            "--opt",
            "o=bind",
            "--opt",
            "device=/etc",
        ],
    );
    let plain = run.start("plain", &[]);
    let plain_name = format!("plain-{short}");
    let etc_mount = format!("{etc}:/host-etc");
    let volumes_from = format!("--volumes-from={plain_name}");
    let shared_net = format!("container:{plain_name}");
    let corpus: Vec<(&str, Vec<&str>)> = vec![
        ("privileged", vec!["--privileged"]),
        ("cap-add", vec!["--cap-add", "SYS_ADMIN"]),
        ("device", vec!["--device", "/dev/null:/dev/x"]),
        ("cgroup-rule", vec!["--device-cgroup-rule", "c 1:3 rmw"]),
        ("seccomp", vec!["--security-opt", "seccomp=unconfined"]),
        ("unmasked", vec!["--security-opt", "systempaths=unconfined"]),
        ("bind", vec!["-v", "/tmp:/host-tmp:ro"]),
        ("mount", vec!["--mount", "type=bind,src=/tmp,dst=/host-tmp"]),
        ("etc-volume", vec!["-v", &etc_mount]),
        ("volumes-from", vec![&volumes_from]),
        ("pid", vec!["--pid", "host"]),
        ("ipc", vec!["--ipc", "host"]),
        ("uts", vec!["--uts", "host"]),
        ("net-host", vec!["--network", "host"]),
        ("net-shared", vec!["--network", &shared_net]),
        (
            "sysctl",
            vec!["--sysctl", "net.ipv4.ip_unprivileged_port_start=0"],
        ),
    ];
    let bridge = made.network(&format!("ops-net-{short}"), &[]);
    for (name, args) in &corpus {
        let id = run.create(name, args);
        assert_eq!(
            exec_refused(&app, &operator, &id, "").await,
            403,
            "a shell in the {name} container"
        );
        if !name.starts_with("net-") {
            refused(
                &app,
                &joiner,
                (
                    Method::POST,
                    &format!("/api/v1/networks/{bridge}/connect"),
                    Some(json!({"container": id})),
                ),
                None,
            )
            .await;
        }
    }
    // The plain container is the operator's to enter.
    let mut shell = app
        .container_socket(&operator, &plain, "exec", "cols=80&rows=24")
        .await;
    assert_eq!(shell.next_json().await["type"], "started");

    // Recreate: the create corpus, applied to the operator's own container.
    for extra in [
        json!({"privileged": true}),
        json!({"cap_add": ["NET_ADMIN"]}),
        json!({"binds": [{"source": "/", "target": "/host"}]}),
        json!({"pid_mode": "host"}),
        json!({"network": "host"}),
        json!({"volumes": [{"source": etc, "target": "/x"}]}),
        json!({"labels": {"dcp.protected": "true"}}),
    ] {
        let body = create_body(&plain_name, extra.clone());
        refused(
            &app,
            &recreator,
            (
                Method::POST,
                &format!("/api/v1/containers/{plain}/recreate"),
                Some(body),
            ),
            None,
        )
        .await;
        assert_eq!(
            docker(&[
                "inspect",
                "--format",
                "{{.Id}} {{.State.Running}}",
                &plain_name
            ]),
            format!("{plain} true"),
            "{extra}: the container is untouched"
        );
    }
}

/// Networks have owners: an admin's network isolates (unless shared), an internal one too;
/// an operator joins neither, and joins a shared one or their own.
#[tokio::test]
async fn an_operator_joins_only_networks_that_are_theirs_to_join() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("oscar", "operator").await;
    let run = Containers::new();
    let short = &run.run[..8];
    let mut made = Leftovers::new();
    let mine = run.start("mine", &[]);
    let create = |name: &str, extra: Value| {
        let mut body = json!({"name": name});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let admins = format!("admins-{short}");
    let internal = format!("internal-{short}");
    let shared = format!("shared-{short}");
    let own = format!("own-{short}");
    for (name, token, extra) in [
        (&admins, &app.admin_token, json!({})),
        (&internal, &app.admin_token, json!({"internal": true})),
        (
            &shared,
            &app.admin_token,
            json!({"labels": {"dcp.shared": "true"}}),
        ),
        (&own, &operator, json!({"internal": true})),
    ] {
        let response = app
            .post("/api/v1/networks", token, create(name, extra))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
        made.networks.push(name.clone());
    }
    for network in [&admins, &internal] {
        refused(
            &app,
            &operator,
            (
                Method::POST,
                &format!("/api/v1/networks/{network}/connect"),
                Some(json!({"container": mine})),
            ),
            Some("network"),
        )
        .await;
    }
    for network in [&shared, &own] {
        let joined = app
            .post(
                &format!("/api/v1/networks/{network}/connect"),
                &operator,
                json!({"container": mine}),
            )
            .await;
        assert_eq!(joined.status(), StatusCode::OK, "{network}");
    }
    // Admins alone label: an operator's shared or protected network is refused.
    refused(
        &app,
        &operator,
        (
            Method::POST,
            "/api/v1/networks",
            Some(create(
                &format!("sneaky-{short}"),
                json!({"labels": {"dcp.shared": "true"}}),
            )),
        ),
        Some("labels"),
    )
    .await;
    drop(run);
}
