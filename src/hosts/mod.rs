//! Docker hosts: the registry of engines dcp drives (the local one and every remote host
//! reached over SSH), the monitor that checks them, and the hosts service that adds,
//! changes and removes remote hosts (directly, or when a setup wizard completes).
//!
//! The [`monitor`] checks every enabled remote host every [`monitor::CHECK_INTERVAL`] and
//! records status changes on its aggregate (`active` ↔ `unreachable`) and liveness in
//! `host_liveness`.

mod admin;
mod credentials;
mod error;
pub mod monitor;
mod registry;

use std::sync::Arc;

pub use admin::{CreateHostRequest, CreatedHost, HostView, Liveness, UpdateHostRequest};
pub use credentials::{load_credentials, AuthRequest};
pub use error::HostsError;
pub use monitor::{CheckResult, HostMonitor};
pub use registry::{HostRegistry, MismatchHooks, SYNC_INTERVAL};

use crate::commands::CommandBus;
use crate::read_models::ReadModels;
use crate::secrets::sealed::MasterKey;

/// The hosts service: registered remote hosts, their credentials and checks.
#[derive(Clone)]
pub struct Hosts {
    commands: CommandBus,
    reads: ReadModels,
    registry: Arc<HostRegistry>,
    master_key: Arc<MasterKey>,
    monitor: HostMonitor,
}

impl Hosts {
    pub fn new(
        commands: CommandBus,
        reads: ReadModels,
        registry: Arc<HostRegistry>,
        master_key: Arc<MasterKey>,
        monitor: HostMonitor,
    ) -> Self {
        Hosts {
            commands,
            reads,
            registry,
            master_key,
            monitor,
        }
    }

    /// The key sealing the hosts' credentials.
    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }
}
