//! The event bus on a real NATS server with JetStream: a durable subscriber sees every
//! event exactly once, in order per aggregate, across a relay restart (the server stopped
//! and started again) and a NATS restart during writes — commands keep succeeding while
//! NATS is down, and what was written meanwhile arrives once it is back.
//!
//! Its own binary: it runs a private nats-server (the binary `scripts/services.sh`
//! installs) that it can stop and start without disturbing anyone.

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::*;

/// (event id, aggregate id, aggregate sequence) of every message, in arrival order.
type Received = Arc<Mutex<Vec<(String, String, i64)>>>;

/// A durable pull consumer that acks what it gets and keeps going across NATS restarts.
fn subscribe(url: String, received: Received) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let attempt = async {
                let client = async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connect(&url)
                    .await?;
                let js = jetstream::new(client);
                let stream = loop {
                    match js.get_stream("DCP_EVENTS").await {
                        Ok(stream) => break stream,
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                };
                let consumer = stream
                    .get_or_create_consumer(
                        "test-subscriber",
                        pull::Config {
                            durable_name: Some("test-subscriber".into()),
                            ..Default::default()
                        },
                    )
                    .await?;
                loop {
                    let mut batch = consumer
                        .fetch()
                        .max_messages(500)
                        .expires(Duration::from_millis(500))
                        .messages()
                        .await?;
                    while let Some(message) = batch.next().await {
                        let message = message?;
                        let envelope: Value = serde_json::from_slice(&message.payload)?;
                        received.lock().unwrap().push((
                            envelope["event_id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            envelope["aggregate"]["id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            envelope["aggregate"]["sequence"]
                                .as_i64()
                                .unwrap_or_default(),
                        ));
                        message.ack().await?;
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            };
            if attempt.await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    })
}

/// Renames `user_id` `count` times through the API, as `token`.
async fn write(app: &TestApp, token: &str, user_id: &str, from: usize, count: usize) {
    for i in from..from + count {
        let response = app
            .request(
                Method::PATCH,
                &format!("/api/v1/users/{user_id}"),
                Some(token),
                Some(json!({"full_name": format!("Name {i}")})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "write {i}");
    }
}

#[tokio::test]
async fn every_event_reaches_a_nats_subscriber_once_across_relay_and_nats_restarts() {
    let mut nats = Nats::start();
    let url = nats.url();
    let with_nats = |settings: &mut dcp::config::Settings| settings.nats_url = Some(url.clone());
    let app = spawn_app_with(with_nats).await;
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["bus"], "ready", "{ready}");

    let received: Received = Arc::default();
    let subscriber = subscribe(url.clone(), received.clone());
    let (user, _) = app.user_with_token("renamed", "viewer").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let admin = app.admin_token.clone();

    write(&app, &admin, &user_id, 0, 50).await;

    // The relay restarts: the server stops and a new one starts on the same database.
    let database_url = app.database_url.clone();
    app.stop().await;
    let app = spawn_app_on(database_url.clone(), with_nats).await;
    write(&app, &app.admin_token.clone(), &user_id, 50, 50).await;

    // NATS goes away during writes: commands keep succeeding, readiness says so.
    nats.stop();
    write(&app, &app.admin_token.clone(), &user_id, 100, 50).await;
    let ready = app.request(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["bus"], "not_ready", "{ready}");
    nats.run();
    write(&app, &app.admin_token.clone(), &user_id, 150, 50).await;

    // Every stored event arrives, once.
    let stored: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT event_id::text, aggregate_id, sequence FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let wanted: HashSet<String> = stored.iter().map(|(id, ..)| id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|(id, ..)| id.clone())
            .collect();
        if wanted.is_subset(&seen) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events arrived",
            wanted.intersection(&seen).count(),
            wanted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    subscriber.abort();

    // The stream holds each event exactly once: the relay's repeats after its restart and
    // during the NATS outage were dropped by `Nats-Msg-Id`.
    let client = async_nats::connect(&url).await.unwrap();
    let mut stream = jetstream::new(client)
        .get_stream("DCP_EVENTS")
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.state.messages as usize,
        stored.len(),
        "messages in the stream"
    );

    // The subscriber processes each event once, deduping by event id as documented
    // (JetStream redelivers a message whose acknowledgement was lost in the outage), and
    // sees each aggregate's events in order.
    let received = received.lock().unwrap().clone();
    let mut processed = HashSet::new();
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    let mut redelivered = 0;
    for (id, aggregate, sequence) in &received {
        if !processed.insert(id.clone()) {
            redelivered += 1;
            continue;
        }
        let previous = last.insert(aggregate, *sequence).unwrap_or(0);
        assert!(
            *sequence > previous,
            "{aggregate}: {sequence} after {previous}"
        );
    }
    assert_eq!(processed, wanted, "processed exactly the stored events");
    assert!(processed.len() >= 200, "{} events", processed.len());
    println!(
        "{} events, {redelivered} redelivered after the NATS restart",
        processed.len()
    );

    // `dcp subscribe`, the example subscriber: a durable consumer that resumes where it
    // stopped, one JSON envelope per line.
    let subscribe = |limit: usize| {
        let output = Command::new(env!("CARGO_BIN_EXE_dcp"))
            .args([
                "subscribe",
                "--durable",
                "cli-example",
                "--limit",
                &limit.to_string(),
            ])
            .env("NATS_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let envelope: Value = serde_json::from_str(line).unwrap();
                assert_eq!(envelope["envelope_version"], 1);
                envelope["event_id"].as_str().unwrap().to_string()
            })
            .collect::<Vec<_>>()
    };
    let first = subscribe(10);
    let second = subscribe(10);
    let in_order: Vec<String> = stored.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(first, in_order[..10], "the first ten events, in log order");
    assert_eq!(second, in_order[10..20], "resumed after the first ten");

    // The relay reports no lag once it has published everything.
    let detailed = app.get_json("/health/detailed", &app.admin_token).await;
    let bus = &detailed["components"]["bus"];
    assert_eq!(bus["kind"], "nats", "{detailed}");
    assert_eq!(bus["status"], "healthy", "{detailed}");
    app.stop().await;
}
