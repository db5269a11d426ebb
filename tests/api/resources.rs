//! Volumes, networks and images as recorded operations on the real engine: each checked
//! against what Docker shows, with its audit entries and operation record; the policy's
//! refusals leave nothing behind.

use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::*;
use crate::containers::{docker, Containers};

pub(crate) fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Removes the named volumes and networks when dropped (a failed test leaves nothing).
pub(crate) struct Leftovers {
    pub(crate) volumes: Vec<String>,
    pub(crate) networks: Vec<String>,
    pub(crate) images: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for network in &self.networks {
            let _ = Command::new("docker")
                .args(["network", "rm", network])
                .output();
        }
        for volume in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", volume])
                .output();
        }
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

/// The audit entries of `resource_type` once the log has reached `position`.
async fn audit_of(app: &TestApp, resource_type: &str, position: i64) -> Vec<Value> {
    app.audit_entries_at(
        &format!("resource_type={resource_type}&limit=1000"),
        position,
    )
    .await
}

fn has_entry(entries: &[Value], action: &str, outcome: &str, username: &str) -> bool {
    entries.iter().any(|e| {
        e["action"] == action && e["details"]["outcome"] == outcome && e["username"] == username
    })
}

#[tokio::test]
async fn volumes_are_created_and_removed_as_recorded_operations() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("volops", "operator").await;
    let (_, viewer) = app.user_with_token("vollooker", "viewer").await;
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let name = format!("dcp-test-vol-{run}");
    let etc = format!("dcp-test-etc-{run}");
    let tmp = format!("dcp-test-tmp-{run}");
    let _leftovers = Leftovers {
        volumes: vec![name.clone(), etc.clone(), tmp.clone()],
        networks: vec![],
        images: vec![],
    };

    let op_id = an_operator_creates_a_labelled_volume_once(&app, &operator, &viewer, &name).await;
    volume_options_binding_a_host_path_need_an_admins_reason(&app, &operator, &etc).await;
    a_tmpfs_volume_is_fine_for_operators(&app, &operator, &tmp, &run).await;
    removing_the_volume_is_recorded_with_everything_before(&app, &operator, &viewer, &name, &op_id)
        .await;
}

/// Viewers cannot create volumes; an operator's is labelled with its operation (returned),
/// listed, and its name cannot be taken again.
async fn an_operator_creates_a_labelled_volume_once(
    app: &TestApp,
    operator: &str,
    viewer: &str,
    name: &str,
) -> String {
    let denied = app
        .request(
            Method::POST,
            "/api/v1/volumes",
            Some(viewer),
            Some(json!({"name": name})),
        )
        .await;
    assert_error(denied, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert!(!docker_ok(&["volume", "inspect", name]));

    let created = app
        .request(
            Method::POST,
            "/api/v1/volumes",
            Some(operator),
            Some(json!({"name": name, "labels": {"team": "web"}})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        created.headers()["location"],
        format!("/api/v1/volumes/{name}").as_str()
    );
    let outcome: Value = created.json().await.unwrap();
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["action"], "volume.create");
    let op_id = outcome["operation_id"].as_str().unwrap().to_string();
    let labels: Value = serde_json::from_str(&docker(&[
        "volume",
        "inspect",
        "--format",
        "{{json .Labels}}",
        name,
    ]))
    .unwrap();
    assert_eq!(labels["team"], "web");
    assert_eq!(
        labels["dcp.op"],
        op_id.as_str(),
        "labelled with its operation"
    );

    // The list shows it; a second create of the same name is a conflict and writes nothing.
    let list = app.get_json("/api/v1/volumes", viewer).await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == name));
    let again = app
        .request(
            Method::POST,
            "/api/v1/volumes",
            Some(operator),
            Some(json!({"name": name})),
        )
        .await;
    assert_error(again, StatusCode::CONFLICT, "CONFLICT").await;
    op_id
}

