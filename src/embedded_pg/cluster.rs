//! Preparing and starting the cluster: initdb, ownership and access checks, the socket directory, our
//! settings, and a server left running by a killed dcp.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use super::process::{
    describe, is_postmaster_of, process_state, read_postmaster_pid, run,
    wait_for_cluster_processes_to_exit, ProcessState, ServerPrograms,
};
use super::{PG_CTL_TIMEOUT_SECS, PORT, SHARED_MEMORY_RELEASE_TIMEOUT, SUPERUSER};

/// `sun_path` holds 108 bytes including the trailing NUL.
const MAX_SOCKET_PATH_LEN: usize = 107;
/// Our settings, rewritten at every start and included at the end of `postgresql.conf`.
const SETTINGS_FILE: &str = "dcp.conf";
/// Remembers the socket directory chosen under /tmp when the data dir path is too long for a socket.
const SOCKET_DIR_RECORD: &str = "dcp_socket_dir";

impl ServerPrograms {
    pub(super) async fn init_cluster(&self, cluster_dir: &Path) -> anyhow::Result<()> {
        if cluster_dir.exists() {
            let mut entries = fs::read_dir(cluster_dir)
                .with_context(|| format!("Failed to read {}", cluster_dir.display()))?;
            ensure!(
                entries.next().is_none(),
                "{} is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away",
                cluster_dir.display()
            );
            fs::remove_dir(cluster_dir)
                .with_context(|| format!("Failed to remove {}", cluster_dir.display()))?;
        }
        // initdb into a staging dir and rename, so an interrupted initdb never leaves half a cluster.
        let staging = cluster_dir.with_file_name("postgres.initdb");
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("Failed to remove {}", staging.display()))?;
        }
        DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .with_context(|| format!("Failed to create {}", staging.display()))?;
        self.hand_over(&staging)?;
        self.check_writable(&staging).await?;

        tracing::info!(cluster = %cluster_dir.display(), "Initialising embedded PostgreSQL cluster");
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&staging).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ]);
        run(
            initdb,
            "Failed to initialise the embedded PostgreSQL cluster (initdb)",
        )
        .await?;

        let mut conf = OpenOptions::new()
            .append(true)
            .open(staging.join("postgresql.conf"))
            .context("Failed to open postgresql.conf")?;
        writeln!(
            conf,
            "\n# dcp's settings, rewritten at every start\ninclude_if_exists = '{SETTINGS_FILE}'"
        )
        .context("Failed to append to postgresql.conf")?;
        fs::rename(&staging, cluster_dir).with_context(|| {
            format!(
                "Failed to move the new cluster to {}",
                cluster_dir.display()
            )
        })
    }

    /// Fails clearly when the server's user cannot reach `dir`, e.g. a data dir under /root.
    pub(super) async fn check_writable(&self, dir: &Path) -> anyhow::Result<()> {
        let Some(user) = self.run_as else {
            return Ok(());
        };
        let status = tokio::process::Command::new("test")
            .arg("-w")
            .arg(dir)
            .uid(user.uid)
            .gid(user.gid)
            .current_dir("/")
            .status()
            .await
            .context("Failed to run `test` as user postgres")?;
        ensure!(
            status.success(),
            "User `postgres` cannot write to {}: dcp runs as root, so the embedded PostgreSQL runs as \
             user `postgres`, and every directory on the data dir path must be traversable by it \
             (chmod o+x each parent, or choose another DCP_DATA_DIR); or run dcp as a non-root user, \
             or set DATABASE_URL",
            dir.display()
        );
        Ok(())
    }

    pub(super) fn check_cluster_owner(&self, cluster_dir: &Path) -> anyhow::Result<()> {
        let Some(user) = self.run_as else {
            return Ok(());
        };
        let owner = fs::metadata(cluster_dir)
            .with_context(|| format!("Failed to stat {}", cluster_dir.display()))?
            .uid();
        ensure!(
            owner == user.uid,
            "The PostgreSQL cluster {dir} belongs to uid {owner}, but as dcp runs as root the cluster \
             runs as user `postgres` (uid {uid}): `chown -R postgres: {dir}`, or run dcp as uid {owner}",
            dir = cluster_dir.display(),
            uid = user.uid
        );
        Ok(())
    }

    /// A server left running by a dcp that was killed: stop it, so that we start (and own) it.
    pub(super) async fn stop_leftover_server(
        &self,
        cluster_dir: &Path,
        socket_dir: &Path,
    ) -> anyhow::Result<()> {
        let pid_file = cluster_dir.join("postmaster.pid");
        let Some(pid) = read_postmaster_pid(cluster_dir) else {
            return Ok(());
        };
        // A postgres process elsewhere (a recycled pid) is not ours to stop.
        if is_postmaster_of(pid, cluster_dir) {
            tracing::warn!(pid, cluster = %cluster_dir.display(),
                "Embedded PostgreSQL is already running (left by a previous dcp?); restarting it");
            let mut pg_ctl = self.command("pg_ctl");
            pg_ctl.args(["stop", "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"]);
            pg_ctl.arg(cluster_dir);
            run(pg_ctl, "Failed to stop the PostgreSQL server left running").await?;
            return Ok(());
        }
        match process_state(pid) {
            // postgres replaces the pid file itself, after checking that no process of the old
            // server still uses its shared memory.
            ProcessState::Gone => {
                tracing::info!(pid, "Found the postmaster.pid of a server that is gone");
            }
            // A killed postmaster that nobody reaped (a container's init may not), or a pid recycled
            // after a restart: postgres would take either for a live server and refuse to start.
            ProcessState::Postgres | ProcessState::Other => {
                tracing::warn!(
                    pid,
                    "postmaster.pid names a zombie or a process that is not postgres"
                );
                wait_for_cluster_processes_to_exit(cluster_dir).await?;
                fs::remove_file(&pid_file).context("Failed to remove a stale postmaster.pid")?;
                let socket_lock = socket_dir.join(format!(".s.PGSQL.{PORT}.lock"));
                if socket_lock.exists() {
                    fs::remove_file(&socket_lock)
                        .context("Failed to remove a stale socket lock file")?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn prepare_socket_dir(&self, cluster_dir: &Path) -> anyhow::Result<PathBuf> {
        let preferred = cluster_dir.join("run");
        if socket_path_fits(&preferred) {
            if !preferred.exists() {
                DirBuilder::new()
                    .mode(0o700)
                    .create(&preferred)
                    .with_context(|| format!("Failed to create {}", preferred.display()))?;
                self.hand_over(&preferred)?;
            }
            return Ok(preferred);
        }

        let record = cluster_dir.join(SOCKET_DIR_RECORD);
        if let Ok(recorded) = fs::read_to_string(&record) {
            let dir = PathBuf::from(recorded.trim());
            if socket_path_fits(&dir) && self.is_private_dir(&dir)? {
                return Ok(dir);
            }
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = PathBuf::from(format!("/tmp/dcp-pg-{}", &id[..12]));
        tracing::info!(socket_dir = %dir.display(), "Data dir path too long for a unix socket");
        // Not recursive: fails rather than reuse a directory someone else made.
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("Failed to create socket dir {}", dir.display()))?;
        self.hand_over(&dir)?;
        fs::write(&record, dir.as_os_str().as_encoded_bytes())
            .with_context(|| format!("Failed to write {}", record.display()))?;
        Ok(dir)
    }

    fn is_private_dir(&self, dir: &Path) -> anyhow::Result<bool> {
        let Ok(meta) = fs::symlink_metadata(dir) else {
            return Ok(false);
        };
        Ok(meta.is_dir() && meta.uid() == self.server_uid()? && meta.mode() & 0o077 == 0)
    }

    pub(super) fn write_settings(
        &self,
        cluster_dir: &Path,
        socket_dir: &Path,
    ) -> anyhow::Result<()> {
        let settings = format!(
            "# Written by dcp at every start. ALTER SYSTEM overrides these.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = 100\n\
             shared_buffers = 128MB\n\
             idle_in_transaction_session_timeout = '60s'\n",
            conf_escape(&socket_dir.to_string_lossy())
        );
        let path = cluster_dir.join(SETTINGS_FILE);
        fs::write(&path, settings)
            .with_context(|| format!("Failed to write {}", path.display()))?;
        self.hand_over(&path)
    }

    pub(super) fn prepare_log_file(&self, log_file: &Path) -> anyhow::Result<()> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log_file)
            .with_context(|| format!("Failed to create {}", log_file.display()))?;
        self.hand_over(log_file)
    }

    pub(super) async fn start_server(
        &self,
        cluster_dir: &Path,
        log_file: &Path,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + SHARED_MEMORY_RELEASE_TIMEOUT;
        loop {
            let log_offset = fs::metadata(log_file).map(|m| m.len()).unwrap_or(0);
            let mut pg_ctl = self.command("pg_ctl");
            pg_ctl.args(["start", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"]);
            pg_ctl.arg(cluster_dir).arg("-l").arg(log_file);
            let output = pg_ctl
                .output()
                .await
                .context("Failed to run pg_ctl start")?;
            if output.status.success() {
                return Ok(());
            }
            let log = read_from(log_file, log_offset);
            // The backends of a killed postmaster take a moment to notice and exit; until then
            // postgres refuses to start on the same data dir.
            if log.contains("pre-existing shared memory block") && Instant::now() < deadline {
                tracing::info!("Waiting for the processes of a killed PostgreSQL to exit");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            bail!(
                "Failed to start the embedded PostgreSQL: {}\nLast lines of {}:\n{}",
                describe(&output),
                log_file.display(),
                last_lines(&log, 30)
            );
        }
    }
}

fn socket_path_fits(dir: &Path) -> bool {
    dir.as_os_str().len() + format!("/.s.PGSQL.{PORT}").len() <= MAX_SOCKET_PATH_LEN
}

fn conf_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(offset)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}
