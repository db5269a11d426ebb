//! Health checks: `/health` (load balancers), `/health/live`, `/health/ready` (database, Docker,
//! event bus) and `/health/detailed` (admins: versions, latencies, projection and relay lag).

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use super::AppState;
use crate::docker::DockerHosts;
use crate::docker::LOCAL_HOST;

pub const SERVICE: &str = "docker-control-platform";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(detailed))
        .routes(routes!(metrics))
}

/// Prometheus metrics (text exposition format), for admins; see `crate::metrics`.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(state: State<AppState>) -> axum::response::Response {
    super::metrics::metrics_endpoint(state).await
}

/// Basic health for load balancers.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "healthy")))]
async fn health() -> ApiJson<Value> {
    ApiJson(json!({
        "status": "healthy",
        "service": SERVICE,
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": Utc::now(),
    }))
}

/// The process is alive.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "alive")))]
async fn live() -> ApiJson<Value> {
    ApiJson(json!({ "alive": true, "timestamp": Utc::now() }))
}

async fn database_check(state: &AppState) -> Result<f64, String> {
    let started = Instant::now();
    let query = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    match tokio::time::timeout(std::time::Duration::from_secs(2), query).await {
        Ok(Ok(_)) => Ok(started.elapsed().as_secs_f64() * 1000.0),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out after 2 s".into()),
    }
}

/// Ready to serve: the database, the local Docker engine and the event bus answer.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "a dependency is not ready")))]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (database, docker, bus) = tokio::join!(
        database_check(&state),
        state.registry.ping(LOCAL_HOST),
        state.bus.check()
    );
    let (database, docker, bus) = (database.is_ok(), docker.is_ok(), bus.is_ok());
    let ready = database && docker && bus;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let check = |ok: bool| if ok { "ready" } else { "not_ready" };
    let body = json!({
        "ready": ready,
        "checks": { "database": check(database), "docker": check(docker), "bus": check(bus) },
        "timestamp": Utc::now(),
    });
    (status, ApiJson(body))
}

/// Component status for admins.
#[utoipa::path(get, path = "/health/detailed", tag = "health", responses((status = 200, description = "component status")))]
async fn detailed(State(state): State<AppState>) -> ApiJson<Value> {
    let database = database_component(&state).await;
    let projections = projections_component(&state).await;
    let horizon = horizon_component(&state).await;
    let docker = docker_component(&state).await;
    let bus = bus_component(&state).await;
    let hosts = hosts_component(&state).await;
    let healthy = database["status"] == "healthy"
        && projections["status"] == "healthy"
        && horizon["status"] == "healthy"
        && docker["status"] == "healthy"
        && bus["status"] == "healthy";
    ApiJson(json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "timestamp": Utc::now(),
        "uptime_seconds": state.started_at.elapsed().as_secs(),
        "version": { "api": env!("CARGO_PKG_VERSION"), "rustc": option_env!("DCP_RUSTC_VERSION").unwrap_or("unknown") },
        "components": {
            "database": database,
            "docker": docker,
            "hosts": hosts,
            "projections": projections,
            "log_horizon": horizon,
            "bus": bus,
            "websockets": { "status": "healthy", "open": state.sockets.open_sockets() },
        },
    }))
}

/// The database: its latency and version.
async fn database_component(state: &AppState) -> Value {
    match database_check(state).await {
        Ok(ms) => {
            let version: Option<String> = sqlx::query_scalar("SHOW server_version")
                .fetch_one(&state.pool)
                .await
                .ok();
            json!({ "status": "healthy", "response_time_ms": ms, "version": version })
        }
        Err(error) => json!({ "status": "unhealthy", "error": error }),
    }
}

/// Each projection's position and lag.
async fn projections_component(state: &AppState) -> Value {
    match dcp_projections::projection_statuses(&state.pool).await {
        Ok(statuses) => {
            let lagging = statuses.iter().any(|s| s.lag > 1000);
            json!({ "status": if lagging { "lagging" } else { "healthy" }, "projections": statuses })
        }
        Err(error) => json!({ "status": "unhealthy", "error": format!("{error:#}") }),
    }
}

/// Every log reader waits for the oldest running transaction of the whole cluster: one
/// left open (by anyone) holds all projections back, so it is shown here.
async fn horizon_component(state: &AppState) -> Value {
    let oldest_transaction: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM max(now() - xact_start))::float8 FROM pg_stat_activity \
         WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL",
    )
    .fetch_one(&state.pool)
    .await
    .ok()
    .flatten();
    json!({
        "oldest_transaction_seconds": oldest_transaction,
        "status": if oldest_transaction.unwrap_or(0.0) > 30.0 { "held_back" } else { "healthy" },
    })
}

/// The local engine.
async fn docker_component(state: &AppState) -> Value {
    match state.registry.status(LOCAL_HOST).await {
        Ok(engine) => json!({
            "status": "healthy",
            "response_time_ms": engine.response_time_ms,
            "version": engine.version,
            "api_version": engine.api_version,
            "containers": engine.containers,
            "images": engine.images,
        }),
        Err(error) => json!({ "status": "unhealthy", "error": error.to_string() }),
    }
}

/// The event bus and its relay's lag.
async fn bus_component(state: &AppState) -> Value {
    match (
        state.bus.check().await,
        crate::realtime::bus::relay::relay_status(&state.pool, state.bus.kind()).await,
    ) {
        (Ok(()), Ok(relay)) => {
            let status = if relay.lag > 1000 {
                "lagging"
            } else {
                "healthy"
            };
            json!({ "status": status, "kind": state.bus.kind(), "relay": relay })
        }
        (Err(error), relay) => json!({
            "status": "unhealthy", "kind": state.bus.kind(), "error": error.to_string(),
            "relay": relay.ok(),
        }),
        (Ok(()), Err(error)) => {
            json!({ "status": "unhealthy", "kind": state.bus.kind(), "error": format!("{error:#}") })
        }
    }
}

/// Remote hosts: one that is down degrades this component, not the platform.
async fn hosts_component(state: &AppState) -> Value {
    match sqlx::query_as::<_, (String, String, String, Option<chrono::DateTime<Utc>>)>(
        "SELECT h.id, h.name, h.status, l.last_seen FROM hosts h \
         LEFT JOIN host_liveness l ON l.host_id = h.id ORDER BY lower(h.name)",
    )
    .fetch_all(&state.pool)
    .await
    {
        Ok(rows) => {
            let degraded = rows
                .iter()
                .any(|(_, _, status, _)| status != "active" && status != "disabled");
            let hosts: Vec<Value> = rows
                .into_iter()
                .map(|(id, name, status, last_seen)| {
                    json!({
                        "id": id, "name": name, "status": status, "last_seen": last_seen,
                        "ssh_handshakes": state.registry.pool(&id).map(|p| p.handshakes()),
                    })
                })
                .collect();
            json!({ "status": if degraded { "degraded" } else { "healthy" }, "hosts": hosts })
        }
        Err(error) => json!({ "status": "unhealthy", "error": error.to_string() }),
    }
}
