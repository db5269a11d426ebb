//! A client that stops reading while 10,000 events are produced: the server's memory stays
//! flat (each socket reads from one bounded broadcast; a client that does not read is
//! told it lagged, or dropped, never buffered for), and a client that reads keeps
//! receiving on time. Its own binary: it measures this process's memory.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use dcp::commands::{CommandBus, CommandMeta};
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand};
use dcp_aggregates::Role;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use common::*;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// An `/ws/events` socket; `small_buffer` shrinks the client's TCP receive buffer so that
/// a client that does not read is felt by the server at once, not after the kernel has
/// absorbed megabytes on its behalf.
async fn events_socket(app: &TestApp, small_buffer: bool) -> Socket<tokio::net::TcpStream> {
    let ticket = request_ws_ticket(
        &app.client,
        &app.address,
        &app.admin_token,
        json!({"purpose": "events"}),
    )
    .await;
    let url = ws_url(&app.address, &format!("/ws/events?ticket={ticket}"));
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    if small_buffer {
        tcp.set_recv_buffer_size(4096).unwrap();
    }
    let stream = tcp.connect(address).await.unwrap();
    let mut socket = Socket::connect_over(stream, &url).await;
    let ready = socket.next().await.unwrap().unwrap();
    assert!(ready.to_text().unwrap().contains("ready"));
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_costs_no_memory_and_delays_nobody() {
    const EVENTS: usize = 10_000;
    let app = spawn_app().await;
    // Opened and never read again.
    let mut slow = events_socket(&app, true).await;
    let mut fast = events_socket(&app, false).await;
    let reader = tokio::spawn(async move {
        let mut received = 0;
        let mut last_at = Instant::now();
        while received < EVENTS {
            match tokio::time::timeout(Duration::from_secs(60), fast.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    if text.contains("\"AccessDenied\"") {
                        received += 1;
                        last_at = Instant::now();
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => {
                    panic!("the reading client stopped getting events after {received}: {other:?}")
                }
            }
        }
        last_at
    });

    let before = rss_bytes();
    let bus = CommandBus::new(app.pool.clone());
    let produced = futures_util::stream::iter(0..EVENTS)
        .map(|i| {
            let bus = bus.clone();
            async move {
                let command = AccessAttemptCommand::RecordDeniedRequest {
                    user_id: uuid::Uuid::new_v4(),
                    role: Role::Viewer,
                    method: "GET".into(),
                    route: "/api/v1/users".into(),
                    path: format!("/api/v1/users?n={i}"),
                    at: chrono::Utc::now(),
                };
                bus.execute::<AccessAttempt>(
                    &uuid::Uuid::now_v7().to_string(),
                    command,
                    &CommandMeta::system(),
                )
                .await
                .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    produced.await;
    let written_at = Instant::now();
    let last_at = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reading client got every event")
        .unwrap();
    let after = rss_bytes();
    let delay = last_at.saturating_duration_since(written_at);
    println!(
        "{EVENTS} events; the reading client had the last {} ms after it was written; RSS {} MB → {} MB",
        delay.as_millis(),
        before / 1_000_000,
        after / 1_000_000
    );
    assert!(
        delay < Duration::from_secs(5),
        "the reading client lagged {delay:?}"
    );
    assert!(
        after.saturating_sub(before) < 64 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes with a client that does not read"
    );

    // The slow client was told it lagged, or dropped: its socket ends.
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = counted.clone();
    let ended = tokio::time::timeout(Duration::from_secs(30), async move {
        let mut lagged = false;
        while let Some(message) = slow.next().await {
            match message {
                Ok(Message::Text(text)) if text.contains("\"lagged\"") => lagged = true,
                Ok(Message::Text(_)) => {
                    seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        lagged
    })
    .await;
    let slow_read = counted.load(std::sync::atomic::Ordering::Relaxed);
    println!("the client that stopped reading got {slow_read} events before it was cut off (lagged message: {ended:?})");
    assert!(
        slow_read < EVENTS,
        "the slow client was buffered for: it got all {slow_read}"
    );
    assert!(ended.is_ok(), "the slow client's socket was not closed");
    let open = eventually(Duration::from_secs(20), || async {
        let detailed = app.get_json("/health/detailed", &app.admin_token).await;
        let open = detailed["components"]["websockets"]["open"]
            .as_u64()
            .unwrap();
        (open <= 1).then_some(open)
    })
    .await;
    assert!(open <= 1, "only the reading client's socket is open");
}
