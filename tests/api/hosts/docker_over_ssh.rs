//! A host added through the wizard with a generated key, and every Docker feature on it over
//! SSH: containers with their logs, stats and exec sockets, lists across hosts, images,
//! volumes and networks, Docker's own events; all through one pooled SSH connection.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;
use crate::containers::{docker, test_image, Containers};

#[tokio::test]
async fn the_wizard_adds_a_host_with_a_generated_key_and_every_docker_feature_works_on_it() {
    let app = spawn_app().await;
    let name = unique_name("gen");
    let (host_id, key_id) = the_wizard_sets_up_a_host_with_a_generated_key(&app, &name).await;
    the_host_is_listed_to_all_and_changed_by_admins_only(&app, &name, &host_id).await;

    let run = Containers::new();
    let container = format!("over-ssh-{}", &run.run[..8]);
    let docker_id =
        containers_run_on_the_host_by_name(&app, &name, &host_id, &run, &container).await;
    logs_stats_and_exec_work_over_ssh(&app, &host_id, &container).await;
    one_list_spans_local_and_the_ssh_host(&app, &host_id, &container).await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/containers/{container}?host={host_id}&force=true"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(docker(&["ps", "-aq", "--filter", &format!("id={docker_id}")]).is_empty());
    images_volumes_and_networks_are_recorded_operations_on_the_host(&app, &name, &host_id, &run)
        .await;

    // All of it went through one SSH connection.
    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(host["ssh_handshakes"], 1, "{host}");
    the_host_has_a_history_and_removing_it_forgets_its_key(&app, &name, &host_id, &key_id).await;
}

