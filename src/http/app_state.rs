//! What the handlers share: the services, assembled by `crate::app`.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use dcp_projections::ProjectionProgress;
use sqlx::PgPool;

use crate::auth::password::PasswordHasher;
use crate::auth::throttle::{InFlight, Throttle};
use crate::auth::tokens::TokenKeys;
use crate::commands::CommandBus;
use crate::config::Settings;
use crate::containers::Containers;
use crate::denials::Denials;
use crate::hosts::Hosts;
use crate::read_models::ReadModels;
use crate::resources::Resources;
use crate::wizards::Wizards;

/// Everything handlers share.
pub struct AppInner {
    pub pool: PgPool,
    /// The read models, and waiting for them to show a write.
    pub reads: ReadModels,
    pub containers: Containers,
    pub resources: Resources,
    /// Records refused requests.
    pub denials: Denials,
    /// The local engine and the remote hosts, with their SSH connections.
    pub registry: Arc<crate::hosts::HostRegistry>,
    pub hosts: Hosts,
    pub wizards: Wizards,
    /// Where events leave the server (NATS, or in-process).
    pub bus: Arc<dyn crate::realtime::bus::EventBus>,
    /// The WebSockets open on this server.
    pub sockets: Arc<crate::realtime::gateway::Registry>,
    pub commands: CommandBus,
    pub progress: ProjectionProgress,
    pub tokens: TokenKeys,
    /// Signs audit checkpoints (kept out of the database).
    pub audit_key: crate::checkpoints::AuditKey,
    /// Seals stored secrets (kept out of the database).
    pub master_key: Arc<crate::secrets::sealed::MasterKey>,
    pub hasher: PasswordHasher,
    pub account_throttle: Throttle<String>,
    pub ip_throttle: Throttle<IpAddr>,
    /// Denied requests per user: each is recorded, but a user who keeps being refused is
    /// slowed down (429, not recorded) so refusals cannot flood the event store.
    pub denial_throttle: Throttle<uuid::Uuid>,
    /// Login or password-check attempts running now, per account (at most one).
    pub login_accounts_in_flight: InFlight<String>,
    /// Login attempts running now, per client (a few).
    pub login_ips_in_flight: InFlight<IpAddr>,
    pub settings: Arc<Settings>,
    pub started_at: Instant,
    /// Serialises, within this process, the changes that may remove an admin.
    pub admin_changes: tokio::sync::Mutex<()>,
    /// Fails requests fast while the database is down.
    pub db_breaker: Arc<crate::db::DatabaseBreaker>,
    /// Operations that outlive their request (image pulls): a stopping server waits for them.
    pub background: tokio_util::task::TaskTracker,
}

/// Cheap-to-clone handle on [`AppInner`].
#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
