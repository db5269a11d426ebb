//! An image pull as it runs: Docker's progress stream, per layer, written to
//! `operation_progress` a few times a second, and what the pull came to.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::docker::{DockerError, DockerHosts};
use crate::errors::ErrorCode;
use crate::hosts::HostRegistry;

/// How long a pull may go without a word from the engine before it counts as failed.
pub(super) const PULL_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How often pull progress is written while layers download.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub(super) struct Pulled {
    pub image_id: String,
    pub digest: Option<String>,
    pub layers: u32,
}

pub(super) enum PullError {
    Unavailable(String),
    Failed { code: ErrorCode, message: String },
}

fn pull_failure(host: &str, error: bollard::errors::Error) -> PullError {
    use bollard::errors::Error as E;
    let (status, message) = match error {
        E::DockerResponseServerError {
            status_code,
            message,
        } => (Some(status_code), message),
        E::DockerStreamError { error } => (None, error),
        other => match DockerError::from_bollard(host, other) {
            DockerError::Unavailable { message, .. } => return PullError::Unavailable(message),
            other => (None, other.to_string()),
        },
    };
    let lower = message.to_lowercase();
    let missing = status == Some(404)
        || lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("does not exist");
    PullError::Failed {
        code: if missing {
            ErrorCode::NotFound
        } else {
            ErrorCode::DockerOperationFailed
        },
        message,
    }
}

/// Per-layer progress, as written to `operation_progress`.
#[derive(Debug, Default, Serialize)]
struct PullProgress {
    status: Option<String>,
    layers: BTreeMap<String, LayerProgress>,
}

#[derive(Debug, Default, Serialize)]
struct LayerProgress {
    status: String,
    current: Option<i64>,
    total: Option<i64>,
}

async fn write_progress(pool: &PgPool, op_id: Uuid, progress: &PullProgress) {
    let Ok(value) = serde_json::to_value(progress) else {
        return;
    };
    let written = sqlx::query(
        "INSERT INTO operation_progress (op_id, progress) VALUES ($1, $2) \
         ON CONFLICT (op_id) DO UPDATE SET progress = EXCLUDED.progress, updated_at = now()",
    )
    .bind(op_id)
    .bind(value)
    .execute(pool)
    .await;
    if let Err(error) = written {
        tracing::warn!(%op_id, %error, "Failed to write pull progress");
    }
}

/// Pulls `reference` on `host`, writing its progress for operation `op_id` as it goes.
#[tracing::instrument(skip_all, fields(host = %host, reference = %reference, %op_id))]
pub(super) async fn run(
    hosts: &HostRegistry,
    pool: &PgPool,
    host: &str,
    reference: &str,
    op_id: Uuid,
) -> Result<Pulled, PullError> {
    let docker = hosts
        .client(host)
        .map_err(|e| PullError::Unavailable(e.to_string()))?;
    let options = CreateImageOptions {
        from_image: Some(reference.to_string()),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, None);
    let mut progress = PullProgress::default();
    let mut last_write = tokio::time::Instant::now() - PROGRESS_EVERY;
    loop {
        let next = match tokio::time::timeout(PULL_IDLE_TIMEOUT, stream.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(PullError::Failed {
                    code: ErrorCode::DockerOperationFailed,
                    message: format!(
                        "the engine reported no progress for {} s",
                        PULL_IDLE_TIMEOUT.as_secs()
                    ),
                })
            }
        };
        let Some(item) = next else { break };
        let info = item.map_err(|error| pull_failure(host, error))?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(pull_failure(
                host,
                bollard::errors::Error::DockerStreamError { error },
            ));
        }
        let status = info.status.unwrap_or_default();
        match info.id {
            // Per-layer lines carry the layer id; the others describe the whole pull.
            Some(id) if status != "Pulling from" && !status.starts_with("Pulling from") => {
                let detail = info.progress_detail.unwrap_or_default();
                progress.layers.insert(
                    id,
                    LayerProgress {
                        status,
                        current: detail.current,
                        total: detail.total,
                    },
                );
            }
            _ => progress.status = Some(status),
        }
        if last_write.elapsed() >= PROGRESS_EVERY {
            write_progress(pool, op_id, &progress).await;
            last_write = tokio::time::Instant::now();
        }
    }
    write_progress(pool, op_id, &progress).await;
    let inspect = docker
        .inspect_image(reference)
        .await
        .map_err(|error| pull_failure(host, error))?;
    let repository = reference
        .split('@')
        .next()
        .map(|r| match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => r,
        })
        .unwrap_or(reference)
        .to_string();
    let digest = inspect
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.starts_with(&format!("{repository}@")))
        .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_string()));
    Ok(Pulled {
        image_id: inspect.id.unwrap_or_default(),
        digest,
        layers: progress.layers.len() as u32,
    })
}
