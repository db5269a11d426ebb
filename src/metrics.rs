//! Prometheus metrics: the process's recorder, and what is recorded as things happen. The
//! exposition (`GET /metrics`, and the gauges read at each scrape) is the HTTP layer's.
//!
//! Recorded as things happen:
//! - `dcp_http_requests_total{method, route, status}` and
//!   `dcp_http_request_duration_seconds{method, route}` (route templates, not paths);
//! - `dcp_commands_total{aggregate, outcome}` (`ok`, `rejected`, `conflict`,
//!   `unavailable`, `error`);
//! - `dcp_docker_call_duration_seconds{host, call, outcome}` for lists (across hosts or on
//!   one), host checks and container operations (`start`, `stop`, …).
//!
//! - `dcp_database_unavailable_refusals_total`: requests refused at once while the
//!   database was down.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds) for every `*_seconds` histogram.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder (installed once; several servers in one process share it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            // Gauges are set at each scrape: one no longer set (a removed host) goes away.
            .idle_timeout(
                metrics_util::MetricKindMask::GAUGE,
                Some(Duration::from_secs(120)),
            )
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .map(|builder| builder.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        let upkeep = handle.clone();
        // Histograms are folded into their buckets by the upkeep, every few seconds.
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .ok();
        handle
    })
}

/// Records a command's outcome.
pub fn command(aggregate: &'static str, outcome: &'static str) {
    metrics::counter!("dcp_commands_total", "aggregate" => aggregate, "outcome" => outcome)
        .increment(1);
}

/// Records one Docker call on `host`.
pub fn docker_call(host: &str, call: &'static str, ok: bool, took: Duration) {
    metrics::histogram!(
        "dcp_docker_call_duration_seconds",
        "host" => host.to_string(),
        "call" => call,
        "outcome" => if ok { "ok" } else { "error" }
    )
    .record(took.as_secs_f64());
}
