//! A private PostgreSQL cluster for `dcp serve` when no `DATABASE_URL` is given.
//!
//! The cluster lives in `<data_dir>/postgres`, is built from the machine's PostgreSQL server binaries,
//! listens on a unix socket only (no TCP) and trusts local connections, which the socket directory's
//! 0700 mode restricts to the server's user (and root). PostgreSQL refuses to run as root, so when dcp
//! runs as root the server runs as the unprivileged `postgres` user that the Debian package creates.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection;

const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
const SUPERUSER: &str = "dcp";
const DATABASE: &str = "dcp";
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes including the trailing NUL.
const MAX_SOCKET_PATH_LEN: usize = 107;
/// Our settings, rewritten at every start and included at the end of `postgresql.conf`.
const SETTINGS_FILE: &str = "dcp.conf";
/// Remembers the socket directory chosen under /tmp when the data dir path is too long for a socket.
const SOCKET_DIR_RECORD: &str = "dcp_socket_dir";
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// How long to wait for the processes of a killed server to let go of its shared memory.
const SHARED_MEMORY_RELEASE_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str = "install the PostgreSQL server, e.g. `apt-get install postgresql` on \
                            Debian/Ubuntu, or set DATABASE_URL";

/// A running private PostgreSQL cluster, owned by this process.
pub struct EmbeddedPostgres {
    programs: ServerPrograms,
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    postmaster_pid: Option<u32>,
    stopped: bool,
}

impl EmbeddedPostgres {
    /// Initialises (first time) and starts a private cluster in `<data_dir>/postgres`, unix socket only,
    /// waits until it accepts connections, and creates database `dcp` if missing.
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
            programs,
            postmaster_pid: read_postmaster_pid(&cluster_dir),
            cluster_dir,
            socket_dir,
            stopped: false,
        };
        // From here on, dropping `server` on an error stops the cluster again.
        server.create_database_if_missing().await?;
        tracing::info!(socket_dir = %server.socket_dir.display(), "Embedded PostgreSQL is ready");
        Ok(server)
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

    /// Fast shutdown (pg_ctl stop -m fast), waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if !self.owns_server() {
            tracing::warn!(cluster = %self.cluster_dir.display(),
                "Embedded PostgreSQL was taken over by another process; not stopping it");
            return Ok(());
        }
        tracing::info!(cluster = %self.cluster_dir.display(), "Stopping embedded PostgreSQL");
        let mut pg_ctl = self.programs.command("pg_ctl");
        pg_ctl.args(["stop", "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"]);
        pg_ctl.arg(&self.cluster_dir);
        // On failure, `drop` still tries an immediate shutdown.
        run(pg_ctl, "Failed to stop the embedded PostgreSQL").await?;
        self.stopped = true;
        Ok(())
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

    /// Whether the running postmaster is still the one we started (another `start` on the same data dir
    /// restarts the cluster, and then the old handle must leave it alone).
    fn owns_server(&self) -> bool {
        self.postmaster_pid.is_some()
            && read_postmaster_pid(&self.cluster_dir) == self.postmaster_pid
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.stopped || !self.owns_server() {
            return;
        }
        tracing::warn!(cluster = %self.cluster_dir.display(),
            "Embedded PostgreSQL dropped without stop(); stopping it immediately");
        let mut pg_ctl = self.programs.std_command("pg_ctl");
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

/// The unprivileged account the server runs as when dcp runs as root.
#[derive(Clone, Copy)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

impl ServerUser {
    async fn postgres() -> anyhow::Result<Self> {
        let id = |flag: &'static str| async move {
            let output = tokio::process::Command::new("id")
                .args([flag, "postgres"])
                .output()
                .await
                .context("Failed to run `id`")?;
            ensure!(
                output.status.success(),
                "dcp runs as root and PostgreSQL refuses to, so the embedded cluster runs as user \
                 `postgres`, which does not exist: {INSTALL_HINT} (the package creates the user), or \
                 run dcp as a non-root user"
            );
            let id = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse::<u32>();
            id.context("Failed to parse the output of `id`")
        };
        let user = ServerUser {
            uid: id("-u").await?,
            gid: id("-g").await?,
        };
        ensure!(
            user.uid != 0,
            "User `postgres` has uid 0; PostgreSQL cannot run as it"
        );
        Ok(user)
    }
}

/// The server programs, and the account they run as.
struct ServerPrograms {
    bin_dir: PathBuf,
    run_as: Option<ServerUser>,
}

