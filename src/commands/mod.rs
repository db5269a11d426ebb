//! The command side: cqrs-es frameworks over postgres-es, command metadata, and the
//! position each command's events landed at (for read-your-writes).

mod refusals;

use std::collections::HashMap;
use std::sync::Arc;

use crate::event_store::{cqrs, tracking_appends, Cqrs, SideWrite};
use cqrs_es::{Aggregate, AggregateError};
use dcp_aggregates::access_attempt::AccessAttempt;
use dcp_aggregates::container::Container;
use dcp_aggregates::host::Host;
use dcp_aggregates::image::Image;
use dcp_aggregates::network::Network;
use dcp_aggregates::session::Session;
use dcp_aggregates::user::User;
use dcp_aggregates::volume::Volume;
use dcp_aggregates::wizard::Wizard;
use dcp_projections::{metadata, LogCursor, LogWaker};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::principal::Principal;
use crate::errors::{withheld_message, ErrorCode, ServiceError};

/// Who is calling from where (a request or a socket); goes into every event's metadata.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub client_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// Who asks and from where: becomes the metadata of every event the command emits.
#[derive(Debug, Clone, Default)]
pub struct CommandMeta {
    pub actor_id: Option<Uuid>,
    pub actor_username: Option<String>,
    pub actor_role: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// `system` for work the server does by itself (first-run admin, …).
    pub actor_kind: Option<&'static str>,
    pub causation_id: Option<String>,
    /// The Docker operation these events belong to.
    pub operation_id: Option<Uuid>,
    /// Why an admin acts on what the platform protects.
    pub reason: Option<String>,
}

impl CommandMeta {
    /// Metadata for a request or socket, with the caller if authenticated.
    pub fn from_request(context: &RequestContext, principal: Option<&Principal>) -> Self {
        CommandMeta {
            actor_id: principal.map(|p| p.user_id),
            actor_username: principal.map(|p| p.username.clone()),
            actor_role: principal.map(|p| p.role.as_str().to_string()),
            request_id: Some(context.request_id.clone()),
            client_ip: context.client_ip.map(|ip| ip.to_string()),
            user_agent: context.user_agent.clone(),
            actor_kind: None,
            causation_id: None,
            operation_id: None,
            reason: None,
        }
    }

    /// Metadata for something the server does on its own.
    pub fn system() -> Self {
        CommandMeta {
            actor_kind: Some("system"),
            request_id: Some(Uuid::new_v4().to_string()),
            ..CommandMeta::default()
        }
    }

    /// Metadata for what the reconciler records of operation `op_id`.
    pub fn reconciler(op_id: Uuid) -> Self {
        CommandMeta {
            actor_kind: Some("reconciler"),
            ..CommandMeta::system()
        }
        .for_operation(op_id)
    }

    /// The same request, for the events of Docker operation `op_id`.
    pub fn for_operation(&self, op_id: Uuid) -> Self {
        CommandMeta {
            operation_id: Some(op_id),
            ..self.clone()
        }
    }

    /// Something Docker did by itself (or that dcp found already done): recorded with the
    /// request's context, as observed.
    pub fn observed_by_docker(&self) -> Self {
        CommandMeta {
            actor_kind: Some("docker"),
            ..self.clone()
        }
    }

    /// The same request, saying why (kept with its events when given).
    pub fn with_reason(&self, reason: Option<&str>) -> Self {
        CommandMeta {
            reason: reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            ..self.clone()
        }
    }

    /// The same request acting as `principal` (e.g. a login, once the user is known).
    pub fn acting_as(&self, user_id: Uuid, username: &str, role: &str) -> Self {
        CommandMeta {
            actor_id: Some(user_id),
            actor_username: Some(username.to_string()),
            actor_role: Some(role.to_string()),
            ..self.clone()
        }
    }

    /// The key/value form cqrs-es stores.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                map.insert(key.to_string(), value);
            }
        };
        put(metadata::ACTOR_ID, self.actor_id.map(|id| id.to_string()));
        put(metadata::ACTOR_USERNAME, self.actor_username.clone());
        put(metadata::ACTOR_ROLE, self.actor_role.clone());
        put(metadata::REQUEST_ID, self.request_id.clone());
        put(metadata::CORRELATION_ID, self.request_id.clone());
        put(
            metadata::CAUSATION_ID,
            self.causation_id
                .clone()
                .or_else(|| self.request_id.clone()),
        );
        put(metadata::CLIENT_IP, self.client_ip.clone());
        put(metadata::USER_AGENT, self.user_agent.clone());
        put(metadata::ACTOR_KIND, self.actor_kind.map(str::to_string));
        put(
            metadata::OPERATION_ID,
            self.operation_id.map(|id| id.to_string()),
        );
        put(metadata::REASON, self.reason.clone());
        map
    }
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it.
    #[error(transparent)]
    Rejected(E),
    /// Another command on the same aggregate (of this type) committed first.
    #[error("the {0} was changed by another request at the same time; retry")]
    Conflict(&'static str),
    /// The event store is unreachable.
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Other(anyhow::Error),
}

