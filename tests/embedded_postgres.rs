//! The embedded PostgreSQL cluster: first start, restart with data kept, takeover of a server left
//! running, stale pid files (killed, gone or recycled postmaster pids), data dirs too long for a unix
//! socket path, a data dir that user postgres cannot reach when run as root, and tools attaching to
//! the server of a running dcp without taking it over; a second server on the same data dir is
//! refused.

use std::path::{Path, PathBuf};

use dcp::embedded_pg::EmbeddedPostgres;
use sqlx::{Connection, PgConnection};

/// A fresh directory in the temp dir (/tmp), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("dcp-embedded-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn connect(server: &EmbeddedPostgres) -> PgConnection {
    PgConnection::connect_with(&server.connect_options())
        .await
        .expect("connect to embedded postgres")
}

async fn insert_note(server: &EmbeddedPostgres, note: &str) {
    let mut conn = connect(server).await;
    sqlx::query("CREATE TABLE IF NOT EXISTS notes (body text NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind(note)
        .execute(&mut conn)
        .await
        .expect("insert");
    conn.close().await.expect("close");
}

async fn notes(server: &EmbeddedPostgres) -> Vec<String> {
    let mut conn = connect(server).await;
    let notes = sqlx::query_scalar("SELECT body FROM notes ORDER BY body")
        .fetch_all(&mut conn)
        .await
        .expect("select");
    conn.close().await.expect("close");
    notes
}

fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    let content = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).ok()?;
    content.lines().next()?.trim().parse().ok()
}

/// Zombies count as dead: an orphaned postmaster is reaped by init, which may take its time.
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        !matches!(state, Some("Z" | "X" | "x"))
    })
}

#[tokio::test]
async fn restart_keeps_data_and_stop_stops_the_server() {
    let dir = TempDir::new();

    let server = EmbeddedPostgres::start(&dir.0).await.expect("first start");
    let mut conn = connect(&server).await;
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .expect("current_database");
    assert_eq!(database, "dcp");
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .expect("show listen_addresses");
    assert_eq!(listen, "", "no TCP listener");
    conn.close().await.expect("close");
    insert_note(&server, "first").await;
    let pid = postmaster_pid(&dir.0).expect("postmaster.pid while running");
    server.stop().await.expect("stop");
    assert!(postmaster_pid(&dir.0).is_none(), "postmaster.pid removed");
    assert!(!is_alive(pid), "postmaster {pid} exited");

    let server = EmbeddedPostgres::start(&dir.0).await.expect("second start");
    assert_eq!(notes(&server).await, ["first"]);
    server.stop().await.expect("stop again");
}

#[tokio::test]
async fn a_server_left_running_is_taken_over() {
    let dir = TempDir::new();

    let first = EmbeddedPostgres::start(&dir.0).await.expect("first start");
    insert_note(&first, "before takeover").await;
    let first_pid = postmaster_pid(&dir.0).expect("first postmaster pid");

    // As if dcp had been killed: the server is still up when the next dcp starts.
    let second = EmbeddedPostgres::start(&dir.0)
        .await
        .expect("start while running");
    let second_pid = postmaster_pid(&dir.0).expect("second postmaster pid");
    assert_ne!(
        first_pid, second_pid,
        "the server was restarted by its new owner"
    );
    assert!(!is_alive(first_pid));

    // The stale handle must leave the new owner's server alone.
    drop(first);
    assert_eq!(postmaster_pid(&dir.0), Some(second_pid));
    assert_eq!(notes(&second).await, ["before takeover"]);

    second.stop().await.expect("stop");
    assert!(postmaster_pid(&dir.0).is_none());
}

#[tokio::test]
async fn attaching_leaves_the_owners_server_running() {
    let dir = TempDir::new();

    let owner = EmbeddedPostgres::start(&dir.0).await.expect("start");
    assert!(!owner.is_attached());
    let pid = postmaster_pid(&dir.0).expect("postmaster pid");
    insert_note(&owner, "by the owner").await;

    let attached = EmbeddedPostgres::attach_or_start(&dir.0)
        .await
        .expect("attach");
    assert!(attached.is_attached(), "a running server is attached to");
    assert_eq!(
        postmaster_pid(&dir.0),
        Some(pid),
        "the server was not restarted"
    );
    insert_note(&attached, "through the attached handle").await;
    assert_eq!(
        notes(&owner).await,
        ["by the owner", "through the attached handle"]
    );
    // A connection of the owner's survives the attached handle going away.
    let mut owners_conn = connect(&owner).await;
    attached.stop().await.expect("stop the attached handle");
    assert_eq!(postmaster_pid(&dir.0), Some(pid));
    assert!(is_alive(pid), "the owner's server is still up");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut owners_conn)
        .await
        .expect("query on the owner's connection");
    assert_eq!(one, 1);
    owners_conn.close().await.expect("close");
    // Nor does dropping an attached handle stop anything.
    drop(
        EmbeddedPostgres::attach_or_start(&dir.0)
            .await
            .expect("attach again"),
    );
    assert_eq!(notes(&owner).await.len(), 2);

    owner.stop().await.expect("stop the owner");
    assert!(postmaster_pid(&dir.0).is_none(), "postmaster.pid removed");
    assert!(!is_alive(pid), "postmaster {pid} exited");

    // With no server running, attach_or_start starts one and owns it.
    let started = EmbeddedPostgres::attach_or_start(&dir.0)
        .await
        .expect("attach_or_start with nothing running");
    assert!(!started.is_attached());
    let new_pid = postmaster_pid(&dir.0).expect("postmaster pid of the new server");
    assert_eq!(
        notes(&started).await,
        ["by the owner", "through the attached handle"]
    );
    started.stop().await.expect("stop");
    assert!(postmaster_pid(&dir.0).is_none());
    assert!(!is_alive(new_pid));
}

