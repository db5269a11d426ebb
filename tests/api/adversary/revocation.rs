//! Revocation does not depend on the bus: with NATS stopped and the log's horizon held back
//! by an open transaction (so neither the bus nor a projection can carry the change), a
//! demoted operator's open shell closes within 5 s, and so do a logged-out session's sockets.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::containers::Containers;

#[tokio::test]
async fn a_demoted_operators_shell_closes_within_five_seconds_without_bus_or_projections() {
    let mut nats = Nats::start();
    let url = nats.url();
    let app = spawn_app_with(|settings| settings.nats_url = Some(url)).await;
    let (user, operator) = app.user_with_token("dora", "operator").await;
    let (_, leaving) = app.user_with_token("lena", "operator").await;
    let run = Containers::new();
    let id = run.start("shell", &[]);
    let mut shell = app
        .container_socket(&operator, &id, "exec", "cols=80&rows=24")
        .await;
    assert_eq!(shell.next_json().await["type"], "started");
    let mut events = app.events_socket(&leaving).await;

    nats.stop();
    // A transaction that holds back the log's horizon: no reader (projection, relay) passes it.
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *holder)
        .await
        .unwrap();

    // The demotion is recorded at once; its answer waits for a read model that cannot pass
    // the held horizon (503 READ_MODEL_LAGGING after a while), so it is sent aside.
    let user_id = user["id"].as_str().unwrap().to_string();
    let patch = app
        .client
        .patch(app.url(&format!("/api/v1/users/{user_id}")))
        .bearer_auth(&app.admin_token)
        .json(&json!({"role": "viewer"}))
        .send();
    let logout = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&leaving)
        .send();
    let answers = tokio::spawn(async move { tokio::join!(patch, logout) });
    let started = Instant::now();
    assert_eq!(
        shell.expect_close(Duration::from_secs(5)).await,
        Some(1008.into()),
        "the demoted operator's shell closes"
    );
    assert_eq!(
        events.expect_close(Duration::from_secs(5)).await,
        Some(1008.into()),
        "the logged-out session's socket closes"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    holder.rollback().await.unwrap();
    let (patch, logout) = answers.await.unwrap();
    for answer in [patch.unwrap(), logout.unwrap()] {
        assert!(
            answer.status().is_success() || answer.status() == StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.status()
        );
    }
    drop(run);
}
