//! The Docker event watcher: records what happens on an engine without dcp asking.
//!
//! One watcher per host (an advisory lock makes one replica watch each host) follows
//! Docker's event stream for container lifecycle changes (`create`, `start`, `die` with
//! its exit code, `stop`, `kill`, `destroy`, `rename`, `oom`, `pause`, `unpause`,
//! `restart`), image pulls and deletions, and volume and network creation and removal.
//!
//! - **Not recorded twice.** An event caused by a dcp operation — one pending, or finished
//!   moments before the event, on the same Docker object, whose verb produces that Docker
//!   action ([`produced_by`]) — is skipped: the operation's own events already tell it. The
//!   watcher first waits for the operations read model to reach the log head, so a
//!   request recorded just before Docker acted is seen. Everything else becomes a
//!   `…Observed` event (audit `<resource>.observed`, actor kind `docker`); a container
//!   dcp has not seen before is discovered first.
//! - **Resumes.** The time of the last handled event is kept per host; after a restart or
//!   an engine outage the stream is reopened with `since` that time, and the aggregates
//!   drop events they already recorded (same Docker time and action).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use chrono::Utc;
use dcp_aggregates::container::{Container, ContainerCommand};
use dcp_aggregates::image::{Image, ImageCommand};
use dcp_aggregates::network::{Network, NetworkCommand};
use dcp_aggregates::resource_key;
use dcp_aggregates::volume::{Volume, VolumeCommand};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::commands::{CommandError, CommandMeta};
use crate::containers::OP_LABEL;
use crate::docker::normalize_reference;
use crate::docker::DockerHosts;
use crate::event_store::SideWrite;
use crate::http::AppState;

/// Container actions recorded when made outside dcp.
pub const CONTAINER_ACTIONS: &[&str] = &[
    "create", "start", "die", "stop", "kill", "destroy", "rename", "oom", "pause", "unpause",
    "restart",
];
const IMAGE_ACTIONS: &[&str] = &["pull", "delete", "untag"];
const VOLUME_ACTIONS: &[&str] = &["create", "destroy"];
const NETWORK_ACTIONS: &[&str] = &["create", "destroy"];

/// How far apart (seconds) a dcp operation and a Docker event may be and still be one
/// thing (some events trail the API answer: the `die` after a `kill`).
const SLACK_SECS: f64 = 2.0;

/// The longest a dcp operation can explain Docker events for (a long pull reports `pull`
/// when it ends); older operations are not looked at.
const LONGEST_OPERATION_SECS: f64 = 3600.0;

/// Which Docker actions each recent dcp operation has already explained: while an
/// operation runs it explains any number of the actions it produces (a stop may send two
/// signals); once it has finished, only those it has not explained yet, once each — so
/// the same change made with the CLI a moment later is still recorded.
/// An operation that finished before the stream was (re)opened explained its events
/// before that point: it explains none of the events that follow.
#[derive(Default)]
struct Attribution {
    explained: HashMap<Uuid, Vec<String>>,
    order: std::collections::VecDeque<Uuid>,
    /// Seconds since the epoch (Docker's clock) from which this stream delivers events.
    opened_at: f64,
}

impl Attribution {
    const REMEMBERED: usize = 4096;

    fn explains(&mut self, op_id: Uuid, action: &str, finished_before: bool) -> bool {
        let explained = self.explained.entry(op_id).or_insert_with(|| {
            self.order.push_back(op_id);
            Vec::new()
        });
        if finished_before && explained.iter().any(|a| a == action) {
            return false;
        }
        explained.push(action.to_string());
        while self.order.len() > Self::REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.explained.remove(&old);
            }
        }
        true
    }
}

