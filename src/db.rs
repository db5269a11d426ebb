//! Database connection: pool settings, migrations, and the embedded cluster fallback.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::Settings;
use crate::embedded_pg::EmbeddedPostgres;

/// Session settings every connection gets: a stuck transaction must not stall every
/// global-log reader (their horizon is the oldest running transaction).
fn with_session_settings(options: PgConnectOptions) -> PgConnectOptions {
    options
        .options([
            ("idle_in_transaction_session_timeout", "60s"),
            ("statement_timeout", "60s"),
            // The command bus rings `dcp_events` after each commit instead (see the
            // event store migration: notifying inside the transaction serialises commits).
            ("dcp.notify_in_transaction", "off"),
        ])
        // `dcp/<host>/<pid>`: which replica a session belongs to, in pg_stat_activity (the
        // host tells containers apart, where every server is pid 1).
        .application_name(&format!("dcp/{}/{}", host_name(), std::process::id()))
}

/// This machine's (or container's) name, as the kernel knows it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().chars().take(32).collect())
        .unwrap_or_default()
}

/// The pool for `options`, with short acquire timeouts so an unreachable database
/// answers 503 quickly instead of hanging requests.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections.max(4))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(with_session_settings(options))
        .await
        .context("Failed to connect to PostgreSQL")
}

/// Applies the migrations in `migrations/` (sqlx serialises concurrent runs with a lock).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("Failed to apply database migrations")
}

/// Migrates the database `pool` reaches: as the owner role when `DCP_DATABASE_OWNER_URL` is
/// set, then granting `pool`'s role what dcp needs and no more (it appends to `events` but
/// cannot update, delete or truncate them); otherwise over `pool` itself (one role, as in
/// the embedded default).
pub async fn prepare(settings: &Settings, pool: &PgPool) -> anyhow::Result<()> {
    let Some(owner_url) = &settings.database_owner_url else {
        migrate(pool).await?;
        // The embedded cluster is dcp's own; an external one should get two roles.
        if settings.database_url.is_some() {
            warn_if_superuser(pool).await;
        }
        return Ok(());
    };
    let options: PgConnectOptions = owner_url
        .expose_secret()
        .parse()
        .context("DCP_DATABASE_OWNER_URL is not a valid PostgreSQL URL")?;
    let owner = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(with_session_settings(options))
        .await
        .context("Failed to connect to PostgreSQL as the owner role (DCP_DATABASE_OWNER_URL)")?;
    migrate(&owner).await?;
    let (runtime, superuser): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .context("Failed to look up dcp's database role")?;
    anyhow::ensure!(
        !superuser,
        "DATABASE_URL connects as '{runtime}', a superuser: with DCP_DATABASE_OWNER_URL set, dcp runs as a role that cannot rewrite the event log"
    );
    let owns_events: bool = sqlx::query_scalar(
        "SELECT tableowner = $1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'events'",
    )
    .bind(&runtime)
    .fetch_one(&owner)
    .await?;
    anyhow::ensure!(
        !owns_events,
        "DATABASE_URL connects as '{runtime}', which owns the events table: use another role than DCP_DATABASE_OWNER_URL's"
    );
    let role = format!("\"{}\"", runtime.replace('"', "\"\""));
    for grant in [
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        // The log is appended to, never rewritten; the migrations are the owner's.
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON events FROM {role}"),
        format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM {role}"),
    ] {
        sqlx::query(&grant)
            .execute(&owner)
            .await
            .with_context(|| format!("Failed to grant dcp's role its privileges ({grant})"))?;
    }
    owner.close().await;
    tracing::info!(role = %runtime, "migrated as the owner role; dcp's role appends to the event log and cannot rewrite it");
    Ok(())
}

/// A superuser can rewrite the event log and the audit trail: said once at start.
async fn warn_if_superuser(pool: &PgPool) {
    let superuser: Result<bool, _> =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await;
    if superuser.unwrap_or(false) {
        tracing::warn!(
            "dcp connects to PostgreSQL as a superuser, which can rewrite the event log: set DCP_DATABASE_OWNER_URL to migrate as the owner and run as a role that only appends (README: the database roles)"
        );
    }
}

/// Where the database is: a URL, or the embedded cluster this process started or attached to.
pub enum Database {
    External,
    /// The cluster, and for a server the lock file that keeps a second server off the data dir.
    Embedded(EmbeddedPostgres, Option<std::fs::File>),
}

