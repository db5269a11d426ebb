//! The web UI in a real browser: this test starts a real server (its UI embedded from
//! `web/dist`) on a fresh database with the test Docker engine and sshd, then runs the
//! browser tests of `web/e2e/` (Debian's chromium driven by playwright-core) against it.
//! Screenshots of the main pages are left in `web/e2e/artifacts/`.
//!
//! Needs the UI built first (`npm ci && npm run build` in `web/`; `scripts/test` does it).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{kill_tree, spawn_app_with, ADMIN_PASSWORD};
use serde_json::json;

/// The access tokens' lifetime in this run (the browser tests wait past it).
const ACCESS_TOKEN_TTL_SECS: u64 = 8;

/// The browser tests' own limit: they take about a minute.
const BROWSER_TESTS_TIMEOUT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_works_in_a_real_browser() {
    assert!(
        dcp::http::web::embedded(),
        "the UI is not built into this binary: run `npm ci && npm run build` in web/ before cargo test (scripts/test does)"
    );
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/"
    );
    let chromium =
        std::env::var("DCP_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no chromium at {chromium}: run scripts/services.sh (it installs Debian's chromium)"
    );

    let app = spawn_app_with(|settings| {
        settings.watch_docker_events = true;
        // Access tokens this short make every page renew its session while the tests run.
        settings.access_token_ttl_secs = ACCESS_TOKEN_TTL_SECS;
    })
    .await;
    // A run id keeps this run's containers and hosts apart from any other on the engine.
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let password = |who: &str| format!("{who}-password-{run}");
    app.create_user("ui-operator", "operator", &password("operator"))
        .await;
    app.create_user("ui-viewer", "viewer", &password("viewer"))
        .await;
    let created = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({
                "username": "ui-newcomer",
                "email": "ui-newcomer@example.com",
                "full_name": "New Comer",
                "role": "operator",
                "password": password("newcomer"),
                "must_change_password": true,
            }),
        )
        .await;
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);

    let artifacts = web.join("e2e/artifacts");
    std::fs::create_dir_all(&artifacts).expect("create web/e2e/artifacts");
    let mut command = tokio::process::Command::new("npx");
    command
        .args([
            "--no-install",
            "vitest",
            "run",
            "--config",
            "vitest.browser.config.ts",
        ])
        .current_dir(&web)
        .env("DCP_UI_URL", &app.address)
        .env("DCP_UI_RUN", run)
        .env("DCP_UI_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("DCP_UI_OPERATOR_PASSWORD", password("operator"))
        .env("DCP_UI_VIEWER_PASSWORD", password("viewer"))
        .env("DCP_UI_NEWCOMER_PASSWORD", password("newcomer"))
        .env("DCP_UI_ARTIFACTS", &artifacts)
        .env(
            "DCP_UI_ACCESS_TOKEN_TTL_SECS",
            ACCESS_TOKEN_TTL_SECS.to_string(),
        )
        .env("DCP_TEST_CHROMIUM", &chromium)
        .stdin(Stdio::null());
    let mut child = command
        .spawn()
        .expect("run npx vitest (is Node installed?)");
    let status = match tokio::time::timeout(BROWSER_TESTS_TIMEOUT, child.wait()).await {
        Ok(status) => Some(status.expect("wait for the browser tests")),
        Err(_) => {
            // npx, vitest and chromium: the whole tree, or chromium outlives the test.
            if let Some(pid) = child.id() {
                kill_tree(pid);
            }
            None
        }
    };

    // Whatever the browser left behind (a failed run) is removed with its run id.
    let leftovers = app
        .get_json(
            &format!("/api/v1/containers?all=true&host=local&name=ui-{run}"),
            &app.admin_token,
        )
        .await;
    for container in leftovers["items"].as_array().into_iter().flatten() {
        let id = container["id"].as_str().unwrap_or_default();
        app.delete(
            // A reason: some of them are protected.
            &format!("/api/v1/containers/{id}?host=local&force=true&reason=test+cleanup"),
            &app.admin_token,
        )
        .await;
    }
    app.stop().await;
    let status = status.unwrap_or_else(|| {
        panic!("the browser tests did not finish in {BROWSER_TESTS_TIMEOUT:?}: stopped")
    });
    assert!(
        status.success(),
        "the browser tests failed (see their output above; screenshots in {})",
        artifacts.display()
    );
}
