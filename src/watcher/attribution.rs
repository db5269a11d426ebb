//! Whether a dcp operation explains a Docker event: the operations that produce each Docker
//! action, and which actions each recent operation has already explained.

use std::collections::HashMap;

use uuid::Uuid;

use super::Watcher;

/// How far apart (seconds) a dcp operation and a Docker event may be and still be one
/// thing (some events trail the API answer: the `die` after a `kill`).
pub(super) const SLACK_SECS: f64 = 2.0;

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
pub(super) struct Attribution {
    explained: HashMap<Uuid, Vec<String>>,
    order: std::collections::VecDeque<Uuid>,
    /// Seconds since the epoch (Docker's clock) from which this stream delivers events.
    opened_at: f64,
}

impl Attribution {
    const REMEMBERED: usize = 4096;

    /// For a stream that delivers events from `opened_at` (seconds since the epoch).
    pub(super) fn opened_at(opened_at: f64) -> Self {
        Attribution {
            opened_at,
            ..Attribution::default()
        }
    }

    pub(super) fn explains(&mut self, op_id: Uuid, action: &str, finished_before: bool) -> bool {
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

/// Whether a dcp operation explains this Docker event (the read model is settled).
pub(super) async fn caused_by_dcp(
    watcher: &Watcher,
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
    .fetch_all(watcher.reads.pool())
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

#[cfg(test)]
mod tests {
    use super::{produced_by, Attribution};
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
}
