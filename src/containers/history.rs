//! A container's history: its events in order, who asked for what, when, and what came of it.

use chrono::{DateTime, Utc};
use dcp_aggregates::Role;
use dcp_projections::{GlobalLogReader, StoredEvent};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::listing::check_reference;
use super::{Containers, ContainersError};
use crate::auth::redaction;
use crate::commands::CommandMeta;
use crate::docker::DockerHosts;

/// One step of a container's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub global_position: i64,
    pub sequence: i64,
    /// The event, e.g. `ContainerStartRequested`.
    pub event_type: String,
    pub operation_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    /// `docker` for what Docker did or dcp observed.
    pub actor_kind: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

impl Containers {
    /// The history of the container `reference` names on `host`: Docker resolves the
    /// reference as the CLI does (exact id, name, then id prefix); a removed container is
    /// gone from Docker, and is then found by its id (or a unique prefix of it).
    /// Environment values are shown to the roles that may read secrets.
    #[tracing::instrument(skip_all, fields(host = host.unwrap_or("local"), reference = %reference), err(level = "debug"))]
    pub async fn history(
        &self,
        role: Role,
        host: Option<&str>,
        reference: &str,
        meta: &CommandMeta,
    ) -> Result<Vec<HistoryEntry>, ContainersError> {
        check_reference(reference)?;
        let host = self.hosts.enabled_host(host)?;
        let aggregate_id = match self.resolve(&host, reference, meta).await {
            Ok(target) => target.aggregate_id,
            Err(error @ ContainersError::NotFound { .. }) => {
                match self.removed_container(&host, reference).await?.as_slice() {
                    [one] => *one,
                    _ => return Err(error),
                }
            }
            Err(error) => return Err(error),
        };
        let rows = GlobalLogReader::aggregate_events(
            self.reads.pool(),
            "container",
            &aggregate_id.to_string(),
        )
        .await?;
        if rows.is_empty() {
            return Err(ContainersError::NotFound { docker: None });
        }
        let text =
            |meta: &Value, key: &str| meta.get(key).and_then(Value::as_str).map(str::to_string);
        Ok(rows
            .into_iter()
            .map(|event| {
                let StoredEvent {
                    global_position,
                    sequence,
                    event_type,
                    payload,
                    metadata,
                    recorded_at,
                    ..
                } = event;
                let mut data = payload.get(&event_type).cloned().unwrap_or(payload);
                redaction::redact_for(role, &mut data);
                HistoryEntry {
                    global_position,
                    sequence,
                    data,
                    event_type,
                    operation_id: text(&metadata, "operation_id"),
                    actor_id: text(&metadata, "actor_id"),
                    actor_username: text(&metadata, "actor_username"),
                    actor_kind: text(&metadata, "actor_kind"),
                    request_id: text(&metadata, "request_id"),
                    recorded_at,
                }
            })
            .collect())
    }

    /// The aggregates of removed containers on `host` whose id starts with `prefix` (at most 2).
    async fn removed_container(&self, host: &str, prefix: &str) -> Result<Vec<Uuid>, sqlx::Error> {
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sqlx::query_scalar(
            "SELECT aggregate_id FROM container_ids WHERE host = $1 AND docker_id LIKE $2 || '%' LIMIT 2",
        )
        .bind(host)
        .bind(escaped)
        .fetch_all(self.reads.pool())
        .await
    }
}
