//! Startup and shutdown: database, migrations, projection runners, first users, HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dcp_projections::{all_projections, LogWaker, ProjectionProgress, ProjectionRunner};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::{Accounts, AccountsDeps, GeneratedLogin, SessionPolicy};
use crate::auth::password::PasswordHasher;
use crate::auth::refresh::Successors;
use crate::auth::tokens::TokenKeys;
use crate::checkpoints::AuditKey;
use crate::commands::CommandBus;
use crate::config::Settings;
use crate::containers::Containers;
use crate::db::{self, Database};
use crate::denials::Denials;
use crate::docker::reach::Deployment;
use crate::docker::LocalDocker;
use crate::history::History;
use crate::hosts::{HostMonitor, HostRegistry, Hosts};
use crate::http::{self, AppInner, AppState};
use crate::read_models::ReadModels;
use crate::realtime::bus::EventBus;
use crate::realtime::sockets::SocketRegistry;
use crate::realtime::streams::{Streams, StreamsDeps};
use crate::resources::{Resources, ResourcesDeps};
use crate::secrets::sealed::MasterKey;
use crate::wizards::Wizards;

/// A built, bound server: call [`Application::run_until_stopped`].
pub struct Application {
    address: SocketAddr,
    listener: TcpListener,
    state: AppState,
    /// Operations that outlive their request (image pulls): a stopping server waits for them.
    background: TaskTracker,
    database: Database,
    shutdown: CancellationToken,
    workers: CancellationToken,
    runners: Vec<JoinHandle<()>>,
    generated_logins: Vec<GeneratedLogin>,
    /// Native HTTPS, when configured.
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Application {
    /// Connects (or starts the embedded database), migrates, starts the projection
    /// runners, creates the first users and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::http::context::TrustedProxies::parse(&settings.trusted_proxies)
            .map_err(|error| anyhow::anyhow!("DCP_TRUSTED_PROXIES: {error}"))?;
        // A certificate that does not load stops the start, before anything else happens.
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(http::tls::server_config(cert, key)?),
            _ => None,
        };
        let settings = Arc::new(settings);
        let (pool, database) = db::open(&settings).await?;
        db::prepare(&settings, &pool).await?;
        // `shutdown` stops the server (SIGTERM, a test); `workers` stops what runs beside the
        // requests (projection runners, relay, bus, watchers, …), only once the requests and
        // background operations are done: they may still need the read models to settle.
        let shutdown = CancellationToken::new();
        let workers = CancellationToken::new();
        let waker = LogWaker::listen(&pool, workers.clone())
            .await
            .context("Failed to listen for event notifications")?;
        let progress = ProjectionProgress::new(pool.clone(), waker.clone());
        let mut runners = start_projection_runners(&pool, &waker, &progress, &workers);
        let bus = crate::realtime::bus::connect(settings.nats_url.as_deref(), workers.clone())
            .await
            .context("Failed to connect to NATS")?;
        runners.push(
            crate::realtime::bus::relay::Relay::new(pool.clone(), bus.clone(), waker.clone())
                .spawn(workers.clone()),
        );
        let assembled = Assembly::new(settings.clone(), pool, waker, progress, bus)?;
        // Bind first: a busy port must fail before a first admin is created whose
        // generated password would then never be shown.
        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("Failed to bind {}", settings.bind))?;
        let address = listener.local_addr()?;
        let generated_logins = assembled
            .state
            .accounts
            .ensure_first_users(settings.admin_password.as_ref(), settings.demo_users)
            .await?;
        runners.extend(assembled.spawn_workers(&workers).await?);
        Ok(Application {
            address,
            listener,
            state: assembled.state,
            background: assembled.background,
            database,
            shutdown,
            workers,
            runners,
            generated_logins,
            tls,
        })
    }

    /// The bound address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Passwords generated at first start (print them once).
    pub fn generated_logins(&self) -> &[GeneratedLogin] {
        &self.generated_logins
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains requests, stops the
    /// runners and the embedded database.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let router = http::router(self.state.clone());
        let shutdown = self.shutdown.clone();
        // Sockets are not requests: when stopping, they are told so (1001) at once, and
        // waited for below, after the last request.
        let sockets = self.state.sockets.clone();
        let closing = self.shutdown.clone();
        tokio::spawn(async move {
            closing.cancelled().await;
            sockets.close_all_going_away();
        });
        tracing::info!(address = %self.address, https = self.tls.is_some(), "dcp is listening");
        let stopping = async move { shutdown.cancelled().await };
        match self.tls {
            Some(config) => {
                use axum::serve::ListenerExt;
                // `tap_io` gives the listener the peer address as connect info.
                let listener =
                    http::tls::TlsListener::new(self.listener, config, self.shutdown.clone())
                        .tap_io(|_| {});
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stopping)
                .await
            }
            None => {
                axum::serve(
                    self.listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stopping)
                .await
            }
        }
        .context("HTTP server failed")?;
        self.shutdown.cancel();
        // The requests are done (they settle on running projections); now the rest.
        // Operations running in the background (image pulls) finish and record their
        // outcome; one still running after the bound is left to the reconciler.
        self.background.close();
        if tokio::time::timeout(OPERATIONS_DRAIN, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.background.len(),
                "operations still running {OPERATIONS_DRAIN:?} after the shutdown; the reconciler settles them"
            );
        }
        if !self.state.sockets.drained(Duration::from_secs(5)).await {
            tracing::warn!(
                open = self.state.sockets.open_sockets(),
                "WebSockets still open 5 s after the shutdown; dropping them"
            );
        }
        self.workers.cancel();
        for runner in self.runners {
            let _ = runner.await;
        }
        self.state.pool.close().await;
        self.database.close().await
    }
}

