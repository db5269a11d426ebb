//! Docker engines: a bollard client per host id, with timeouts, and what Docker failures
//! mean in the error table.
//!
//! `local` is the engine at `DOCKER_HOST` (or the local socket). Remote hosts reached
//! over SSH plug in behind the same [`DockerHosts`] trait (`crate::hosts::HostRegistry`).

use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

use crate::errors::{ErrorCode, ServiceError};

pub mod fanout;
pub mod policy;
pub mod reach;
pub mod resource_policy;

/// The id of the engine dcp runs next to.
pub const LOCAL_HOST: &str = "local";

/// How long one Docker call may take before it counts as a failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a health check waits for an engine.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a Docker call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    /// No engine by that id.
    #[error("no Docker host named '{0}'")]
    UnknownHost(String),
    /// The engine cannot be reached (down, socket missing, timed out).
    #[error("Docker on host '{host}' is unavailable: {message}")]
    Unavailable { host: String, message: String },
    /// The engine answered with an error.
    #[error("{message}")]
    Failed { status: u16, message: String },
}

impl DockerError {
    /// Classifies a bollard error for host `host`.
    pub fn from_bollard(host: &str, error: bollard::errors::Error) -> Self {
        use bollard::errors::Error as E;
        match error {
            E::DockerResponseServerError {
                status_code,
                message,
            } => DockerError::Failed {
                status: status_code,
                message,
            },
            E::RequestTimeoutError => DockerError::Unavailable {
                host: host.to_string(),
                message: "the request timed out".into(),
            },
            other => DockerError::Unavailable {
                host: host.to_string(),
                message: other.to_string(),
            },
        }
    }
}

impl ServiceError for DockerError {
    fn code(&self) -> ErrorCode {
        match self {
            DockerError::UnknownHost(_) => ErrorCode::NotFound,
            DockerError::Unavailable { .. } => ErrorCode::DockerUnavailable,
            DockerError::Failed { status: 404, .. } => ErrorCode::NotFound,
            DockerError::Failed { status: 409, .. } => ErrorCode::Conflict,
            DockerError::Failed { .. } => ErrorCode::DockerOperationFailed,
        }
    }

    fn field(&self) -> Option<String> {
        matches!(self, DockerError::UnknownHost(_)).then(|| "host".into())
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            DockerError::Unavailable { host, .. } => Some(serde_json::json!({ "host": host })),
            DockerError::Failed { status, .. } if !matches!(status, 404 | 409) => {
                Some(serde_json::json!({ "docker_status": status }))
            }
            _ => None,
        }
    }
}

/// `name` → `name:latest`; a reference with a tag or digest is kept.
pub fn normalize_reference(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

/// What an engine says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub host: String,
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub containers: Option<i64>,
    pub images: Option<i64>,
    pub response_time_ms: f64,
}

/// Hands out a Docker client per host id.
#[async_trait::async_trait]
pub trait DockerHosts: Send + Sync {
    /// The ids of every known host.
    fn host_ids(&self) -> Vec<String>;

    /// A client for `host` (cheap to clone, shares its connection pool).
    fn client(&self, host: &str) -> Result<Docker, DockerError>;

    /// A client for `host` whose calls are never cut by the per-call timeout: a followed
    /// stream (logs, stats, events) has no end.
    fn streaming_client(&self, host: &str) -> Result<Docker, DockerError> {
        let docker = self.client(host)?;
        Ok(docker.with_timeout(std::time::Duration::from_secs(u64::from(u32::MAX))))
    }

    /// The id of the host named or identified by `name_or_id` (names are unique
    /// case-insensitively).
    fn resolve(&self, name_or_id: &str) -> Option<String> {
        (name_or_id == LOCAL_HOST).then(|| LOCAL_HOST.to_string())
    }

    /// The id of the host a request names by id or name (default `local`), if it is known
    /// and enabled.
    fn enabled_host(&self, wanted: Option<&str>) -> Result<String, DockerError> {
        let wanted = wanted.unwrap_or(LOCAL_HOST);
        let id = self
            .resolve(wanted)
            .ok_or_else(|| DockerError::UnknownHost(wanted.to_string()))?;
        self.client(&id)?;
        Ok(id)
    }