#[tokio::test]
async fn a_killed_postmaster_leaves_a_stale_pid_file_that_start_handles() {
    let dir = TempDir::new();

    let server = EmbeddedPostgres::start(&dir.0).await.expect("first start");
    insert_note(&server, "before kill").await;
    let pid = postmaster_pid(&dir.0).expect("postmaster pid");
    std::mem::forget(server);
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert_eq!(
        postmaster_pid(&dir.0),
        Some(pid),
        "stale postmaster.pid left behind"
    );

    let server = EmbeddedPostgres::start(&dir.0)
        .await
        .expect("start after kill -9");
    assert_eq!(notes(&server).await, ["before kill"]);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_stale_pid_file_naming_a_gone_or_recycled_pid_does_not_block_start() {
    let dir = TempDir::new();
    let pid_file = dir.0.join("postgres/postmaster.pid");

    let server = EmbeddedPostgres::start(&dir.0).await.expect("first start");
    insert_note(&server, "before power loss").await;
    let stale = std::fs::read_to_string(&pid_file).expect("read postmaster.pid");
    server.stop().await.expect("stop");

    // As after a power loss: the file names a process that no longer exists. (The old postmaster
    // itself may linger as a zombie until init reaps it, so use a pid we reaped ourselves.)
    let (_, rest) = stale.split_once('\n').expect("multi-line postmaster.pid");
    let mut exited = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    exited.wait().expect("wait for true");
    std::fs::write(&pid_file, format!("{}\n{rest}", exited.id())).expect("write postmaster.pid");
    let server = EmbeddedPostgres::start(&dir.0)
        .await
        .expect("start with a gone pid");
    assert_eq!(notes(&server).await, ["before power loss"]);
    server.stop().await.expect("stop");

    // As after a container restart: the pid now belongs to an unrelated live process.
    let mut unrelated = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    std::fs::write(&pid_file, format!("{}\n{rest}", unrelated.id())).expect("write postmaster.pid");
    let started = EmbeddedPostgres::start(&dir.0).await;
    let _ = unrelated.kill();
    let _ = unrelated.wait();
    let server = started.expect("start with a recycled pid");
    assert_eq!(notes(&server).await, ["before power loss"]);
    server.stop().await.expect("stop");

    // The pid now belongs to another cluster's postmaster, which must be left alone.
    let other_dir = TempDir::new();
    let other = EmbeddedPostgres::start(&other_dir.0)
        .await
        .expect("start another cluster");
    let other_pid = postmaster_pid(&other_dir.0).expect("other postmaster pid");
    std::fs::write(&pid_file, format!("{other_pid}\n{rest}")).expect("write postmaster.pid");
    let server = EmbeddedPostgres::start(&dir.0)
        .await
        .expect("start with the pid of another cluster");
    assert!(is_alive(other_pid), "the other cluster was not stopped");
    insert_note(&other, "other still up").await;
    assert_eq!(notes(&server).await, ["before power loss"]);
    server.stop().await.expect("stop");
    other.stop().await.expect("stop the other cluster");
}

#[tokio::test]
async fn a_data_dir_too_long_for_a_socket_path_uses_a_socket_dir_under_tmp() {
    let dir = TempDir::new();
    let data_dir = dir.0.join("a".repeat(60)).join("b".repeat(60));
    assert!(data_dir.as_os_str().len() > 110);

    let server = EmbeddedPostgres::start(&data_dir).await.expect("start");
    insert_note(&server, "long path").await;
    let recorded = std::fs::read_to_string(data_dir.join("postgres/dcp_socket_dir"))
        .expect("socket dir recorded");
    assert!(
        recorded.starts_with("/tmp/"),
        "socket dir {recorded} under /tmp"
    );
    server.stop().await.expect("stop");

    let server = EmbeddedPostgres::start(&data_dir).await.expect("restart");
    assert_eq!(notes(&server).await, ["long path"]);
    let recorded_again = std::fs::read_to_string(data_dir.join("postgres/dcp_socket_dir"))
        .expect("socket dir still recorded");
    assert_eq!(recorded, recorded_again, "the socket dir is reused");
    server.stop().await.expect("stop again");
    let _ = std::fs::remove_dir_all(recorded.trim());
}

#[tokio::test]
async fn as_root_a_data_dir_user_postgres_cannot_reach_fails_with_a_clear_message() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status")
        .lines()
        .find_map(|line| {
            line.strip_prefix("Uid:")?
                .split_whitespace()
                .nth(1)
                .map(str::to_owned)
        });
    if uid.as_deref() != Some("0") {
        return; // Only root hands the cluster to user postgres.
    }
    let dir = TempDir::new();
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod 0700");

    let error = match EmbeddedPostgres::start(&dir.0.join("data")).await {
        Ok(server) => {
            server.stop().await.expect("stop");
            panic!("start succeeded in a dir user postgres cannot reach");
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("traversable by it"),
        "unclear error: {error}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = TempDir::new();
    let mut settings = dcp::config::Settings::for_tests("postgres://unused/none", dir.0.clone());
    settings.database_url = None;
    let (pool, first) = dcp::db::open(&settings).await.expect("first server");
    let second = dcp::db::open(&settings).await;
    let message = match second {
        Ok(_) => panic!("a second server was allowed on the same data dir"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        message.contains("another dcp server is running"),
        "{message}"
    );
    // The first server's database is untouched.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect("still up");
    assert_eq!(one, 1);
    pool.close().await;
    first.close().await.expect("stop");
    // Once it has stopped, the data dir is free again.
    let (pool, again) = dcp::db::open(&settings).await.expect("restart");
    pool.close().await;
    again.close().await.expect("stop again");
}
