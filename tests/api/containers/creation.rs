//! Creating containers: operators within the safe profile, checked against `docker
//! inspect`; the escape corpus of host-reaching options refused in every encoding; an
//! interrupted create settled without a duplicate.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

#[tokio::test]
async fn operators_create_and_start_containers_within_the_safe_profile() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("builder", "operator").await;
    let run = Containers::new();
    let name = format!("created-{}", &run.run[..8]);
    let body = serde_json::json!({
        "image": test_image(),
        "name": name,
        "command": ["sleep", "300"],
        "env": {"MODE": "test", "GREETING": "hello; rm -rf /"},
        "labels": {"test.dcp-run": run.run, "tier": "front"},
        "restart_policy": {"name": "unless-stopped"},
        "memory_bytes": 67108864,
        "pids_limit": 64,
        "start": true,
    });
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(&operator),
            Some(body),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["started"], true);
    let id = outcome["container_id"].as_str().unwrap().to_string();
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &id])).unwrap();
    let inspect = &inspect[0];
    assert_eq!(inspect["State"]["Running"], true);
    assert_eq!(
        inspect["Config"]["Labels"]["dcp.op"],
        outcome["operation_id"]
    );
    assert_eq!(inspect["Config"]["Labels"]["tier"], "front");
    assert_eq!(inspect["HostConfig"]["Privileged"], false);
    assert_eq!(inspect["HostConfig"]["Memory"], 67108864);
    assert_eq!(
        inspect["HostConfig"]["RestartPolicy"]["Name"],
        "unless-stopped"
    );
    let env: Vec<&str> = inspect["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"GREETING=hello; rm -rf /"),
        "values are data, never a shell: {env:?}"
    );
    let history = app
        .get_json(&format!("/api/v1/containers/{id}/history"), &operator)
        .await;
    let types = event_types(&history);
    assert_eq!(
        types,
        [
            "ContainerCreateRequested",
            "ContainerCreated",
            "ContainerStartRequested",
            "ContainerStarted"
        ]
    );
    assert_eq!(history[0]["data"]["spec"]["name"], name.as_str());
    // Environment values are secrets to anyone but an admin.
    assert_eq!(history[0]["data"]["spec"]["env"]["MODE"], "<redacted>");
    let for_admin = app
        .get_json(
            &format!("/api/v1/containers/{id}/history"),
            &app.admin_token,
        )
        .await;
    assert_eq!(for_admin[0]["data"]["spec"]["env"]["MODE"], "test");
    // The name is taken now: Docker's conflict is recorded and answered as 409.
    let again = serde_json::json!({"image": test_image(), "name": name});
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(&operator),
            Some(again),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "CONFLICT").await;
    // A missing image is Docker's refusal, named.
    let missing = serde_json::json!({"image": "dcp-test/does-not-exist:nope", "name": format!("missing-{}", &run.run[..8])});
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(&operator),
            Some(missing),
        )
        .await;
    let body = assert_error(response, StatusCode::BAD_GATEWAY, "DOCKER_OPERATION_FAILED").await;
    assert_eq!(body["error"]["field"], "image");
}

/// The escape corpus: every option that reaches the host, in every encoding, is refused to
/// operators and viewers, and no container exists afterwards; admins need the flag and a reason.
#[tokio::test]
async fn host_reaching_options_are_refused_and_leave_no_container() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("escaper", "operator").await;
    let (_, viewer) = app.user_with_token("peeker", "viewer").await;
    let run = Containers::new();
    for (name, body) in &escape_bodies(&run) {
        for token in [&operator, &viewer] {
            let response = app
                .client
                .post(app.url("/api/v1/containers"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
                "{name}: {status}"
            );
            assert!(!container_exists(name), "{name} was created");
        }
    }
    a_named_volume_bound_to_a_host_path_is_refused_like_a_bind(&app, &operator, &run).await;
    admins_need_the_flag_and_a_reason_and_the_reason_is_recorded(&app, &run).await;
}

