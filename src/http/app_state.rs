//! What the handlers share: the services, assembled by `crate::app`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;

use crate::accounts::Accounts;
use crate::config::Settings;
use crate::containers::Containers;
use crate::denials::Denials;
use crate::history::History;
use crate::hosts::Hosts;
use crate::read_models::ReadModels;
use crate::realtime::streams::Streams;
use crate::resources::Resources;
use crate::wizards::Wizards;

/// Everything handlers share: the services, and the infrastructure the health checks,
/// metrics and middleware report on.
pub struct AppInner {
    /// The database (health checks, metrics and the database breaker).
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
    pub history: History,
    /// Where events leave the server (NATS, or in-process).
    pub bus: Arc<dyn crate::realtime::bus::EventBus>,
    /// The WebSockets open on this server.
    pub sockets: Arc<crate::realtime::sockets::SocketRegistry>,
    pub streams: Streams,
    pub accounts: Accounts,
    pub settings: Arc<Settings>,
    pub started_at: Instant,
    /// Fails requests fast while the database is down.
    pub db_breaker: Arc<crate::db::DatabaseBreaker>,
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
