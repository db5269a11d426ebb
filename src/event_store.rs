//! The event repository behind cqrs-es: postgres-es reads the streams, and appends are
//! one `INSERT … RETURNING` statement that reports where the events landed.
//!
//! postgres-es appends with BEGIN, one INSERT per event and COMMIT, and gives no position
//! back, so a command needed five round trips (load, three for the append, one to find its
//! position). A single multi-row INSERT is atomic on its own and returns the
//! `(transaction_id, global_position)` of every row: two round trips per command. The
//! table, the optimistic concurrency (its primary key) and the read path are postgres-es's.
//!
//! A command may carry [`SideWrite`]s: writes to tables that hold what events must not
//! (password hashes, unique-handle claims). They commit in the same transaction as the
//! events, so a password change is never recorded without the new hash, or the reverse.

use std::cell::{Cell, RefCell};

use cqrs_es::persist::{
    EventUpcaster, PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream,
    SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, CqrsFramework};
use dcp_aggregates::versioning;
use dcp_projections::LogCursor;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// A cqrs-es framework over [`EventRepository`] (plain event store, no snapshots).
pub type Cqrs<A> = CqrsFramework<A, PersistedEventStore<EventRepository, A>>;

/// The framework for aggregate `A`; read models are built from the global log, so no
/// cqrs-es queries are attached. Stored events of older versions load through
/// [`dcp_aggregates::versioning`].
pub fn cqrs<A: Aggregate>(pool: PgPool, services: A::Services) -> Cqrs<A> {
    let upcaster: Box<dyn EventUpcaster> = Box::new(StoredShapeUpcaster {
        aggregate_type: A::TYPE,
    });
    CqrsFramework::new(
        PersistedEventStore::new_event_store(EventRepository::new(pool))
            .with_upcasters(vec![upcaster]),
        vec![],
        services,
    )
}

/// cqrs-es's hook into the upcasters of `dcp_aggregates::versioning`, for one aggregate type.
struct StoredShapeUpcaster {
    aggregate_type: &'static str,
}

impl EventUpcaster for StoredShapeUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        !versioning::is_current(self.aggregate_type, event_type, event_version)
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        match versioning::upcast(
            self.aggregate_type,
            &event.event_type,
            &event.event_version,
            &mut event.payload,
        ) {
            Ok(version) => event.event_version = version.to_string(),
            // An event this build does not know (a newer dcp wrote it): loading the
            // aggregate fails on it, rather than deciding from a state that lacks it or
            // that ignored the fields it does not know.
            Err(reason) => {
                event.payload =
                    serde_json::json!({ "<not readable by this build>": reason.to_string() });
            }
        }
        event
    }
}

/// A write to a side table that commits with the command's events, or not at all.
#[derive(Debug, Clone, PartialEq)]
pub enum SideWrite {
    /// Store (or replace) a user's argon2id hash.
    SetPasswordHash { user_id: Uuid, hash: String },
    /// Release unique handles (`username:…`, `email:…`) the user no longer uses.
    ReleaseHandles { user_id: Uuid, handles: Vec<String> },
    /// A recreate replaced Docker container `from` with `to`: the aggregate now stands
    /// for `to` (a second recording of the same recreate finds nothing to change).
    RemapContainer {
        host: String,
        from: String,
        to: String,
        aggregate_id: Uuid,
    },
    /// Forget everything a deleted user had besides events: handles, hash, refresh tokens.
    ForgetUser { user_id: Uuid },
    /// Store a sealed secret (sealed by the caller; the event refers to it by id).
    StoreSecret {
        id: Uuid,
        kind: &'static str,
        key_id: String,
        sealed: Vec<u8>,
        created_by: Option<Uuid>,
    },
    /// Forget sealed secrets no longer referenced (a host removed, credentials replaced).
    ForgetSecrets { ids: Vec<Uuid> },
    /// `owner` (a wizard or host id) uses secret `id`; claimed by another, the append fails
    /// (409).
    ClaimSecret { id: Uuid, owner: String },
    /// `owner` no longer uses secret `id` (it stays stored for its maker).
    ReleaseSecret { id: Uuid, owner: String },
    /// Host `host_id` is named `name` (case-insensitively unique); taken, the append fails
    /// (409).
    ClaimHostName { host_id: String, name: String },
    /// Host `host_id` no longer has its names other than `keep` (`None`: none at all).
    ReleaseHostNames {
        host_id: String,
        keep: Option<String>,
    },
    /// The Container aggregate `aggregate_id` stands for Docker container `docker_id` on
    /// `host`. A second mapping of the same container fails the whole append (409).
    MapContainer {
        host: String,
        docker_id: String,
        aggregate_id: Uuid,
    },
}

