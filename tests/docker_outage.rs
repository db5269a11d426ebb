//! The Docker engine stops under a running server: Docker routes answer 503
//! `DOCKER_UNAVAILABLE` (fast, nothing recorded), readiness reports it, and once the engine
//! is back everything recovers by itself — including the event watcher, which resumes and
//! records what happens next.
//!
//! Its own test binary: stopping dockerd would disturb the other Docker tests, and cargo
//! runs test binaries one after another. It only stops a dockerd that `scripts/services.sh`
//! started (`DCP_TEST_DOCKERD_OWNED=1`), and restarts it with that script.

#[path = "common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::*;

fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn services_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh")
}

fn stop_dockerd() {
    let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd's pid file");
    let status = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success(), "kill dockerd");
    // Gone when the process has exited (a zombie counts as gone), not just its socket: a
    // new dockerd refuses to start while the old one still holds the pid file.
    let status_file = format!("/proc/{}/status", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let alive = std::fs::read_to_string(&status_file).is_ok_and(|status| {
            !status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        });
        if !alive && !engine_answers() {
            return;
        }
        assert!(Instant::now() < deadline, "dockerd did not stop");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts dockerd again, whatever happens to the test (a failure must not leave the
/// machine without its engine).
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if !engine_answers() {
            let _ = Command::new("bash")
                .arg(services_script())
                .arg("dockerd")
                .status();
        }
    }
}

#[tokio::test]
async fn a_stopped_engine_gives_503_and_everything_recovers_when_it_is_back() {
    if std::env::var("DCP_TEST_DOCKERD_OWNED").as_deref() != Ok("1") {
        // A developer's own dockerd is never stopped by the tests.
        eprintln!(
            "skipped: dockerd was not started by scripts/services.sh (DCP_TEST_DOCKERD_OWNED != 1)"
        );
        return;
    }
    let app = spawn_app_with(|settings| settings.watch_docker_events = true).await;
    eventually(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT time_nano FROM docker_event_cursors WHERE host = 'local'",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    })
    .await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let _restart = RestartOnDrop;
    stop_dockerd();

    let started = Instant::now();
    let list = app
        .request(
            Method::GET,
            "/api/v1/containers",
            Some(&app.admin_token),
            None,
        )
        .await;
    let body = assert_error(list, StatusCode::SERVICE_UNAVAILABLE, "DOCKER_UNAVAILABLE").await;
    assert_eq!(body["error"]["details"]["host"], "local");
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
    let create = app
        .request(
            Method::POST,
            "/api/v1/volumes",
            Some(&app.admin_token),
            Some(json!({"name": "dcp-test-outage-volume"})),
        )
        .await;
    assert_error(
        create,
        StatusCode::SERVICE_UNAVAILABLE,
        "DOCKER_UNAVAILABLE",
    )
    .await;
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_ne!(ready["checks"]["docker"], "ready", "{ready}");
    assert_eq!(ready["checks"]["database"], "ready", "{ready}");
    let events_during: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        events_before, events_during,
        "a refused request recorded something"
    );

    let status = Command::new("bash")
        .arg(services_script())
        .arg("dockerd")
        .status()
        .unwrap();
    assert!(status.success(), "scripts/services.sh dockerd");

    // The server recovers by itself.
    eventually(Duration::from_secs(30), || async {
        let list = app
            .request(
                Method::GET,
                "/api/v1/containers",
                Some(&app.admin_token),
                None,
            )
            .await;
        (list.status() == StatusCode::OK).then_some(())
    })
    .await;
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), StatusCode::OK);

    // And the watcher resumed: a container started now with the CLI is recorded.
    let name = format!(
        "dcp-test-after-outage-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    let output = Command::new("docker")
        .args(["run", "-d", "--rm", "--name", &name, &image, "sleep", "30"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let observed = eventually(Duration::from_secs(60), || async {
        let types: Vec<String> = sqlx::query_scalar(
            "SELECT e.event_type FROM events e JOIN container_ids c \
             ON e.aggregate_type = 'container' AND e.aggregate_id = c.aggregate_id::text \
             WHERE c.docker_id = $1 ORDER BY e.sequence",
        )
        .bind(&id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        (types.len() >= 2).then_some(types)
    })
    .await;
    assert_eq!(observed[0], "ContainerDiscovered", "{observed:?}");
    assert_eq!(observed[1], "ContainerObserved", "{observed:?}");
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    app.stop().await;
}