    /// Whether `host`'s engine answers `/_ping` within [`PING_TIMEOUT`] (cheap: for readiness).
    async fn ping(&self, host: &str) -> Result<(), DockerError> {
        let docker = self.client(host)?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Err(_) => Err(DockerError::Unavailable {
                host: host.to_string(),
                message: format!("no answer within {PING_TIMEOUT:?}"),
            }),
            Ok(Err(error)) => Err(DockerError::from_bollard(host, error)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Version and counts of `host`'s engine, within [`PING_TIMEOUT`].
    async fn status(&self, host: &str) -> Result<EngineStatus, DockerError> {
        let docker = self.client(host)?;
        let started = std::time::Instant::now();
        let call = async {
            let version = docker.version().await?;
            let info = docker.info().await?;
            Ok::<_, bollard::errors::Error>((version, info))
        };
        match tokio::time::timeout(PING_TIMEOUT, call).await {
            Err(_) => Err(DockerError::Unavailable {
                host: host.to_string(),
                message: format!("no answer within {PING_TIMEOUT:?}"),
            }),
            Ok(Err(error)) => Err(DockerError::from_bollard(host, error)),
            Ok(Ok((version, info))) => Ok(EngineStatus {
                host: host.to_string(),
                version: version.version,
                api_version: version.api_version,
                containers: info.containers,
                images: info.images,
                response_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            }),
        }
    }
}

/// The local engine (the registry of all hosts, `crate::hosts::HostRegistry`, wraps it).
pub struct LocalDocker {
    docker: Result<Docker, String>,
}

impl LocalDocker {
    /// Connects lazily to `docker_host` (`unix://…`, `tcp://…`), or the local socket.
    pub fn new(docker_host: Option<&str>) -> Self {
        let connected = match docker_host {
            Some(host) => Docker::connect_with_host(host),
            None => Docker::connect_with_local_defaults(),
        };
        LocalDocker {
            docker: connected
                .map(|docker| docker.with_timeout(CALL_TIMEOUT))
                .map_err(|error| error.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl DockerHosts for LocalDocker {
    fn host_ids(&self) -> Vec<String> {
        vec![LOCAL_HOST.to_string()]
    }

    fn client(&self, host: &str) -> Result<Docker, DockerError> {
        if host != LOCAL_HOST {
            return Err(DockerError::UnknownHost(host.to_string()));
        }
        self.docker
            .clone()
            .map_err(|message| DockerError::Unavailable {
                host: host.to_string(),
                message,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_errors_map_to_the_documented_codes() {
        let unavailable = DockerError::Unavailable {
            host: "local".into(),
            message: "down".into(),
        };
        assert_eq!(unavailable.code(), ErrorCode::DockerUnavailable);
        assert_eq!(unavailable.details().unwrap()["host"], "local");
        let failed = DockerError::Failed {
            status: 500,
            message: "boom".into(),
        };
        assert_eq!(failed.code(), ErrorCode::DockerOperationFailed);
        assert_eq!(failed.to_string(), "boom");
        assert_eq!(failed.details().unwrap()["docker_status"], 500);
        let missing = DockerError::Failed {
            status: 404,
            message: "No such container: x".into(),
        };
        assert_eq!(missing.code(), ErrorCode::NotFound);
        let unknown = DockerError::UnknownHost("elsewhere".into());
        assert_eq!(unknown.code(), ErrorCode::NotFound);
        assert_eq!(unknown.field().as_deref(), Some("host"));
    }

    #[test]
    fn references_get_a_tag_unless_they_have_one() {
        assert_eq!(normalize_reference("busybox"), "busybox:latest");
        assert_eq!(normalize_reference("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            normalize_reference("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/team/app:2"),
            "127.0.0.1:5000/team/app:2"
        );
        let digest = format!("app@sha256:{}", "a".repeat(64));
        assert_eq!(normalize_reference(&digest), digest);
    }
    #[test]
    fn only_the_local_host_is_known() {
        let hosts = LocalDocker::new(Some("unix:///nonexistent/docker.sock"));
        assert_eq!(hosts.host_ids(), ["local"]);
        assert!(matches!(
            hosts.client("elsewhere"),
            Err(DockerError::UnknownHost(_))
        ));
    }
}
