//! SIGTERM under load: the server answers every request in flight, finishes a background
//! pull, closes its sockets with 1001 (going away) and exits cleanly; nothing it
//! acknowledged is lost and its locks go with it.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn sigterm_under_load_loses_no_acknowledged_command_and_closes_sockets_with_1001() {
    let nats = Nats::start();
    let database_url = fresh_database().await;
    let master_key = master_key();
    let client = http_client();
    let mut server = Replica::start(&database_url, &nats.url(), &master_key);
    server.ready(&client).await;
    let token = login(&client, &server).await;
    let admin = my_id(&client, &server, &token).await;
    let mut socket = events_socket(&client, &server, &token).await;
    let closed =
        tokio::spawn(async move { socket.read_to_end().await.close.flatten().map(u16::from) });

    let acknowledged: Arc<Mutex<Vec<i64>>> = Arc::default();
    let writers = writers_on_one_aggregate(&client, &server, &token, &admin, &acknowledged);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // An image pull runs in the background when the signal comes: it is finished first.
    let (reference, pull) = a_pull_in_flight(&client, &server, &token).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopping = Instant::now();
    let child = server.child.take().unwrap();
    let exit = tokio::task::spawn_blocking(move || exit_within(child, Duration::from_secs(30)))
        .await
        .unwrap();
    let exit = exit.expect("the server exits within 30 s of SIGTERM");
    assert!(exit.success(), "exit status {exit}");
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(15), writer)
            .await
            .expect("writers end once the server is gone")
            .unwrap();
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the socket is closed")
            .unwrap(),
        Some(1001),
        "sockets are closed with 1001 (going away)"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "{} acknowledged",
        acknowledged.len()
    );
    let pool = dcp::db::connect(database_url.parse().unwrap(), 2)
        .await
        .unwrap();
    assert_all_stored(&pool, &acknowledged).await;
    // Its locks went with it (PostgreSQL ends its sessions moments after the exit).
    eventually(Duration::from_secs(10), || async {
        lock_holders(&pool).await.is_empty().then_some(())
    })
    .await;
    let pulled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ImagePulled' AND metadata->>'operation_id' = $1",
    )
    .bind(&pull)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        pulled, 1,
        "the pull in flight finished and was recorded before the exit"
    );
    let _ = Command::new("docker").args(["rmi", &reference]).output();
    eprintln!(
        "{} commands acknowledged; exited {:.2} s after SIGTERM",
        acknowledged.len(),
        stopping.elapsed().as_secs_f64()
    );
}

/// Eight writers changing the admin's own profile until the server stops accepting; their
/// acknowledged positions go to `acknowledged`. A request in flight must get an answer
/// (success, or a 409 for a lost race on the one aggregate), never a failure.
fn writers_on_one_aggregate(
    client: &reqwest::Client,
    server: &Replica,
    token: &str,
    admin: &str,
    acknowledged: &Arc<Mutex<Vec<i64>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut writers = Vec::new();
    for i in 0..8 {
        let (client, token, acknowledged) =
            (client.clone(), token.to_string(), acknowledged.clone());
        let url = server.url(&format!("/api/v1/users/{admin}"));
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                // Half the writers wait for the read model: it must keep running until the
                // last request is answered.
                let mut request = client.patch(&url).bearer_auth(&token);
                if i % 2 == 0 {
                    request = request.header("prefer", "return=minimal");
                }
                let response = request
                    .json(&json!({"full_name": format!("Admin {i} {n}")}))
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
                        let position = response.headers()["x-dcp-position"]
                            .to_str()
                            .unwrap()
                            .parse::<i64>()
                            .unwrap();
                        acknowledged.lock().unwrap().push(position);
                    }
                    // A lost race on the one aggregate: not acknowledged, try again.
                    Ok(response) if response.status() == StatusCode::CONFLICT => {}
                    // An answer that is neither: the shutdown failed a request.
                    Ok(response) => panic!(
                        "a request in flight got {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    ),
                    // The server stopped accepting: done.
                    Err(_) => return,
                }
            }
        }));
    }
    writers
}

/// Pushes the test image to the registry under a new name and asks `server` to pull it;
/// returns the image reference and the pull's operation id.
async fn a_pull_in_flight(
    client: &reqwest::Client,
    server: &Replica,
    token: &str,
) -> (String, String) {
    let registry = std::env::var("DCP_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55000".into());
    let repository = format!(
        "{registry}/dcp-test/sigterm-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let image =
        std::env::var("DCP_TEST_DOCKER_IMAGE").unwrap_or_else(|_| "dcp-test/busybox:latest".into());
    let reference = format!("{repository}:1");
    for args in [
        vec!["tag", image.as_str(), &reference],
        vec!["push", &reference],
        vec!["rmi", &reference],
    ] {
        assert!(Command::new("docker")
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success());
    }
    let accepted: Value = client
        .post(server.url("/api/v1/images/pull"))
        .bearer_auth(token)
        .json(&json!({"image": repository, "tag": "1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pull = accepted["operation_id"].as_str().unwrap().to_string();
    (reference, pull)
}

/// The exit status of `child` within `timeout` (polled); None, and the child killed, after.
fn exit_within(mut child: Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
