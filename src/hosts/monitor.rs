//! Checks of remote hosts: on demand (`POST /api/v1/hosts/{id}/test`, after setup) and every
//! [`CHECK_INTERVAL`] in the background. A check reaches the engine through the
//! host's pooled SSH connection (connecting now if needed, ignoring a back-off) and asks
//! for its version and info. Status changes are recorded on the host's aggregate; when the
//! host last answered goes to `host_liveness`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dcp_aggregates::host::{Host, HostCommand, HostError};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use sqlx::PgPool;

use super::registry::{HostRegistry, SYNC_INTERVAL};
use crate::commands::{CommandBus, CommandError, CommandMeta};
use crate::docker::{DockerHosts, PING_TIMEOUT};
use crate::secrets::sealed::MasterKey;
use crate::ssh::SshError;

/// How often the monitor checks each remote host.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(15);

/// How long a check may take (connect, handshake, version and info).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a check found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckResult {
    pub host: String,
    pub reachable: bool,
    pub engine_version: Option<String>,
    pub api_version: Option<String>,
    pub os: Option<String>,
    pub containers: Option<i64>,
    pub images: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// `unreachable`, `host_key_changed`, `authentication_failed`, `socket_refused`,
    /// `ssh_failed`, `docker_failed` or `not_configured`.
    pub error_kind: Option<String>,
    pub latency_ms: f64,
    /// SSH handshakes this host's pool has made (one per connection, not per request).
    pub ssh_handshakes: u64,
}

/// The kind of an SSH failure, for clients.
pub fn ssh_error_kind(error: &SshError) -> &'static str {
    match error.root() {
        SshError::Unreachable { .. } => "unreachable",
        SshError::HostKeyChanged { .. } => "host_key_changed",
        SshError::AuthenticationFailed { .. } => "authentication_failed",
        SshError::SocketRefused(_) => "socket_refused",
        SshError::Protocol(_) | SshError::BackingOff { .. } => "ssh_failed",
    }
}

/// Checks remote hosts and records what it finds; keeps the registry in line with the
/// `hosts` read model.
#[derive(Clone)]
pub struct HostMonitor {
    commands: CommandBus,
    pool: PgPool,
    registry: Arc<HostRegistry>,
    master_key: Arc<MasterKey>,
}

impl HostMonitor {
    pub fn new(
        commands: CommandBus,
        pool: PgPool,
        registry: Arc<HostRegistry>,
        master_key: Arc<MasterKey>,
    ) -> Self {
        HostMonitor {
            commands,
            pool,
            registry,
            master_key,
        }
    }

    /// Brings the registry in line with the `hosts` read model.
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.registry.sync(&self.pool, &self.master_key).await
    }

    /// Checks remote host `id` now.
    #[tracing::instrument(skip_all, fields(host = id))]
    pub async fn check(&self, id: &str) -> CheckResult {
        let started = Instant::now();
        let result = check_now(&self.registry, id).await;
        crate::metrics::docker_call(id, "check", result.reachable, started.elapsed());
        result
    }

    /// Records a check: a status change on the aggregate, liveness in `host_liveness`.
    /// Returns where the status change landed, if there was one.
    pub async fn record(
        &self,
        result: &CheckResult,
        meta: &CommandMeta,
    ) -> Option<dcp_projections::LogCursor> {
        record(&self.commands, &self.pool, result, meta).await
    }

    /// Keeps the registry in line with the `hosts` read model and checks every enabled
    /// remote host every [`CHECK_INTERVAL`].
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_checks = Instant::now() - CHECK_INTERVAL;
            loop {
                if let Err(error) = self.sync().await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "Failed to load the remote hosts"
                    );
                }
                if last_checks.elapsed() >= CHECK_INTERVAL {
                    last_checks = Instant::now();
                    forget_unused_secrets(&self.pool).await;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = self.check_all() => {}
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(SYNC_INTERVAL) => {}
                }
            }
        })
    }

    /// Checks every enabled remote host at once, and records each result.
    async fn check_all(&self) {
        let checks = self
            .registry
            .remote_hosts()
            .into_iter()
            .filter(|(_, _, enabled)| *enabled)
            .map(|(id, _, _)| async move {
                let result = self.check(&id).await;
                self.record(&result, &CommandMeta::system()).await;
            });
        futures_util::future::join_all(checks).await;
    }
}

/// Records that remote host `id` presented a foreign host key (the pools call this).
pub fn record_key_mismatch(commands: CommandBus, id: String, seen_fingerprint: String) {
    tokio::spawn(async move {
        tracing::warn!(host = %id, seen = %seen_fingerprint, "A host presented another host key; refused");
        let outcome = commands
            .execute::<Host>(
                &id,
                HostCommand::RecordKeyMismatch {
                    seen_fingerprint,
                    at: Utc::now(),
                },
                &CommandMeta::system(),
            )
            .await;
        if let Err(error) = outcome {
            tracing::warn!(host = %id, %error, "Failed to record a host key mismatch");
        }
    });
}

