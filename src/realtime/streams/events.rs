//! The events feed: which events a user may see, and the replay of stored events after a
//! position (bounded: a client too far behind loads the state from the API instead).

use dcp_projections::{GlobalLogReader, LogCursor};

use super::Streams;
use crate::auth::policy::{self, EventFacts};
use crate::auth::principal::Principal;
use crate::realtime::bus::Envelope;
use crate::realtime::RealtimeError;

/// Events a replay sends at most; further behind, the client resyncs from the REST API.
pub const REPLAY_LIMIT: usize = 10_000;

/// Stored events read per batch of a replay (a connection per batch, released before the
/// batch is sent: a client that reads slowly holds no database connection).
const REPLAY_BATCH: i64 = 500;

/// Whether `viewer` may see `envelope` ([`policy::may_see_event`]).
pub fn visible_to(viewer: &Principal, envelope: &Envelope) -> bool {
    let facts = EventFacts {
        aggregate_type: &envelope.aggregate.aggregate_type,
        aggregate_id: &envelope.aggregate.id,
        actor_id: envelope.actor.id.as_deref(),
        session_user: envelope.data.get("user_id").and_then(|v| v.as_str()),
    };
    policy::may_see_event(viewer, facts)
}

/// A replay under way: where it is in the log and how many events it has given.
#[derive(Debug)]
pub struct Replay {
    cursor: LogCursor,
    given: usize,
}

impl Streams {
    /// Starts a replay of the events after position `after` (0: from the start); refused
    /// up front when more than [`REPLAY_LIMIT`] events follow it.
    pub async fn replay_after(&self, after: i64) -> Result<Replay, RealtimeError> {
        let pool = self.reads.pool();
        let cursor = if after == 0 {
            LogCursor::START
        } else {
            GlobalLogReader::cursor_of(pool, after)
                .await?
                .ok_or_else(|| {
                    RealtimeError::invalid("after", format!("no event at position {after}"))
                })?
        };
        // Counted only as far as the limit: a client asking from the log's start costs one
        // bounded index scan, not a count of the whole log.
        let cap = REPLAY_LIMIT as i64 + 1;
        if GlobalLogReader::count_after_at_most(pool, cursor, cap).await? >= cap {
            return Err(RealtimeError::ResyncRequired(format!(
                "more than {REPLAY_LIMIT} events to replay: load the current state from the API, then reconnect without ?after"
            )));
        }
        Ok(Replay { cursor, given: 0 })
    }

    /// The next events of a replay (every one, visible or not: the caller filters); empty
    /// at the head of the log. Past [`REPLAY_LIMIT`] events (the log grew while replaying),
    /// the client must resync.
    pub async fn next_replayed(&self, replay: &mut Replay) -> Result<Vec<Envelope>, RealtimeError> {
        let batch = {
            let mut conn = self.reads.pool().acquire().await?;
            GlobalLogReader::read_batch(&mut conn, replay.cursor, REPLAY_BATCH).await?
        };
        let allowed = REPLAY_LIMIT - replay.given;
        if allowed == 0 && !batch.is_empty() {
            return Err(RealtimeError::ResyncRequired(format!(
                "more than {REPLAY_LIMIT} events to replay: load the current state from the API, then reconnect without ?after"
            )));
        }
        let batch: Vec<_> = batch.into_iter().take(allowed).collect();
        if let Some(last) = batch.last() {
            replay.cursor = last.cursor();
        }
        replay.given += batch.len();
        Ok(batch.iter().map(Envelope::from_event).collect())
    }
}
