//! Lists across hosts: every host is asked at once, each within [`LIST_TIMEOUT`], and a host
//! that fails or does not answer is reported next to the results instead of failing the
//! list or holding it up. A host whose SSH connection is backing off fails at once.

use std::future::Future;
use std::time::{Duration, Instant};

use bollard::Docker;
use serde::Serialize;
use utoipa::ToSchema;

use super::{DockerError, DockerHosts};
use crate::errors::{ErrorCode, ServiceError};

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

/// Why a list across hosts has nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The host asked for failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// No host answered: an outage, not an empty list.
    #[error("no Docker host answered: {}", .answers.first().and_then(|a| a.error.clone()).unwrap_or_default())]
    NoHostAnswered { answers: Vec<HostAnswer> },
}

impl ServiceError for ListError {
    fn code(&self) -> ErrorCode {
        match self {
            ListError::Docker(error) => error.code(),
            ListError::NoHostAnswered { .. } => ErrorCode::DockerUnavailable,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ListError::Docker(error) => error.field(),
            ListError::NoHostAnswered { .. } => None,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            ListError::Docker(error) => error.details(),
            ListError::NoHostAnswered { answers } => Some(serde_json::json!({
                "host": answers.first().map(|a| a.host.clone()),
                "hosts": answers,
            })),
        }
    }
}

/// The hosts a list covers: the one asked for (its failure is the request's), or all.
pub fn hosts_of(
    hosts: &dyn DockerHosts,
    host: Option<&str>,
) -> Result<Option<String>, DockerError> {
    host.map(|host| hosts.enabled_host(Some(host))).transpose()
}

/// Runs `list` on `host` if given (errors are the request's), else on every host at once
/// (errors are reported per host; when no host answers, 503). Returns the items and each
/// host's answer.
#[tracing::instrument(skip_all, fields(host = host.as_deref()), err(level = "debug"))]
pub async fn list_on<T, F, Fut>(
    hosts: &dyn DockerHosts,
    host: Option<String>,
    list: F,
) -> Result<(Vec<T>, Vec<HostAnswer>), ListError>
where
    F: Fn(String, Docker) -> Fut,
    Fut: Future<Output = Result<Vec<T>, DockerError>>,
{
    if let Some(host) = host {
        let started = Instant::now();
        let docker = hosts.client(&host)?;
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
    let calls = hosts.host_ids().into_iter().map(|host| {
        let started = Instant::now();
        let call = hosts.client(&host).map(|docker| list(host.clone(), docker));
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
    if !answers.is_empty() && answers.iter().all(|a| a.status != "ok") {
        return Err(ListError::NoHostAnswered { answers });
    }
    Ok((items, answers))
}
