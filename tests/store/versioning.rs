//! Event versioning against a real store: events written in an older shape load through
//! the upcaster on both sides (aggregates and projections), and events from a newer dcp
//! are skipped by live runners but stop a rebuild.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dcp::commands::{CommandBus, CommandMeta};
use dcp_aggregates::container::{Container, ContainerAction, ContainerCommand};
use dcp_projections::audit::AuditLogProjection;
use dcp_projections::containers::ContainersProjection;
use dcp_projections::{
    current_shapes, rebuild_projection, DynProjection, GlobalLogReader, LogCursor, LogWaker,
    ProjectionProgress, ProjectionRunner, UnknownEvents,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::common::{eventually, migrated_pool};

fn meta() -> CommandMeta {
    CommandMeta {
        actor_id: Some(Uuid::new_v4()),
        actor_username: Some("auditor-test".into()),
        actor_role: Some("admin".into()),
        ..CommandMeta::default()
    }
}

/// Appends one event as an older (or newer) dcp would have stored it.
async fn insert_raw(
    pool: &PgPool,
    aggregate: (&str, &str),
    sequence: i64,
    event_type: &str,
    version: &str,
    fields: Value,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING global_position",
    )
    .bind(aggregate.0)
    .bind(aggregate.1)
    .bind(sequence)
    .bind(event_type)
    .bind(version)
    .bind(json!({ event_type: fields }))
    .bind(json!({"actor_username": "old-dcp", "actor_role": "admin"}))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A container created by a dcp that wrote `ContainerCreated` version 1 (no `image_id`).
async fn v1_container(pool: &PgPool) -> String {
    let id = Uuid::now_v7().to_string();
    let op = Uuid::now_v7();
    let at = Utc::now();
    insert_raw(
        pool,
        ("container", &id),
        1,
        "ContainerCreateRequested",
        "1",
        json!({"op_id": op, "host": "local", "spec": {"image": "busybox:latest", "name": "old-web"}, "requested_at": at}),
    )
    .await;
    insert_raw(
        pool,
        ("container", &id),
        2,
        "ContainerCreated",
        "1",
        json!({"op_id": op, "host": "local", "docker_id": format!("0ld-{id}"), "name": "old-web", "created_at": at}),
    )
    .await;
    id
}

async fn run(pool: &PgPool, projection: Arc<dyn DynProjection>, token: &CancellationToken) {
    let waker = LogWaker::listen(pool, token.clone()).await.unwrap();
    let progress = ProjectionProgress::new(pool.clone(), waker.clone());
    ProjectionRunner::new(pool.clone(), projection, waker, progress)
        .with_standby_retry(Duration::from_millis(100))
        .spawn(token.clone());
}

async fn all_events(pool: &PgPool) -> Vec<dcp_projections::StoredEvent> {
    let mut conn = pool.acquire().await.unwrap();
    GlobalLogReader::read_batch(&mut conn, LogCursor::START, 10_000)
        .await
        .unwrap()
}

#[tokio::test]
async fn old_versions_load_through_the_upcaster_and_projections_rebuild_from_them() {
    let pool = migrated_pool().await;
    let id = v1_container(&pool).await;

    // The command side loads the old shape: the aggregate knows its Docker id and accepts
    // an operation (it would refuse one on a container still being created).
    let bus = CommandBus::new(pool.clone());
    let op = Uuid::now_v7();
    let start = ContainerCommand::Request {
        op_id: op,
        action: ContainerAction::Start,
        at: Utc::now(),
    };
    bus.execute::<Container>(&id, start, &meta()).await.unwrap();
    let done = ContainerCommand::RecordDone {
        op_id: op,
        at: Utc::now(),
    };
    bus.execute::<Container>(&id, done, &meta()).await.unwrap();

    // The read side sees every event in its current shape.
    let stored = all_events(&pool).await;
    assert_eq!(stored[1].event_version, "1", "the store is never rewritten");
    assert!(stored[1].payload["ContainerCreated"]
        .get("image_id")
        .is_none());
    let shaped = current_shapes(&stored, UnknownEvents::Fail).unwrap();
    assert_eq!(shaped[1].event_version, "2");
    assert_eq!(
        shaped[1].payload["ContainerCreated"]["image_id"],
        Value::Null
    );
    assert_eq!(
        shaped[1].payload["ContainerCreated"]["docker_id"],
        format!("0ld-{id}")
    );
    for (shaped, stored) in shaped[2..].iter().zip(&stored[2..]) {
        assert_eq!(
            shaped.payload, stored.payload,
            "current events pass untouched"
        );
        assert_eq!(shaped.event_version, stored.event_version);
    }

    // Projections rebuild from the old events.
    for projection in [
        Arc::new(ContainersProjection) as Arc<dyn DynProjection>,
        Arc::new(AuditLogProjection),
    ] {
        rebuild_projection(&pool, projection, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let (name, status): (String, Option<String>) =
        sqlx::query_as("SELECT name, last_status FROM containers WHERE aggregate_id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(name, "old-web");
    assert_eq!(status.as_deref(), Some("succeeded"));
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_logs WHERE resource_id = $1 ORDER BY global_position",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 4, "{audited:?}");
}

#[tokio::test]
async fn events_from_a_newer_dcp_are_skipped_live_and_stop_a_rebuild() {
    if std::env::var_os("RUST_LOG").is_some() {
        dcp::telemetry::init();
    }
    let pool = migrated_pool().await;
    let token = CancellationToken::new();
    run(&pool, Arc::new(ContainersProjection), &token).await;
    run(&pool, Arc::new(AuditLogProjection), &token).await;
    let first = v1_container(&pool).await;
    let seen = |pool: PgPool, id: String| async move {
        let found: Option<String> =
            sqlx::query_scalar("SELECT name FROM containers WHERE aggregate_id = $1")
                .bind(&id)
                .fetch_optional(&pool)
                .await
                .unwrap();
        found.map(|_| ())
    };
    eventually(Duration::from_secs(30), || {
        seen(pool.clone(), first.clone())
    })
    .await;

    // A newer dcp wrote a new event type, a new aggregate type and a newer shape.
    let unknown_at = insert_raw(
        &pool,
        ("container", &first),
        3,
        "ContainerTeleported",
        "1",
        json!({"to": "mars"}),
    )
    .await;
    insert_raw(
        &pool,
        ("host", "h1"),
        1,
        "HostCreated",
        "1",
        json!({"name": "h1"}),
    )
    .await;
    insert_raw(
        &pool,
        ("container", &first),
        4,
        "ContainerStarted",
        "7",
        json!({"op_id": Uuid::now_v7(), "started_at": Utc::now(), "warp": 9}),
    )
    .await;
    // The command side does not decide from a stream it cannot fully read.
    let refused = CommandBus::new(pool.clone())
        .execute::<Container>(
            &first,
            ContainerCommand::Request {
                op_id: Uuid::now_v7(),
                action: ContainerAction::Stop { timeout: None },
                at: Utc::now(),
            },
            &meta(),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // Live runners skip them and go on with what follows.
    let second = v1_container(&pool).await;
    eventually(Duration::from_secs(30), || {
        seen(pool.clone(), second.clone())
    })
    .await;
    // The audit log has its own runner: wait until it has the second container too.
    let ids = vec![first.clone(), second.clone(), "h1".to_string()];
    let audited: i64 = eventually(Duration::from_secs(30), || {
        let (pool, ids) = (pool.clone(), ids.clone());
        async move {
            let count: i64 =
                sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE resource_id = ANY($1)")
                    .bind(ids)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (count >= 4).then_some(count)
        }
    })
    .await;
    assert_eq!(
        audited, 4,
        "two known events per container, none of the unknown"
    );
    token.cancel();

    // A rebuild refuses: its result would silently lack them.
    let error = rebuild_projection(
        &pool,
        Arc::new(ContainersProjection),
        Duration::from_secs(60),
    )
    .await
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains(&format!("at position {unknown_at}"))
            && message.contains("ContainerTeleported")
            && message.contains("upgrade dcp"),
        "{message}"
    );

    // A runner that takes over the half-done rebuild goes on refusing (it does not skip the
    // event because it did not start the rebuild itself).
    let token = CancellationToken::new();
    run(&pool, Arc::new(ContainersProjection), &token).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    token.cancel();
    let (position, rebuilding): (i64, bool) = sqlx::query_as(
        "SELECT last_position, rebuilding FROM projection_checkpoints WHERE name = 'containers'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        position < unknown_at,
        "the rebuild went past the unknown event"
    );
    assert!(rebuilding);
}
