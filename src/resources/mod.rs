//! Images, volumes and networks: lists live from each engine, and operations recorded
//! before and after Docker performs them, as container operations are (see
//! [`crate::containers`]).
//!
//! Each resource has one aggregate per natural key (`(host, name)` for volumes and
//! networks, `(host, reference)` for images, see [`dcp_aggregates::resource_key`]). The
//! request is recorded (`…Requested`), Docker is called, the outcome is recorded. An engine
//! that does not answer leaves the operation pending; [`Resources::reconcile`] settles it
//! later from what Docker shows. Image pulls run in the background: the request answers
//! with the operation id, progress is written to `operation_progress` while the pull runs,
//! and the outcome is recorded when it ends.

mod error;
mod images;
mod networks;
mod operation;
mod pull;
mod reconcile;
mod volumes;

use std::sync::Arc;

use serde::Serialize;
use tokio_util::task::TaskTracker;
use utoipa::ToSchema;
use uuid::Uuid;

pub use error::ResourcesError;
pub use images::{ImageList, ImageListQuery, ImageView, PullRequest};
pub use networks::{Attachment, NetworkList, NetworkOnHost, NetworkView};
pub use volumes::{VolumeList, VolumeView};

use crate::auth::policy::{self, Consent, Judgement};
use crate::auth::principal::Principal;
use crate::commands::{CommandBus, CommandMeta};
use crate::containers::Containers;
use crate::denials::{Denials, Refused};
use crate::docker::policy::PolicyError;
use crate::docker::{reach, DockerHosts};
use crate::hosts::HostRegistry;
use crate::read_models::ReadModels;

/// The resources service.
#[derive(Clone)]
pub struct Resources {
    commands: CommandBus,
    hosts: Arc<HostRegistry>,
    reads: ReadModels,
    denials: Denials,
    /// Finds the containers a network operation names.
    containers: Containers,
    /// Operations that outlive their request (image pulls): a stopping server waits for them.
    background: TaskTracker,
}

/// What a resources service needs.
pub struct ResourcesDeps {
    pub commands: CommandBus,
    pub hosts: Arc<HostRegistry>,
    pub reads: ReadModels,
    pub denials: Denials,
    pub containers: Containers,
    pub background: TaskTracker,
}

impl Resources {
    pub fn new(deps: ResourcesDeps) -> Self {
        Resources {
            commands: deps.commands,
            hosts: deps.hosts,
            reads: deps.reads,
            denials: deps.denials,
            containers: deps.containers,
            background: deps.background,
        }
    }
}

/// What an image, volume or network operation came to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceOutcome {
    pub operation_id: Uuid,
    /// The audit action, e.g. `volume.create`.
    pub action: String,
    /// `succeeded` (failures answer with an error).
    pub status: String,
    pub host: String,
    /// The resource: volume name, network name, image reference.
    pub resource: String,
    /// Docker's id when it has one (network id, image id).
    pub docker_id: Option<String>,
    /// The global position of the outcome's event.
    pub position: Option<i64>,
}

/// A long operation accepted: follow it at `GET /api/v1/operations/{operation_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AcceptedOperation {
    pub operation_id: Uuid,
    pub action: String,
    /// `pending`.
    pub status: String,
    pub host: String,
    pub resource: String,
    /// Where to follow it.
    pub location: String,
    /// The global position of the request's event.
    pub position: Option<i64>,
}

impl Resources {
    /// Refuses to `principal` what the platform protects among the named `volumes` and
    /// `networks` on `host` (the one judgement's `protected` part), but to admins who give a
    /// reason (`meta.reason`); a refusal is recorded as a denied request of `route`.
    async fn guard_protected(
        &self,
        principal: &Principal,
        (host, volumes, networks): (&str, &[String], &[String]),
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<(), ResourcesError> {
        let docker = self.hosts.client(host)?;
        let deployment = self.containers.deployment();
        let around = reach::surroundings(&docker, host, volumes, networks, deployment).await?;
        let protected = around
            .volumes
            .iter()
            .filter_map(|(name, f)| {
                f.protected
                    .as_ref()
                    .map(|why| (format!("volume '{name}'"), why))
            })
            .chain(around.networks.iter().filter_map(|(name, f)| {
                f.protected
                    .as_ref()
                    .map(|why| (format!("network '{name}'"), why))
            }))
            .map(|(what, why)| policy::finding("id", format!("{what} {why}")))
            .collect();
        let judgement = Judgement {
            protected,
            ..Judgement::default()
        };
        let verdict = policy::may_touch(
            principal.role,
            &judgement,
            Consent::new(None, meta.reason.as_deref()),
        )
        .map_err(PolicyError::from);
        self.denials
            .enforce(principal, meta, route, verdict)
            .await?;
        Ok(())
    }
}