async fn check_now(hosts: &HostRegistry, id: &str) -> CheckResult {
    let started = Instant::now();
    let mut result = CheckResult {
        host: id.to_string(),
        reachable: false,
        engine_version: None,
        api_version: None,
        os: None,
        containers: None,
        images: None,
        error: None,
        error_kind: None,
        latency_ms: 0.0,
        ssh_handshakes: 0,
    };
    let fail = |mut result: CheckResult, kind: &str, error: String| {
        result.error_kind = Some(kind.to_string());
        result.error = Some(error);
        result.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        result
    };
    // A disabled host, or one whose credentials do not open, is not contacted.
    if let Err(error) = hosts.client(id) {
        return fail(result, "not_configured", error.to_string());
    }
    let Some(pool) = hosts.pool(id) else {
        return fail(
            result,
            "not_configured",
            "the host has no SSH connection".into(),
        );
    };
    if let Err(error) = pool.ensure_connected().await {
        result.ssh_handshakes = pool.handshakes();
        return fail(result, ssh_error_kind(&error), error.to_string());
    }
    let docker = match hosts.client(id) {
        Ok(docker) => docker,
        Err(error) => return fail(result, "not_configured", error.to_string()),
    };
    let call = async {
        let version = docker.version().await?;
        let info = docker.info().await?;
        Ok::<_, bollard::errors::Error>((version, info))
    };
    result.ssh_handshakes = pool.handshakes();
    match tokio::time::timeout(CHECK_TIMEOUT.max(PING_TIMEOUT), call).await {
        Err(_) => fail(
            result,
            "docker_failed",
            format!("the engine did not answer within {CHECK_TIMEOUT:?}"),
        ),
        Ok(Err(error)) => fail(result, "docker_failed", error.to_string()),
        Ok(Ok((version, info))) => {
            result.reachable = true;
            result.engine_version = version.version;
            result.api_version = version.api_version;
            result.os = info.operating_system;
            result.containers = info.containers;
            result.images = info.images;
            result.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            result
        }
    }
}

async fn record(
    commands: &CommandBus,
    pool: &PgPool,
    result: &CheckResult,
    meta: &CommandMeta,
) -> Option<dcp_projections::LogCursor> {
    let outcome = commands
        .execute::<Host>(
            &result.host,
            HostCommand::RecordCheck {
                reachable: result.reachable,
                engine_version: result.engine_version.clone(),
                api_version: result.api_version.clone(),
                error: result.error.clone(),
                at: Utc::now(),
            },
            meta,
        )
        .await;
    let cursor = match outcome {
        Ok(cursor) => cursor,
        Err(
            CommandError::Rejected(HostError::Disabled | HostError::NotFound)
            | CommandError::Conflict(_),
        ) => None,
        Err(error) => {
            tracing::warn!(host = %result.host, %error, "Failed to record a host check");
            None
        }
    };
    let saved = sqlx::query(
        "INSERT INTO host_liveness (host_id, last_seen, last_checked, last_error, latency_ms) \
         VALUES ($1, CASE WHEN $2 THEN now() END, now(), $3, $4) ON CONFLICT (host_id) DO UPDATE SET \
         last_seen = COALESCE(EXCLUDED.last_seen, host_liveness.last_seen), \
         last_checked = EXCLUDED.last_checked, last_error = EXCLUDED.last_error, \
         latency_ms = EXCLUDED.latency_ms",
    )
    .bind(&result.host)
    .bind(result.reachable)
    .bind(&result.error)
    .bind(result.latency_ms)
    .execute(pool)
    .await;
    if let Err(error) = saved {
        tracing::warn!(host = %result.host, %error, "Failed to record host liveness");
    }
    cursor
}

/// How long a generated key may stay unused before it is forgotten.
pub const UNUSED_SECRET_TTL_HOURS: i32 = 24;

/// Forgets secrets nothing uses (keys generated and never given to a wizard) after
/// [`UNUSED_SECRET_TTL_HOURS`].
async fn forget_unused_secrets(pool: &PgPool) {
    let forgotten = sqlx::query(
        "DELETE FROM sealed_secrets s WHERE s.created_at < now() - make_interval(hours => $1) \
         AND NOT EXISTS (SELECT 1 FROM secret_claims c WHERE c.secret_id = s.id)",
    )
    .bind(UNUSED_SECRET_TTL_HOURS)
    .execute(pool)
    .await;
    match forgotten {
        Ok(done) if done.rows_affected() > 0 => {
            tracing::info!(count = done.rows_affected(), "forgot unused generated keys")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "Failed to forget unused secrets"),
    }
}
