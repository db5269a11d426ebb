//! The Docker event watcher: records what happens on an engine without dcp asking.
//!
//! One watcher per host (an advisory lock makes one replica watch each host) follows
//! Docker's event stream for container lifecycle changes (`create`, `start`, `die` with
//! its exit code, `stop`, `kill`, `destroy`, `rename`, `oom`, `pause`, `unpause`,
//! `restart`), image pulls and deletions, and volume and network creation and removal.
//!
//! - **Not recorded twice.** An event caused by a dcp operation — one pending, or finished
//!   moments before the event, on the same Docker object, whose verb produces that Docker
//!   action ([`attribution::produced_by`]) — is skipped: the operation's own events already tell it. The
//!   watcher first waits for the operations read model to reach the log head, so a
//!   request recorded just before Docker acted is seen. Everything else becomes a
//!   `…Observed` event (audit `<resource>.observed`, actor kind `docker`); a container
//!   dcp has not seen before is discovered first.
//! - **Resumes.** The time of the last handled event is kept per host; after a restart or
//!   an engine outage the stream is reopened with `since` that time, and the aggregates
//!   drop events they already recorded (same Docker time and action).

mod attribution;
mod record;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use chrono::Utc;
use dcp_aggregates::resource_key;
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::commands::CommandBus;
use crate::containers::Containers;
use crate::docker::DockerHosts;
use crate::hosts::HostRegistry;
use crate::read_models::{ReadModels, OPERATIONS};
use attribution::Attribution;

/// Container actions recorded when made outside dcp.
const CONTAINER_ACTIONS: &[&str] = &[
    "create", "start", "die", "stop", "kill", "destroy", "rename", "oom", "pause", "unpause",
    "restart",
];
const IMAGE_ACTIONS: &[&str] = &["pull", "delete", "untag"];
const VOLUME_ACTIONS: &[&str] = &["create", "destroy"];
const NETWORK_ACTIONS: &[&str] = &["create", "destroy"];

/// What the watchers record with: the command bus, the read models, the engines, and the
/// containers service (a container dcp has not seen is discovered, as for any request).
#[derive(Clone)]
pub struct Watcher {
    pub commands: CommandBus,
    pub reads: ReadModels,
    pub registry: Arc<HostRegistry>,
    pub containers: Containers,
}

/// Advisory lock keys: one watcher per host across replicas.
fn lock_key(host: &str) -> i64 {
    let id = resource_key("docker-event-watcher", host, "");
    i64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap_or_default())
}

/// Starts one watcher per known host, and keeps the set in line with the hosts: a host
/// added later gets its watcher within [`SUPERVISE_INTERVAL`], a removed or disabled one
/// loses it.
pub fn spawn_watchers(watcher: Watcher, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(async move {
        let mut running: HashMap<String, (u64, CancellationToken, JoinHandle<()>)> = HashMap::new();
        loop {
            let wanted: HashMap<String, u64> =
                watcher.registry.watch_targets().into_iter().collect();
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
                let task = tokio::spawn(watch_host(watcher.clone(), host.clone(), token.clone()));
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

async fn watch_host(watcher: Watcher, host: String, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = watch_while_holding_lock(&watcher, &host, &shutdown) => outcome,
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
    watcher: &Watcher,
    host: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Watched> {
    let mut lock = watcher.reads.pool().acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(host))
        .fetch_one(&mut lock)
        .await?;
    if !locked {
        let _ = sqlx::Connection::close(lock).await;
        return Ok(Watched::NotLeader);
    }
    let result = follow(watcher, host, shutdown).await;
    // Closing the session releases the lock.
    let _ = sqlx::Connection::close(lock).await;
    result
}

/// Follows the event stream from the stored cursor until it ends or fails.
async fn follow(
    watcher: &Watcher,
    host: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Watched> {
    let docker = watcher.registry.streaming_client(host)?;
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT time_nano FROM docker_event_cursors WHERE host = $1")
            .bind(host)
            .fetch_optional(watcher.reads.pool())
            .await?;
    // First start: from now (what already exists is discovered when it is used).
    let since_nano = match stored {
        Some(nano) => nano,
        None => {
            let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
            save_cursor(watcher, host, now).await?;
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
    let mut attribution = Attribution::opened_at(since_nano as f64 / 1e9);
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
        record::handle(watcher, host, message, &mut attribution).await?;
        if time_nano > 0 {
            save_cursor(watcher, host, time_nano).await?;
        }
    }
}

async fn save_cursor(watcher: &Watcher, host: &str, time_nano: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO docker_event_cursors (host, time_nano) VALUES ($1, $2) \
         ON CONFLICT (host) DO UPDATE SET time_nano = GREATEST(docker_event_cursors.time_nano, EXCLUDED.time_nano), updated_at = now()",
    )
    .bind(host)
    .bind(time_nano)
    .execute(watcher.reads.pool())
    .await?;
    Ok(())
}

/// Waits until the operations read model has reached the log head. Requests are committed
/// before Docker is called, so then every operation that could explain an event is in it.
async fn settle_operations(watcher: &Watcher) -> anyhow::Result<()> {
    watcher
        .reads
        .settle_to_head(OPERATIONS)
        .await
        .map_err(|e| anyhow::anyhow!("the operations read model lags: {e}"))
}
