//! The web UI embedded in the binary (`build.rs` includes `web/dist`): hashed assets are
//! cached for good, `index.html` is never cached and answers every client-side route, and
//! HTML pages carry a Content-Security-Policy that keeps scripts and connections to this
//! server. A binary built without the UI serves a page saying how to build it.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Scripts, styles, fonts and connections from this server only; inline styles are allowed
/// because the terminal and the charts position their elements with them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; \
     form-action 'self'";

const PLACEHOLDER: &str = include_str!("../../web/placeholder.html");

pub fn router() -> Router {
    Router::new().fallback(serve)
}

/// Whether the UI was built into this binary.
pub fn embedded() -> bool {
    asset("index.html").is_some()
}

fn asset(path: &str) -> Option<&'static [u8]> {
    WEB_ASSETS
        .binary_search_by(|(name, _)| (*name).cmp(path))
        .ok()
        .map(|index| WEB_ASSETS[index].1)
}

async fn serve(request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    if !embedded() {
        return html(PLACEHOLDER.as_bytes());
    }
    if !path.is_empty() && path != "index.html" {
        if let Some(body) = asset(path) {
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return (
                [
                    (header::CONTENT_TYPE, content_type(path)),
                    (header::CACHE_CONTROL, cache),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                body,
            )
                .into_response();
        }
        // A missing file (a name with an extension) is a 404; any other path is a page of
        // the UI, which routes on the client.
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.contains('.') {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
    }
    html(asset("index.html").unwrap_or(PLACEHOLDER.as_bytes()))
}

fn html(body: &'static [u8]) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_sorted_for_the_lookup() {
        assert!(WEB_ASSETS.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-abc.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("favicon.ico"), "image/x-icon");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
