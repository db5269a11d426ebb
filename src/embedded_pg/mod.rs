//! A private PostgreSQL cluster for `dcp serve` when no `DATABASE_URL` is given.
//!
//! The cluster lives in `<data_dir>/postgres`, is built from the machine's PostgreSQL server binaries,
//! listens on a unix socket only (no TCP) and trusts local connections, which the socket directory's
//! 0700 mode restricts to the server's user (and root). PostgreSQL refuses to run as root, so when dcp
//! runs as root the server runs as the unprivileged `postgres` user that the Debian package creates.
//!
//! The server belongs to the `dcp serve` that started it. Command-line tools (`dcp projections`,
//! `dcp replay`) attach to that server instead, and only start (and stop) one when none runs.

mod binaries;
mod cluster;
mod process;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection;

use self::binaries::find_bin_dir;
use self::process::{
    effective_uid, is_postmaster_of, read_postmaster_pid, run, PostmasterPidFile, ServerPrograms,
    ServerUser,
};

const SUPERUSER: &str = "dcp";
const DATABASE: &str = "dcp";
const PORT: u16 = 5432;
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// How long to wait for the processes of a killed server to let go of its shared memory.
const SHARED_MEMORY_RELEASE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a running server that is starting up (e.g. recovering) to accept connections.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// A running private PostgreSQL cluster: either started by this process, which then stops it, or a
/// server another process owns that this process is only connected to.
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    /// `None` when attached to a server another process owns.
    owner: Option<Owner>,
}

/// What the process that started the server needs to stop it.
struct Owner {
    programs: ServerPrograms,
    postmaster_pid: Option<u32>,
    stopped: bool,
}

impl EmbeddedPostgres {
    /// Initialises (first time) and starts a private cluster in `<data_dir>/postgres`, unix socket only,
    /// waits until it accepts connections, and creates database `dcp` if missing. A server already
    /// running there is restarted, so that this process owns it.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir().await?;
        let run_as = if effective_uid()? == 0 {
            Some(ServerUser::postgres().await?)
        } else {
            None
        };
        let programs = ServerPrograms { bin_dir, run_as };
        tracing::info!(bin_dir = %programs.bin_dir.display(), run_as_postgres = run_as.is_some(),
            "Using embedded PostgreSQL");

        fs::create_dir_all(data_dir)
            .with_context(|| format!("Failed to create data dir {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("Failed to resolve data dir {}", data_dir.display()))?;
        let cluster_dir = data_dir.join("postgres");
        let log_file = data_dir.join("postgres.log");

        if !cluster_dir.join("PG_VERSION").exists() {
            programs.init_cluster(&cluster_dir).await?;
        }
        programs.check_cluster_owner(&cluster_dir)?;
        programs.check_writable(&cluster_dir).await?;
        let socket_dir = programs.prepare_socket_dir(&cluster_dir)?;
        programs
            .stop_leftover_server(&cluster_dir, &socket_dir)
            .await?;
        programs.write_settings(&cluster_dir, &socket_dir)?;
        programs.prepare_log_file(&log_file)?;
        programs.start_server(&cluster_dir, &log_file).await?;

        let server = EmbeddedPostgres {
            owner: Some(Owner {
                programs,
                postmaster_pid: read_postmaster_pid(&cluster_dir),
                stopped: false,
            }),
            cluster_dir,
            socket_dir,
        };
        // From here on, dropping `server` on an error stops the cluster again.
        server.create_database_if_missing().await?;
        tracing::info!(socket_dir = %server.socket_dir.display(), "Embedded PostgreSQL is ready");
        Ok(server)
    }

    /// Connects to the server of the cluster in `<data_dir>/postgres` if one is running (a
    /// `dcp serve`), leaving it running when done; otherwise starts one as [`Self::start`] does.
    pub async fn attach_or_start(data_dir: &Path) -> anyhow::Result<Self> {
        match Self::attach(data_dir).await? {
            Some(server) => Ok(server),
            None => Self::start(data_dir).await,
        }
    }

    /// Whether this handle is only connected to a server another process owns.
    pub fn is_attached(&self) -> bool {
        self.owner.is_none()
    }

    /// Connect options for database `dcp` over the unix socket (user `dcp`).
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(DATABASE)
            .ssl_mode(PgSslMode::Disable)
    }