fn boxed_error(error: Box<dyn std::error::Error + Send + Sync>) -> anyhow::Error {
    anyhow::anyhow!(error)
}

/// postgres-es reports a pool timeout or a dropped connection as an unknown error.
fn is_unavailable(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    error
        .downcast_ref::<sqlx::Error>()
        .is_some_and(crate::db::is_unavailable)
}

impl<E: std::error::Error> CommandError<E> {
    /// Classifies what cqrs-es reports for a command on an aggregate of type `aggregate`.
    fn of(aggregate: &'static str, error: AggregateError<E>) -> Self {
        match error {
            AggregateError::UserError(e) => CommandError::Rejected(e),
            AggregateError::AggregateConflict => CommandError::Conflict(aggregate),
            AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(boxed_error(e)),
            AggregateError::UnexpectedError(e) if is_unavailable(e.as_ref()) => {
                CommandError::Unavailable(boxed_error(e))
            }
            AggregateError::DeserializationError(e) => {
                CommandError::Other(boxed_error(e).context("Failed to load an aggregate"))
            }
            AggregateError::UnexpectedError(e) => CommandError::Other(boxed_error(e)),
        }
    }
}

/// The one mapping of a command that did not commit: the aggregate's refusal says its own
/// code; a lost race is a conflict; an unreachable store is unavailability.
impl<E> ServiceError for CommandError<E>
where
    E: ServiceError + std::error::Error,
{
    fn code(&self) -> ErrorCode {
        match self {
            CommandError::Rejected(refusal) => refusal.code(),
            CommandError::Conflict(_) => ErrorCode::Conflict,
            CommandError::Unavailable(_) => ErrorCode::DatabaseUnavailable,
            CommandError::Other(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            CommandError::Rejected(refusal) => refusal.field(),
            _ => None,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            CommandError::Rejected(refusal) => refusal.details(),
            _ => None,
        }
    }

    fn public_message(&self) -> String {
        match (self, withheld_message(self.code())) {
            (CommandError::Rejected(refusal), _) => refusal.public_message(),
            (_, Some(message)) => message.into(),
            (_, None) => self.to_string(),
        }
    }
}

/// Rings `dcp_events` after commits, from outside the writing transactions. Rings that
/// arrive while one is being sent are coalesced into the next, so a burst of commits costs
/// a handful of notifications.
#[derive(Clone)]
pub struct EventDoorbell {
    ring: Arc<tokio::sync::Notify>,
}

impl EventDoorbell {
    /// Starts the ringer task on `pool`; it ends when the pool closes.
    pub fn start(pool: PgPool) -> Self {
        let ring = Arc::new(tokio::sync::Notify::new());
        let rung = ring.clone();
        tokio::spawn(async move {
            loop {
                rung.notified().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(dcp_projections::log::EVENTS_CHANNEL)
                    .execute(&pool)
                    .await
                {
                    // Readers still poll; a missed ring only delays them.
                    tracing::warn!(%error, "Failed to ring the event doorbell");
                }
            }
        });
        EventDoorbell { ring }
    }

    /// Events were committed: wake the readers.
    pub fn ring(&self) {
        self.ring.notify_one();
    }
}

/// Runs commands and reports where their events landed in the global log.
#[derive(Clone)]
pub struct CommandBus {
    doorbell: EventDoorbell,
    /// Wakes this process's log readers at once, without the NOTIFY round trip.
    local_waker: Option<LogWaker>,
    users: Arc<Cqrs<User>>,
    sessions: Arc<Cqrs<Session>>,
    access_attempts: Arc<Cqrs<AccessAttempt>>,
    containers: Arc<Cqrs<Container>>,
    images: Arc<Cqrs<Image>>,
    volumes: Arc<Cqrs<Volume>>,
    networks: Arc<Cqrs<Network>>,
    hosts: Arc<Cqrs<Host>>,
    wizards: Arc<Cqrs<Wizard>>,
}

/// Gives access to the framework of one aggregate type.
pub trait CqrsFor<A: Aggregate> {
    fn cqrs(&self) -> &Cqrs<A>;
}

impl CqrsFor<User> for CommandBus {
    fn cqrs(&self) -> &Cqrs<User> {
        &self.users
    }
}

impl CqrsFor<Session> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Session> {
        &self.sessions
    }
}

impl CqrsFor<Container> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Container> {
        &self.containers
    }
}

impl CqrsFor<Image> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Image> {
        &self.images
    }
}

impl CqrsFor<Volume> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Volume> {
        &self.volumes
    }
}

impl CqrsFor<Network> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Network> {
        &self.networks
    }
}

impl CqrsFor<Host> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Host> {
        &self.hosts
    }
}

