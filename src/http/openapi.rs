//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

static DOCUMENT: OnceLock<String> = OnceLock::new();

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
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    doc
}

/// Keeps the finished document for the handler.
pub fn install(document: OpenApi) {
    let json = document.to_json().unwrap_or_else(|_| "{}".into());
    let _ = DOCUMENT.set(json);
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "the OpenAPI 3.1 document")))]
async fn openapi_json() -> impl IntoResponse {
    let body = DOCUMENT.get().cloned().unwrap_or_else(|| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], body)
}
