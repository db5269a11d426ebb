//! Live streams for sockets: who may open one (a ticket spent, the socket registered and
//! its session checked once more), the events feed with its replay, and a container's
//! logs, stats and exec sessions, and an operation's progress. The sockets themselves (frames,
//! back-pressure, close codes) are the HTTP layer's (its `ws` module).

mod events;
mod exec;
mod logs;
mod stats;
mod tasks;

use std::sync::Arc;

pub use events::{visible_to, Replay};
pub use exec::ExecSession;
pub use logs::{LogChunks, LogLine, LogsRequest, BATCH_BYTES, BATCH_LINES, BATCH_WINDOW};
pub use stats::{BlockIoSample, MemorySample, NetworkSample, StatsSample, StatsSamples};

use super::sockets::{Registration, SocketRegistry, MAX_SOCKETS_PER_USER};
use super::tickets::{self, Purpose, TicketRefusal};
use super::RealtimeError;
use crate::auth::policy::Judgement;
use crate::auth::principal::{load_principal, Principal};
use crate::commands::{CommandBus, CommandMeta};
use crate::containers::{check_reference, Containers, Intent};
use crate::denials::Refused;
use crate::docker::{reach, DockerHosts};
use crate::hosts::HostRegistry;
use crate::read_models::{ReadModels, SESSIONS};

/// The streams service.
#[derive(Clone)]
pub struct Streams {
    reads: ReadModels,
    registry: Arc<HostRegistry>,
    sockets: Arc<SocketRegistry>,
    /// Finds the containers an exec session runs in.
    containers: Containers,
    /// Records exec sessions.
    commands: CommandBus,
}

/// What a streams service needs.
pub struct StreamsDeps {
    pub reads: ReadModels,
    pub registry: Arc<HostRegistry>,
    pub sockets: Arc<SocketRegistry>,
    pub containers: Containers,
    pub commands: CommandBus,
}

impl Streams {
    pub fn new(deps: StreamsDeps) -> Self {
        Streams {
            reads: deps.reads,
            registry: deps.registry,
            sockets: deps.sockets,
            containers: deps.containers,
            commands: deps.commands,
        }
    }

    /// Spends `ticket` for a socket of `purpose` on `resource_id` and registers the socket:
    /// the caller, and the registration that closes it when their session changes.
    #[tracing::instrument(skip_all, fields(purpose = purpose.as_str()), err(level = "debug"))]
    pub async fn admit(
        &self,
        ticket: &str,
        purpose: Purpose,
        resource_id: Option<&str>,
    ) -> Result<(Principal, Registration), RealtimeError> {
        let pool = self.reads.pool();
        let principal = match tickets::redeem(pool, ticket, purpose, resource_id).await? {
            Ok(principal) => principal,
            Err(TicketRefusal::Invalid) => {
                return Err(RealtimeError::NotAdmitted(
                    "the ticket is unknown, expired, already used, or for another socket",
                ))
            }
            Err(TicketRefusal::SessionClosed) => {
                return Err(RealtimeError::NotAdmitted("the session has ended"))
            }
            Err(TicketRefusal::Forbidden) => return Err(RealtimeError::SocketForbidden),
        };
        let registration = self
            .sockets
            .admit(&principal)
            .ok_or(RealtimeError::TooManySockets(MAX_SOCKETS_PER_USER))?;
        // Registered first, then checked once more against read models that include every
        // event so far: a logout or demotion committed around the handshake either reaches
        // this registered socket through the bus or is seen here.
        self.reads.settle_to_head(SESSIONS).await?;
        match load_principal(pool, principal.user_id, principal.session_id).await? {
            Ok(now) if now.role == principal.role => Ok((principal, registration)),
            _ => Err(RealtimeError::NotAdmitted(
                "the session changed; ask for a new ticket",
            )),
        }
    }

    /// The host a stream names (default `local`), if dcp knows it and it is enabled.
    pub fn host(&self, host: Option<&str>) -> Result<String, RealtimeError> {
        Ok(self.registry.enabled_host(host)?)
    }

    /// The full id of the container `reference` names on `host`, looked up once, for a
    /// socket of `purpose`: logs of a container the platform protects are refused to
    /// non-admins (recorded as a denied request of `route`).
    pub async fn container_for(
        &self,
        principal: &Principal,
        at: (&str, &str),
        purpose: Purpose,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<String, RealtimeError> {
        let (host, reference) = at;
        if purpose != Purpose::ContainerLogs {
            check_reference(reference)?;
            let docker = self.registry.client(host)?;
            let resolved = reach::resolve(&docker, host, reference)
                .await
                .map_err(crate::containers::ContainersError::lookup)?;
            return Ok(resolved.id().to_string());
        }
        let resolved = self
            .containers
            .resolve_for(
                principal,
                at,
                Intent::Read,
                Judgement::default(),
                meta,
                route,
            )
            .await?;
        Ok(resolved.id().to_string())
    }
}
