//! Running the server programs (as user `postgres` when dcp runs as root), and telling a live
//! postmaster of our cluster from a stale `postmaster.pid`.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Instant;

use anyhow::{anyhow, ensure, Context};

use super::binaries::INSTALL_HINT;
use super::SHARED_MEMORY_RELEASE_TIMEOUT;

/// The unprivileged account the server runs as when dcp runs as root.
#[derive(Clone, Copy)]
pub(super) struct ServerUser {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

impl ServerUser {
    pub(super) async fn postgres() -> anyhow::Result<Self> {
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
pub(super) struct ServerPrograms {
    pub(super) bin_dir: PathBuf,
    pub(super) run_as: Option<ServerUser>,
}

impl ServerPrograms {
    pub(super) fn std_command(&self, program: &str) -> std::process::Command {
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

    pub(super) fn command(&self, program: &str) -> tokio::process::Command {
        self.std_command(program).into()
    }

    pub(super) fn server_uid(&self) -> anyhow::Result<u32> {
        self.run_as.map_or_else(effective_uid, |user| Ok(user.uid))
    }

    pub(super) fn hand_over(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("Failed to chown {} to user postgres", path.display()))?;
        }
        Ok(())
    }
}

pub(super) fn effective_uid() -> anyhow::Result<u32> {
    let status =
        fs::read_to_string("/proc/self/status").context("Failed to read /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
        .ok_or_else(|| anyhow!("Failed to find the effective uid in /proc/self/status"))
}

pub(super) async fn run(
    mut cmd: tokio::process::Command,
    what: &'static str,
) -> anyhow::Result<Output> {
    tracing::debug!(command = ?cmd.as_std(), "Running");
    let output = cmd.output().await.context(what)?;
    ensure!(output.status.success(), "{what}: {}", describe(&output));
    Ok(output)
}

pub(super) fn describe(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{} {} {}", output.status, stderr.trim(), stdout.trim())
        .trim()
        .to_owned()
}

/// What a cluster's `postmaster.pid` says: the postmaster's pid, where its socket is, and whether it
/// accepts connections.
pub(super) struct PostmasterPidFile {
    pub(super) pid: u32,
    /// Line 5: the first unix socket directory.
    pub(super) socket_dir: Option<PathBuf>,
    /// Line 8: `starting`, `stopping`, `ready` or `standby` (space padded, written as it changes).
    status: String,
}

impl PostmasterPidFile {
    pub(super) fn read(cluster_dir: &Path) -> Option<Self> {
        let content = fs::read_to_string(cluster_dir.join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = content.lines().collect();
        let pid = lines.first()?.trim().parse().ok()?;
        let line = |index: usize| lines.get(index).map_or("", |line| line.trim());
        Some(PostmasterPidFile {
            pid,
            socket_dir: Some(line(4))
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            status: line(7).to_owned(),
        })
    }

    pub(super) fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

pub(super) fn read_postmaster_pid(cluster_dir: &Path) -> Option<u32> {
    PostmasterPidFile::read(cluster_dir).map(|file| file.pid)
}

/// Whether `pid` is the live postmaster of the cluster in `cluster_dir` rather than a pid recycled
/// by another process (postgres processes work in their data dir).
pub(super) fn is_postmaster_of(pid: u32, cluster_dir: &Path) -> bool {
    matches!(process_state(pid), ProcessState::Postgres) && works_in(pid, cluster_dir)
}

pub(super) enum ProcessState {
    /// A live postgres process.
    Postgres,
    Gone,
    /// A zombie, or a live process that is not postgres.
    Other,
}

pub(super) fn process_state(pid: u32) -> ProcessState {
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
pub(super) async fn wait_for_cluster_processes_to_exit(cluster_dir: &Path) -> anyhow::Result<()> {
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
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
