//! What changed between two moments: the fields that differ, and which events (by whom)
//! changed them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{fold, FoldError};
use crate::log::StoredEvent;
use crate::metadata;

/// Who caused an event.
#[derive(Debug, Clone, Serialize)]
pub struct EventActor {
    pub id: Option<String>,
    pub username: Option<String>,
    pub role: Option<String>,
    /// `user` unless the platform or Docker did it (`docker`, `reconciler`, `system`).
    pub kind: String,
}

impl EventActor {
    /// The actor named in `event`'s metadata.
    pub fn of(event: &StoredEvent) -> Self {
        let text = |key| event.meta(key).map(str::to_string);
        EventActor {
            id: text(metadata::ACTOR_ID),
            username: text(metadata::ACTOR_USERNAME),
            role: text(metadata::ACTOR_ROLE),
            kind: text(metadata::ACTOR_KIND).unwrap_or_else(|| "user".into()),
        }
    }
}

/// One event between the two moments, and the fields it changed.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    pub global_position: i64,
    pub sequence: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub operation_id: Option<String>,
    pub actor: EventActor,
    /// Dotted paths of the state fields this event changed (`config.env.MODE`).
    pub changed: Vec<String>,
}

/// One field that differs between the two moments.
#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    /// Dotted path (`name`, `config.env.MODE`, `config.ports`).
    pub field: String,
    pub from: Value,
    pub to: Value,
    /// Global positions of the events that changed it in between.
    pub events: Vec<i64>,
}

/// What changed between two moments.
#[derive(Debug, Clone, Serialize)]
pub struct StateDiff {
    pub before: Value,
    pub after: Value,
    pub changes: Vec<FieldChange>,
    pub events: Vec<ChangeEvent>,
}

/// The difference between the state after `before` and after `before` + `between`, with
/// the fields each event of `between` changed.
pub fn diff(
    aggregate_type: &str,
    before: &[StoredEvent],
    between: &[StoredEvent],
) -> Result<StateDiff, FoldError> {
    let mut state = fold(aggregate_type, before)?;
    let start = state.to_json();
    let mut previous = start.clone();
    let mut touched: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut events = Vec::with_capacity(between.len());
    for event in between {
        state.apply(event)?;
        let next = state.to_json();
        let changed = changed_paths(&previous, &next);
        for path in &changed {
            touched
                .entry(path.clone())
                .or_default()
                .push(event.global_position);
        }
        events.push(ChangeEvent {
            global_position: event.global_position,
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            recorded_at: event.recorded_at,
            operation_id: event.meta(metadata::OPERATION_ID).map(str::to_string),
            actor: EventActor::of(event),
            changed,
        });
        previous = next;
    }
    let changes = changed_paths(&start, &previous)
        .into_iter()
        .map(|field| FieldChange {
            from: at_path(&start, &field),
            to: at_path(&previous, &field),
            // A field changed and changed back is not a change; the events that touched a
            // changed field include those of its intermediate values.
            events: touched
                .iter()
                .filter(|(path, _)| **path == field || is_within(path, &field))
                .flat_map(|(_, positions)| positions.iter().copied())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            field,
        })
        .collect();
    Ok(StateDiff {
        before: start,
        after: previous,
        changes,
        events,
    })
}

fn is_within(path: &str, parent: &str) -> bool {
    path.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with('.'))
        || parent
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Dotted paths of the leaves that differ; objects are walked, anything else (arrays
/// included) is compared whole. A key with a dot in it is kept as it is.
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    walk("", before, after, &mut paths);
    paths
}

fn walk(prefix: &str, before: &Value, after: &Value, paths: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                walk(
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    paths,
                );
            }
        }
        (a, b) if a != b => paths.push(prefix.to_string()),
        _ => {}
    }
}

/// The value at a path produced by [`changed_paths`] (`null` when absent).
pub(super) fn at_path(value: &Value, path: &str) -> Value {
    // Keys may contain dots (labels): match the longest key at each level.
    fn find<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
        if path.is_empty() {
            return Some(value);
        }
        let object = value.as_object()?;
        if let Some(found) = object.get(path) {
            return Some(found);
        }
        let mut candidates: Vec<(&String, &Value)> = object
            .iter()
            .filter(|(key, _)| {
                path.strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .collect();
        candidates.sort_by_key(|(key, _)| std::cmp::Reverse(key.len()));
        candidates
            .into_iter()
            .find_map(|(key, child)| find(child, &path[key.len() + 1..]))
    }
    find(value, path).cloned().unwrap_or(Value::Null)
}