/// Every option that reaches the host, each in a body of its own, then other encodings of
/// the same intent; as (container name, raw JSON body).
fn escape_bodies(run: &Containers) -> Vec<(String, String)> {
    let image = test_image();
    let options: Vec<(&str, Value)> = vec![
        ("privileged", serde_json::json!({"privileged": true})),
        ("cap_add", serde_json::json!({"cap_add": ["SYS_ADMIN"]})),
        (
            "socket",
            serde_json::json!({"binds": [{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]}),
        ),
        (
            "root",
            serde_json::json!({"binds": [{"source": "/", "target": "/host"}]}),
        ),
        ("pid", serde_json::json!({"pid_mode": "host"})),
        ("ipc", serde_json::json!({"ipc_mode": "host"})),
        ("uts", serde_json::json!({"uts_mode": "host"})),
        ("net", serde_json::json!({"network": "host"})),
        ("netc", serde_json::json!({"network": "container:whatever"})),
        ("dev", serde_json::json!({"devices": ["/dev/fuse"]})),
        (
            "secopt",
            serde_json::json!({"security_opt": ["seccomp=unconfined"]}),
        ),
        (
            "sysctl",
            serde_json::json!({"sysctls": {"net.ipv4.ip_forward": "1"}}),
        ),
        (
            "volpath",
            serde_json::json!({"volumes": [{"source": "/etc", "target": "/etc-host"}]}),
        ),
    ];
    let mut bodies: Vec<(String, String)> = Vec::new();
    for (label, extra) in &options {
        let name = format!("esc-{label}-{}", &run.run[..8]);
        let mut body =
            serde_json::json!({"image": image, "name": name, "labels": {"test.dcp-run": run.run}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        bodies.push((name, body.to_string()));
    }
    // Other encodings of the same intent: case variants, Docker's own field names,
    // duplicate keys hiding a `true`, unknown wrappers.
    for (i, raw) in [
        r#""Privileged": true"#,
        r#""privileged": false, "privileged": true"#,
        r#""HostConfig": {"Privileged": true}"#,
        r#""host_config": {"privileged": true}"#,
        r#""CapAdd": ["ALL"]"#,
        r#""Binds": ["/:/host"]"#,
        r#""env": {"A": "1", "A": "2"}"#,
        r#""labels": {"dcp.op": "forged"}"#,
    ]
    .iter()
    .enumerate()
    {
        let name = format!("esc-raw{i}-{}", &run.run[..8]);
        bodies.push((
            name.clone(),
            format!(r#"{{"image": "{image}", "name": "{name}", {raw}}}"#),
        ));
    }
    bodies
}

/// A named volume that is really a bind of a host path is refused like a bind.
async fn a_named_volume_bound_to_a_host_path_is_refused_like_a_bind(
    app: &TestApp,
    operator: &str,
    run: &Containers,
) {
    let image = test_image();
    let bind_volume = format!("esc-bindvol-{}", &run.run[..8]);
    docker(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        "device=/etc",
        &bind_volume,
    ]);
    let name = format!("esc-volume-{}", &run.run[..8]);
    let body = serde_json::json!({"image": image, "name": name, "volumes": [{"source": bind_volume, "target": "/host-etc"}]});
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(operator),
            Some(body),
        )
        .await;
    let refused = assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert_eq!(refused["error"]["field"], "volumes");
    assert!(!container_exists(&name));
    docker(&["volume", "rm", &bind_volume]);
}

/// Admins: refused without the flag and a reason, allowed with both, and the reason is
/// recorded; the refusals before were recorded as denied requests.
async fn admins_need_the_flag_and_a_reason_and_the_reason_is_recorded(
    app: &TestApp,
    run: &Containers,
) {
    let image = test_image();
    let name = format!("esc-admin-{}", &run.run[..8]);
    let without = serde_json::json!({"image": image, "name": name, "labels": {"test.dcp-run": run.run}, "cap_add": ["NET_ADMIN"]});
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(&app.admin_token),
            Some(without.clone()),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let mut no_reason = without.clone();
    no_reason["allow_privileged"] = serde_json::json!(true);
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(&app.admin_token),
            Some(no_reason.clone()),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    assert!(!container_exists(&name));
    let mut allowed = no_reason;
    allowed["reason"] = serde_json::json!("network debugging, ticket 42");
    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/containers",
            Some(&app.admin_token),
            Some(allowed),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(container_exists(&name));
    let outcome: Value = response.json().await.unwrap();
    let position: i64 = outcome["position"].as_i64().unwrap();
    let audit = app
        .get_json_at(
            "/api/v1/audit-logs?action=container.create&limit=100",
            &app.admin_token,
            position,
        )
        .await;
    let requested = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["details"]["outcome"] == "requested" && e["details"]["spec"]["name"] == name.as_str()
        })
        .expect("the create request is audited");
    assert_eq!(
        requested["details"]["spec"]["reason"],
        "network debugging, ticket 42"
    );
    assert_eq!(requested["details"]["spec"]["cap_add"][0], "NET_ADMIN");
    let denied = app
        .audit_entries_at("action=access.denied&limit=500", position)
        .await;
    assert!(denied
        .iter()
        .any(|e| e["username"] == "escaper" && e["resource_id"] == "POST /api/v1/containers"));
}

