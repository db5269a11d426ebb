//! Image, volume and network operations left without an outcome are settled from what
//! Docker shows now: done if the resource is in the state the operation leads to, failed
//! (`INTERRUPTED`) if not, left pending if the engine cannot tell.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::Aggregate;
use dcp_aggregates::image::{Image, ImageCommand, ImageEvent};
use dcp_aggregates::network::{Network, NetworkCommand, NetworkEvent};
use dcp_aggregates::operation::OperationEvent;
use dcp_aggregates::volume::{Volume, VolumeCommand, VolumeEvent};
use dcp_aggregates::AnyEvent;
use dcp_projections::GlobalLogReader;
use uuid::Uuid;

use super::operation::{image_failed, network_failed, volume_failed};
use super::pull::PULL_IDLE_TIMEOUT;
use super::Resources;
use crate::containers::OP_LABEL;
use crate::docker::DockerHosts;
use crate::errors::ErrorCode;

/// What the outcome of an interrupted operation says when Docker does not show its change.
const INTERRUPTED: &str =
    "the server stopped before the outcome was known, and Docker does not show the change";

/// An operation without an outcome: its request, and how long it has been quiet.
struct Pending {
    aggregate_id: String,
    op_id: Uuid,
    /// An image's, a volume's or a network's request.
    request: AnyEvent,
    /// Since the request, or since the last progress of a pull.
    quiet: Duration,
}

impl Pending {
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
            let wait = match &pending.request {
                AnyEvent::Image(ImageEvent::ImagePullRequested { .. }) => {
                    settle_after + PULL_IDLE_TIMEOUT
                }
                _ => settle_after,
            };
            if pending.quiet < wait {
                continue;
            }
            let result = match &pending.request {
                AnyEvent::Volume(request) => self.settle_volume(&pending, request).await,
                AnyEvent::Network(request) => self.settle_network(&pending, request).await,
                AnyEvent::Image(request) => self.settle_image(&pending, request).await,
                _ => Ok(false),
            };
            match result {
                Ok(true) => settled += 1,
                Ok(false) => {}
                Err(error) => {
                    let action = pending.request.operation().map(|step| step.action());
                    tracing::warn!(aggregate_id = %pending.aggregate_id, op_id = %pending.op_id,
                        action, error = format!("{error:#}"), "operation left pending")
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
            .map(|pending| {
                // A pull is quiet since its last progress, not since its request.
                let quiet = pending
                    .progress_age_secs
                    .map_or(pending.age_secs, |p| p.min(pending.age_secs));
                Pending {
                    aggregate_id: pending.aggregate_id,
                    op_id: pending.op_id,
                    request: pending.request,
                    quiet: Duration::from_secs_f64(quiet.max(0.0)),
                }
            })
            .collect())
    }

    /// Created: the volume carries this operation's label. Removed: it is gone.
    async fn settle_volume(
        &self,
        pending: &Pending,
        request: &VolumeEvent,
    ) -> anyhow::Result<bool> {
        let (host, name, creating) = match request {
            VolumeEvent::VolumeCreateRequested { host, name, .. } => (host, name, true),
            VolumeEvent::VolumeRemoveRequested { host, name, .. } => (host, name, false),
            _ => return Ok(false),
        };
        let Ok(docker) = self.hosts.client(host) else {
            return Ok(false);
        };
        let inspect = docker.inspect_volume(name).await;
        let mountpoint = inspect
            .as_ref()
            .map(|v| v.mountpoint.clone())
            .unwrap_or_default();
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
            .record_settled::<Volume>(&pending.aggregate_id, op_id, command, vec![])
            .await
    }

    /// Created: the network carries the label. Removed: it is gone. Connected or
    /// disconnected: the container lists the network, or not (the network itself lists
    /// running endpoints only).
    async fn settle_network(
        &self,
        pending: &Pending,
        request: &NetworkEvent,
    ) -> anyhow::Result<bool> {
        use NetworkEvent as E;
        // The network as Docker knows it, and the container connected or disconnected.
        let (host, reference, container) = match request {
            E::NetworkCreateRequested { host, name, .. } => (host, name, None),
            E::NetworkRemoveRequested {
                host,
                name,
                network_id,
                ..
            } => {
                let reference = if network_id.is_empty() {
                    name
                } else {
                    network_id
                };
                (host, reference, None)
            }
            E::NetworkConnectRequested {
                host,
                name,
                container_id,
                ..
            }
            | E::NetworkDisconnectRequested {
                host,
                name,
                container_id,
                ..
            } => (host, name, Some(container_id)),
            _ => return Ok(false),
        };
        let Ok(docker) = self.hosts.client(host) else {
            return Ok(false);
        };
        let inspect = docker
            .inspect_network(
                reference,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        let network_id = inspect.as_ref().ok().and_then(|n| n.id.clone());
        let present = match (request, container) {
            (_, Some(container_id)) => {
                let attached = docker
                    .inspect_container(
                        container_id,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .map(|c| {
                        c.network_settings
                            .and_then(|n| n.networks)
                            .is_some_and(|n| n.contains_key(reference))
                    });
                presence(attached)
            }
            (E::NetworkCreateRequested { .. }, None) => {
                presence(inspect.map(|n| pending.labels_it(n.labels.as_ref())))
            }
            (_, None) => presence(inspect.map(|_| true)),
        };
        let done = match (request, present) {
            (_, None) => return Ok(false),
            (
                E::NetworkRemoveRequested { .. } | E::NetworkDisconnectRequested { .. },
                Some(present),
            ) => !present,
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
            .record_settled::<Network>(&pending.aggregate_id, op_id, command, vec![])
            .await
    }

    /// Pulled: the reference is on the engine. Removed: it is not (the removed tag, or the
    /// image id when removed by id).
    async fn settle_image(&self, pending: &Pending, request: &ImageEvent) -> anyhow::Result<bool> {
        let (host, reference, pulling, by_id) = match request {
            ImageEvent::ImagePullRequested {
                host, reference, ..
            } => (host, reference, true, false),
            ImageEvent::ImageRemoveRequested {
                host,
                reference,
                image_id,
                ..
            } => (host, reference, false, reference == image_id),
            _ => return Ok(false),
        };
        let Ok(docker) = self.hosts.client(host) else {
            return Ok(false);
        };
        let inspect = docker.inspect_image(reference).await;
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
                let reference = reference.clone();
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
            .record_settled::<Image>(&pending.aggregate_id, op_id, command, vec![])
            .await
    }
}

fn interrupted_code() -> String {
    ErrorCode::Interrupted.as_str().into()
}
