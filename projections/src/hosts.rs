//! The `hosts` and `wizards` read models. Each row holds the view of one aggregate, folded
//! by the same code that shows its state at a past moment ([`crate::past`]), so the two can
//! never disagree.

use std::collections::HashMap;

use anyhow::Context;
use cqrs_es::Aggregate;
use dcp_aggregates::host::Host;
use dcp_aggregates::wizard::Wizard;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::past::{AggregateState, HostState, WizardState};
use crate::runner::Projection;

/// Maintains `hosts` from `host` events (a removed host's row is deleted).
pub struct HostsProjection;

/// Maintains `wizards` from `wizard` events.
pub struct WizardsProjection;

fn decode_failed(event: &StoredEvent) -> String {
    format!(
        "Failed to fold {} at position {}",
        event.event_type, event.global_position
    )
}

/// The events of aggregate type `kind` in `events`, grouped by aggregate id in log order.
fn grouped<'a>(events: &'a [StoredEvent], kind: &str) -> Vec<(String, Vec<&'a StoredEvent>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<&StoredEvent>> = HashMap::new();
    for event in events.iter().filter(|e| e.aggregate_type == kind) {
        groups
            .entry(event.aggregate_id.clone())
            .or_insert_with(|| {
                order.push(event.aggregate_id.clone());
                Vec::new()
            })
            .push(event);
    }
    order
        .into_iter()
        .map(|id| {
            let events = groups.remove(&id).unwrap_or_default();
            (id, events)
        })
        .collect()
}

/// Folds `events` (one aggregate's, in order) into `state`; returns it with the last event.
fn fold(
    mut state: AggregateState,
    events: Vec<&StoredEvent>,
) -> anyhow::Result<(AggregateState, Option<&StoredEvent>)> {
    let mut last = None;
    for event in events {
        state.apply(event).with_context(|| decode_failed(event))?;
        last = Some(event);
    }
    Ok((state, last))
}

#[async_trait::async_trait]
impl Projection for HostsProjection {
    const NAME: &'static str = "hosts";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &["hosts"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        for (id, events) in grouped(events, Host::TYPE) {
            let existing: Option<(sqlx::types::Json<HostState>,)> =
                sqlx::query_as("SELECT doc FROM hosts WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let state = AggregateState::Host(existing.map(|(doc,)| doc.0).unwrap_or_default());
            let (AggregateState::Host(host), Some(last)) = fold(state, events)? else {
                continue;
            };
            if host.removed {
                sqlx::query("DELETE FROM hosts WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                continue;
            }
            sqlx::query(
                "INSERT INTO hosts (id, name, status, doc, updated_at, version, last_position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
                 name = EXCLUDED.name, status = EXCLUDED.status, doc = EXCLUDED.doc, \
                 updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, \
                 last_position = EXCLUDED.last_position",
            )
            .bind(&id)
            .bind(&host.name)
            .bind(&host.status)
            .bind(sqlx::types::Json(&host))
            .bind(host.updated_at.unwrap_or(last.recorded_at))
            .bind(last.sequence)
            .bind(last.global_position)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Projection for WizardsProjection {
    const NAME: &'static str = "wizards";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &["wizards"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        for (id, events) in grouped(events, Wizard::TYPE) {
            let Ok(id) = id.parse::<Uuid>() else {
                continue;
            };
            let existing: Option<(sqlx::types::Json<WizardState>,)> =
                sqlx::query_as("SELECT doc FROM wizards WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let state = AggregateState::Wizard(existing.map(|(doc,)| doc.0).unwrap_or_default());
            let (AggregateState::Wizard(wizard), Some(last)) = fold(state, events)? else {
                continue;
            };
            let Some(user_id) = wizard.user_id else {
                continue;
            };
            sqlx::query(
                "INSERT INTO wizards (id, user_id, wizard_type, status, doc, updated_at, last_position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
                 status = EXCLUDED.status, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at, \
                 last_position = EXCLUDED.last_position",
            )
            .bind(id)
            .bind(user_id)
            .bind(&wizard.wizard_type)
            .bind(&wizard.status)
            .bind(sqlx::types::Json(&wizard))
            .bind(wizard.updated_at.unwrap_or(last.recorded_at))
            .bind(last.global_position)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