/// Whether dcp's operation `verb` on an `operation_resource` makes Docker report `action` on
/// an `event_resource` (a container create also creates the named volumes it mounts).
pub fn produced_by(
    operation_resource: &str,
    verb: &str,
    event_resource: &str,
    action: &str,
) -> bool {
    if operation_resource == "container" && event_resource == "volume" {
        return matches!(verb, "create" | "recreate") && action == "create";
    }
    if operation_resource != event_resource {
        return false;
    }
    let produced: &[&str] = match (operation_resource, verb) {
        ("container", "create") => &["create"],
        ("container", "start") => &["start"],
        ("container", "stop") => &["kill", "die", "stop"],
        ("container", "restart") => &["kill", "die", "stop", "start", "restart"],
        ("container", "kill") => &["kill", "die"],
        ("container", "pause") => &["pause"],
        ("container", "unpause") => &["unpause"],
        ("container", "rename") => &["rename"],
        ("container", "delete") => &["kill", "die", "stop", "destroy"],
        // Stop and rename the old container, create and start the new one, remove the old.
        ("container", "recreate") => &[
            "kill", "die", "stop", "rename", "create", "start", "destroy",
        ],
        ("image", "pull") => &["pull", "tag"],
        ("image", "delete") => &["untag", "delete"],
        ("volume", "create") => &["create"],
        ("volume", "delete") => &["destroy"],
        ("network", "create") => &["create"],
        ("network", "delete") => &["destroy"],
        _ => &[],
    };
    produced.contains(&action)
}

/// Advisory lock keys: one watcher per host across replicas.
fn lock_key(host: &str) -> i64 {
    let id = resource_key("docker-event-watcher", host, "");
    i64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap_or_default())
}

/// Starts one watcher per known host, and keeps the set in line with the hosts: a host
/// added later gets its watcher within [`SUPERVISE_INTERVAL`], a removed or disabled one
/// loses it.
pub fn spawn_watchers(state: AppState, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(async move {
        let mut running: HashMap<String, (u64, CancellationToken, JoinHandle<()>)> = HashMap::new();
        loop {
            let wanted: HashMap<String, u64> = state.registry.watch_targets().into_iter().collect();
            // Gone, disabled, reconnected differently, or ended: stopped (and restarted below
            // when still wanted).
            running.retain(|host, (generation, token, task)| {
                let keep = wanted.get(host) == Some(generation) && !task.is_finished();
                if !keep {
                    token.cancel();
                }
                keep
            });
            for (host, generation) in wanted {
                if running.contains_key(&host) {
                    continue;
                }
                let token = shutdown.child_token();
                let task = tokio::spawn(watch_host(state.clone(), host.clone(), token.clone()));
                running.insert(host, (generation, token, task));
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(SUPERVISE_INTERVAL) => {}
            }
        }
        for (_, (_, token, task)) in running {
            token.cancel();
            let _ = task.await;
        }
    })]
}

/// How often the watcher set is compared with the hosts.
const SUPERVISE_INTERVAL: Duration = Duration::from_secs(2);

