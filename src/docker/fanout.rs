//! Lists across hosts: every host is asked at once, each within [`LIST_TIMEOUT`], and a host
//! that fails or does not answer is reported next to the results instead of failing the
//! list or holding it up. A host whose SSH connection is backing off fails at once.

use std::future::Future;
use std::time::{Duration, Instant};

use bollard::Docker;
use serde::Serialize;
use utoipa::ToSchema;

use super::DockerError;
use crate::http::error::{ApiError, ApiResult, ErrorCode};
use crate::http::AppState;

/// How long one host may take to answer a list across hosts.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// How one host answered a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostAnswer {
    pub host: String,
    /// `ok` or `unreachable` (the host failed or did not answer in time).
    pub status: String,
    pub error: Option<String>,
    pub latency_ms: f64,
}

/// The hosts a list covers: the one asked for (its failure is the request's), or all.
pub fn hosts_of(state: &AppState, host: &Option<String>) -> ApiResult<Option<String>> {
    match host {
        Some(_) => crate::http::containers::host_of(state, host).map(Some),
        None => Ok(None),
    }
}

/// Runs `list` on `host` if given (errors are the request's), else on every host at once
/// (errors are reported per host; when no host answers, 503). Returns the items and each
/// host's answer.
pub async fn list_on<T, F, Fut>(
    state: &AppState,
    host: Option<String>,
    list: F,
) -> ApiResult<(Vec<T>, Vec<HostAnswer>)>
where
    F: Fn(String, Docker) -> Fut,
    Fut: Future<Output = Result<Vec<T>, DockerError>>,
{
    if let Some(host) = host {
        let started = Instant::now();
        let docker = state.docker.client(&host)?;
        let listed = list(host.clone(), docker).await;
        crate::metrics::docker_call(&host, "list", listed.is_ok(), started.elapsed());
        let items = listed?;
        let answer = HostAnswer {
            host,
            status: "ok".into(),
            error: None,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        return Ok((items, vec![answer]));
    }
    let calls = state.docker.host_ids().into_iter().map(|host| {
        let started = Instant::now();
        let call = state
            .docker
            .client(&host)
            .map(|docker| list(host.clone(), docker));
        async move {
            let outcome = match call {
                Err(error) => Err(error.to_string()),
                Ok(call) => match tokio::time::timeout(LIST_TIMEOUT, call).await {
                    Err(_) => Err(format!("no answer within {LIST_TIMEOUT:?}")),
                    Ok(Err(error)) => Err(error.to_string()),
                    Ok(Ok(items)) => Ok(items),
                },
            };
            crate::metrics::docker_call(&host, "list", outcome.is_ok(), started.elapsed());
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            match outcome {
                Ok(items) => (
                    items,
                    HostAnswer {
                        host,
                        status: "ok".into(),
                        error: None,
                        latency_ms,
                    },
                ),
                Err(error) => (
                    Vec::new(),
                    HostAnswer {
                        host,
                        status: "unreachable".into(),
                        error: Some(error),
                        latency_ms,
                    },
                ),
            }
        }
    });
    let mut items = Vec::new();
    let mut answers = Vec::new();
    for (host_items, answer) in futures_util::future::join_all(calls).await {
        items.extend(host_items);
        answers.push(answer);
    }
    // Nothing answered: there is nothing to show, and that is an outage, not an empty list.
    if let Some(first) = answers
        .first()
        .filter(|_| answers.iter().all(|a| a.status != "ok"))
    {
        return Err(ApiError::new(
            ErrorCode::DockerUnavailable,
            format!(
                "no Docker host answered: {}",
                first.error.clone().unwrap_or_default()
            ),
        )
        .with_details(serde_json::json!({ "host": first.host, "hosts": answers })));
    }
    Ok((items, answers))
}
