//! The REST API: shared state, the router (one `router()` per resource module), and the
//! middleware stack.
//!
//! Order of the layers, outermost first: request context and span → error rendering →
//! panic catching → security headers → CORS → mutations run to completion → body limit →
//! routing → permission check (route layer) → handler.

pub mod app_state;
pub mod audit;
pub mod auth;
pub mod container_actions;
pub mod containers;
pub mod context;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod hosts;
pub mod images;
pub mod metrics;
pub mod networks;
pub mod openapi;
pub mod operations;
pub mod past;
pub mod permissions;
pub mod positions;
pub mod tickets;
pub mod tls;
pub mod users;
pub mod volumes;
pub mod web;
pub mod wizards;
pub mod ws;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::{middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;
pub use app_state::{AppInner, AppState};
use error::{ApiError, ErrorCode};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// All API routes with their OpenAPI description.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document())
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(containers::router())
        .merge(container_actions::router())
        .merge(images::router())
        .merge(volumes::router())
        .merge(networks::router())
        .merge(operations::router())
        .merge(audit::router())
        .merge(events::router())
        .merge(past::router())
        .merge(hosts::router())
        .merge(wizards::router())
        .merge(tickets::router())
        .merge(openapi::router())
}

/// Answers 503 at once while the database is known to be down (health checks still run:
/// they report it); trips the breaker when a request finds it down.
async fn database_breaker(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    // Health checks and metrics still answer: they report the outage.
    let exempt =
        path.starts_with("/health") || !(path.starts_with("/api") || path.starts_with("/ws"));
    if !exempt && state.db_breaker.is_down() {
        ::metrics::counter!("dcp_database_unavailable_refusals_total").increment(1);
        let mut error = ApiError::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable",
        );
        error.retry_after = Some(1);
        return error.into_response();
    }
    let response = next.run(request).await;
    if response
        .extensions()
        .get::<ApiError>()
        .is_some_and(|error| error.code == ErrorCode::DatabaseUnavailable)
    {
        state.db_breaker.trip(&state.pool).await;
    }
    response
}

/// Runs requests that change something to completion even if the client goes away:
/// a command, its side tables and its clean-up must not be cut half-way by a dropped
/// connection. Reads stay cancellable.
pub async fn complete_mutations(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    match tokio::spawn(tracing::Instrument::in_current_span(next.run(request))).await {
        Ok(response) => response,
        Err(error) => {
            ApiError::internal(anyhow::anyhow!("a request task failed: {error}")).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

fn cors(settings: &Settings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .cors_allowlist()
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static(positions::MIN_POSITION_HEADER),
            header::HeaderName::from_static(auth::COOKIE_ONLY_HEADER),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static(positions::POSITION_HEADER),
            header::RETRY_AFTER,
        ])
}

/// The web UI: the embedded build, or the files of `DCP_WEB_DIR` when set.
fn web_ui(settings: &Settings) -> Router {
    web::router(settings.web_dir.clone())
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let proxies = Arc::new(
        context::TrustedProxies::parse(&state.settings.trusted_proxies).unwrap_or_else(|error| {
            // Settings are checked at startup (`Application::build`); this is a last guard.
            tracing::error!(%error, "ignoring DCP_TRUSTED_PROXIES");
            context::TrustedProxies::default()
        }),
    );
    let (api, document) = api_routes().split_for_parts();
    openapi::install(document);
    let api = api
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            permissions::authorize,
        ))
        .route_layer(middleware::from_fn(metrics::record_http))
        .method_not_allowed_fallback(method_not_allowed);
    let settings = state.settings.clone();
    let api_not_found = Router::new()
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/health/{*rest}", axum::routing::any(not_found))
        .route("/ws/{*rest}", axum::routing::any(not_found));
    let sockets = ws::router().with_state(state.clone());
    let breaker_state = state.clone();
    let https = settings.https();
    let router = api
        .with_state(state)
        .merge(sockets)
        .merge(api_not_found)
        .fallback_service(web_ui(&settings))
        .layer(middleware::from_fn_with_state(
            breaker_state,
            database_breaker,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(complete_mutations))
        .layer(cors(&settings))
        .layer(middleware::from_fn(context::security_headers))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(error::render_errors))
        .layer(middleware::from_fn_with_state(
            proxies,
            context::request_context,
        ));
    // Served over HTTPS: browsers are told to keep to it (a year, subdomains left alone).
    match https {
        true => router.layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ),
        ),
        false => router,
    }
}