async fn watch_host(state: AppState, host: String, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = watch_while_holding_lock(&state, &host, &shutdown) => outcome,
        };
        match outcome {
            Ok(Watched::Events) => backoff = Duration::from_millis(500),
            Ok(Watched::NotLeader) => backoff = Duration::from_secs(5),
            Err(error) => {
                tracing::warn!(%host, error = format!("{error:#}"), "Docker event watcher interrupted; resuming");
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

enum Watched {
    /// The stream ended after delivering events; reopen it at once.
    Events,
    /// Another replica watches this host.
    NotLeader,
}

async fn watch_while_holding_lock(
    state: &AppState,
    host: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Watched> {
    let mut lock = state.pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(host))
        .fetch_one(&mut lock)
        .await?;
    if !locked {
        let _ = sqlx::Connection::close(lock).await;
        return Ok(Watched::NotLeader);
    }
    let result = follow(state, host, shutdown).await;
    // Closing the session releases the lock.
    let _ = sqlx::Connection::close(lock).await;
    result
}

/// Follows the event stream from the stored cursor until it ends or fails.
async fn follow(
    state: &AppState,
    host: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Watched> {
    let docker = state.registry.client(host)?;
    // The stream has no end: it must not be cut by the per-call timeout.
    let docker = docker.with_timeout(Duration::from_secs(u64::from(u32::MAX)));
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT time_nano FROM docker_event_cursors WHERE host = $1")
            .bind(host)
            .fetch_optional(&state.pool)
            .await?;
    // First start: from now (what already exists is discovered when it is used).
    let since_nano = match stored {
        Some(nano) => nano,
        None => {
            let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
            save_cursor(state, host, now).await?;
            now
        }
    };
    let filters = HashMap::from([
        (
            "type".to_string(),
            vec![
                "container".to_string(),
                "image".to_string(),
                "volume".to_string(),
                "network".to_string(),
            ],
        ),
        (
            "event".to_string(),
            CONTAINER_ACTIONS
                .iter()
                .chain(IMAGE_ACTIONS)
                .chain(VOLUME_ACTIONS)
                .chain(NETWORK_ACTIONS)
                .map(|a| a.to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        ),
    ]);
    let options = EventsOptions {
        since: Some(format!(
            "{}.{:09}",
            since_nano.div_euclid(1_000_000_000),
            since_nano.rem_euclid(1_000_000_000)
        )),
        until: None,
        filters: Some(filters),
    };
    let mut stream = docker.events(Some(options));
    // Docker's `since` is inclusive: the last event handled comes again; it is skipped.
    let handled_until = stored.unwrap_or(i64::MIN);
    let mut attribution = Attribution {
        opened_at: since_nano as f64 / 1e9,
        ..Attribution::default()
    };
    tracing::info!(%host, since_nano, "watching Docker events");
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Watched::Events),
            next = stream.next() => next,
        };
        let Some(message) = next else {
            return Ok(Watched::Events);
        };
        let message = message.map_err(|e| anyhow::anyhow!("the event stream failed: {e}"))?;
        let time_nano = message
            .time_nano
            .or(message.time.map(|t| t * 1_000_000_000))
            .unwrap_or_default();
        if time_nano <= handled_until {
            continue;
        }
        handle(state, host, message, &mut attribution).await?;
        if time_nano > 0 {
            save_cursor(state, host, time_nano).await?;
        }
    }
}

async fn save_cursor(state: &AppState, host: &str, time_nano: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO docker_event_cursors (host, time_nano) VALUES ($1, $2) \
         ON CONFLICT (host) DO UPDATE SET time_nano = GREATEST(docker_event_cursors.time_nano, EXCLUDED.time_nano), updated_at = now()",
    )
    .bind(host)
    .bind(time_nano)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Waits until the operations read model has reached the log head. Requests are committed
/// before Docker is called, so then every operation that could explain an event is in it.
async fn settle_operations(state: &AppState) -> anyhow::Result<()> {
    state
        .settle_to_head(crate::http::operations::OPERATIONS)
        .await
        .map_err(|e| anyhow::anyhow!("the operations read model lags: {}", e.message))
}

/// Whether a dcp operation explains this Docker event (the read model is settled).
async fn caused_by_dcp(
    state: &AppState,
    attribution: &mut Attribution,
    host: &str,
    resource: &str,
    targets: &[String],
    action: &str,
    time_nano: i64,
) -> anyhow::Result<bool> {
    let seconds = time_nano as f64 / 1e9;
    // Volumes are also created by the containers that mount them.
    let resources: Vec<&str> = if resource == "volume" {
        vec!["volume", "container"]
    } else {
        vec![resource]
    };
    let candidates: Vec<(Uuid, String, String, bool, Option<f64>)> = sqlx::query_as(
        "SELECT id, resource_type, action, coalesce(completed_at < to_timestamp($4), false), \
         EXTRACT(EPOCH FROM completed_at)::float8 FROM operations \
         WHERE host = $1 AND resource_type = ANY($2) AND targets && $3 \
         AND requested_at <= to_timestamp($4) + make_interval(secs => $5) \
         AND requested_at >= to_timestamp($4) - make_interval(secs => $6) \
         AND coalesce(completed_at, now()) >= to_timestamp($4) - make_interval(secs => $5) \
         ORDER BY requested_at",
    )
    .bind(host)
    .bind(&resources)
    .bind(targets)
    .bind(seconds)
    .bind(SLACK_SECS)
    .bind(LONGEST_OPERATION_SECS)
    .fetch_all(&state.pool)
    .await?;
    for (op_id, operation_resource, full, finished_before, completed_at) in candidates {
        if completed_at.is_some_and(|at| at < attribution.opened_at) {
            continue;
        }
        let produces = full
            .split_once('.')
            .is_some_and(|(_, verb)| produced_by(&operation_resource, verb, resource, action));
        if produces && attribution.explains(op_id, action, finished_before) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn watcher_meta() -> CommandMeta {
    CommandMeta {
        actor_kind: Some("docker"),
        actor_username: Some("docker".into()),
        ..CommandMeta::system()
    }
}

/// The names an image event's id can stand for: Docker reports pulls by the familiar
/// reference (`busybox:latest` for `docker.io/library/busybox`), dcp records the reference
/// as it was asked for.
fn image_names(id: &str) -> Vec<String> {
    let familiar = normalize_reference(id);
    let mut names = vec![id.to_string(), familiar.clone()];
    if !familiar.starts_with("sha256:") {
        let first = familiar.split('/').next().unwrap_or_default();
        let has_registry = familiar.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if !has_registry {
            names.push(format!("docker.io/{familiar}"));
            names.push(format!("index.docker.io/{familiar}"));
            if !familiar.contains('/') {
                names.push(format!("library/{familiar}"));
                names.push(format!("docker.io/library/{familiar}"));
                names.push(format!("index.docker.io/library/{familiar}"));
            }
        }
    }
    names
}

/// Records one Docker event unless dcp caused it.
async fn handle(
    state: &AppState,
    host: &str,
    message: EventMessage,
    attribution: &mut Attribution,
) -> anyhow::Result<()> {
    let action = message.action.clone().unwrap_or_default();
    // `exec_start: sh`, `health_status: healthy`: the action is the first word.
    let action = action
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let actor = message.actor.clone().unwrap_or_default();
    let id = actor.id.clone().unwrap_or_default();
    let attributes: BTreeMap<String, String> = actor
        .attributes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let time_nano = message
        .time_nano
        .or(message.time.map(|t| t * 1_000_000_000))
        .unwrap_or_default();
    let name = attributes.get("name").cloned().unwrap_or_default();
    let at = Utc::now();
    let meta = watcher_meta();
    let (resource, targets) = match message.typ {
        Some(EventMessageTypeEnum::CONTAINER) => ("container", vec![id.clone()]),
        Some(EventMessageTypeEnum::IMAGE) => ("image", image_names(&id)),
        Some(EventMessageTypeEnum::VOLUME) => ("volume", vec![id.clone()]),
        Some(EventMessageTypeEnum::NETWORK) => ("network", vec![id.clone(), name.clone()]),
        _ => return Ok(()),
    };
    if id.is_empty() || time_nano == 0 {
        return Ok(());
    }
    settle_operations(state).await?;
    // A container dcp creates carries the creating operation's label (checked against the
    // operations: anyone can set a label with the CLI). A recreate's replacement is not
    // mapped to its container until the recreate is recorded: its label says whose it is.
    if let Some(op_id) = attributes
        .get(OP_LABEL)
        .and_then(|v| v.parse::<Uuid>().ok())
        .filter(|_| resource == "container")
    {
        let operation: Option<(String, String)> = sqlx::query_as(
            "SELECT action, status FROM operations WHERE id = $1 \
             AND action IN ('container.create', 'container.recreate') \
             AND coalesce(completed_at, now()) >= to_timestamp($2) - make_interval(secs => $3)",
        )
        .bind(op_id)
        .bind(time_nano as f64 / 1e9)
        .bind(SLACK_SECS)
        .fetch_optional(&state.pool)
        .await?;
        // A replacement is created and started by its recreate; it is stopped and removed
        // by the recreate only when it is undone (failed, or still running its undo).
        let ours = operation.as_ref().is_some_and(|(full, status)| {
            match (full.as_str(), action.as_str()) {
                ("container.create", "create") => true,
                ("container.recreate", "create" | "start") => true,
                ("container.recreate", "kill" | "die" | "stop" | "destroy") => {
                    status != "succeeded"
                }
                _ => false,
            }
        });
        if ours {
            return Ok(());
        }
    }
    if caused_by_dcp(
        state,
        attribution,
        host,
        resource,
        &targets,
        &action,
        time_nano,
    )
    .await?
    {
        return Ok(());
    }
    let result = match resource {
        "container" => {
            return observe_container(state, host, &id, &action, time_nano, attributes, &meta).await
        }
        "image" => {
            // A pull names the reference; a delete or untag names the image id.
            let reference = if action == "pull" {
                normalize_reference(&id)
            } else {
                id.clone()
            };
            let aggregate = resource_key("image", host, &reference).to_string();
            let command = ImageCommand::Observe {
                host: host.to_string(),
                reference,
                action,
                time_nano,
                attributes,
                at,
            };
            state
                .commands
                .execute_retrying::<Image>(&aggregate, command, &meta, vec![])
                .await
        }
        "volume" => {
            let aggregate = resource_key("volume", host, &id).to_string();
            let command = VolumeCommand::Observe {
                host: host.to_string(),
                name: id.clone(),
                action,
                time_nano,
                attributes,
                at,
            };
            state
                .commands
                .execute_retrying::<Volume>(&aggregate, command, &meta, vec![])
                .await
        }
        _ => {
            let network_name = if name.is_empty() { id.clone() } else { name };
            let aggregate = resource_key("network", host, &network_name).to_string();
            let command = NetworkCommand::Observe {
                host: host.to_string(),
                name: network_name,
                network_id: id.clone(),
                action,
                time_nano,
                attributes,
                at,
            };
            state
                .commands
                .execute_retrying::<Network>(&aggregate, command, &meta, vec![])
                .await
        }
    };
    recorded(result, host, &id)
}

/// A refusal (an event the aggregate does not take, e.g. a malformed action) is logged and
/// skipped: it must not stop the watcher. Any other failure (the database) stops this
/// pass before the cursor moves, so the event is handled again when the stream reopens.
fn recorded<E: std::error::Error>(
    result: Result<Option<dcp_projections::LogCursor>, CommandError<E>>,
    host: &str,
    id: &str,
) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(error)) => {
            tracing::warn!(%host, %id, %error, "a Docker event was not recorded");
            Ok(())
        }
        Err(other) => Err(anyhow::anyhow!(
            "recording a Docker event for {id}: {other}"
        )),
    }
}

