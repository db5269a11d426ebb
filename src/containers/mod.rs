//! Containers: lists and inspection live from each engine, the operations dcp performs on
//! them (each recorded before and after Docker acts), creation under the role policy,
//! recreation, a container's history, and the settling of operations left without an outcome.
//!
//! An operation, as the design has it:
//! 1. the caller is authorised; the aggregate accepts the request (`…Requested`: committed
//!    means accepted);
//! 2. Docker is called (within the request task, which runs to completion even if the
//!    client leaves); what it creates is labelled `dcp.op=<op id>`;
//! 3. the outcome is recorded (`ContainerStarted`, … or `OperationFailed`) and answered;
//!    when the engine did not answer, the outcome is unknown and the operation stays
//!    pending until [`Containers::reconcile`] settles it from what Docker shows.

mod actions;
mod create;
mod error;
mod guard;
mod history;
mod labels;
mod listing;
mod operations;
mod reconcile;
mod recreate;
mod resolve;

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use create::CreateOutcome;
pub use error::ContainersError;
pub use guard::Intent;
pub use history::HistoryEntry;
pub use labels::OP_LABEL;
pub(crate) use listing::check_reference;
pub use listing::{
    valid_reference, ContainerDetail, ContainerList, ContainerListQuery, ContainerView,
    PlatformView, PortView,
};
pub use operations::OperationView;
pub use reconcile::Reconciled;

use crate::commands::CommandBus;
use crate::denials::Denials;
use crate::docker::reach::Deployment;
use crate::hosts::HostRegistry;
use crate::read_models::ReadModels;

/// The containers service: the command bus, the Docker hosts and the read models.
#[derive(Clone)]
pub struct Containers {
    commands: CommandBus,
    hosts: Arc<HostRegistry>,
    reads: ReadModels,
    denials: Denials,
    /// What the platform protects of its own deployment.
    deployment: Arc<Deployment>,
}

impl Containers {
    pub fn new(
        commands: CommandBus,
        hosts: Arc<HostRegistry>,
        reads: ReadModels,
        denials: Denials,
        deployment: Arc<Deployment>,
    ) -> Self {
        Containers {
            commands,
            hosts,
            reads,
            denials,
            deployment,
        }
    }
}

/// A Docker container and the aggregate that records what dcp does to it.
#[derive(Debug, Clone)]
pub struct ContainerTarget {
    pub host: String,
    pub docker_id: String,
    pub name: String,
    pub aggregate_id: Uuid,
}

/// What an operation came to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OperationOutcome {
    pub operation_id: Uuid,
    /// `start`, `stop`, … as in the audit action `container.<operation>`.
    pub operation: String,
    /// `succeeded` or `failed`.
    pub status: String,
    pub host: String,
    /// The Docker container id.
    pub container_id: String,
    /// The global position of the outcome's event.
    pub position: Option<i64>,
}
