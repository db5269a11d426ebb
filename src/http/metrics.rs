//! `GET /metrics` (admins, with a bearer token), and the same without authentication on
//! `DCP_METRICS_BIND` when set (an address only the scraper reaches); the recorder is
//! [`crate::metrics`]'s.
//!
//! Read at each scrape: `dcp_projection_lag_events{projection}`, `dcp_relay_lag_events`,
//! `dcp_websocket_connections`, `dcp_host_up{host}` (1 active, 0 otherwise),
//! `dcp_ssh_handshakes{host}` (SSH connections made by this process).

use std::time::Duration;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::app_state::AppState;
use crate::metrics::handle;

/// Records every routed request: its route template, method, status and duration.
pub async fn record_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("dcp_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("dcp_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The text exposition, with the gauges read now. Each database read gets a second at
/// most (and none while the database is known to be down): a scrape always answers.
pub async fn render(state: &AppState) -> String {
    if state.db_breaker.is_down() {
        return handle().render();
    }
    let quick = Duration::from_secs(1);
    if let Ok(Ok(statuses)) =
        tokio::time::timeout(quick, dcp_projections::projection_statuses(&state.pool)).await
    {
        for status in statuses {
            metrics::gauge!("dcp_projection_lag_events", "projection" => status.name)
                .set(status.lag as f64);
        }
    }
    if let Ok(Ok(relay)) = tokio::time::timeout(
        quick,
        crate::realtime::bus::relay::relay_status(&state.pool, state.bus.kind()),
    )
    .await
    {
        metrics::gauge!("dcp_relay_lag_events").set(relay.lag as f64);
    }
    metrics::gauge!("dcp_websocket_connections").set(state.sockets.open_sockets() as f64);
    let hosts: Vec<(String, String)> = tokio::time::timeout(
        quick,
        sqlx::query_as("SELECT id, status FROM hosts").fetch_all(&state.pool),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    for (id, status) in hosts {
        if let Some(pool) = state.registry.pool(&id) {
            metrics::gauge!("dcp_ssh_handshakes", "host" => id.clone())
                .set(pool.handshakes() as f64);
        }
        metrics::gauge!("dcp_host_up", "host" => id).set(if status == "active" {
            1.0
        } else {
            0.0
        });
    }
    handle().render()
}

/// `GET /metrics`.
pub async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state).await,
    )
        .into_response()
}

/// Serves `/metrics` without authentication on `address` (for a scraper on a private
/// network), until `shutdown`.
pub async fn serve_unauthenticated(
    state: AppState,
    address: String,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|error| anyhow::anyhow!("Failed to bind DCP_METRICS_BIND {address}: {error}"))?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_endpoint))
        .with_state(state);
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    }))
}