async fn observe_container(
    state: &AppState,
    host: &str,
    docker_id: &str,
    action: &str,
    time_nano: i64,
    attributes: BTreeMap<String, String>,
    meta: &CommandMeta,
) -> anyhow::Result<()> {
    let known: Option<Uuid> = sqlx::query_scalar(
        "SELECT aggregate_id FROM container_ids WHERE host = $1 AND docker_id = $2",
    )
    .bind(host)
    .bind(docker_id)
    .fetch_optional(&state.pool)
    .await?;
    let aggregate_id = match known {
        Some(id) => id,
        None => {
            // Found by inspecting it when it still exists (this also settles a dcp create
            // whose outcome was lost); from the event's attributes when it is already gone.
            match state.containers.resolve(host, docker_id, meta).await {
                Ok(target) => {
                    if action == "create" {
                        // The discovery is the record of an outside create.
                        return Ok(());
                    }
                    target.aggregate_id
                }
                Err(crate::containers::ContainersError::NotFound { .. }) => {
                    let aggregate_id = Uuid::now_v7();
                    let command = ContainerCommand::Discover {
                        host: host.to_string(),
                        docker_id: docker_id.to_string(),
                        name: attributes.get("name").cloned().unwrap_or_default(),
                        image: attributes.get("image").cloned().unwrap_or_default(),
                        state: action.to_string(),
                        at: Utc::now(),
                    };
                    let mapping = SideWrite::MapContainer {
                        host: host.to_string(),
                        docker_id: docker_id.to_string(),
                        aggregate_id,
                    };
                    match state
                        .commands
                        .execute_with::<Container>(
                            &aggregate_id.to_string(),
                            command,
                            meta,
                            vec![mapping],
                        )
                        .await
                    {
                        Ok(_) => {}
                        // Discovered meanwhile (a request resolving it): observe on theirs.
                        Err(CommandError::Conflict(_)) => {}
                        Err(other) => anyhow::bail!("discovering container {docker_id}: {other}"),
                    }
                    if action == "create" {
                        return Ok(());
                    }
                    match sqlx::query_scalar(
                        "SELECT aggregate_id FROM container_ids WHERE host = $1 AND docker_id = $2",
                    )
                    .bind(host)
                    .bind(docker_id)
                    .fetch_optional(&state.pool)
                    .await?
                    {
                        Some(id) => id,
                        None => return Ok(()),
                    }
                }
                Err(error) => anyhow::bail!("resolving container {docker_id}: {error}"),
            }
        }
    };
    let command = ContainerCommand::Observe {
        action: action.to_string(),
        time_nano,
        attributes,
        at: Utc::now(),
    };
    let result = state
        .commands
        .execute_retrying::<Container>(&aggregate_id.to_string(), command, meta, vec![])
        .await;
    recorded(result, host, docker_id)
}

