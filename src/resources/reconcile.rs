//! Image, volume and network operations left without an outcome are settled from what
//! Docker shows now: done if the resource is in the state the operation leads to, failed
//! (`INTERRUPTED`) if not, left pending if the engine cannot tell.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::image::{Image, ImageCommand};
use dcp_aggregates::network::{Network, NetworkCommand};
use dcp_aggregates::volume::{Volume, VolumeCommand};
use dcp_projections::GlobalLogReader;
use serde_json::Value;
use uuid::Uuid;

use super::operation::{image_failed, network_failed, volume_failed};
use super::pull::PULL_IDLE_TIMEOUT;
use super::Resources;
use crate::commands::CommandMeta;
use crate::containers::OP_LABEL;
use crate::docker::DockerHosts;
use crate::errors::ErrorCode;

/// What the outcome of an interrupted operation says when Docker does not show its change.
const INTERRUPTED: &str =
    "the server stopped before the outcome was known, and Docker does not show the change";

/// An operation without an outcome: its request, and how long it has been quiet.
struct Pending {
    resource_type: String,
    aggregate_id: String,
    event_type: String,
    /// The request's fields.
    fields: Value,
    op_id: Uuid,
    /// Since the request, or since the last progress of a pull.
    quiet: Duration,
}

impl Pending {
    fn text(&self, key: &str) -> String {
        self.fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the resource carries this operation's label.
    fn labels_it(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.and_then(|l| l.get(OP_LABEL)) == Some(&self.op_id.to_string())
    }
}

/// `Some(true)`: present; `Some(false)`: Docker says it is not there; `None`: cannot tell now.
fn presence(result: Result<bool, bollard::errors::Error>) -> Option<bool> {
    match result {
        Ok(present) => Some(present),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Some(false),
        Err(_) => None,
    }
}

impl Resources {
    /// Settles the operations left without an outcome for longer than `settle_after` (a
    /// pull: once it has been silent longer than a running pull may be); returns how many.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn reconcile(&self, settle_after: Duration) -> anyhow::Result<usize> {
        // Progress matters while an operation runs; a week later the outcome says it all.
        sqlx::query("DELETE FROM operation_progress WHERE updated_at < now() - interval '7 days'")
            .execute(self.reads.pool())
            .await?;
        let mut settled = 0;
        for pending in self.pending_operations().await? {
            let wait = match pending.event_type.as_str() {
                "ImagePullRequested" => settle_after + PULL_IDLE_TIMEOUT,
                _ => settle_after,
            };
            if pending.quiet < wait {
                continue;
            }
            let Ok(docker) = self.hosts.client(&pending.text("host")) else {
                continue;
            };
            let result = match pending.resource_type.as_str() {
                "volume" => self.settle_volume(&docker, &pending).await,
                "network" => self.settle_network(&docker, &pending).await,
                "image" => self.settle_image(&docker, &pending).await,
                _ => Ok(false),
            };
            match result {
                Ok(true) => settled += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(resource_type = %pending.resource_type, aggregate_id = %pending.aggregate_id,
                        op_id = %pending.op_id, %error, "operation left pending")
                }
            }
        }
        Ok(settled)
    }

    async fn pending_operations(&self) -> Result<Vec<Pending>, sqlx::Error> {
        let kinds = [Image::TYPE, Volume::TYPE, Network::TYPE];
        let requests = GlobalLogReader::pending_requests(self.reads.pool(), &kinds).await?;
        Ok(requests
            .into_iter()
            .filter_map(|request| {
                let fields = request.fields();
                let op_id = fields.get("op_id")?.as_str()?.parse().ok()?;
                // A pull is quiet since its last progress, not since its request.
                let quiet = request
                    .progress_age_secs
                    .map_or(request.age_secs, |p| p.min(request.age_secs));
                Some(Pending {
                    resource_type: request.event.aggregate_type,
                    aggregate_id: request.event.aggregate_id,
                    event_type: request.event.event_type,
                    fields,
                    op_id,
                    quiet: Duration::from_secs_f64(quiet.max(0.0)),
                })
            })
            .collect())
    }

    /// Created: the volume carries this operation's label. Removed: it is gone.
    async fn settle_volume(&self, docker: &Docker, pending: &Pending) -> anyhow::Result<bool> {
        let inspect = docker.inspect_volume(&pending.text("name")).await;
        let mountpoint = inspect
            .as_ref()
            .map(|v| v.mountpoint.clone())
            .unwrap_or_default();
        let creating = pending.event_type == "VolumeCreateRequested";
        let op_id = pending.op_id;
        let command =
            match presence(inspect.map(|v| !creating || pending.labels_it(Some(&v.labels)))) {
                None => return Ok(false),
                Some(true) if creating => VolumeCommand::RecordCreated {
                    op_id,
                    mountpoint,
                    at: Utc::now(),
                },
                Some(false) if !creating => VolumeCommand::RecordRemoved {
                    op_id,
                    at: Utc::now(),
                },
                _ => volume_failed(op_id, interrupted_code(), INTERRUPTED.into()),
            };
        self.commands
            .execute_retrying::<Volume>(
                &pending.aggregate_id,
                command,
                &CommandMeta::reconciler(op_id),
                vec![],
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(true)
    }

    /// Created: the network carries the label. Removed: it is gone. Connected or
    /// disconnected: the container lists the network, or not (the network itself lists
    /// running endpoints only).
    async fn settle_network(&self, docker: &Docker, pending: &Pending) -> anyhow::Result<bool> {
        let reference = match pending.event_type.as_str() {
            "NetworkCreateRequested" => pending.text("name"),
            _ => pending.text("network_id"),
        };
        let reference = if reference.is_empty() {
            pending.text("name")
        } else {
            reference
        };
        let inspect = docker
            .inspect_network(
                &reference,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        let network_id = inspect.as_ref().ok().and_then(|n| n.id.clone());
        let present = match pending.event_type.as_str() {
            "NetworkCreateRequested" => {
                presence(inspect.map(|n| pending.labels_it(n.labels.as_ref())))
            }
            "NetworkRemoveRequested" => presence(inspect.map(|_| true)),
            _ => {
                let network_name = pending.text("name");
                let attached = docker
                    .inspect_container(
                        &pending.text("container_id"),
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .map(|c| {
                        c.network_settings
                            .and_then(|n| n.networks)
                            .is_some_and(|n| n.contains_key(&network_name))
                    });
                presence(attached)
            }
        };
        let done = match (pending.event_type.as_str(), present) {
            (_, None) => return Ok(false),
            ("NetworkRemoveRequested" | "NetworkDisconnectRequested", Some(present)) => !present,
            (_, Some(present)) => present,
        };
        let op_id = pending.op_id;
        let command = if done {
            NetworkCommand::RecordDone {
                op_id,
                network_id,
                at: Utc::now(),
            }
        } else {
            network_failed(op_id, interrupted_code(), INTERRUPTED.into())
        };
        self.commands
            .execute_retrying::<Network>(
                &pending.aggregate_id,
                command,
                &CommandMeta::reconciler(op_id),
                vec![],
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(true)
    }

    /// Pulled: the reference is on the engine. Removed: it is not (the removed tag, or the
    /// image id when removed by id).
    async fn settle_image(&self, docker: &Docker, pending: &Pending) -> anyhow::Result<bool> {
        let pulling = pending.event_type == "ImagePullRequested";
        let reference = pending.text("reference");
        let inspect = docker.inspect_image(&reference).await;
        let image_id = inspect.as_ref().ok().and_then(|i| i.id.clone());
        let op_id = pending.op_id;
        let command = match (presence(inspect.map(|_| true)), pulling) {
            (None, _) => return Ok(false),
            (Some(true), true) => ImageCommand::RecordPulled {
                op_id,
                image_id: image_id.unwrap_or_default(),
                digest: None,
                layers: 0,
                at: Utc::now(),
            },
            (Some(false), false) => {
                let by_id = reference == pending.text("image_id");
                let (deleted, untagged) = if by_id {
                    (vec![reference], vec![])
                } else {
                    (vec![], vec![reference])
                };
                ImageCommand::RecordRemoved {
                    op_id,
                    deleted,
                    untagged,
                    at: Utc::now(),
                }
            }
            _ => image_failed(op_id, interrupted_code(), INTERRUPTED.into()),
        };
        self.commands
            .execute_retrying::<Image>(
                &pending.aggregate_id,
                command,
                &CommandMeta::reconciler(op_id),
                vec![],
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(true)
    }
}

fn interrupted_code() -> String {
    ErrorCode::Interrupted.as_str().into()
}
