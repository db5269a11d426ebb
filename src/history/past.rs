//! Any past moment of one resource: its state rebuilt from its events up to a time or a
//! position in the log, and what changed between two moments, field by field, with the
//! events (and their actors) that changed it. See [`dcp_projections::past`].

use chrono::{DateTime, Utc};
use dcp_aggregates::Role;
use dcp_projections::past::{self, ChangeEvent, FieldChange};
use dcp_projections::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::lookup::PastTarget;
use super::{History, HistoryError};
use crate::auth::redaction;
use crate::commands::CommandMeta;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    /// The moment (RFC 3339): the state after every event recorded at or before it.
    pub at: Option<String>,
    /// Or a global position: the state after every event at or before it.
    pub position: Option<i64>,
    /// The Docker host (default `local`); not used for users.
    pub host: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The earlier moment: an RFC 3339 time or a global position.
    pub from: String,
    /// The later moment (default: now).
    pub to: Option<String>,
    /// The Docker host (default `local`); not used for users.
    pub host: Option<String>,
}

/// A moment: a time or a place in the log. Events at or before it count.
#[derive(Debug, Clone, Copy)]
enum Moment {
    Time(DateTime<Utc>),
    Position(i64),
    Now,
}

impl Moment {
    fn includes(&self, event: &StoredEvent) -> bool {
        match self {
            Moment::Time(at) => event.recorded_at <= *at,
            Moment::Position(position) => event.global_position <= *position,
            Moment::Now => true,
        }
    }

    fn parse(field: &'static str, text: &str) -> Result<Moment, HistoryError> {
        if let Ok(position) = text.parse::<i64>() {
            return if position < 0 {
                Err(HistoryError::invalid(field, "a position is not negative"))
            } else {
                Ok(Moment::Position(position))
            };
        }
        DateTime::parse_from_rfc3339(text)
            .map(|at| Moment::Time(at.with_timezone(&Utc)))
            .map_err(|_| {
                HistoryError::invalid(
                    field,
                    "an RFC 3339 time (2026-11-26T10:00:00Z) or a global position",
                )
            })
    }

    fn of_state_query(query: &StateQuery) -> Result<Moment, HistoryError> {
        match (&query.at, query.position) {
            (Some(_), Some(_)) => Err(HistoryError::invalid(
                "position",
                "give either at or position, not both",
            )),
            (Some(at), None) => match Moment::parse("at", at)? {
                Moment::Position(_) => Err(HistoryError::invalid(
                    "at",
                    "an RFC 3339 time; use position for a global position",
                )),
                moment => Ok(moment),
            },
            (None, Some(position)) if position < 0 => Err(HistoryError::invalid(
                "position",
                "a position is not negative",
            )),
            (None, Some(position)) => Ok(Moment::Position(position)),
            (None, None) => Ok(Moment::Now),
        }
    }
}

impl DiffQuery {
    fn moments(&self) -> Result<(Moment, Moment), HistoryError> {
        let from = Moment::parse("from", &self.from)?;
        let to = match &self.to {
            Some(to) => Moment::parse("to", to)?,
            None => Moment::Now,
        };
        Ok((from, to))
    }
}

/// The last event a state includes.
#[derive(Debug, Serialize, ToSchema)]
pub struct AsOf {
    pub global_position: i64,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
}

impl AsOf {
    fn of(events: &[StoredEvent]) -> Option<AsOf> {
        events.last().map(|e| AsOf {
            global_position: e.global_position,
            sequence: e.sequence,
            recorded_at: e.recorded_at,
        })
    }
}

/// One resource as it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The last event folded in; `null` when the resource had no event yet at that moment.
    pub as_of: Option<AsOf>,
    /// The state then; `null` when the resource was not known yet.
    #[schema(value_type = Option<Object>)]
    pub state: Value,
}

/// What changed between two moments.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffView {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub from: Option<AsOf>,
    pub to: Option<AsOf>,
    /// Each field that differs, with the events that changed it.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<FieldChange>,
    /// Every event in between, with its actor and the fields it changed.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<ChangeEvent>,
    #[schema(value_type = Option<Object>)]
    pub before: Value,
    #[schema(value_type = Option<Object>)]
    pub after: Value,
}

impl History {
    /// Aggregate `aggregate_id` of `aggregate_type` as it was at the moment `query` names;
    /// environment values shown to the roles that may read secrets.
    #[tracing::instrument(skip_all, fields(kind = ?target.kind, key = target.key), err(level = "debug"))]
    pub async fn state_at(
        &self,
        role: Role,
        target: PastTarget<'_>,
        query: &StateQuery,
        meta: &CommandMeta,
    ) -> Result<StateView, HistoryError> {
        let moment = Moment::of_state_query(query)?;
        let aggregate_type = target.kind.aggregate_type();
        let aggregate_id = self
            .aggregate_of(target, query.host.as_deref(), meta)
            .await?;
        let events = self.events_of(aggregate_type, &aggregate_id).await?;
        let until = events.iter().take_while(|e| moment.includes(e)).count();
        let included = &events[..until];
        let mut folded = if included.is_empty() {
            Value::Null
        } else {
            past::fold(aggregate_type, included)
                .map_err(anyhow::Error::new)?
                .to_json()
        };
        redaction::redact_for(role, &mut folded);
        Ok(StateView {
            aggregate_type: aggregate_type.to_string(),
            aggregate_id,
            as_of: AsOf::of(included),
            state: folded,
        })
    }

    /// What changed on an aggregate between the moments `query` names.
    #[tracing::instrument(skip_all, fields(kind = ?target.kind, key = target.key), err(level = "debug"))]
    pub async fn diff(
        &self,
        role: Role,
        target: PastTarget<'_>,
        query: &DiffQuery,
        meta: &CommandMeta,
    ) -> Result<DiffView, HistoryError> {
        let (from, to) = query.moments()?;
        let aggregate_type = target.kind.aggregate_type();
        let aggregate_id = self
            .aggregate_of(target, query.host.as_deref(), meta)
            .await?;
        let events = self.events_of(aggregate_type, &aggregate_id).await?;
        let start = events.iter().take_while(|e| from.includes(e)).count();
        let end = events.iter().take_while(|e| to.includes(e)).count();
        if end < start {
            return Err(HistoryError::invalid("to", "to is before from"));
        }
        let mut diff = past::diff(aggregate_type, &events[..start], &events[start..end])
            .map_err(anyhow::Error::new)?;
        if start == 0 {
            diff.before = Value::Null;
        }
        redaction::redact_for(role, &mut diff.before);
        redaction::redact_for(role, &mut diff.after);
        for change in &mut diff.changes {
            redaction::redact_field_for(role, &change.field, &mut change.from);
            redaction::redact_field_for(role, &change.field, &mut change.to);
        }
        Ok(DiffView {
            aggregate_type: aggregate_type.to_string(),
            aggregate_id,
            from: AsOf::of(&events[..start]),
            to: AsOf::of(&events[..end]),
            changes: diff.changes,
            events: diff.events,
            before: diff.before,
            after: diff.after,
        })
    }

    /// Every event of one aggregate, in order and in current shapes.
    async fn events_of(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, HistoryError> {
        self.reads
            .aggregate_events(aggregate_type, aggregate_id)
            .await?
            .ok_or(HistoryError::NotFound(aggregate_type))
    }
}