/// Driver options that bind a host path: refused to operators and to admins without a
/// reason, and no volume exists afterwards; with a reason an admin may.
async fn volume_options_binding_a_host_path_need_an_admins_reason(
    app: &TestApp,
    operator: &str,
    etc: &str,
) {
    let bind = json!({"name": etc, "driver_opts": {"type": "none", "o": "bind", "device": "/etc"}});
    for token in [operator, app.admin_token.as_str()] {
        let refused = app
            .request(
                Method::POST,
                "/api/v1/volumes",
                Some(token),
                Some(bind.clone()),
            )
            .await;
        let body = assert_error(refused, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        assert_eq!(body["error"]["field"], "driver_opts");
        assert!(
            !docker_ok(&["volume", "inspect", etc]),
            "no volume after a refusal"
        );
    }
    let mut allowed = bind.clone();
    allowed["allow_privileged"] = json!(true);
    allowed["reason"] = json!("read-only view of /etc for the config auditor");
    let admitted = app
        .request(
            Method::POST,
            "/api/v1/volumes",
            Some(&app.admin_token),
            Some(allowed),
        )
        .await;
    assert_eq!(admitted.status(), StatusCode::CREATED);
}

/// A tmpfs volume is fine for operators, and usable by them in a container (it holds
/// nothing of the host).
async fn a_tmpfs_volume_is_fine_for_operators(app: &TestApp, operator: &str, tmp: &str, run: &str) {
    let tmpfs = app
        .request(
            Method::POST,
            "/api/v1/volumes",
            Some(operator),
            Some(json!({"name": tmp, "driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}})),
        )
        .await;
    assert_eq!(tmpfs.status(), StatusCode::CREATED);
    let user = format!("dcp-test-tmpfs-user-{run}");
    let container = app
        .request(
            Method::POST,
            "/api/v1/containers",
            Some(operator),
            Some(
                json!({"image": crate::containers::test_image(), "name": user,
                "volumes": [{"source": tmp, "target": "/scratch"}]}),
            ),
        )
        .await;
    assert_eq!(container.status(), StatusCode::CREATED);
    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/containers/{user}?force=true"),
            Some(operator),
            None,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
}

/// Removing the volume is an operation too; the operation record and the audit log hold
/// the create, the delete, the admin's reason and the refusals.
async fn removing_the_volume_is_recorded_with_everything_before(
    app: &TestApp,
    operator: &str,
    viewer: &str,
    name: &str,
    op_id: &str,
) {
    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/volumes/{name}"),
            Some(operator),
            None,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.unwrap();
    assert!(
        !docker_ok(&["volume", "inspect", name]),
        "the volume is gone"
    );
    let missing = app
        .request(
            Method::DELETE,
            &format!("/api/v1/volumes/{name}"),
            Some(operator),
            None,
        )
        .await;
    assert_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    let position = removed["position"].as_i64().unwrap();
    let operation = app
        .get_json_at(&format!("/api/v1/operations/{op_id}"), viewer, position)
        .await;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    assert_eq!(operation["resource_type"], "volume");
    assert!(operation["targets"]
        .as_array()
        .unwrap()
        .contains(&json!(name)));
    let entries = audit_of(app, "volume", position).await;
    assert!(has_entry(&entries, "volume.create", "requested", "volops"));
    assert!(has_entry(&entries, "volume.create", "succeeded", "volops"));
    assert!(has_entry(&entries, "volume.delete", "succeeded", "volops"));
    let reasoned = entries
        .iter()
        .find(|e| {
            e["action"] == "volume.create"
                && e["username"] == "admin"
                && e["details"]["outcome"] == "requested"
        })
        .expect("the admin's create is audited");
    assert_eq!(
        reasoned["details"]["reason"],
        "read-only view of /etc for the config auditor"
    );
    assert_eq!(reasoned["details"]["driver_opts"]["device"], "/etc");
    // The refusals are audited as denied requests.
    let denied = app
        .audit_entries_at("action=access.denied&limit=100", position)
        .await;
    assert!(denied
        .iter()
        .any(|e| e["resource_id"] == "POST /api/v1/volumes" && e["username"] == "volops"));
}

#[tokio::test]
async fn networks_are_created_connected_disconnected_and_removed() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("netops", "operator").await;
    let containers = Containers::new();
    let web = containers.start("netweb", &[]);
    let name = format!("dcp-test-net-{}", &containers.run[..8]);
    let lan = format!("dcp-test-lan-{}", &containers.run[..8]);
    let _leftovers = Leftovers {
        volumes: vec![],
        networks: vec![name.clone(), lan.clone()],
        images: vec![],
    };

    let refused = app
        .request(
            Method::POST,
            "/api/v1/networks",
            Some(&operator),
            Some(json!({"name": lan, "driver": "macvlan"})),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert!(
        !docker_ok(&["network", "inspect", &lan]),
        "no network after a refusal"
    );

    let created = app
        .request(
            Method::POST,
            "/api/v1/networks",
            Some(&operator),
            Some(json!({"name": name, "internal": true, "labels": {"team": "web"}})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let network_id = created["docker_id"].as_str().unwrap().to_string();
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "--format",
            "{{.Id}} {{.Internal}}",
            &name
        ]),
        format!("{network_id} true")
    );

    let connect = app
        .request(
            Method::POST,
            &format!("/api/v1/networks/{name}/connect"),
            Some(&operator),
            Some(json!({"container": &web[..12], "aliases": ["api"]})),
        )
        .await;
    assert_eq!(connect.status(), StatusCode::OK);
    let networks = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        &web,
    ]);
    let networks: Value = serde_json::from_str(&networks).unwrap();
    assert!(networks[&name]["Aliases"]
        .as_array()
        .unwrap()
        .contains(&json!("api")));
    // Connecting twice: Docker refuses, and the failure is the answer and the record.
    let twice = app
        .request(
            Method::POST,
            &format!("/api/v1/networks/{}/connect", &network_id[..12]),
            Some(&operator),
            Some(json!({"container": web})),
        )
        .await;
    // Docker's 403 ("already exists in network") is a conflict with the network's state.
    assert_error(twice, StatusCode::CONFLICT, "CONFLICT").await;
    let missing = app
        .request(
            Method::POST,
            &format!("/api/v1/networks/{name}/connect"),
            Some(&operator),
            Some(json!({"container": "no-such-container-for-network-tests"})),
        )
        .await;
    let body = assert_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(body["error"]["field"], "container");

    let disconnect = app
        .request(
            Method::POST,
            &format!("/api/v1/networks/{name}/disconnect"),
            Some(&operator),
            Some(json!({"container": web})),
        )
        .await;
    assert_eq!(disconnect.status(), StatusCode::OK);
    let networks = docker(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        &web,
    ]);
    assert!(!networks.contains(&name), "disconnected: {networks}");

    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/networks/{name}"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.unwrap();
    assert!(
        !docker_ok(&["network", "inspect", &name]),
        "the network is gone"
    );

    let entries = audit_of(&app, "network", removed["position"].as_i64().unwrap()).await;
    for action in [
        "network.create",
        "network.connect",
        "network.disconnect",
        "network.delete",
    ] {
        assert!(
            has_entry(&entries, action, "requested", "netops"),
            "{action}"
        );
        assert!(
            has_entry(&entries, action, "succeeded", "netops"),
            "{action}"
        );
    }
    assert!(has_entry(&entries, "network.connect", "failed", "netops"));
}

