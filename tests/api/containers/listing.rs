//! Reading the engine: containers listed with filters and paging, inspected by id, prefix
//! or name; images, volumes and networks listed live; bad filters and a dead engine.

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::*;

#[tokio::test]
async fn lists_filter_and_page_live_containers() {
    let app = spawn_app().await;
    let (_, viewer) = app.user_with_token("watcher", "viewer").await;
    let run = Containers::new();
    let web = run.start("web", &["--label", "tier=front"]);
    let db = run.start("db", &["--label", "tier=back"]);
    let stopped = run.start("stopped", &[]);
    docker(&["stop", "-t", "0", &stopped]);

    let list = app
        .get_json(
            &format!("/api/v1/containers?label=test.dcp-run={}", run.run),
            &viewer,
        )
        .await;
    assert_eq!(list["total"], 2, "running only by default: {list}");
    let all = app
        .get_json(
            &format!("/api/v1/containers?all=true&label=test.dcp-run={}", run.run),
            &viewer,
        )
        .await;
    assert_eq!(all["total"], 3);
    let web_view = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == web.as_str())
        .unwrap();
    assert_eq!(web_view["host"], "local");
    assert_eq!(web_view["short_id"], &web[..12]);
    assert!(web_view["name"].as_str().unwrap().starts_with("web-"));
    assert_eq!(web_view["state"], "running");
    assert_eq!(web_view["image"], test_image());
    assert_eq!(web_view["labels"]["tier"], "front");
    assert!(web_view["created_at"].is_string());

    let exited = app
        .get_json(
            &format!(
                "/api/v1/containers?status=exited&label=test.dcp-run={}",
                run.run
            ),
            &viewer,
        )
        .await;
    assert_eq!(exited["total"], 1);
    assert_eq!(exited["items"][0]["id"], stopped.as_str());
    let back = app
        .get_json(
            &format!(
                "/api/v1/containers?label=test.dcp-run={},tier=back",
                run.run
            ),
            &viewer,
        )
        .await;
    assert_eq!(back["total"], 1);
    assert_eq!(back["items"][0]["id"], db.as_str());
    let by_name = app
        .get_json(
            &format!(
                "/api/v1/containers?all=true&name=WEB-&label=test.dcp-run={}",
                run.run
            ),
            &viewer,
        )
        .await;
    assert_eq!(by_name["total"], 1);
    let page = app
        .get_json(
            &format!(
                "/api/v1/containers?all=true&limit=2&offset=2&label=test.dcp-run={}",
                run.run
            ),
            &viewer,
        )
        .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn inspect_by_id_prefix_or_name() {
    let app = spawn_app().await;
    let run = Containers::new();
    let id = run.start("inspected", &["--env", "MODE=test"]);
    let name = docker(&["inspect", "--format", "{{.Name}}", &id])
        .trim_start_matches('/')
        .to_string();
    for reference in [id.clone(), id[..10].to_string(), name.clone()] {
        let detail = app
            .get_json(&format!("/api/v1/containers/{reference}"), &app.admin_token)
            .await;
        assert_eq!(detail["id"], id.as_str(), "{reference}");
        assert_eq!(detail["name"], name.as_str());
        assert_eq!(detail["host"], "local");
        assert_eq!(detail["inspect"]["State"]["Running"], true);
        let env: Vec<&str> = detail["inspect"]["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert!(env.contains(&"MODE=test"), "{env:?}");
    }
    let missing = app
        .get(
            &format!("/api/v1/containers/nothing-{}", run.run),
            &app.admin_token,
        )
        .await;
    assert_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let bad = app.get("/api/v1/containers/-rf", &app.admin_token).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let elsewhere = app
        .get(
            &format!("/api/v1/containers/{id}?host=elsewhere"),
            &app.admin_token,
        )
        .await;
    let body = assert_error(elsewhere, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(body["error"]["field"], "host");
}

#[tokio::test]
async fn bad_filters_are_400_and_an_unreachable_engine_is_503() {
    let app = spawn_app().await;
    for query in [
        "status=sleeping",
        "limit=0",
        "limit=5000",
        "all=maybe",
        "colour=red",
    ] {
        let response = app
            .get(&format!("/api/v1/containers?{query}"), &app.admin_token)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
    let down = spawn_app_with(|settings| {
        settings.docker_host = Some("unix:///nonexistent/dcp-test/docker.sock".into())
    })
    .await;
    let response = down.get("/api/v1/containers", &down.admin_token).await;
    let body: Value = assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "DOCKER_UNAVAILABLE",
    )
    .await;
    assert_eq!(body["error"]["details"]["host"], "local");
}

#[tokio::test]
async fn images_volumes_and_networks_are_listed_live() {
    let app = spawn_app().await;
    let (_, viewer) = app.user_with_token("lister", "viewer").await;
    let run = Uuid::new_v4().simple().to_string();
    let volume = format!("dcp-test-vol-{}", &run[..12]);
    let network = format!("dcp-test-net-{}", &run[..12]);
    docker(&[
        "volume",
        "create",
        "--label",
        &format!("test.dcp-run={run}"),
        &volume,
    ]);
    docker(&[
        "network",
        "create",
        "--label",
        &format!("test.dcp-run={run}"),
        &network,
    ]);
    let images = app
        .get_json("/api/v1/images?reference=dcp-test/busybox", &viewer)
        .await;
    let busybox = images["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["repo_tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == test_image().as_str())
        })
        .unwrap_or_else(|| panic!("the test image is listed: {images}"));
    assert!(busybox["id"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(busybox["short_id"].as_str().unwrap().len(), 12);
    assert!(busybox["size"].as_i64().unwrap() > 0);
    let volumes = app.get_json("/api/v1/volumes", &viewer).await;
    let listed = volumes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume.as_str())
        .expect("volume listed");
    assert_eq!(listed["driver"], "local");
    assert_eq!(listed["labels"]["test.dcp-run"], run.as_str());
    let networks = app.get_json("/api/v1/networks", &viewer).await;
    let names: Vec<&str> = networks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"bridge") && names.contains(&network.as_str()),
        "{names:?}"
    );
    docker(&["volume", "rm", &volume]);
    docker(&["network", "rm", &network]);
}