impl CqrsFor<Wizard> for CommandBus {
    fn cqrs(&self) -> &Cqrs<Wizard> {
        &self.wizards
    }
}

impl CqrsFor<AccessAttempt> for CommandBus {
    fn cqrs(&self) -> &Cqrs<AccessAttempt> {
        &self.access_attempts
    }
}

impl CommandBus {
    pub fn new(pool: PgPool) -> Self {
        // Read models are built from the global log, never from cqrs-es queries.
        CommandBus {
            users: Arc::new(cqrs(pool.clone(), ())),
            sessions: Arc::new(cqrs(pool.clone(), ())),
            access_attempts: Arc::new(cqrs(pool.clone(), ())),
            containers: Arc::new(cqrs(pool.clone(), ())),
            images: Arc::new(cqrs(pool.clone(), ())),
            volumes: Arc::new(cqrs(pool.clone(), ())),
            networks: Arc::new(cqrs(pool.clone(), ())),
            hosts: Arc::new(cqrs(pool.clone(), ())),
            wizards: Arc::new(cqrs(pool.clone(), ())),
            doorbell: EventDoorbell::start(pool),
            local_waker: None,
        }
    }

    /// Also wakes this process's log readers directly after each append.
    pub fn with_local_waker(mut self, waker: LogWaker) -> Self {
        self.local_waker = Some(waker);
        self
    }

    /// Executes `command` on aggregate `A` with id `id`; returns the log cursor of the
    /// last event it appended (what a read must wait for to see it), `None` if it
    /// appended nothing.
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<Option<LogCursor>, CommandError<A::Error>>
    where
        A: Aggregate,
        Self: CqrsFor<A>,
    {
        self.execute_with::<A>(id, command, meta, vec![]).await
    }

    /// Records `command`, the outcome a reconciliation settled for operation `op_id` on
    /// aggregate `aggregate_id`; `false` when it was settled elsewhere meanwhile (by the
    /// request itself or another replica): the aggregate then refuses a different outcome,
    /// or another writer kept winning the race.
    pub(crate) async fn record_settled<A>(
        &self,
        aggregate_id: &str,
        op_id: Uuid,
        command: A::Command,
        side_writes: Vec<SideWrite>,
    ) -> anyhow::Result<bool>
    where
        A: Aggregate,
        A::Command: Clone,
        Self: CqrsFor<A>,
    {
        match self
            .execute_retrying::<A>(
                aggregate_id,
                command,
                &CommandMeta::reconciler(op_id),
                side_writes,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(CommandError::Conflict(_) | CommandError::Rejected(_)) => Ok(false),
            Err(other) => Err(anyhow::anyhow!(
                "Failed to record the outcome of operation {op_id}: {other}"
            )),
        }
    }

    /// Like [`execute_with`](Self::execute_with), tried again (a few times) when another
    /// command on the same aggregate committed first. Only for commands that are right
    /// whatever was appended meanwhile: an operation's outcome (a Docker event observed at
    /// the same moment must not make dcp forget what Docker did), an observed change.
    pub async fn execute_retrying<A>(
        &self,
        id: &str,
        command: A::Command,
        meta: &CommandMeta,
        side_writes: Vec<SideWrite>,
    ) -> Result<Option<LogCursor>, CommandError<A::Error>>
    where
        A: Aggregate,
        A::Command: Clone,
        Self: CqrsFor<A>,
    {
        const ATTEMPTS: u64 = 5;
        let mut attempt = 1;
        loop {
            match self
                .execute_with::<A>(id, command.clone(), meta, side_writes.clone())
                .await
            {
                Err(CommandError::Conflict(_)) if attempt < ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Like [`execute`](Self::execute), with side-table writes that commit in the same
    /// transaction as the events (and not at all if the command emits none).
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, id = %id))]
    pub async fn execute_with<A>(
        &self,
        id: &str,
        command: A::Command,
        meta: &CommandMeta,
        side_writes: Vec<SideWrite>,
    ) -> Result<Option<LogCursor>, CommandError<A::Error>>
    where
        A: Aggregate,
        Self: CqrsFor<A>,
    {
        let (result, appended) = tracking_appends(
            side_writes,
            self.cqrs()
                .execute_with_metadata(id, command, meta.to_map()),
        )
        .await;
        let result = result.map_err(|error| CommandError::of(A::TYPE, error));
        crate::metrics::command(
            A::TYPE,
            match &result {
                Ok(()) => "ok",
                Err(CommandError::Rejected(_)) => "rejected",
                Err(CommandError::Conflict(_)) => "conflict",
                Err(CommandError::Unavailable(_)) => "unavailable",
                Err(CommandError::Other(_)) => "error",
            },
        );
        result?;
        if appended.is_some() {
            if let Some(waker) = &self.local_waker {
                waker.appended();
            }
            self.doorbell.ring();
        }
        Ok(appended)
    }
}
