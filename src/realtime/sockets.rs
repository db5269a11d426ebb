//! The sockets open on this server: each registered with its user, session and role, to
//! enforce a cap per user and to close them when their session or account changes
//! (logout, revocation, deactivation, deletion or a role change). Two paths close them:
//! the bus, at once; and every [`STORE_CHECK_EVERY`] a look at the users' and sessions'
//! own streams in the store, which needs neither the bus nor a projection nor the log's
//! horizon, so a revocation closes its sockets within that time even with NATS down or the
//! log held back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dcp_aggregates::Role;
use dcp_projections::GlobalLogReader;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::bus::Envelope;
use crate::auth::principal::Principal;

/// Open sockets per user on one server.
pub const MAX_SOCKETS_PER_USER: usize = 32;

/// How often the open sockets are checked against the store itself.
pub const STORE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Why every socket is closed when the server stops.
pub const SHUTTING_DOWN: &str = "the server is shutting down";

struct Entry {
    user_id: Uuid,
    session_id: Uuid,
    role: Role,
    close: watch::Sender<Option<&'static str>>,
}

/// The sockets open on this server.
#[derive(Default)]
pub struct SocketRegistry {
    sockets: Mutex<HashMap<Uuid, Entry>>,
}

/// A registered socket: deregisters itself when dropped.
pub struct Registration {
    registry: Arc<SocketRegistry>,
    id: Uuid,
    pub closed: watch::Receiver<Option<&'static str>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut sockets) = self.registry.sockets.lock() {
            sockets.remove(&self.id);
        }
    }
}

impl SocketRegistry {
    /// Registers a socket of `principal`, unless the user already has too many.
    pub fn admit(self: &Arc<Self>, principal: &Principal) -> Option<Registration> {
        let mut sockets = self.sockets.lock().ok()?;
        let open = sockets
            .values()
            .filter(|e| e.user_id == principal.user_id)
            .count();
        if open >= MAX_SOCKETS_PER_USER {
            return None;
        }
        let id = Uuid::new_v4();
        let (close, closed) = watch::channel(None);
        sockets.insert(
            id,
            Entry {
                user_id: principal.user_id,
                session_id: principal.session_id,
                role: principal.role,
                close,
            },
        );
        Some(Registration {
            registry: self.clone(),
            id,
            closed,
        })
    }

    /// Closes every socket with 1001: the server is stopping.
    pub fn close_all_going_away(&self) {
        self.close_where(SHUTTING_DOWN, |_| true);
    }

    /// Waits (at most `limit`) until every socket has closed.
    pub async fn drained(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.open_sockets() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    pub fn open_sockets(&self) -> usize {
        self.sockets.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn close_where(&self, reason: &'static str, matches: impl Fn(&Entry) -> bool) {
        if let Ok(sockets) = self.sockets.lock() {
            for entry in sockets.values().filter(|e| matches(e)) {
                let _ = entry.close.send(Some(reason));
            }
        }
    }

    /// Closes the sockets an event takes the right away from.
    pub fn apply(&self, envelope: &Envelope) {
        let id = envelope.aggregate.id.parse::<Uuid>().ok();
        match (
            envelope.aggregate.aggregate_type.as_str(),
            envelope.event_type.as_str(),
        ) {
            ("session", "SessionLoggedOut" | "SessionRevoked") => {
                self.close_where("the session ended", |e| Some(e.session_id) == id)
            }
            ("user", "UserDeactivated" | "UserDeleted") => {
                self.close_where("the account was deactivated", |e| Some(e.user_id) == id)
            }
            ("user", "UserRoleChanged") => {
                self.close_where("the account's role changed", |e| Some(e.user_id) == id)
            }
            _ => {}
        }
    }

    /// Checks every open socket's session and role against the read models and closes
    /// those that changed (after the revoker missed events).
    pub async fn recheck(&self, pool: &sqlx::PgPool) {
        let open: Vec<(Uuid, Uuid, Role)> = match self.sockets.lock() {
            Ok(sockets) => sockets
                .values()
                .map(|e| (e.user_id, e.session_id, e.role))
                .collect(),
            Err(_) => return,
        };
        let mut checked: HashMap<(Uuid, Uuid), Option<Role>> = HashMap::new();
        for (user_id, session_id, _) in open {
            if checked.contains_key(&(user_id, session_id)) {
                continue;
            }
            let now = match crate::auth::principal::load_principal(pool, user_id, session_id).await
            {
                Ok(Ok(principal)) => Some(principal.role),
                Ok(Err(_)) => None,
                // The database is away: the next check decides.
                Err(_) => continue,
            };
            checked.insert((user_id, session_id), now);
        }
        self.close_where("the session or role changed", |e| {
            checked
                .get(&(e.user_id, e.session_id))
                .is_some_and(|now| *now != Some(e.role))
        });
    }

    /// Checks every open socket's session and user against their own streams in the
    /// store, and closes those whose session ended, whose user was barred, or whose role
    /// changed since the socket opened.
    pub async fn check_store(&self, pool: &sqlx::PgPool) {
        let (users, sessions): (Vec<Uuid>, Vec<Uuid>) = match self.sockets.lock() {
            Ok(sockets) if !sockets.is_empty() => {
                sockets.values().map(|e| (e.user_id, e.session_id)).unzip()
            }
            _ => return,
        };
        let standing = match GlobalLogReader::access_standing(pool, &users, &sessions).await {
            Ok(standing) => standing,
            Err(error) => {
                // The database is away: nothing can be opened meanwhile either.
                tracing::debug!(%error, "Failed to check the open sockets against the store");
                return;
            }
        };
        self.close_where("the session or role changed", |e| {
            standing.ended_sessions.contains(&e.session_id)
                || standing.users.iter().any(|(user, now)| {
                    *user == e.user_id
                        && (now.barred
                            || now
                                .role
                                .as_deref()
                                .is_some_and(|role| role != e.role.as_str()))
                })
        });
    }

    /// Follows the bus on this server and applies every event, and checks the open sockets
    /// against the store every [`STORE_CHECK_EVERY`] (spawned once at start).
    pub fn spawn_revoker(
        self: &Arc<Self>,
        mut events: broadcast::Receiver<Arc<Envelope>>,
        pool: sqlx::PgPool,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut store_check = tokio::time::interval(STORE_CHECK_EVERY);
            store_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = store_check.tick() => {
                        registry.check_store(&pool).await;
                        continue;
                    }
                    received = events.recv() => received,
                };
                match received {
                    Ok(envelope) => registry.apply(&envelope),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // What it missed may have been a logout: every socket is checked.
                        tracing::warn!(
                            missed,
                            "the socket revoker fell behind the bus; checking every socket"
                        );
                        registry.recheck(&pool).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}
