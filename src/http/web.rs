//! The web UI embedded in the binary (`build.rs` includes `web/dist`), or read from
//! `DCP_WEB_DIR`: hashed assets are cached for good, a missing asset is a 404,
//! `index.html` is never cached and answers every client-side route, and HTML pages carry a
//! Content-Security-Policy that keeps scripts and connections to this server. Without a
//! built UI the server answers a page saying how to build it.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
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

/// The embedded UI, or with `dir` the files of a `web/dist` build on disk (`DCP_WEB_DIR`),
/// served the same way.
pub fn router(dir: Option<PathBuf>) -> Router {
    let dir = dir.map(Arc::new);
    Router::new().fallback(move |request: Request| {
        let dir = dir.clone();
        async move { serve(dir.as_deref().map(PathBuf::as_path), request).await }
    })
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

/// A file of the UI by its path under the build, from `dir` or the binary.
async fn file(dir: Option<&Path>, path: &str) -> Option<Cow<'static, [u8]>> {
    match dir {
        None => asset(path).map(Cow::Borrowed),
        Some(dir) => {
            // Only plain names below the directory: no `..`, no absolute paths.
            let relative = Path::new(path);
            if !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
            {
                return None;
            }
            tokio::fs::read(dir.join(relative))
                .await
                .ok()
                .map(Cow::Owned)
        }
    }
}

async fn serve(dir: Option<&Path>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let path = request.uri().path().trim_start_matches('/');
    let Some(index) = file(dir, "index.html").await else {
        return html(Cow::Borrowed(PLACEHOLDER.as_bytes()));
    };
    if path.is_empty() || path == "index.html" {
        return html(index);
    }
    if let Some(body) = file(dir, path).await {
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, cache),
            ],
            body,
        )
            .into_response();
    }
    // A missing build file is a 404 (never a page in its place); any other path is a page
    // of the UI, which routes on the client (container names may contain dots).
    if path.starts_with("assets/") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    html(index)
}

/// A page: never cached, with the UI's own Content-Security-Policy (stricter than the one
/// every response gets: connections to this server only). The other security headers are
/// added to every response (`context::security_headers`).
fn html(body: Cow<'static, [u8]>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
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
