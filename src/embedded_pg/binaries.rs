//! Finding the machine's PostgreSQL server programs (initdb, pg_ctl, postgres).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, ensure};

const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
pub(super) const INSTALL_HINT: &str = "install the PostgreSQL server, e.g. `apt-get install \
                                       postgresql` on Debian/Ubuntu, or set DATABASE_URL";

/// The directory holding the server programs: `DCP_PG_BIN_DIR`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, or the directory `initdb` on PATH really lives in.
pub(super) async fn find_bin_dir() -> anyhow::Result<PathBuf> {
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
