//! Cross-cutting HTTP behaviour: request ids, security headers, CORS, health checks.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn every_response_has_a_request_id_and_the_security_headers() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/health"),
        (Method::GET, "/api/v1/nope"),
        (Method::GET, "/api/v1/users"),
        (Method::GET, "/"),
    ] {
        let response = app.request(method, path, None, None).await;
        let headers = response.headers();
        assert!(headers.get("x-request-id").is_some(), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            headers["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        if path.starts_with("/api") {
            assert_eq!(headers["cache-control"], "no-store", "{path}");
        }
    }
    // A well-formed request id from the client is kept; anything else is replaced.
    let kept = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "client-chosen-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-chosen-id-123");
    let replaced = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/users"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn health_checks() {
    let app = spawn_app().await;
    let health: Value = app
        .request(Method::GET, "/health", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    let live: Value = app
        .request(Method::GET, "/health/live", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(live["alive"], true);
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["database"], "ready");
    assert_eq!(ready["checks"]["docker"], "ready", "{ready}");
    assert_eq!(ready["checks"]["bus"], "ready", "{ready}");
    let detailed = app.get_json("/health/detailed", &app.admin_token).await;
    assert_eq!(
        detailed["components"]["database"]["status"], "healthy",
        "{detailed}"
    );
    assert!(detailed["components"]["database"]["response_time_ms"].is_number());
    let projections = detailed["components"]["projections"]["projections"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = projections
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "audit_log",
            "containers",
            "hosts",
            "operations",
            "sessions",
            "users",
            "wizards"
        ]
    );
    assert!(projections.iter().all(|p| p["lag"].is_i64()));
    assert!(
        detailed["components"]["log_horizon"]["status"].is_string(),
        "{detailed}"
    );
    // Without NATS_URL the bus is in-process, and the relay publishes every event to it.
    let bus = &detailed["components"]["bus"];
    assert_eq!(bus["kind"], "in-process", "{detailed}");
    assert!(bus["relay"]["lag"].is_i64(), "{detailed}");
    let docker = &detailed["components"]["docker"];
    assert_eq!(docker["status"], "healthy", "{detailed}");
    assert!(
        docker["version"].is_string() && docker["api_version"].is_string(),
        "{docker}"
    );
}

#[tokio::test]
async fn an_unreachable_docker_engine_makes_the_server_not_ready() {
    let app = spawn_app_with(|settings| {
        settings.docker_host = Some("unix:///nonexistent/dcp-test/docker.sock".into());
    })
    .await;
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["checks"]["database"], "ready");
    assert_eq!(ready["checks"]["docker"], "not_ready");
    let detailed = app.get_json("/health/detailed", &app.admin_token).await;
    assert_eq!(detailed["status"], "unhealthy");
    assert_eq!(detailed["components"]["docker"]["status"], "unhealthy");
    let error = detailed["components"]["docker"]["error"].as_str().unwrap();
    assert!(error.contains("unavailable"), "{error}");
}

#[tokio::test]
async fn metrics_are_exposed_to_admins_and_on_the_metrics_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app =
        spawn_app_with(|settings| settings.metrics_bind = Some(format!("127.0.0.1:{port}"))).await;
    let (_, viewer) = app.user_with_token("metricsviewer", "viewer").await;
    // Something to count: a listed route, a refused command, a list across hosts.
    assert_eq!(
        app.get("/api/v1/users", &app.admin_token).await.status(),
        StatusCode::OK
    );
    let nobody = uuid::Uuid::new_v4();
    let refused = app
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{nobody}"),
            Some(&app.admin_token),
            Some(serde_json::json!({"full_name": "Nobody"})),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    app.get("/api/v1/containers", &app.admin_token).await;

    let response = app.get("/metrics", &app.admin_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for expected in [
        r#"dcp_http_requests_total{method="GET",route="/api/v1/users",status="200"}"#,
        r#"dcp_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users""#,
        r#"dcp_commands_total{aggregate="session",outcome="ok"}"#,
        r#"dcp_projection_lag_events{projection="users"}"#,
        "dcp_relay_lag_events",
        "dcp_websocket_connections",
        r#"dcp_docker_call_duration_seconds_count{host="local",call="list",outcome="ok"}"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    // Paths are never labels (they would be unbounded): the route template is.
    assert!(!text.contains(&nobody.to_string()), "{text}");
    assert!(
        text.contains(r#"route="/api/v1/users/{id}",status="404""#),
        "{text}"
    );
    assert_eq!(
        app.get("/metrics", &viewer).await.status(),
        StatusCode::FORBIDDEN
    );
    let anonymous = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // The metrics address answers without a token, and serves nothing else.
    let client = reqwest::Client::new();
    let scraped = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped
        .text()
        .await
        .unwrap()
        .contains("dcp_http_requests_total"));
    let other = client
        .get(format!("http://127.0.0.1:{port}/api/v1/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}
