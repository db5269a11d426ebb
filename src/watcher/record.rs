//! Recording one Docker event: attributed to dcp (skipped), or recorded as an observation
//! on the resource's aggregate (a container dcp has not seen is discovered first).

use std::collections::BTreeMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use chrono::Utc;
use dcp_aggregates::container::{Container, ContainerCommand};
use dcp_aggregates::image::{Image, ImageCommand};
use dcp_aggregates::network::{Network, NetworkCommand};
use dcp_aggregates::operation::ResourceError;
use dcp_aggregates::resource_key;
use dcp_aggregates::volume::{Volume, VolumeCommand};
use uuid::Uuid;

use super::attribution::{caused_by_dcp, Attribution, SLACK_SECS};
use super::{settle_operations, Watcher};
use crate::commands::{CommandError, CommandMeta};
use crate::containers::{ContainersError, OP_LABEL};
use crate::docker::normalize_reference;
use crate::event_store::SideWrite;

/// Who records what Docker did by itself.
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

/// One Docker event, as the watcher reads it.
struct Observed {
    /// `container`, `image`, `volume` or `network`.
    resource: &'static str,
    /// The first word of Docker's action (`exec_start: sh` is `exec_start`).
    action: String,
    /// The object's id (a container or network id, an image reference or id, a volume name).
    id: String,
    /// The names dcp's operations may record it under.
    targets: Vec<String>,
    attributes: BTreeMap<String, String>,
    time_nano: i64,
}

impl Observed {
    /// The event, if it is about a kind of object dcp records and says what and when.
    fn of(message: EventMessage) -> Option<Observed> {
        let action = message.action.clone().unwrap_or_default();
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
        let (resource, targets) = match message.typ {
            Some(EventMessageTypeEnum::CONTAINER) => ("container", vec![id.clone()]),
            Some(EventMessageTypeEnum::IMAGE) => ("image", image_names(&id)),
            Some(EventMessageTypeEnum::VOLUME) => ("volume", vec![id.clone()]),
            Some(EventMessageTypeEnum::NETWORK) => ("network", vec![id.clone(), name]),
            _ => return None,
        };
        (!id.is_empty() && time_nano != 0).then_some(Observed {
            resource,
            action,
            id,
            targets,
            attributes,
            time_nano,
        })
    }
}

/// Records one Docker event unless dcp caused it.
pub(super) async fn handle(
    watcher: &Watcher,
    host: &str,
    message: EventMessage,
    attribution: &mut Attribution,
) -> anyhow::Result<()> {
    let Some(event) = Observed::of(message) else {
        return Ok(());
    };
    settle_operations(watcher).await?;
    if made_by_its_operation(watcher, &event).await?
        || caused_by_dcp(
            watcher,
            attribution,
            host,
            event.resource,
            &event.targets,
            &event.action,
            event.time_nano,
        )
        .await?
    {
        return Ok(());
    }
    let meta = watcher_meta();
    if event.resource == "container" {
        let Observed {
            id,
            action,
            time_nano,
            attributes,
            ..
        } = event;
        return observe_container(watcher, host, &id, &action, time_nano, attributes, &meta).await;
    }
    let id = event.id.clone();
    let result = observe_resource(watcher, host, event, &meta).await;
    recorded(result, host, &id)
}

/// A container dcp creates carries the creating operation's label (checked against the
/// operations: anyone can set a label with the CLI). A recreate's replacement is not
/// mapped to its container until the recreate is recorded: its label says whose it is.
/// Whether that operation made this event.
async fn made_by_its_operation(watcher: &Watcher, event: &Observed) -> anyhow::Result<bool> {
    let Some(op_id) = event
        .attributes
        .get(OP_LABEL)
        .and_then(|v| v.parse::<Uuid>().ok())
        .filter(|_| event.resource == "container")
    else {
        return Ok(false);
    };
    let operation: Option<(String, String)> = sqlx::query_as(
        "SELECT action, status FROM operations WHERE id = $1 \
         AND action IN ('container.create', 'container.recreate') \
         AND coalesce(completed_at, now()) >= to_timestamp($2) - make_interval(secs => $3)",
    )
    .bind(op_id)
    .bind(event.time_nano as f64 / 1e9)
    .bind(SLACK_SECS)
    .fetch_optional(watcher.reads.pool())
    .await?;
    // A replacement is created and started by its recreate; it is stopped and removed by
    // the recreate only when it is undone (failed, or still running its undo).
    Ok(operation.as_ref().is_some_and(|(full, status)| {
        match (full.as_str(), event.action.as_str()) {
            ("container.create", "create") => true,
            ("container.recreate", "create" | "start") => true,
            ("container.recreate", "kill" | "die" | "stop" | "destroy") => status != "succeeded",
            _ => false,
        }
    }))
}

/// Records an image, volume or network event on the resource's aggregate.
async fn observe_resource(
    watcher: &Watcher,
    host: &str,
    event: Observed,
    meta: &CommandMeta,
) -> Result<Option<dcp_projections::LogCursor>, CommandError<ResourceError>> {
    let Observed {
        resource,
        action,
        id,
        attributes,
        time_nano,
        ..
    } = event;
    let at = Utc::now();
    let commands = &watcher.commands;
    match resource {
        "image" => {
            // A pull names the reference; a delete or untag names the image id.
            let reference = if action == "pull" {
                normalize_reference(&id)
            } else {
                id
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
            commands
                .execute_retrying::<Image>(&aggregate, command, meta, vec![])
                .await
        }
        "volume" => {
            let aggregate = resource_key("volume", host, &id).to_string();
            let command = VolumeCommand::Observe {
                host: host.to_string(),
                name: id,
                action,
                time_nano,
                attributes,
                at,
            };
            commands
                .execute_retrying::<Volume>(&aggregate, command, meta, vec![])
                .await
        }
        _ => {
            let name = attributes.get("name").cloned().unwrap_or_default();
            let network_name = if name.is_empty() { id.clone() } else { name };
            let aggregate = resource_key("network", host, &network_name).to_string();
            let command = NetworkCommand::Observe {
                host: host.to_string(),
                name: network_name,
                network_id: id,
                action,
                time_nano,
                attributes,
                at,
            };
            commands
                .execute_retrying::<Network>(&aggregate, command, meta, vec![])
                .await
        }
    }
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
    watcher: &Watcher,
    host: &str,
    docker_id: &str,
    action: &str,
    time_nano: i64,
    attributes: BTreeMap<String, String>,
    meta: &CommandMeta,
) -> anyhow::Result<()> {
    let known = watcher.containers.aggregate_of(host, docker_id).await?;
    let aggregate_id = match known {
        Some(id) => id,
        None => {
            // Found by inspecting it when it still exists (this also settles a dcp create
            // whose outcome was lost); from the event's attributes when it is already gone.
            match watcher.containers.resolve(host, docker_id, meta).await {
                Ok(target) => {
                    if action == "create" {
                        // The discovery is the record of an outside create.
                        return Ok(());
                    }
                    target.aggregate_id
                }
                Err(ContainersError::NotFound { .. }) => {
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
                    match watcher
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
                    match watcher.containers.aggregate_of(host, docker_id).await? {
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
    let result = watcher
        .commands
        .execute_retrying::<Container>(&aggregate_id.to_string(), command, meta, vec![])
        .await;
    recorded(result, host, docker_id)
}

#[cfg(test)]
mod tests {
    use super::image_names;

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
