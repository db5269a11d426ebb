//! Platform-wide replay: `dcp replay --into` rebuilds every read model into another
//! database (or schema); up to now it equals the live models, and `--until` shows the past.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::*;
use crate::containers::{test_image, Containers};

/// Every row of a read model, in a stable order; audit `seq` numbers come from a sequence
/// (a rolled-back batch advances it), so entries are compared without them.
async fn dump(pool: &PgPool, table: &str, order: &str) -> Vec<Value> {
    let drop_seq = if table == "audit_logs" {
        " - 'seq'"
    } else {
        ""
    };
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t){drop_seq} FROM {table} t ORDER BY {order}"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

const READ_MODELS: &[(&str, &str)] = &[
    ("users", "id"),
    ("sessions", "id"),
    ("audit_logs", "global_position"),
    ("operations", "id"),
    ("operation_containers", "aggregate_id"),
    ("containers", "aggregate_id"),
];

/// Waits until every projection has applied every stored event.
async fn settled(pool: &PgPool) {
    eventually(Duration::from_secs(60), || {
        let pool = pool.clone();
        async move {
            let statuses = dcp_projections::projection_statuses(&pool).await.unwrap();
            (statuses.len() == dcp_projections::all_projections().len()
                && statuses.iter().all(|s| s.lag == 0))
            .then_some(())
        }
    })
    .await
}

fn dcp_replay(source: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dcp"))
        .arg("replay")
        .args(args)
        .env("DATABASE_URL", source)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_replay_up_to_now_equals_the_live_read_models_and_until_shows_the_past() {
    let app = spawn_app().await;
    let admin = &app.admin_token;
    let run = Containers::new();
    let user = app
        .create_user("replayed", "viewer", "a-good-password-1")
        .await;
    let user_id = user["id"].as_str().unwrap().to_string();
    app.login_ok("replayed", "a-good-password-1").await;
    let name = format!("replayed-{}", &run.run[..8]);
    let spec = |mode: &str| {
        json!({"image": test_image(), "command": ["sleep", "300"], "env": {"MODE": mode},
            "labels": {"test.dcp-run": run.run}})
    };
    let mut create = spec("a");
    create["name"] = json!(name);
    create["start"] = json!(true);
    let response = app.post("/api/v1/containers", admin, create).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let container = created["container_id"].as_str().unwrap().to_string();

    // The moment the auditor will ask about: a viewer, a container with MODE=a.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let then = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(admin),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .post(
            &format!("/api/v1/containers/{container}/recreate"),
            admin,
            spec("b"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let recreated: Value = response.json().await.unwrap();
    let response = app
        .post(
            &format!(
                "/api/v1/containers/{}/stop",
                recreated["container_id"].as_str().unwrap()
            ),
            admin,
            json!({"timeout": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    settled(&app.pool).await;

    // Up to now, into another database: the same read models.
    let target = fresh_database().await;
    let output = dcp_replay(&app.database_url, &["--into", &target]);
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(summary["events"], stored);
    let replayed = dcp::db::connect(target.parse().unwrap(), 4).await.unwrap();
    for (table, order) in READ_MODELS {
        let live = dump(&app.pool, table, order).await;
        assert!(!live.is_empty(), "{table} is empty");
        assert_eq!(
            live,
            dump(&replayed, table, order).await,
            "{table} differs after a replay"
        );
    }
    let recorded: (i64, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as("SELECT events, until FROM replays")
            .fetch_one(&replayed)
            .await
            .unwrap();
    assert_eq!(recorded, (stored, None));

    // A target that already holds read models is refused.
    let again = dcp_replay(&app.database_url, &["--into", &target]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("fresh"));

    // As of `then`, into a schema of the same database: the past, queryable with SQL.
    let until = then.to_rfc3339();
    let output = dcp_replay(
        &app.database_url,
        &["--until", &until, "--schema", "as_of_then"],
    );
    assert!(output.status.success(), "{output:?}");
    let role: String = sqlx::query_scalar("SELECT role FROM as_of_then.users WHERE id = $1::uuid")
        .bind(&user_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(role, "viewer");
    let live_role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1::uuid")
        .bind(&user_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(live_role, "operator", "the live model is untouched");
    let (docker_id, status): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT docker_id, last_status FROM as_of_then.containers WHERE name = $1")
            .bind(&name)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(docker_id.as_deref(), Some(container.as_str()));
    assert_eq!(status.as_deref(), Some("succeeded"));
    let later: i64 =
        sqlx::query_scalar("SELECT count(*) FROM as_of_then.audit_logs WHERE created_at > $1")
            .bind(then)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(later, 0);
    let recreates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM as_of_then.operations WHERE action = 'container.recreate'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recreates, 0);

    // Bad arguments are refused before anything is written.
    for args in [
        vec!["--until", "yesterday", "--schema", "x_past"],
        vec!["--schema", "public"],
        vec!["--schema", "Robert'); DROP TABLE users;--"],
        vec!["--into", "not a url"],
    ] {
        let output = dcp_replay(&app.database_url, &args);
        assert!(!output.status.success(), "{args:?}");
    }
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'x_past'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(schemas, 0);
}