/// Takes `<data dir>/dcp.lock` for the life of this server: a second `dcp serve` on the
/// same data dir would otherwise take the first one's PostgreSQL over.
fn lock_data_dir(settings: &Settings) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("Failed to create {}", settings.data_dir.display()))?;
    let path = settings.data_dir.join("dcp.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("Failed to open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another dcp server is running on the data dir {} (set DCP_DATA_DIR or DATABASE_URL to run a second one)",
            settings.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("Failed to lock {}", path.display()))
        }
    }
}

/// Connects to `DATABASE_URL`, or starts the embedded cluster in the data dir and owns it (a server
/// left running by a killed dcp is taken over).
pub async fn open(settings: &Settings) -> anyhow::Result<(PgPool, Database)> {
    if settings.database_url.is_some() {
        return open_with(settings, None, EmbeddedPostgres::start(&settings.data_dir)).await;
    }
    let lock = lock_data_dir(settings)?;
    open_with(
        settings,
        Some(lock),
        EmbeddedPostgres::start(&settings.data_dir),
    )
    .await
}

/// For command-line tools: connects to `DATABASE_URL`, or to the embedded cluster of a `dcp serve`
/// running on the data dir without disturbing it, or else starts the cluster for the duration.
pub async fn open_for_tool(settings: &Settings) -> anyhow::Result<(PgPool, Database)> {
    open_with(
        settings,
        None,
        EmbeddedPostgres::attach_or_start(&settings.data_dir),
    )
    .await
}

async fn open_with(
    settings: &Settings,
    lock: Option<std::fs::File>,
    embedded: impl std::future::Future<Output = anyhow::Result<EmbeddedPostgres>>,
) -> anyhow::Result<(PgPool, Database)> {
    match &settings.database_url {
        Some(url) => {
            let options: PgConnectOptions = url
                .expose_secret()
                .parse()
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            Ok((
                connect(options, settings.db_max_connections).await?,
                Database::External,
            ))
        }
        None => {
            let embedded = embedded.await?;
            let pool = connect(embedded.connect_options(), settings.db_max_connections).await?;
            Ok((pool, Database::Embedded(embedded, lock)))
        }
    }
}

impl Database {
    /// Stops the embedded cluster, if this process started (and still owns) it.
    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Database::External => Ok(()),
            // The lock file is released when dropped, after the cluster has stopped.
            Database::Embedded(embedded, _lock) => embedded.stop().await,
        }
    }
}

/// Whether `error` means the database cannot be used now (down, restarting, unreachable,
/// or the pool gave up waiting), rather than a problem with the query.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, and connection exceptions.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(code.as_ref(), "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// While the database is known to be down, requests fail at once (503, `Retry-After: 1`)
/// instead of each waiting for the pool's acquire timeout. A request that finds the
/// database unavailable only makes the breaker check: a fresh connection (not the pool,
/// which a load spike can exhaust) must fail for it to open, and it closes as soon as a
/// fresh connection works again.
#[derive(Default)]
pub struct DatabaseBreaker {
    down: std::sync::atomic::AtomicBool,
    checking: std::sync::atomic::AtomicBool,
}

impl DatabaseBreaker {
    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A request found the database unavailable: check at once with a fresh connection
    /// (the caller waits, at most 2 s, so the next request already meets the open
    /// breaker); while fresh connections fail, requests fail fast.
    pub async fn trip(self: &std::sync::Arc<Self>, pool: &PgPool) {
        use std::sync::atomic::Ordering;
        if self.checking.swap(true, Ordering::Relaxed) {
            return;
        }
        let options = pool.connect_options();
        let answers = move || {
            let options = options.clone();
            async move {
                let connected = tokio::time::timeout(
                    Duration::from_secs(2),
                    <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
                )
                .await;
                match connected {
                    Ok(Ok(connection)) => {
                        let _ = sqlx::Connection::close(connection).await;
                        true
                    }
                    _ => false,
                }
            }
        };
        if answers().await {
            // A busy pool, not an outage.
            self.checking.store(false, Ordering::Relaxed);
            return;
        }
        self.down.store(true, Ordering::Relaxed);
        tracing::warn!("the database is unavailable; failing requests fast until it answers");
        let breaker = self.clone();
        tokio::spawn(async move {
            while !answers().await {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            breaker.down.store(false, Ordering::Relaxed);
            breaker.checking.store(false, Ordering::Relaxed);
            tracing::info!("the database answers again");
        });
    }
}