/// The server stops between a create request and its outcome: the container Docker made is
/// found by its `dcp.op` label and recorded (never created twice); a create Docker never
/// performed is recorded as failed.
#[tokio::test]
async fn an_interrupted_create_is_settled_without_a_duplicate() {
    use dcp::commands::{CommandBus, CommandMeta};
    use dcp_aggregates::container::{Container, ContainerCommand};

    let app = spawn_app().await;
    let run = Containers::new();
    let bus = CommandBus::new(app.pool.clone());
    let (made_op, lost_op) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let (made, lost) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (aggregate, op_id) in [(made, made_op), (lost, lost_op)] {
        let command = ContainerCommand::RequestCreate {
            op_id,
            host: "local".into(),
            spec: serde_json::json!({"image": test_image()}),
            at: chrono::Utc::now(),
        };
        bus.execute::<Container>(&aggregate.to_string(), command, &CommandMeta::system())
            .await
            .unwrap();
    }
    // Docker created the first one (with the operation's label) before the "crash".
    let name = format!("half-made-{}", &run.run[..8]);
    let label = format!("dcp.op={made_op}");
    let run_label = format!("test.dcp-run={}", run.run);
    let image = test_image();
    let docker_id = docker(&[
        "create", "--name", &name, "--label", &label, "--label", &run_label, &image, "sleep", "300",
    ]);
    let database_url = app.database_url.clone();
    app.stop().await;

    let restarted = spawn_app_on(database_url, |settings| {
        settings.operation_settle_after_secs = 0
    })
    .await;
    // Waits on the store, not the API: reading the container through the API would claim
    // the create itself (also correct, but then it is not the reconciler's doing).
    wait_for_events(&restarted.pool, made, 2).await;
    let history = restarted
        .get_json(
            &format!("/api/v1/containers/{docker_id}/history"),
            &restarted.admin_token,
        )
        .await;
    let types = event_types(&history);
    assert_eq!(
        types,
        ["ContainerCreateRequested", "ContainerCreated"],
        "{history}"
    );
    assert_eq!(history[1]["actor_kind"], "reconciler");
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("label={label}")])
            .lines()
            .count(),
        1,
        "no duplicate container"
    );
    wait_for_events(&restarted.pool, lost, 2).await;
    let lost_events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(lost.to_string())
    .fetch_all(&restarted.pool)
    .await
    .unwrap();
    assert_eq!(lost_events, ["ContainerCreateRequested", "OperationFailed"]);
}

/// Waits until the store holds `count` events of the aggregate `id`.
async fn wait_for_events(pool: &sqlx::PgPool, id: uuid::Uuid, count: i64) {
    eventually(std::time::Duration::from_secs(20), || async move {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(id.to_string())
            .fetch_one(pool)
            .await
            .unwrap();
        (stored == count).then_some(())
    })
    .await;
}