/// The services, wired to what they use, and what the workers beside them need.
struct Assembly {
    state: AppState,
    background: TaskTracker,
    commands: CommandBus,
    registry: Arc<HostRegistry>,
    monitor: HostMonitor,
}

impl Assembly {
    fn new(
        settings: Arc<Settings>,
        pool: PgPool,
        waker: LogWaker,
        progress: ProjectionProgress,
        bus: Arc<dyn EventBus>,
    ) -> anyhow::Result<Self> {
        let master_key = Arc::new(MasterKey::from_settings(&settings)?);
        let registry = Arc::new(HostRegistry::new(LocalDocker::new(
            settings.docker_host.as_deref(),
        )));
        let commands = CommandBus::new(pool.clone()).with_local_waker(waker);
        let reads = ReadModels::new(pool.clone(), progress);
        let denials = Denials::new(commands.clone());
        let background = TaskTracker::new();
        let containers = Containers::new(
            commands.clone(),
            registry.clone(),
            reads.clone(),
            denials.clone(),
            Arc::new(Deployment::detect(&settings.protected)),
        );
        let resources = Resources::new(ResourcesDeps {
            commands: commands.clone(),
            hosts: registry.clone(),
            reads: reads.clone(),
            denials: denials.clone(),
            containers: containers.clone(),
            background: background.clone(),
        });
        let monitor = HostMonitor::new(
            commands.clone(),
            pool.clone(),
            registry.clone(),
            master_key.clone(),
        );
        let hosts = Hosts::new(
            commands.clone(),
            reads.clone(),
            registry.clone(),
            master_key,
            monitor.clone(),
        );
        let sockets = Arc::new(SocketRegistry::default());
        let streams = Streams::new(StreamsDeps {
            reads: reads.clone(),
            registry: registry.clone(),
            sockets: sockets.clone(),
            containers: containers.clone(),
            commands: commands.clone(),
        });
        let history = History::new(
            reads.clone(),
            containers.clone(),
            registry.clone(),
            Arc::new(AuditKey::from_settings(&settings)?),
        );
        let state = AppState(Arc::new(AppInner {
            accounts: accounts(&settings, &commands, &reads)?,
            wizards: Wizards::new(commands.clone(), reads.clone(), hosts.clone()),
            hosts,
            history,
            containers,
            resources,
            streams,
            sockets,
            denials,
            reads,
            started_at: Instant::now(),
            db_breaker: Arc::default(),
            bus,
            registry: registry.clone(),
            settings,
            pool,
        }));
        Ok(Assembly {
            state,
            background,
            commands,
            registry,
            monitor,
        })
    }