impl ServerPrograms {
    fn std_command(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin_dir.join(program));
        // A clean environment: PGPORT, PGDATA, PGOPTIONS or an odd locale must not leak in.
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C")
            .current_dir("/")
            .stdin(Stdio::null());
        if let Some(user) = self.run_as {
            // Same as `setpriv --reuid --regid --clear-groups`: std drops supplementary groups when
            // it changes the uid.
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    fn command(&self, program: &str) -> tokio::process::Command {
        self.std_command(program).into()
    }

    fn server_uid(&self) -> anyhow::Result<u32> {
        self.run_as.map_or_else(effective_uid, |user| Ok(user.uid))
    }

    fn hand_over(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("Failed to chown {} to user postgres", path.display()))?;
        }
        Ok(())
    }

    async fn init_cluster(&self, cluster_dir: &Path) -> anyhow::Result<()> {
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
    async fn check_writable(&self, dir: &Path) -> anyhow::Result<()> {
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

    fn check_cluster_owner(&self, cluster_dir: &Path) -> anyhow::Result<()> {
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
    async fn stop_leftover_server(
        &self,
        cluster_dir: &Path,
        socket_dir: &Path,
    ) -> anyhow::Result<()> {
        let pid_file = cluster_dir.join("postmaster.pid");
        let Some(pid) = read_postmaster_pid(cluster_dir) else {
            return Ok(());
        };
        match process_state(pid) {
            // A postgres process elsewhere (a recycled pid) is not ours to stop.
            ProcessState::Postgres if works_in(pid, cluster_dir) => {
                tracing::warn!(pid, cluster = %cluster_dir.display(),
                    "Embedded PostgreSQL is already running (left by a previous dcp?); restarting it");
                let mut pg_ctl = self.command("pg_ctl");
                pg_ctl.args(["stop", "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"]);
                pg_ctl.arg(cluster_dir);
                run(pg_ctl, "Failed to stop the PostgreSQL server left running").await?;
            }
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

    fn prepare_socket_dir(&self, cluster_dir: &Path) -> anyhow::Result<PathBuf> {
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

    fn write_settings(&self, cluster_dir: &Path, socket_dir: &Path) -> anyhow::Result<()> {
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

    fn prepare_log_file(&self, log_file: &Path) -> anyhow::Result<()> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log_file)
            .with_context(|| format!("Failed to create {}", log_file.display()))?;
        self.hand_over(log_file)
    }

    async fn start_server(&self, cluster_dir: &Path, log_file: &Path) -> anyhow::Result<()> {
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

async fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DCP_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        ensure!(
            has_server_programs(&dir),
            "DCP_PG_BIN_DIR={} does not contain initdb, pg_ctl and postgres",
            dir.display()
        );
        return Ok(dir);
    }
    // pg_config may come from libpq-dev alone and then points at a dir without the server.
    let pg_config = tokio::process::Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .await;
    if let Ok(output) = pg_config {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_server_programs(&dir) {
            return Ok(dir);
        }
    }
    if let Some(dir) = newest_debian_bin_dir() {
        return Ok(dir);
    }
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("initdb"))
        .find(|initdb| is_executable(initdb));
    // Resolve symlinks such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
    if let Some(dir) =
        on_path.and_then(|initdb| Some(initdb.canonicalize().ok()?.parent()?.to_owned()))
    {
        if has_server_programs(&dir) {
            return Ok(dir);
        }
    }
    bail!(
        "No PostgreSQL server programs (initdb, pg_ctl, postgres) found in DCP_PG_BIN_DIR, \
         `pg_config --bindir`, /usr/lib/postgresql/*/bin or PATH: {INSTALL_HINT}"
    )
}

fn newest_debian_bin_dir() -> Option<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let version: Vec<u32> = name
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            has_server_programs(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS
        .iter()
        .all(|program| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn effective_uid() -> anyhow::Result<u32> {
    let status =
        fs::read_to_string("/proc/self/status").context("Failed to read /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
        .ok_or_else(|| anyhow!("Failed to find the effective uid in /proc/self/status"))
}

fn read_postmaster_pid(cluster_dir: &Path) -> Option<u32> {
    let content = fs::read_to_string(cluster_dir.join("postmaster.pid")).ok()?;
    content.lines().next()?.trim().parse().ok()
}

enum ProcessState {
    /// A live postgres process.
    Postgres,
    Gone,
    /// A zombie, or a live process that is not postgres.
    Other,
}

fn process_state(pid: u32) -> ProcessState {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcessState::Gone;
    };
    // "pid (comm) state ...", where comm may itself contain spaces and parentheses.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return ProcessState::Other;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
    let alive = !matches!(state, "Z" | "X" | "x");
    if alive && matches!(comm, "postgres" | "postmaster") {
        ProcessState::Postgres
    } else {
        ProcessState::Other
    }
}

/// Postgres processes run with the data dir as their working directory. The backends of a killed
/// postmaster exit on their own within moments; starting a new server before that would corrupt data.
async fn wait_for_cluster_processes_to_exit(cluster_dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + SHARED_MEMORY_RELEASE_TIMEOUT;
    loop {
        let remaining = processes_working_in(cluster_dir)?;
        if remaining.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "Processes {remaining:?} of an old PostgreSQL server still use {}; stop them first",
            cluster_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn processes_working_in(dir: &Path) -> anyhow::Result<Vec<u32>> {
    let entries = fs::read_dir("/proc").context("Failed to list /proc")?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| works_in(*pid, dir) && matches!(process_state(*pid), ProcessState::Postgres))
        .collect())
}

/// Whether `pid`'s working directory is `dir`; postgres processes work in their data dir.
fn works_in(pid: u32, dir: &Path) -> bool {
    fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
}

fn socket_path_fits(dir: &Path) -> bool {
    dir.as_os_str().len() + format!("/.s.PGSQL.{PORT}").len() <= MAX_SOCKET_PATH_LEN
}

fn conf_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

async fn run(mut cmd: tokio::process::Command, what: &'static str) -> anyhow::Result<Output> {
    tracing::debug!(command = ?cmd.as_std(), "Running");
    let output = cmd.output().await.context(what)?;
    ensure!(output.status.success(), "{what}: {}", describe(&output));
    Ok(output)
}

fn describe(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{} {} {}", output.status, stderr.trim(), stdout.trim())
        .trim()
        .to_owned()
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