/// Builds a one-file image, pushes it to the test registry under `repository:tag` and
/// removes the local copy, so a pull really downloads it.
pub(crate) fn seed_registry_image(repository: &str, tag: &str) -> String {
    let dir = temp_dir();
    std::fs::write(dir.join("hello.txt"), Uuid::new_v4().to_string()).unwrap();
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .args([
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            "hello.txt",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let reference = format!("{repository}:{tag}");
    docker(&["import", tar.to_str().unwrap(), &reference]);
    docker(&["push", &reference]);
    docker(&["rmi", &reference]);
    reference
}

/// Polls an accepted operation (read at its request's position) until it has an outcome.
pub(crate) async fn wait_for_operation(app: &TestApp, accepted: &Value) -> Value {
    let op_id = accepted["operation_id"].as_str().unwrap();
    let position = accepted["position"].as_i64().unwrap();
    eventually(Duration::from_secs(60), || async {
        let operation = app
            .get_json_at(
                &format!("/api/v1/operations/{op_id}"),
                &app.admin_token,
                position,
            )
            .await;
        (operation["status"] != "pending").then_some(operation)
    })
    .await
}

#[tokio::test]
async fn images_are_pulled_from_a_registry_with_progress_and_removed() {
    let registry = std::env::var("DCP_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55000".into());
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("imgops", "operator").await;
    let run = &Uuid::new_v4().simple().to_string()[..8];
    let repository = format!("{registry}/dcp-test/pull-{run}");
    let reference = seed_registry_image(&repository, "1");
    let _leftovers = Leftovers {
        volumes: vec![],
        networks: vec![],
        images: vec![reference.clone()],
    };
    assert!(!docker_ok(&["image", "inspect", &reference]));

    let accepted = app
        .request(
            Method::POST,
            "/api/v1/images/pull",
            Some(&operator),
            Some(json!({"image": repository, "tag": "1"})),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["status"], "pending");
    assert_eq!(accepted["resource"], reference.as_str());
    let op_id = accepted["operation_id"].as_str().unwrap().to_string();
    assert_eq!(accepted["location"], format!("/api/v1/operations/{op_id}"));

    let operation = wait_for_operation(&app, &accepted).await;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    assert_eq!(operation["action"], "image.pull");
    let layers = operation["progress"]["layers"]
        .as_object()
        .expect("per-layer progress");
    assert!(!layers.is_empty(), "{operation}");
    assert!(
        layers
            .values()
            .all(|l| l["status"] == "Pull complete" || l["status"] == "Already exists"),
        "{operation}"
    );
    let image_id = docker(&["image", "inspect", "--format", "{{.Id}}", &reference]);
    assert!(operation["targets"]
        .as_array()
        .unwrap()
        .contains(&json!(image_id)));

    // An image the registry does not have: the operation fails with a clear error.
    let missing = app
        .request(
            Method::POST,
            "/api/v1/images/pull",
            Some(&operator),
            Some(json!({"image": format!("{registry}/dcp-test/no-such-image-{run}")})),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::ACCEPTED);
    let missing: Value = missing.json().await.unwrap();
    let failed = wait_for_operation(&app, &missing).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "NOT_FOUND", "{failed}");
    assert!(failed["error_message"].as_str().unwrap().len() > 5);

    // An image a container uses is not removed without force; the refusal is recorded.
    let user = format!("dcp-test-pull-user-{run}");
    docker(&["create", "--name", &user, &reference, "/hello.txt"]);
    let encoded = reference.replace('/', "%2F");
    let in_use = app
        .request(
            Method::DELETE,
            &format!("/api/v1/images/{encoded}"),
            Some(&operator),
            None,
        )
        .await;
    assert_error(in_use, StatusCode::CONFLICT, "CONFLICT").await;
    assert!(docker_ok(&["image", "inspect", &reference]));
    docker(&["rm", &user]);

    // Removed by reference ('/' percent-encoded), then gone: a second removal is 404.
    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/images/{encoded}"),
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.unwrap();
    assert_eq!(removed["docker_id"], image_id.as_str());
    assert!(
        !docker_ok(&["image", "inspect", &reference]),
        "the image is gone"
    );
    let again = app
        .request(
            Method::DELETE,
            &format!("/api/v1/images/{encoded}"),
            Some(&operator),
            None,
        )
        .await;
    assert_error(again, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    let entries = audit_of(&app, "image", removed["position"].as_i64().unwrap()).await;
    assert!(has_entry(&entries, "image.pull", "requested", "imgops"));
    assert!(has_entry(&entries, "image.pull", "succeeded", "imgops"));
    assert!(has_entry(&entries, "image.pull", "failed", "imgops"));
    assert!(has_entry(&entries, "image.delete", "failed", "imgops"));
    assert!(has_entry(&entries, "image.delete", "succeeded", "imgops"));
}

/// The server stops between a request and its outcome: at the next start each operation
/// gets the outcome Docker shows — created (found by its `dcp.op` label), or failed.
#[tokio::test]
async fn interrupted_resource_operations_are_settled_at_the_next_start() {
    use dcp::commands::{CommandBus, CommandMeta};
    use dcp_aggregates::network::{Network, NetworkCommand};
    use dcp_aggregates::resource_key;
    use dcp_aggregates::volume::{Volume, VolumeCommand};

    let app = spawn_app().await;
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let volume = format!("dcp-test-crash-vol-{run}");
    let network = format!("dcp-test-crash-net-{run}");
    let _leftovers = Leftovers {
        volumes: vec![volume.clone()],
        networks: vec![network.clone()],
        images: vec![],
    };
    let bus = CommandBus::new(app.pool.clone());
    let (volume_op, network_op) = (Uuid::now_v7(), Uuid::now_v7());
    let meta = CommandMeta::system();
    bus.execute::<Volume>(
        &resource_key("volume", "local", &volume).to_string(),
        VolumeCommand::RequestCreate {
            op_id: volume_op,
            host: "local".into(),
            name: volume.clone(),
            driver: "local".into(),
            driver_opts: Default::default(),
            labels: Default::default(),
            reason: None,
            at: chrono::Utc::now(),
        },
        &meta.for_operation(volume_op),
    )
    .await
    .unwrap();
    bus.execute::<Network>(
        &resource_key("network", "local", &network).to_string(),
        NetworkCommand::RequestCreate {
            op_id: network_op,
            host: "local".into(),
            name: network.clone(),
            driver: "bridge".into(),
            internal: false,
            attachable: false,
            subnet: None,
            gateway: None,
            labels: Default::default(),
            reason: None,
            at: chrono::Utc::now(),
        },
        &meta.for_operation(network_op),
    )
    .await
    .unwrap();
    // Docker created the volume before the "crash"; the network was never created.
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("dcp.op={volume_op}"),
        &volume,
    ]);
    let database_url = app.database_url.clone();
    app.stop().await;

    let restarted = spawn_app_on(database_url, |settings| {
        settings.operation_settle_after_secs = 0
    })
    .await;
    let settled = |op_id: Uuid| {
        let app = &restarted;
        async move {
            let operation = app
                .get_json(&format!("/api/v1/operations/{op_id}"), &app.admin_token)
                .await;
            (operation["status"] == "succeeded" || operation["status"] == "failed")
                .then_some(operation)
        }
    };
    let created = eventually(Duration::from_secs(30), || settled(volume_op)).await;
    assert_eq!(created["status"], "succeeded", "{created}");
    assert_eq!(created["action"], "volume.create");
    let failed = eventually(Duration::from_secs(30), || settled(network_op)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "INTERRUPTED");
    assert!(!docker_ok(&["network", "inspect", &network]));
    // Settled operations free their resources for new ones.
    let again = restarted
        .request(
            Method::POST,
            "/api/v1/networks",
            Some(&restarted.admin_token),
            Some(json!({"name": network})),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}
