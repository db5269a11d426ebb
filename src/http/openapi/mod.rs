//! The OpenAPI document: generated from the handlers' annotations, then completed from the
//! permission table, the error table and the read-your-writes rules, so that what it says
//! about security, errors and headers is derived from what the server enforces.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

mod complete;
use complete::complete;
pub use complete::OWN_ERROR_BODIES;

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// The component schema of the error body.
pub const ERROR_SCHEMA: &str = "Error";
/// The security scheme of signed-in routes.
pub const BEARER_SCHEME: &str = "bearer";
/// Operation extension: `public`, `signed-in` or `roles`.
pub const ACCESS_EXTENSION: &str = "x-dcp-access";
/// Operation extension: the roles allowed (every role for a signed-in route).
pub const ROLES_EXTENSION: &str = "x-dcp-roles";
/// Response extension: the error codes the response can carry.
pub const ERROR_CODES_EXTENSION: &str = "x-dcp-error-codes";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// Title, version and the bearer scheme; paths are added by the routers.
pub fn base_document() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("dcp — Docker Control Platform API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Every change is a command recorded as events. Errors: \
                     {\"error\":{\"code\",\"message\",\"details\",\"field\"},\"status\":\"error\",\"request_id\"}. \
                     Command responses carry X-Dcp-Position; reads accept X-Dcp-Min-Position.",
                ))
                .build(),
        )
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    doc
}

/// Completes the document and keeps it for the handler.
pub fn install(mut document: OpenApi) {
    complete(&mut document);
    let json = document.to_json().unwrap_or_else(|_| "{}".into());
    let _ = DOCUMENT.set(json);
}

/// The completed document of every API route (what the route serves), as indented JSON
/// with its keys sorted, so the same API always prints the same text (the web UI's copy is
/// compared with it).
pub fn document_json() -> String {
    let (_, mut document) = super::api_routes().split_for_parts();
    complete(&mut document);
    let value = serde_json::to_value(&document).unwrap_or_default();
    serde_json::to_string_pretty(&sorted(value)).unwrap_or_else(|_| "{}".into())
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "the OpenAPI 3.1 document")))]
async fn openapi_json() -> impl IntoResponse {
    let body = DOCUMENT.get().cloned().unwrap_or_else(|| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], body)
}
