//! The adversary suite: each test performs an attack on the trust boundary as an operator or
//! a viewer (and as an admin who does not say why) and finds it refused, with nothing
//! changed: no container, volume, network or event beyond the `access.denied` record.

mod abuse;
mod database;
mod protection;
mod reach;
mod revocation;
mod secrets;
mod transport;

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::containers::docker;
pub(crate) use crate::resources::Leftovers;

/// Volumes and networks made for one test with the Docker CLI (removed when dropped, as the
/// resources tests' are).
impl Leftovers {
    pub(crate) fn new() -> Self {
        Leftovers {
            volumes: vec![],
            networks: vec![],
            images: vec![],
        }
    }

    pub(crate) fn volume(&mut self, name: &str, options: &[&str]) -> String {
        let mut args = vec!["volume", "create"];
        args.extend_from_slice(options);
        args.push(name);
        docker(&args);
        self.volumes.push(name.to_string());
        name.to_string()
    }

    pub(crate) fn network(&mut self, name: &str, options: &[&str]) -> String {
        let mut args = vec!["network", "create"];
        args.extend_from_slice(options);
        args.push(name);
        docker(&args);
        self.networks.push(name.to_string());
        name.to_string()
    }
}

/// The last global position of the store.
pub(crate) async fn head(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The method of the refusal recorded after `position` (`AccessDenied`'s).
pub(crate) async fn denied_method(app: &TestApp, position: i64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT payload::jsonb -> 'AccessDenied' ->> 'method' FROM events \
         WHERE global_position > $1 AND event_type = 'AccessDenied'",
    )
    .bind(position)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
    .flatten()
}

/// The types of the events recorded after `position`.
pub(crate) async fn events_since(app: &TestApp, position: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE global_position > $1 ORDER BY global_position",
    )
    .bind(position)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Sends `attack` (method, path, body) with `token` and asserts it is refused with 403
/// naming `field` (when given), leaving nothing but one `access.denied` record.
pub(crate) async fn refused(
    app: &TestApp,
    token: &str,
    attack: (Method, &str, Option<Value>),
    field: Option<&str>,
) -> Value {
    let (method, path, body) = attack;
    let before = head(app).await;
    let response = app
        .request(method.clone(), path, Some(token), body.clone())
        .await;
    let error = assert_error(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    if let Some(field) = field {
        assert_eq!(
            error["error"]["field"], field,
            "{method} {path} {body:?}: {error}"
        );
    }
    assert_eq!(
        events_since(app, before).await,
        vec!["AccessDenied".to_string()],
        "{method} {path} {body:?}: only the refusal is recorded"
    );
    assert_eq!(
        denied_method(app, before).await.as_deref(),
        Some(method.as_str())
    );
    error
}

/// A ticket for an exec socket on `container`, then the socket: the refusal's status.
pub(crate) async fn exec_refused(app: &TestApp, token: &str, container: &str, query: &str) -> u16 {
    let before = head(app).await;
    let ticket = app
        .ws_ticket(token, ticket_request("container.exec", Some(container)))
        .await;
    let path = format!("/ws/containers/{container}/exec{query}");
    let status = app
        .try_socket(&path, Some(&ticket), None)
        .await
        .err()
        .unwrap_or_else(|| panic!("a shell opened in {container}"));
    assert_eq!(
        events_since(app, before).await,
        vec!["AccessDenied".to_string()],
        "exec in {container}: only the refusal is recorded"
    );
    assert_eq!(denied_method(app, before).await.as_deref(), Some("GET"));
    status
}

/// Whether a Docker object exists.
pub(crate) fn exists(kind: &str, name: &str) -> bool {
    Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// An operator's create request with `extra` fields.
pub(crate) fn create_body(name: &str, extra: Value) -> Value {
    let mut body = json!({"image": crate::containers::test_image(), "name": name, "command": ["sleep", "300"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}