impl SideWrite {
    /// Writes a sealed secret.
    async fn store_secret(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if let SideWrite::StoreSecret {
            id,
            kind,
            key_id,
            sealed,
            created_by,
        } = self
        {
            sqlx::query(
                "INSERT INTO sealed_secrets (id, kind, key_id, sealed, created_by) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(kind)
            .bind(key_id)
            .bind(sealed)
            .bind(created_by)
            .execute(conn)
            .await?;
        }
        Ok(())
    }

    /// Maps a container's `(host, docker id)` to its aggregate, or moves the mapping to a
    /// replacement.
    async fn map_container(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        match self {
            SideWrite::MapContainer {
                host,
                docker_id,
                aggregate_id,
            } => {
                sqlx::query(
                    "INSERT INTO container_ids (host, docker_id, aggregate_id) VALUES ($1, $2, $3)",
                )
                .bind(host)
                .bind(docker_id)
                .bind(aggregate_id)
                .execute(conn)
                .await?;
            }
            SideWrite::RemapContainer {
                host,
                from,
                to,
                aggregate_id,
            } => {
                sqlx::query(
                    "UPDATE container_ids SET docker_id = $3 WHERE host = $1 AND docker_id = $2 AND aggregate_id = $4",
                )
                .bind(host)
                .bind(from)
                .bind(to)
                .bind(aggregate_id)
                .execute(conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        match self {
            SideWrite::SetPasswordHash { user_id, hash } => {
                sqlx::query(
                    "INSERT INTO credentials (user_id, password_hash) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
                )
                .bind(user_id)
                .bind(hash)
                .execute(conn)
                .await?;
            }
            SideWrite::ReleaseHandles { user_id, handles } => {
                sqlx::query("DELETE FROM user_handles WHERE user_id = $1 AND handle = ANY($2)")
                    .bind(user_id)
                    .bind(handles)
                    .execute(conn)
                    .await?;
            }
            SideWrite::MapContainer { .. } | SideWrite::RemapContainer { .. } => {
                self.map_container(conn).await?
            }
            SideWrite::StoreSecret { .. } => self.store_secret(conn).await?,
            SideWrite::ClaimSecret { id, owner } => {
                claim(conn, "secret_claims", "secret_id", "owner", id, owner).await?;
            }
            SideWrite::ReleaseSecret { id, owner } => {
                sqlx::query("DELETE FROM secret_claims WHERE secret_id = $1 AND owner = $2")
                    .bind(id)
                    .bind(owner)
                    .execute(conn)
                    .await?;
            }
            SideWrite::ClaimHostName { host_id, name } => {
                let key = name.to_lowercase();
                claim(conn, "host_names", "name_key", "host_id", &key, host_id).await?;
            }
            SideWrite::ReleaseHostNames { host_id, keep } => {
                sqlx::query(
                    "DELETE FROM host_names WHERE host_id = $1 AND name_key IS DISTINCT FROM $2",
                )
                .bind(host_id)
                .bind(keep.as_ref().map(|k| k.to_lowercase()))
                .execute(conn)
                .await?;
            }
            SideWrite::ForgetSecrets { ids } => {
                sqlx::query("DELETE FROM sealed_secrets WHERE id = ANY($1)")
                    .bind(ids)
                    .execute(conn)
                    .await?;
            }
            SideWrite::ForgetUser { user_id } => {
                for table in ["user_handles", "credentials", "refresh_tokens"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(user_id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// Claims `key` for `owner` in `table`: kept if `owner` holds it already, taken if free;
/// held by another, the insert fails with a unique violation, which fails the append as a
/// conflict (409).
async fn claim<K>(
    conn: &mut PgConnection,
    table: &str,
    key_column: &str,
    owner_column: &str,
    key: &K,
    owner: &str,
) -> Result<(), sqlx::Error>
where
    K: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Sync,
{
    let holder: Option<String> = sqlx::query_scalar(&format!(
        "SELECT {owner_column} FROM {table} WHERE {key_column} = $1 FOR UPDATE"
    ))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if holder.as_deref() != Some(owner) {
        sqlx::query(&format!(
            "INSERT INTO {table} ({key_column}, {owner_column}) VALUES ($1, $2)"
        ))
        .bind(key)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What one command's execution carries to, and gets back from, the append.
struct CommandScope {
    side_writes: RefCell<Vec<SideWrite>>,
    appended: Cell<Option<LogCursor>>,
}

tokio::task_local! {
    static SCOPE: CommandScope;
}

/// Runs `command` with `side_writes` attached to its append; returns its output and the
/// cursor of the last event it appended (`None` when it appended nothing, in which case
/// the side writes did not happen either).
pub async fn tracking_appends<F: std::future::Future>(
    side_writes: Vec<SideWrite>,
    command: F,
) -> (F::Output, Option<LogCursor>) {
    let scope = CommandScope {
        side_writes: RefCell::new(side_writes),
        appended: Cell::new(None),
    };
    SCOPE
        .scope(scope, async move {
            let output = command.await;
            (output, SCOPE.with(|scope| scope.appended.get()))
        })
        .await
}

/// postgres-es for reads, one statement for appends.
pub struct EventRepository {
    pool: PgPool,
    reads: PostgresEventRepository,
}

impl EventRepository {
    pub fn new(pool: PgPool) -> Self {
        EventRepository {
            reads: PostgresEventRepository::new(pool.clone()),
            pool,
        }
    }
}

fn persistence_error(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => PersistenceError::ConnectionError(Box::new(error)),
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(
                "snapshots are not used by dcp".into(),
            ));
        }
        if events.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
        // Sent as text and cast to json, so the stored text is exactly what cqrs-es serialised.
        let payloads = column(|e| e.payload.to_string());
        let metadata = column(|e| e.metadata.to_string());
        let side_writes = SCOPE
            .try_with(|scope| scope.side_writes.take())
            .unwrap_or_default();
        let insert = sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT $1, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json \
             FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY \
                  AS e(aggregate_id, sequence, event_type, event_version, payload, metadata, n) \
             ORDER BY e.n \
             RETURNING transaction_id::text AS tx, global_position",
        )
        .bind(A::TYPE)
        .bind(column(|e| e.aggregate_id.clone()))
        .bind(&sequences)
        .bind(column(|e| e.event_type.clone()))
        .bind(column(|e| e.event_version.clone()))
        .bind(&payloads)
        .bind(&metadata);
        let rows = if side_writes.is_empty() {
            // One statement is one transaction: no BEGIN/COMMIT round trips.
            insert
                .fetch_all(&self.pool)
                .await
                .map_err(persistence_error)?
        } else {
            let mut tx = self.pool.begin().await.map_err(persistence_error)?;
            for write in &side_writes {
                write.apply(&mut tx).await.map_err(persistence_error)?;
            }
            let rows = insert
                .fetch_all(&mut *tx)
                .await
                .map_err(persistence_error)?;
            tx.commit().await.map_err(persistence_error)?;
            rows
        };
        let mut last: Option<LogCursor> = None;
        for row in rows {
            let tx: String = row.try_get("tx").map_err(persistence_error)?;
            let cursor = LogCursor {
                transaction_id: tx.parse().map_err(|e: std::num::ParseIntError| {
                    PersistenceError::UnknownError(Box::new(e))
                })?,
                position: row.try_get("global_position").map_err(persistence_error)?,
            };
            last = last.max(Some(cursor));
        }
        let _ = SCOPE.try_with(|scope| scope.appended.set(last));
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_all_events::<A>().await
    }
}