    /// Fast shutdown (pg_ctl stop -m fast), waits for it. Does nothing to a server this handle is
    /// only attached to.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let still_owned = self.owns_server();
        let Some(owner) = &mut self.owner else {
            tracing::debug!(cluster = %self.cluster_dir.display(),
                "Leaving the embedded PostgreSQL of another process running");
            return Ok(());
        };
        if !still_owned {
            tracing::warn!(cluster = %self.cluster_dir.display(),
                "Embedded PostgreSQL was taken over by another process; not stopping it");
            return Ok(());
        }
        tracing::info!(cluster = %self.cluster_dir.display(), "Stopping embedded PostgreSQL");
        let mut pg_ctl = owner.programs.command("pg_ctl");
        pg_ctl.args(["stop", "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"]);
        pg_ctl.arg(&self.cluster_dir);
        // On failure, `drop` still tries an immediate shutdown.
        run(pg_ctl, "Failed to stop the embedded PostgreSQL").await?;
        owner.stopped = true;
        Ok(())
    }

    /// A handle on the running server of the cluster, or `None` when no server of ours runs there.
    async fn attach(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let Ok(data_dir) = data_dir.canonicalize() else {
            return Ok(None);
        };
        let cluster_dir = data_dir.join("postgres");
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            // The same test `start` uses to decide whether a server is left running.
            let Some(pid_file) = PostmasterPidFile::read(&cluster_dir) else {
                return Ok(None);
            };
            if !is_postmaster_of(pid_file.pid, &cluster_dir) {
                return Ok(None);
            }
            if let (true, Some(socket_dir)) = (pid_file.is_ready(), &pid_file.socket_dir) {
                let server = EmbeddedPostgres {
                    cluster_dir: cluster_dir.clone(),
                    socket_dir: socket_dir.clone(),
                    owner: None,
                };
                // Also covers a server whose owner has not yet created the database.
                match server.create_database_if_missing().await {
                    Ok(()) => {
                        tracing::info!(pid = pid_file.pid, socket_dir = %socket_dir.display(),
                            "Attached to the running embedded PostgreSQL");
                        return Ok(Some(server));
                    }
                    // Unless it is shutting down meanwhile, the failure is not a matter of waiting.
                    Err(error) if still_ready(&cluster_dir, pid_file.pid) => return Err(error),
                    Err(_) => {}
                }
            }
            ensure!(
                Instant::now() < deadline,
                "The embedded PostgreSQL running in {} (pid {}) did not accept connections within \
                 {} s",
                cluster_dir.display(),
                pid_file.pid,
                ATTACH_TIMEOUT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create_database_if_missing(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.connect_options().database("postgres"))
            .await
            .context("Failed to connect to the embedded PostgreSQL")?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await
                .context("Failed to look up database dcp")?;
        if !exists {
            tracing::info!("Creating database dcp");
            let created = sqlx::query("CREATE DATABASE dcp").execute(&mut conn).await;
            match created {
                Ok(_) => {}
                // Someone else created it meanwhile: fine.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => return Err(e).context("Failed to create database dcp"),
            }
        }
        conn.close()
            .await
            .context("Failed to close the setup connection")?;
        Ok(())
    }

    /// Whether this handle started the running postmaster and it is still the one running (another
    /// `start` on the same data dir restarts the cluster, and then the old handle must leave it alone).
    fn owns_server(&self) -> bool {
        self.owner.as_ref().is_some_and(|owner| {
            owner.postmaster_pid.is_some()
                && read_postmaster_pid(&self.cluster_dir) == owner.postmaster_pid
        })
    }
}

fn still_ready(cluster_dir: &Path, pid: u32) -> bool {
    PostmasterPidFile::read(cluster_dir).is_some_and(|file| file.pid == pid && file.is_ready())
        && is_postmaster_of(pid, cluster_dir)
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        let Some(owner) = &self.owner else {
            return;
        };
        if owner.stopped || !self.owns_server() {
            return;
        }
        tracing::warn!(cluster = %self.cluster_dir.display(),
            "Embedded PostgreSQL dropped without stop(); stopping it immediately");
        let mut pg_ctl = owner.programs.std_command("pg_ctl");
        pg_ctl.args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"]);
        pg_ctl
            .arg(&self.cluster_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Err(e) = pg_ctl.status() {
            tracing::error!(error = %e, "Failed to stop the embedded PostgreSQL");
        }
    }
}