/// Walks the wizard back and forth with a generated key; returns the host's id and the key's.
async fn the_wizard_sets_up_a_host_with_a_generated_key(
    app: &TestApp,
    name: &str,
) -> (String, String) {
    let wizard = start_wizard(app, name, shared_sshd_port()).await;

    // Previous keeps the data; next again.
    let back = wizard.ok(Method::POST, "previous", None).await;
    assert_eq!(back["step_name"], "connection");
    assert_eq!(back["steps"][0]["data"]["connection_name"], name);
    let (status, _) = wizard.call(Method::POST, "previous", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "at the first step");
    wizard.next().await;
    // Authentication is incomplete: next is refused.
    let (status, refused) = wizard.call(Method::POST, "next", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["details"]["step"], "authentication");

    let (status, key) = call(
        app,
        Method::POST,
        "/api/v1/wizards/generate-ssh-key?comment=dcp@tests",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let public_key = key["public_key"].as_str().unwrap();
    assert!(public_key.starts_with("ssh-ed25519 ") && public_key.ends_with(" dcp@tests"));
    assert!(!key.to_string().contains("PRIVATE KEY"), "{key}");
    authorize_key(public_key);
    let submitted = wizard
        .submit(json!({"method": "generated_key", "key_id": key["key_id"]}))
        .await;
    assert_eq!(submitted["steps"][1]["data"]["public_key"], public_key);
    assert_eq!(submitted["steps"][1]["data"]["secret_id"], key["key_id"]);
    wizard.next().await;
    // The SSH test must pass before next.
    let (status, _) = wizard.call(Method::POST, "next", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let done = finish_wizard(&wizard, &shared_fingerprint()).await;
    let host_id = done["result"]["host_id"].as_str().unwrap().to_string();
    // The key now belongs to that host: another wizard cannot take it.
    let other = start_wizard(app, &format!("{name}-again"), shared_sshd_port()).await;
    let (status, refused) = other
        .try_submit(json!({"method": "generated_key", "key_id": key["key_id"]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["field"], "key_id");
    // Completing twice is refused, and so is anything else on a finished wizard.
    let (status, again) = wizard.call(Method::POST, "complete", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, _) = wizard.call(Method::POST, "cancel", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Finished wizards are not offered for resuming.
    let open = ok(app, Method::GET, "/api/v1/wizards", None).await;
    assert!(!open.to_string().contains(&wizard.id), "{open}");
    (host_id, key["key_id"].as_str().unwrap().to_string())
}

/// The host as the wizard made it; everyone reads hosts, only admins change them.
async fn the_host_is_listed_to_all_and_changed_by_admins_only(
    app: &TestApp,
    name: &str,
    host_id: &str,
) {
    let host = ok(app, Method::GET, &format!("/api/v1/hosts/{name}"), None).await;
    assert_eq!(host["id"], host_id);
    assert_eq!(host["status"], "active", "{host}");
    assert_eq!(host["ssh"]["fingerprint"], shared_fingerprint());
    assert_eq!(host["ssh"]["auth_method"], "generated_key");
    assert_eq!(host["ssh"]["tags"], json!(["test", "ssh"]));
    assert!(host["liveness"]["last_seen"].is_string(), "{host}");
    let (_, viewer) = app.user_with_token("hostviewer", "viewer").await;
    let hosts = app.get_json("/api/v1/hosts", &viewer).await;
    assert_eq!(hosts[0]["id"], "local");
    assert!(hosts.to_string().contains(host_id));
    let refused = app
        .request(
            Method::PATCH,
            &format!("/api/v1/hosts/{host_id}"),
            Some(&viewer),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}

/// The container lifecycle on the SSH host (by name), recorded as that host's; returns the
/// container's Docker id.
async fn containers_run_on_the_host_by_name(
    app: &TestApp,
    name: &str,
    host_id: &str,
    run: &Containers,
    container: &str,
) -> String {
    let (status, created) = call(
        app,
        Method::POST,
        &format!("/api/v1/containers?host={name}"),
        Some(json!({
            "image": test_image(),
            "name": container,
            "command": ["sh", "-c", "echo hello-from-ssh; while :; do sleep 1; done"],
            "labels": {"test.dcp-run": run.run},
            "memory_bytes": 67108864,
            "start": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["host"], host_id);
    assert_eq!(created["started"], true);
    let docker_id = created["container_id"].as_str().unwrap().to_string();
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &docker_id]),
        "true"
    );
    for (action, body) in [
        ("stop", Some(json!({"timeout": 0}))),
        ("start", None),
        ("restart", Some(json!({"timeout": 0}))),
    ] {
        let outcome = ok(
            app,
            Method::POST,
            &format!("/api/v1/containers/{container}/{action}?host={host_id}"),
            body,
        )
        .await;
        assert_eq!(outcome["status"], "succeeded", "{action}: {outcome}");
    }
    let inspect = ok(
        app,
        Method::GET,
        &format!("/api/v1/containers/{container}?host={name}"),
        None,
    )
    .await;
    assert_eq!(inspect["host"], host_id);
    docker_id
}

/// Logs, stats and exec over SSH.
async fn logs_stats_and_exec_work_over_ssh(app: &TestApp, host_id: &str, container: &str) {
    let admin = &app.admin_token;
    let mut logs = app
        .container_socket(
            admin,
            container,
            "logs",
            &format!("host={host_id}&tail=all&follow=false"),
        )
        .await;
    let lines = logs.until_type("end").await;
    assert!(
        lines.iter().any(|m| m["data"]
            .as_str()
            .is_some_and(|d| d.contains("hello-from-ssh"))),
        "{lines:?}"
    );
    let mut stats = app
        .container_socket(admin, container, "stats", &format!("host={host_id}"))
        .await;
    let _ = stats.next_json().await;
    let sample = stats.next_json().await;
    assert_eq!(sample["type"], "stats", "{sample}");
    assert_eq!(sample["memory"]["limit"], 64 * 1024 * 1024, "{sample}");
    let mut terminal = app
        .container_socket(
            admin,
            container,
            "exec",
            &format!("host={host_id}&cols=80&rows=24"),
        )
        .await;
    assert_eq!(terminal.next_json().await["type"], "started");
    terminal.type_in("echo over''ssh\n").await;
    terminal.read_terminal_until("overssh\r\n").await;
}

/// One list across local and the SSH host (the same engine here, so the container is
/// listed once per host), and so for images, volumes and networks.
async fn one_list_spans_local_and_the_ssh_host(app: &TestApp, host_id: &str, container: &str) {
    let list = ok(
        app,
        Method::GET,
        &format!("/api/v1/containers?name={container}"),
        None,
    )
    .await;
    let hosts: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["host"].as_str().unwrap())
        .collect();
    assert!(
        hosts.contains(&"local") && hosts.contains(&host_id),
        "{list}"
    );
    assert!(
        list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] == "ok"),
        "{list}"
    );
    let over_ssh = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["host"] == host_id)
        .unwrap();
    assert_eq!(over_ssh["platform"]["origin"], "dcp", "{over_ssh}");
    for resource in ["images", "volumes", "networks"] {
        let list = ok(app, Method::GET, &format!("/api/v1/{resource}"), None).await;
        assert!(
            list["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["host"] == host_id && h["status"] == "ok"),
            "{resource}: {list}"
        );
        // The engine has images and networks (it may have no volume).
        if resource != "volumes" {
            assert!(
                list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["host"] == host_id),
                "{resource}: {list}"
            );
        }
    }
}

/// Images, volumes and networks on the SSH host, as recorded operations.
async fn images_volumes_and_networks_are_recorded_operations_on_the_host(
    app: &TestApp,
    name: &str,
    host_id: &str,
    run: &Containers,
) {
    use crate::resources::{docker_ok, seed_registry_image, wait_for_operation, Leftovers};
    let registry = std::env::var("DCP_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55000".into());
    let repository = format!("{registry}/dcp-test/ssh-pull-{}", &run.run[..8]);
    let reference = seed_registry_image(&repository, "1");
    let volume = format!("ssh-volume-{}", &run.run[..8]);
    let network = format!("ssh-network-{}", &run.run[..8]);
    let _leftovers = Leftovers {
        volumes: vec![volume.clone()],
        networks: vec![network.clone()],
        images: vec![reference.clone()],
    };
    let (status, accepted) = call(
        app,
        Method::POST,
        "/api/v1/images/pull",
        Some(json!({"image": repository, "tag": "1", "host": name})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let pulled = wait_for_operation(app, &accepted).await;
    assert_eq!(pulled["status"], "succeeded", "{pulled}");
    assert_eq!(pulled["host"], host_id, "{pulled}");
    assert!(docker_ok(&["image", "inspect", &reference]));
    let (status, created) = call(
        app,
        Method::POST,
        &format!("/api/v1/volumes?host={name}"),
        Some(json!({"name": volume})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(docker_ok(&["volume", "inspect", &volume]));
    let (status, created) = call(
        app,
        Method::POST,
        &format!("/api/v1/networks?host={name}"),
        Some(json!({"name": network})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(docker_ok(&["network", "inspect", &network]));
    for path in [
        format!("/api/v1/networks/{network}?host={name}"),
        format!("/api/v1/volumes/{volume}?host={name}"),
    ] {
        let (status, removed) = call(app, Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {removed}");
    }
    assert!(!docker_ok(&["volume", "inspect", &volume]));
}

/// The host's history: registered, then active. Removing the host forgets its key; its
/// containers stay.
async fn the_host_has_a_history_and_removing_it_forgets_its_key(
    app: &TestApp,
    name: &str,
    host_id: &str,
    key_id: &str,
) {
    let history = ok(
        app,
        Method::GET,
        &format!("/api/v1/hosts/{name}/diff?from=0"),
        None,
    )
    .await;
    let types = event_types(&history["events"]);
    assert_eq!(
        types[..2],
        ["HostRegistered", "HostStatusChanged"],
        "{history}"
    );

    let (status, _) = call(
        app,
        Method::DELETE,
        &format!("/api/v1/hosts/{host_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!secret_exists(app, key_id).await);
    let (status, _) = call(
        app,
        Method::GET,
        &format!("/api/v1/containers?host={host_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn docker_events_on_an_ssh_host_are_followed_through_ssh() {
    let app = spawn_app_with(|settings| settings.watch_docker_events = true).await;
    let name = unique_name("watched");
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/v1/hosts",
        Some(json!({
            "name": name,
            "url": url_for(shared_sshd_port()),
            "auth": {"method": "password", "password": ssh_password()},
            "host_key": std::fs::read_to_string(std::env::var("DCP_TEST_SSH_HOST_KEY").unwrap()).unwrap(),
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let host_id = created["host"]["id"].as_str().unwrap().to_string();
    // The host's watcher starts (it stores where it resumes) over the SSH connection.
    eventually(Duration::from_secs(20), || async {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT time_nano FROM docker_event_cursors WHERE host = $1")
                .bind(&host_id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        cursor.map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A container started outside dcp is recorded on the SSH host, as Docker's doing.
    let run = Containers::new();
    let docker_id = run.start("outside", &[]);
    let recorded = eventually(Duration::from_secs(30), || async {
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT e.event_type, e.metadata::jsonb FROM events e JOIN container_ids c \
             ON e.aggregate_type = 'container' AND e.aggregate_id = c.aggregate_id::text \
             WHERE c.host = $1 AND c.docker_id = $2 ORDER BY e.sequence",
        )
        .bind(&host_id)
        .bind(&docker_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        rows.iter()
            .any(|(event_type, _)| event_type == "ContainerObserved")
            .then_some(rows)
    })
    .await;
    assert!(
        recorded
            .iter()
            .all(|(_, metadata)| metadata["actor_kind"] == "docker"),
        "{recorded:?}"
    );
    let host = ok(&app, Method::GET, &format!("/api/v1/hosts/{host_id}"), None).await;
    assert_eq!(
        host["ssh_handshakes"], 1,
        "the watcher shares the pooled connection: {host}"
    );
}
