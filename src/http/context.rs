//! Per-request context: request id, client address and user agent, the request span,
//! and the security headers every response carries.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

/// The request id header, accepted from the client when well-formed and always returned.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub use crate::commands::RequestContext;

/// A client-chosen request id is kept only if it is short and plain, so it cannot
/// smuggle anything into logs or the audit trail.
fn acceptable_request_id(value: &str) -> bool {
    (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Paths are logged without their query string (it may hold a WebSocket ticket).
fn loggable_path(request: &Request) -> String {
    request.uri().path().to_string()
}

/// Proxies whose `X-Forwarded-For` is believed (`DCP_TRUSTED_PROXIES`: addresses or CIDR
/// blocks). Without any, the peer address is the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `127.0.0.1`, `fd00::/8`, …; a bad entry is an error naming it.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (entry, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("'{entry}' is not an IP address or CIDR block"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("'{entry}' has a bad prefix length"))?,
            };
            blocks.push((address.to_canonical(), bits));
        }
        Ok(TrustedProxies(blocks))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(block, bits)| match (block, ip) {
            (IpAddr::V4(block), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*block) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(block), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*block) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }

    /// The client: the peer, or, when the peer is a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .map(|hop| hop.to_canonical())
            .find(|hop| !self.trusts(*hop))
            .unwrap_or(peer)
    }
}

/// Sets up the request context and span, and logs each request once when it completes.
pub async fn request_context(
    State(proxies): State<std::sync::Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| proxies.client_ip(addr.ip(), request.headers()));
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    let method = request.method().clone();
    let path = loggable_path(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    request.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        client_ip,
        user_agent,
    });
    let span = tracing::info_span!("request", %request_id, %method, %path, route = route.as_deref().unwrap_or(""));
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), value);
    }
    response
}

/// Adds the security headers to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_api =
        request.uri().path().starts_with("/api/") || request.uri().path().starts_with("/health");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    );
    if is_api {
        set(header::CACHE_CONTROL, "no-store");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{acceptable_request_id, TrustedProxies};
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::1".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.1.2.3".parse().unwrap(),
        );
        // The nearest hop that is not a trusted proxy is the client.
        assert_eq!(
            proxies.client_ip(ip("10.9.9.9"), &headers),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client_ip(ip("::ffff:10.9.9.9"), &headers),
            ip("198.51.100.7")
        );
        // An untrusted peer cannot claim another address.
        assert_eq!(
            proxies.client_ip(ip("192.0.2.1"), &headers),
            ip("192.0.2.1")
        );
        // No header, or only proxies: the peer.
        assert_eq!(
            proxies.client_ip(ip("fd00::1"), &HeaderMap::new()),
            ip("fd00::1")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.9.9.9"), &headers),
            ip("10.9.9.9")
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }

    #[test]
    fn request_ids_from_clients_are_filtered() {
        assert!(acceptable_request_id(
            "550e8400-e29b-41d4-a716-446655440000"
        ));
        assert!(!acceptable_request_id("short"));
        assert!(!acceptable_request_id("has space in it"));
        assert!(!acceptable_request_id(&"x".repeat(65)));
        assert!(!acceptable_request_id("line\nbreak-injection"));
    }
}
