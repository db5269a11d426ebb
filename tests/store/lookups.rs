//! The server's lookups in the store: a pending operation's request comes back typed with
//! its operation id, in one query, whatever was recorded after it; a request this build
//! cannot read leaves its operation pending; requests and outcomes are found by type.

use chrono::Utc;
use dcp_aggregates::container::ContainerEvent;
use dcp_aggregates::image::ImageEvent;
use dcp_aggregates::AnyEvent;
use dcp_projections::GlobalLogReader;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::migrated_pool;

/// Appends one event as stored, fields and all.
async fn insert(
    pool: &PgPool,
    aggregate: (&str, &str),
    sequence: i64,
    event_type: &str,
    fields: Value,
) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ($1, $2, $3, $4, '1', $5, '{}')",
    )
    .bind(aggregate.0)
    .bind(aggregate.1)
    .bind(sequence)
    .bind(event_type)
    .bind(json!({ event_type: fields }))
    .execute(pool)
    .await
    .unwrap();
}

/// What the operations read model says of one operation.
async fn operation(pool: &PgPool, op_id: Uuid, resource: (&str, &str), status: &str) {
    sqlx::query(
        "INSERT INTO operations (id, action, resource_type, aggregate_id, status, requested_at, last_position) \
         VALUES ($1, 'test', $2, $3, $4, now(), 0)",
    )
    .bind(op_id)
    .bind(resource.0)
    .bind(resource.1)
    .bind(status)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn pending_requests_come_back_typed_and_outcomes_are_found_by_type() {
    let pool = migrated_pool().await;
    let at = Utc::now();
    let (created, stopping, pulling, teleport) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let web = Uuid::now_v7().to_string();
    insert(&pool, ("container", &web), 1, "ContainerCreateRequested",
        json!({"op_id": created, "host": "local", "spec": {"image": "busybox"}, "requested_at": at})).await;
    insert(&pool, ("container", &web), 2, "ContainerCreated",
        json!({"op_id": created, "host": "local", "docker_id": "abc123", "name": "web", "image_id": null, "created_at": at})).await;
    insert(
        &pool,
        ("container", &web),
        3,
        "ContainerStopRequested",
        json!({"op_id": stopping, "timeout": 5, "requested_at": at}),
    )
    .await;
    // Recorded after the request: it does not hide it.
    insert(&pool, ("container", &web), 4, "ContainerObserved",
        json!({"action": "die", "exit_code": 0, "time_nano": 1, "attributes": {}, "observed_at": at})).await;
    let image = Uuid::now_v7().to_string();
    insert(&pool, ("image", &image), 1, "ImagePullRequested",
        json!({"op_id": pulling, "host": "local", "reference": "busybox:latest", "requested_at": at})).await;
    // A newer dcp's request: its operation stays pending, unread.
    let other = Uuid::now_v7().to_string();
    insert(
        &pool,
        ("container", &other),
        1,
        "ContainerTeleportRequested",
        json!({"op_id": teleport, "requested_at": at}),
    )
    .await;
    operation(&pool, created, ("container", &web), "succeeded").await;
    operation(&pool, stopping, ("container", &web), "pending").await;
    operation(&pool, pulling, ("image", &image), "pending").await;
    operation(&pool, teleport, ("container", &other), "pending").await;

    let containers = GlobalLogReader::pending_requests(&pool, &["container"])
        .await
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let stop = &containers[0];
    assert_eq!(
        (stop.op_id, stop.aggregate_id.as_str()),
        (stopping, web.as_str())
    );
    assert!(matches!(
        stop.request,
        AnyEvent::Container(ContainerEvent::ContainerStopRequested {
            timeout: Some(5),
            ..
        })
    ));
    assert!(stop.age_secs >= 0.0 && stop.age_secs < 60.0);
    assert_eq!(stop.progress_age_secs, None);

    let images = GlobalLogReader::pending_requests(&pool, &["image", "volume", "network"])
        .await
        .unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].op_id, pulling);
    assert!(matches!(
        images[0].request,
        AnyEvent::Image(ImageEvent::ImagePullRequested { .. })
    ));

    let requesting = |verb: &'static str, op_id: Uuid| {
        let pool = pool.clone();
        async move {
            GlobalLogReader::aggregate_requesting(&pool, "container", verb, op_id)
                .await
                .unwrap()
        }
    };
    assert_eq!(requesting("create", created).await, Some(web.clone()));
    assert_eq!(requesting("recreate", created).await, None);
    assert_eq!(requesting("create", stopping).await, None);

    assert!(
        GlobalLogReader::outcome_recorded(&pool, "container", &web, created)
            .await
            .unwrap()
    );
    assert!(
        !GlobalLogReader::outcome_recorded(&pool, "container", &web, stopping)
            .await
            .unwrap()
    );

    let by_prefix =
        GlobalLogReader::aggregates_with_id_prefix(&pool, "container", "docker_id", "abc", 2)
            .await
            .unwrap();
    assert_eq!(by_prefix, vec![web.clone()]);
    let none =
        GlobalLogReader::aggregates_with_id_prefix(&pool, "container", "docker_id", "a_c", 2)
            .await
            .unwrap();
    assert!(none.is_empty(), "a prefix matches literally");
}
