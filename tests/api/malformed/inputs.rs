//! Paths, query parameters, headers, unknown routes and wrong methods.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn nul_characters_in_query_filters_are_not_server_errors() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    // A filter with NUL: nothing matches (200), or a 400.
    for path in [
        "/api/v1/users?q=%00",
        "/api/v1/audit-logs?action=%00",
        "/api/v1/audit-logs?resource_type=%00",
        "/api/v1/audit-logs?resource_id=ab%00cd",
    ] {
        let response = app.get(path, &app.admin_token).await;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST => {
                assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
            }
            other => failures.push(format!("GET {path}: {other}")),
        }
    }
    // An export with such a filter must not break off after its header.
    for path in [
        "/api/v1/audit-logs?format=csv&action=%00",
        "/api/v1/audit-logs?format=ndjson&action=%00",
    ] {
        let sent = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.admin_token)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                failures.push(format!("GET {path}: the connection broke off: {error}"));
                continue;
            }
        };
        match response.status() {
            StatusCode::OK => {
                if let Err(error) = response.text().await {
                    failures.push(format!("GET {path}: 200, then the body broke off: {error}"));
                }
            }
            StatusCode::BAD_REQUEST => {
                assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
            }
            other => failures.push(format!("GET {path}: {other}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn bad_paths_unknown_routes_and_wrong_methods_are_4xx() {
    let app = spawn_app().await;
    let target = app
        .create_user("path-target", "viewer", "path-target-password-1")
        .await;
    let target_path = format!("/api/v1/users/{}", target["id"].as_str().unwrap());
    let patch_body = json!({"full_name": "Changed Name"});
    let long_id = "a".repeat(5000);
    let mut cases = Vec::new();
    for id in [
        "not-a-uuid",
        "%00",
        "%20",
        "12345",
        "00000000-0000-0000-0000-00000000000g",
        "%7B00000000-0000-0000-0000-000000000000",
        long_id.as_str(),
    ] {
        let path = format!("/api/v1/users/{id}");
        let short: String = id.chars().take(40).collect();
        cases.extend([
            case(format!("GET id {short}"), Method::GET, &path).invalid("id"),
            case(format!("PATCH id {short}"), Method::PATCH, &path)
                .json(&patch_body)
                .invalid("id"),
            case(format!("DELETE id {short}"), Method::DELETE, &path).invalid("id"),
        ]);
    }
    let not_found = |c: Case| c.expect(StatusCode::NOT_FOUND, "NOT_FOUND", None);
    let not_allowed =
        |c: Case| c.expect(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", None);
    let unknown_user = format!("/api/v1/users/{}", uuid::Uuid::new_v4());
    cases.extend([
        not_found(case("GET unknown user", Method::GET, &unknown_user)),
        not_found(case("PATCH unknown user", Method::PATCH, &unknown_user).json(&patch_body)),
        not_found(case("DELETE unknown user", Method::DELETE, &unknown_user)),
        not_found(case("unknown API route", Method::GET, "/api/v1/nope")),
        not_found(
            case("POST to an unknown API route", Method::POST, "/api/v1/nope").json(&json!({})),
        ),
        not_found(case(
            "extra segment",
            Method::GET,
            format!("{target_path}/extra"),
        )),
        not_found(case("unknown API version", Method::GET, "/api/v2/users")),
        not_found(case("bare /api", Method::GET, "/api")),
        not_found(case("unknown health check", Method::GET, "/health/nope")),
        not_found(case(
            "users with a trailing slash",
            Method::GET,
            "/api/v1/users/",
        )),
        not_allowed(case("PUT /api/v1/users", Method::PUT, "/api/v1/users").json(&json!({}))),
        not_allowed(case(
            "DELETE /api/v1/users",
            Method::DELETE,
            "/api/v1/users",
        )),
        not_allowed(case("POST /api/v1/users/{id}", Method::POST, &target_path).json(&json!({}))),
        not_allowed(case("PUT /api/v1/users/{id}", Method::PUT, &target_path).json(&json!({}))),
        not_allowed(case(
            "GET /api/v1/auth/login",
            Method::GET,
            "/api/v1/auth/login",
        )),
        not_allowed(case(
            "DELETE /api/v1/audit-logs",
            Method::DELETE,
            "/api/v1/audit-logs",
        )),
        not_allowed(case("POST /health", Method::POST, "/health")),
    ]);
    let before = snapshot(&app).await;
    run_cases(&app, Some(&app.admin_token), cases).await;
    // Without a token, routes that do not exist get the same answers, not a 401.
    run_cases(
        &app,
        None,
        vec![
            not_found(case(
                "anonymous: unknown API route",
                Method::GET,
                "/api/v1/nope",
            )),
            not_allowed(case(
                "anonymous: PUT /api/v1/users",
                Method::PUT,
                "/api/v1/users",
            )),
        ],
    )
    .await;
    assert_eq!(
        before,
        snapshot(&app).await,
        "a rejected request wrote something"
    );
    assert_eq!(
        app.get(&target_path, &app.admin_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_query_parameters_and_position_headers_are_400() {
    let app = spawn_app().await;
    let target = app
        .create_user("query-target", "viewer", "query-target-password-1")
        .await;
    let target_path = format!("/api/v1/users/{}", target["id"].as_str().unwrap());
    let get = |path: &str| case(format!("GET {path}"), Method::GET, path);
    // Values that do not parse are 400s whose message names the parameter; `error.field`
    // is only set for unknown parameters and for values checked by the handlers.
    let mut cases = vec![
        get("/api/v1/users?foo=1").invalid("foo"),
        get("/api/v1/users?Limit=10").invalid("Limit"),
        get("/api/v1/users?limit=abc"),
        get("/api/v1/users?limit=-1").invalid("limit"),
        get("/api/v1/users?limit=0").invalid("limit"),
        get("/api/v1/users?limit=100000").invalid("limit"),
        get("/api/v1/users?limit=99999999999999999999999"),
        get("/api/v1/users?limit=1.5"),
        get("/api/v1/users?limit="),
        get("/api/v1/users?limit=1&limit=2"),
        get("/api/v1/users?offset=-1").invalid("offset"),
        get("/api/v1/users?offset=abc"),
        get("/api/v1/users?role=root"),
        get("/api/v1/users?role=Admin"),
        get("/api/v1/users?active=yes"),
        get("/api/v1/containers?foo=1").invalid("foo"),
        get("/api/v1/images?foo=1").invalid("foo"),
        get("/api/v1/images?host=elsewhere").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
        get("/api/v1/volumes?foo=1").invalid("foo"),
        get("/api/v1/volumes?host=elsewhere").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
        get("/api/v1/networks?foo=1").invalid("foo"),
        get("/api/v1/networks?host=elsewhere").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
        get("/api/v1/containers?status=sleeping").invalid("status"),
        get("/api/v1/containers?limit=0").invalid("limit"),
        get("/api/v1/containers?limit=-1"),
        get("/api/v1/containers?limit=abc"),
        get("/api/v1/containers?offset=-1"),
        get("/api/v1/containers?all=maybe"),
        get("/api/v1/containers?host=elsewhere").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
        get("/api/v1/containers/-rf").invalid("id"),
        get("/api/v1/containers/.hidden").invalid("id"),
        get("/api/v1/containers/%00").invalid("id"),
        get(&format!("/api/v1/containers/{}", "a".repeat(300))).invalid("id"),
        get("/api/v1/containers/some-name?host=elsewhere").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
        get("/api/v1/containers/some-name?foo=1").invalid("foo"),
        get("/api/v1/audit-logs?foo=1").invalid("foo"),
        get("/api/v1/audit-logs?limit=abc"),
        get("/api/v1/audit-logs?limit=-1").invalid("limit"),
        get("/api/v1/audit-logs?limit=0").invalid("limit"),
        get("/api/v1/audit-logs?limit=100000").invalid("limit"),
        get("/api/v1/audit-logs?cursor=xyz").invalid("cursor"),
        get("/api/v1/audit-logs?cursor=-1").invalid("cursor"),
        get("/api/v1/audit-logs?cursor=0").invalid("cursor"),
        get("/api/v1/audit-logs?cursor=").invalid("cursor"),
        get("/api/v1/audit-logs?since=yesterday"),
        get("/api/v1/audit-logs?until=2024-13-45T00:00:00Z"),
        get("/api/v1/audit-logs?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z")
            .invalid("since"),
        get("/api/v1/audit-logs?user_id=not-a-uuid"),
        get("/api/v1/audit-logs?format=xml"),
        get("/api/v1/audit-logs?format=CSV"),
        get("/api/v1/audit-logs?format=csv&limit=0").invalid("limit"),
        get("/api/v1/audit-logs?format=ndjson&limit=2000000").invalid("limit"),
        get("/api/v1/events?foo=1").invalid("foo"),
        get("/api/v1/events?after=-5").invalid("after"),
        get("/api/v1/events?after=999999999").invalid("after"),
        get("/api/v1/events?after=abc"),
        get("/api/v1/events?limit=abc"),
        get("/api/v1/events?limit=-1").invalid("limit"),
        get("/api/v1/events?limit=0").invalid("limit"),
        get("/api/v1/events?limit=100000").invalid("limit"),
        get("/api/v1/events?format=xml").invalid("format"),
        get("/api/v1/events?format=ndjson&limit=0").invalid("limit"),
        get("/api/v1/events?aggregate_type=us-er").invalid("aggregate_type"),
        get("/api/v1/events?aggregate_id=abc").invalid("aggregate_id"),
        get("/api/v1/events?event_type=").invalid("event_type"),
        get("/api/v1/events?actor=%01").invalid("actor"),
        get("/api/v1/events?since=yesterday").invalid("since"),
        get("/api/v1/events?until=2026-13-01T00:00:00Z").invalid("until"),
        get("/api/v1/events?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z")
            .invalid("until"),
    ];
    for path in [
        "/api/v1/users",
        target_path.as_str(),
        "/api/v1/auth/me",
        "/api/v1/audit-logs",
    ] {
        for value in [
            "abc",
            "-1",
            "1.5",
            "",
            "999999999",
            "99999999999999999999999",
        ] {
            cases.push(
                case(
                    format!("GET {path} with x-dcp-min-position: {value:?}"),
                    Method::GET,
                    path,
                )
                .header("x-dcp-min-position", value)
                .invalid("x-dcp-min-position"),
            );
        }
    }
    let before = snapshot(&app).await;
    run_cases(&app, Some(&app.admin_token), cases).await;
    assert_eq!(before, snapshot(&app).await, "a read wrote something");
}

#[tokio::test]
async fn container_operations_refuse_bad_input_before_touching_docker() {
    let app = spawn_app().await;
    let mut cases = container_operation_cases();
    cases.extend(container_create_cases());
    run_cases_writing_no_events(&app, cases, "a refused container operation wrote events").await;
}

/// Refused operations on a container that does not exist (checked before it is looked up
/// where the input is bad, a 404 where it is good).
fn container_operation_cases() -> Vec<Case> {
    let post = |path: &str| case(format!("POST {path}"), Method::POST, path);
    let missing = "/api/v1/containers/no-such-container-for-malformed-tests";
    vec![
        post("/api/v1/containers/-rf/start").invalid("id"),
        post(&format!("{missing}/start")).expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        post(&format!("{missing}/start?foo=1")).invalid("foo"),
        post(&format!("{missing}/start"))
            .json(&json!({"extra": 1}))
            .invalid("extra"),
        post(&format!("{missing}/pause"))
            .raw(Some("text/plain"), "x")
            .expect(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                None,
            ),
        post(&format!("{missing}/unpause")).raw(JSON, "[1]"),
        post(&format!("{missing}/stop"))
            .json(&json!({"timeout": "soon"}))
            .invalid("timeout"),
        post(&format!("{missing}/stop"))
            .json(&json!({"timeout": -1}))
            .invalid("timeout"),
        // Duplicate keys, sent as text (a JSON value would keep only the last one).
        post(&format!("{missing}/stop"))
            .raw(JSON, r#"{"timeout": 5, "timeout": 6}"#)
            .invalid("timeout"),
        post(&format!("{missing}/restart")).raw(JSON, "{\"timeout\":"),
        post(&format!("{missing}/kill"))
            .json(&json!({"signal": 9}))
            .invalid("signal"),
        post(&format!("{missing}/kill"))
            .json(&json!({"Signal": "HUP"}))
            .invalid("Signal"),
        post(&format!("{missing}/rename"))
            .json(&json!({}))
            .invalid("name"),
        post(&format!("{missing}/rename")).raw(None, "").expect(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        ),
        post(&format!("{missing}/rename"))
            .json(&json!({"name": "fine-name"}))
            .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        post(&format!("{missing}/recreate"))
            .json(&json!({}))
            .invalid("image"),
        post(&format!("{missing}/recreate"))
            .raw(JSON, r#"{"image": "busybox", "env": {"A": "1", "A": "2"}}"#)
            .invalid("env.A"),
        post(&format!("{missing}/recreate"))
            .json(&json!({"image": "busybox", "Env": {}}))
            .invalid("Env"),
        post(&format!("{missing}/recreate"))
            .json(&json!({"image": "busybox:latest"}))
            .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        case(
            "DELETE force=maybe",
            Method::DELETE,
            format!("{missing}?force=maybe"),
        ),
        case("DELETE foo", Method::DELETE, format!("{missing}?foo=1")).invalid("foo"),
        case("DELETE bad id", Method::DELETE, "/api/v1/containers/-rf").invalid("id"),
        case(
            "history bad id",
            Method::GET,
            "/api/v1/containers/-rf/history",
        )
        .invalid("id"),
        case(
            "history foo",
            Method::GET,
            format!("{missing}/history?foo=1"),
        )
        .invalid("foo"),
        case(
            "operation bad id",
            Method::GET,
            "/api/v1/operations/not-a-uuid",
        )
        .invalid("id"),
        case(
            "operation missing",
            Method::GET,
            format!("/api/v1/operations/{}", uuid::Uuid::new_v4()),
        )
        .expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        case("history missing", Method::GET, format!("{missing}/history")).expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
    ]
}

/// Refused bodies of `POST /api/v1/containers`.
fn container_create_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let create = "/api/v1/containers";
    let valid =
        json!({"image": "dcp-test/busybox:latest", "name": "never-created-by-malformed-tests"});
    cases.extend(body_cases(Method::POST, create, &valid));
    let with = |key: &str, value: serde_json::Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    for (body, field) in [
        (json!({"name": "x1"}), "image"),
        (with("image", json!("UPPER/Case")), "image"),
        (with("image", json!("app;rm -rf /")), "image"),
        (with("image", json!(5)), "image"),
        (with("name", json!("-bad")), "name"),
        (with("env", json!({"lower": "x"})), "env.lower"),
        (with("env", json!({"OK": 5})), "env.OK"),
        (with("ports", json!([{"container_port": 0}])), "ports"),
        (
            with("ports", json!([{"container_port": 70000}])),
            "ports[0].container_port",
        ),
        (
            with("ports", json!([{"container_port": 80, "protocol": "icmp"}])),
            "ports.protocol",
        ),
        (with("memory_bytes", json!(1024)), "memory_bytes"),
        (with("cpus", json!(-1)), "cpus"),
        (with("pids_limit", json!(0)), "pids_limit"),
        (
            with("restart_policy", json!({"name": "sometimes"})),
            "restart_policy.name",
        ),
        (with("working_dir", json!("relative/dir")), "working_dir"),
        (with("labels", json!({"dcp.op": "forged"})), "labels.dcp.op"),
        (with("command", json!("sh -c id")), "command"),
        (with("Image", json!("busybox")), "Image"),
    ] {
        cases.push(
            case(format!("POST {create} {body}"), Method::POST, create)
                .json(&body)
                .invalid(field),
        );
    }
    cases.push(
        case(
            "POST create duplicate env".to_string(),
            Method::POST,
            create,
        )
        .raw(JSON, r#"{"image": "busybox", "env": {"A": "1", "A": "2"}}"#)
        .invalid("env.A"),
    );
    cases.push(
        case(
            "POST create unknown host".to_string(),
            Method::POST,
            format!("{create}?host=elsewhere"),
        )
        .json(&valid)
        .expect(StatusCode::NOT_FOUND, "NOT_FOUND", Some("host")),
    );
    cases
}

#[tokio::test]
async fn image_volume_and_network_operations_refuse_bad_input_before_touching_docker() {
    let app = spawn_app().await;
    let post = |path: &str| case(format!("POST {path}"), Method::POST, path);
    let delete = |path: &str| case(format!("DELETE {path}"), Method::DELETE, path);
    let pull = "/api/v1/images/pull";
    let volumes = "/api/v1/volumes";
    let networks = "/api/v1/networks";
    let missing_network = "/api/v1/networks/no-such-network-for-malformed-tests";
    let mut cases = vec![
        post(pull).json(&json!({"tag": "1"})).invalid("image"),
        post(pull)
            .json(&json!({"image": "UPPER/case"}))
            .invalid("image"),
        post(pull)
            .json(&json!({"image": "busybox", "tag": "bad tag"}))
            .invalid("tag"),
        post(pull)
            .json(&json!({"image": "busybox:1", "tag": "2"}))
            .invalid("tag"),
        post(pull)
            .json(&json!({"image": "busybox", "Image": "x"}))
            .invalid("Image"),
        post(pull)
            .json(&json!({"image": "busybox", "host": "elsewhere"}))
            .expect(StatusCode::NOT_FOUND, "NOT_FOUND", Some("host")),
        delete("/api/v1/images/-rf").invalid("id"),
        delete("/api/v1/images/no-such-image-for-malformed-tests").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        delete("/api/v1/images/abc?force=maybe").invalid("force"),
        delete("/api/v1/images/abc?foo=1").invalid("foo"),
        post(volumes)
            .json(&json!({"name": "../etc"}))
            .invalid("name"),
        post(volumes).json(&json!({})).invalid("name"),
        post(volumes)
            .json(&json!({"name": "v1", "Name": "v2"}))
            .invalid("Name"),
        post(volumes)
            .raw(JSON, r#"{"name": "v1", "name": "v2"}"#)
            .invalid("name"),
        post(volumes)
            .raw(
                JSON,
                r#"{"name": "v1", "driver_opts": {"o": "size=1m", "o": "bind"}}"#,
            )
            .invalid("driver_opts.o"),
        post(volumes)
            .json(&json!({"name": "v1", "labels": {"dcp.op": "forged"}}))
            .invalid("labels"),
        post(volumes)
            .json(&json!({"name": "v1", "driver": "local/../x"}))
            .invalid("driver"),
        post(&format!("{volumes}?host=elsewhere"))
            .json(&json!({"name": "v1"}))
            .expect(StatusCode::NOT_FOUND, "NOT_FOUND", Some("host")),
        delete("/api/v1/volumes/-bad").invalid("name"),
        delete("/api/v1/volumes/no-such-volume-for-malformed-tests").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        delete("/api/v1/volumes/v1?force=sure").invalid("force"),
        post(networks)
            .json(&json!({"name": "host"}))
            .invalid("name"),
        post(networks)
            .json(&json!({"name": "n1", "driver": "host"}))
            .invalid("driver"),
        post(networks)
            .json(&json!({"name": "n1", "subnet": "10.0.0.0/99"}))
            .invalid("subnet"),
        post(networks)
            .json(&json!({"name": "n1", "gateway": "10.0.0.1"}))
            .invalid("gateway"),
        post(networks)
            .json(&json!({"name": "n1", "internal": "yes"}))
            .invalid("internal"),
        post(networks)
            .json(&json!({"name": "n1", "Driver": "bridge"}))
            .invalid("Driver"),
        delete("/api/v1/networks/-rf").invalid("id"),
        delete(missing_network).expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
        delete("/api/v1/networks/bridge").expect(StatusCode::FORBIDDEN, "FORBIDDEN", None),
        post("/api/v1/networks/-rf/connect")
            .json(&json!({"container": "x1"}))
            .invalid("id"),
        post(&format!("{missing_network}/connect"))
            .json(&json!({}))
            .invalid("container"),
        post(&format!("{missing_network}/connect"))
            .json(&json!({"container": "-x"}))
            .invalid("container"),
        post(&format!("{missing_network}/connect"))
            .json(&json!({"container": "x1", "aliases": ["bad alias"]}))
            .invalid("aliases"),
        post(&format!("{missing_network}/disconnect"))
            .json(&json!({"container": "x1", "force": "yes"}))
            .invalid("force"),
        post(&format!("{missing_network}/disconnect"))
            .json(&json!({"container": "x1", "extra": true}))
            .invalid("extra"),
    ];
    cases.extend(body_cases(Method::POST, pull, &json!({"image": "busybox"})));
    cases.extend(body_cases(Method::POST, volumes, &json!({"name": "v1"})));
    cases.extend(body_cases(Method::POST, networks, &json!({"name": "n1"})));
    cases.extend(body_cases(
        Method::POST,
        &format!("{missing_network}/connect"),
        &json!({"container": "x1"}),
    ));
    cases.extend(body_cases(
        Method::POST,
        &format!("{missing_network}/disconnect"),
        &json!({"container": "x1"}),
    ));
    run_cases_writing_no_events(
        &app,
        cases,
        "a refused image, volume or network operation wrote events",
    )
    .await;
}

#[tokio::test]
async fn ticket_requests_are_validated() {
    let app = spawn_app().await;
    let path = "/api/v1/ws-tickets";
    let post = |name: &str| case(format!("POST {path} {name}"), Method::POST, path);
    let mut cases = vec![
        post("no purpose").json(&json!({})).invalid("purpose"),
        post("unknown purpose")
            .json(&json!({"purpose": "everything"}))
            .invalid("purpose"),
        post("case variant")
            .json(&json!({"Purpose": "events"}))
            .invalid("Purpose"),
        post("resource for events")
            .json(&json!({"purpose": "events", "resource_id": "web"}))
            .invalid("resource_id"),
        post("no resource for logs")
            .json(&json!({"purpose": "container.logs"}))
            .invalid("resource_id"),
        post("bad resource")
            .json(&json!({"purpose": "container.stats", "resource_id": "../etc"}))
            .invalid("resource_id"),
        post("duplicate key")
            .raw(JSON, r#"{"purpose": "events", "purpose": "task"}"#)
            .invalid("purpose"),
    ];
    cases.extend(body_cases(
        Method::POST,
        path,
        &json!({"purpose": "events"}),
    ));
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    run_cases(&app, Some(&app.admin_token), cases).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM ws_tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "a refused ticket request stored a ticket");
}

#[tokio::test]
async fn state_and_diff_queries_are_validated_and_write_nothing() {
    let app = spawn_app().await;
    let get = |path: &str| case(format!("GET {path}"), Method::GET, path);
    let user = uuid::Uuid::new_v4();
    let mut cases = vec![
        get("/api/v1/users/not-a-uuid/state").invalid("id"),
        get("/api/v1/users/not-a-uuid/diff?from=1").invalid("id"),
        get(&format!("/api/v1/users/{user}/state")).expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        get(&format!("/api/v1/users/{user}/state?at=noon")).invalid("at"),
        get(&format!("/api/v1/users/{user}/state?at=12")).invalid("at"),
        get(&format!("/api/v1/users/{user}/state?position=x")).invalid("position"),
        get(&format!("/api/v1/users/{user}/state?position=-4")).invalid("position"),
        get(&format!(
            "/api/v1/users/{user}/state?position=1&at=2026-01-01T00:00:00Z"
        ))
        .invalid("position"),
        get(&format!("/api/v1/users/{user}/state?when=now")).invalid("when"),
        get(&format!("/api/v1/users/{user}/diff")).invalid("from"),
        get(&format!("/api/v1/users/{user}/diff?from=")).invalid("from"),
        get(&format!("/api/v1/users/{user}/diff?from=1&to=later")).invalid("to"),
        get(&format!("/api/v1/users/{user}/diff?from=1&from=2")).invalid("from"),
        get("/api/v1/containers/-rf/state").invalid("id"),
        get("/api/v1/containers/no-such-container-for-state/state").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        get("/api/v1/containers/no-such-container-for-state/state?host=elsewhere").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("host"),
        ),
        get("/api/v1/containers/no-such-container-for-state/diff?from=tomorrow").invalid("from"),
        get("/api/v1/images/busybox%3Alatest/state?at=x").invalid("at"),
        get("/api/v1/images/busybox%3Alatest/state").expect(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        get("/api/v1/images/busybox%3Alatest/diff?to=1").invalid("from"),
        get("/api/v1/volumes/some-volume/state?position=1.5").invalid("position"),
        get("/api/v1/volumes/%01bad/state").invalid("id"),
        get("/api/v1/volumes/some-volume/diff?from=1&extra=1").invalid("extra"),
        get("/api/v1/networks/some-network/state?at=2026-13-40T00:00:00Z").invalid("at"),
        get("/api/v1/networks/some-network/diff").invalid("from"),
        get("/api/v1/networks/some-network/state").expect(StatusCode::NOT_FOUND, "NOT_FOUND", None),
    ];
    cases.push(get("/api/v1/users/not-a-uuid/state?at=x").invalid("at"));
    let verify = |name: &str| case(name, Method::POST, "/api/v1/audit-logs/verify");
    cases.extend([
        verify("verify without checkpoints")
            .json(&json!({}))
            .invalid("checkpoints"),
        verify("verify with a partial checkpoint")
            .json(&json!({"checkpoints": [{"seq": 1}]}))
            .invalid("checkpoints[0].format"),
        verify("verify with extra fields")
            .json(&json!({"checkpoints": [], "all": true}))
            .invalid("all"),
        verify("verify with a string")
            .json(&json!({"checkpoints": "all"}))
            .invalid("checkpoints"),
    ]);
    cases.extend(body_cases(
        Method::POST,
        "/api/v1/audit-logs/verify",
        &json!({"checkpoints": []}),
    ));
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    run_cases(&app, Some(&app.admin_token), cases).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "a refused state query wrote events");
}