#[cfg(test)]
mod tests {
    use super::{image_names, produced_by, Attribution};
    use uuid::Uuid;

    #[test]
    fn a_finished_operation_explains_each_action_once() {
        let mut attribution = Attribution::default();
        let stop = Uuid::from_u128(1);
        // While it runs: two signals are both the stop's.
        assert!(attribution.explains(stop, "kill", false));
        assert!(attribution.explains(stop, "kill", false));
        assert!(attribution.explains(stop, "die", false));
        // After it: a trailing event it has not explained yet is still its own…
        assert!(attribution.explains(stop, "stop", true));
        // …but a second `die` is someone else's.
        assert!(!attribution.explains(stop, "die", true));
    }

    #[test]
    fn dcp_operations_explain_the_docker_events_they_cause() {
        let container = |verb, action| produced_by("container", verb, "container", action);
        assert!(container("stop", "die"));
        assert!(container("restart", "start"));
        assert!(container("delete", "destroy"));
        assert!(produced_by("image", "delete", "image", "untag"));
        assert!(produced_by("network", "delete", "network", "destroy"));
        // A create makes the named volumes it mounts.
        assert!(produced_by("container", "create", "volume", "create"));
        assert!(!produced_by("container", "start", "volume", "create"));
        // An out-of-memory kill is never dcp's doing, nor a start during a stop.
        assert!(!container("stop", "oom"));
        assert!(!container("stop", "start"));
        assert!(!container("start", "die"));
        assert!(!produced_by("volume", "create", "volume", "destroy"));
        assert!(!produced_by("network", "create", "container", "create"));
    }

    #[test]
    fn image_events_match_the_reference_as_it_was_asked_for() {
        let names = image_names("busybox:latest");
        assert!(names.contains(&"docker.io/library/busybox:latest".to_string()));
        assert!(names.contains(&"library/busybox:latest".to_string()));
        let names = image_names("127.0.0.1:5000/team/app:1");
        assert_eq!(
            names,
            ["127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1"]
        );
        let names = image_names("team/app");
        assert!(names.contains(&"docker.io/team/app:latest".to_string()));
        assert!(!names.contains(&"docker.io/library/team/app:latest".to_string()));
    }
}