    /// Starts what runs beside the requests: the host monitor (once the remote hosts are
    /// known), the metrics listener, the reconciler, the socket revoker, the Docker event
    /// watchers.
    async fn spawn_workers(
        &self,
        workers: &CancellationToken,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let state = &self.state;
        let commands = self.commands.clone();
        self.registry.on_key_mismatch(Arc::new(move |id: &str| {
            let commands = commands.clone();
            let id = id.to_string();
            Arc::new(move |seen: String| {
                crate::hosts::monitor::record_key_mismatch(commands.clone(), id.clone(), seen);
            })
        }));
        // Remote hosts are known before the Docker event watchers start.
        if let Err(error) = self.monitor.sync().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "Failed to load the remote hosts"
            );
        }
        let mut spawned = vec![self.monitor.clone().spawn(workers.clone())];
        crate::metrics::handle();
        if let Some(address) = &state.settings.metrics_bind {
            spawned.push(
                crate::http::metrics::serve_unauthenticated(
                    state.clone(),
                    address.clone(),
                    workers.clone(),
                )
                .await?,
            );
        }
        spawned.push(spawn_reconciler(state.clone(), workers.clone()));
        spawned.push(state.sockets.spawn_revoker(
            state.bus.subscribe(),
            state.pool.clone(),
            workers.clone(),
        ));
        if state.settings.watch_docker_events {
            let watcher = crate::watcher::Watcher {
                commands: self.commands.clone(),
                reads: state.reads.clone(),
                registry: self.registry.clone(),
                containers: state.containers.clone(),
            };
            spawned.extend(crate::watcher::spawn_watchers(watcher, workers.clone()));
        }
        Ok(spawned)
    }
}

/// The accounts service, with the token keys and the password hasher.
fn accounts(
    settings: &Settings,
    commands: &CommandBus,
    reads: &ReadModels,
) -> anyhow::Result<Accounts> {
    let jwt_secret = crate::secrets::jwt_secret(settings)?;
    Ok(Accounts::new(AccountsDeps {
        commands: commands.clone(),
        reads: reads.clone(),
        hasher: Arc::new(PasswordHasher::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )?),
        tokens: Arc::new(TokenKeys::new(
            jwt_secret.expose_secret().as_bytes(),
            settings.access_token_ttl(),
        )),
        successors: Successors::new(jwt_secret.expose_secret().as_bytes()),
        sessions: SessionPolicy {
            session_ttl: settings.session_ttl(),
            refresh_reuse_grace: settings.refresh_reuse_grace(),
        },
    }))
}

/// How long a stopping server waits for operations running in the background.
pub const OPERATIONS_DRAIN: Duration = Duration::from_secs(50);

/// Advisory lock key: one reconciler at a time across replicas.
const RECONCILER_LOCK: i64 = 0x0dc9_0000_0000_0003;

/// Settles operations left without an outcome (a crash, an engine that stopped answering):
/// at startup and then every 15 s, on one replica at a time.
fn spawn_reconciler(state: AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let settle_after = state.settings.operation_settle_after();
        loop {
            if let Err(error) = reconcile_once(&state, settle_after).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "reconciling operations failed; retrying"
                );
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {}
            }
        }
    })
}

async fn reconcile_once(state: &AppState, settle_after: std::time::Duration) -> anyhow::Result<()> {
    let mut lock = state.pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RECONCILER_LOCK)
        .fetch_one(&mut lock)
        .await?;
    if locked {
        let containers = state.containers.reconcile(settle_after).await;
        let resources = state.resources.reconcile(settle_after).await;
        let _ = sqlx::Connection::close(lock).await;
        let count = containers?.len() + resources?;
        if count > 0 {
            tracing::info!(count, "settled operations left without an outcome");
        }
    } else {
        let _ = sqlx::Connection::close(lock).await;
    }
    Ok(())
}

/// One runner per projection; each takes its advisory lock or stands by.
pub fn start_projection_runners(
    pool: &PgPool,
    waker: &LogWaker,
    progress: &ProjectionProgress,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    all_projections()
        .into_iter()
        .map(|projection| {
            ProjectionRunner::new(pool.clone(), projection, waker.clone(), progress.clone())
                .spawn(shutdown.clone())
        })
        .collect()
}
