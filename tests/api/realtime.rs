//! `/ws/events` with a browser-like client: the ticket flow, refused tickets and origins,
//! events filtered per role, replay with `?after=` (no gap, no duplicate), and logout
//! closing the socket with 1008.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::*;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn ticket(app: &TestApp, token: &str, body: Value) -> String {
    let response = app
        .request(Method::POST, "/api/v1/ws-tickets", Some(token), Some(body))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 30);
    body["ticket"].as_str().unwrap().to_string()
}

fn ws_url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.address.replacen("http://", "ws://", 1))
}

/// Connects with the ticket in `Sec-WebSocket-Protocol` (as a browser does); the HTTP
/// status of a refused handshake otherwise.
pub(crate) async fn connect(
    app: &TestApp,
    path: &str,
    ticket: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    let mut request = ws_url(app, path).into_client_request().unwrap();
    if let Some(ticket) = ticket {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("dcp.ticket.{ticket}")).unwrap(),
        );
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, response)) => {
            if let Some(ticket) = ticket {
                assert_eq!(
                    response.headers()["sec-websocket-protocol"],
                    format!("dcp.ticket.{ticket}").as_str(),
                    "the server answers with the offered protocol"
                );
            }
            Ok(socket)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("connect failed: {other}"),
    }
}

/// The next JSON message (pings are answered by the library).
pub(crate) async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Events until (and including) one with `event_type` on `aggregate_id`.
async fn events_until(socket: &mut Socket, event_type: &str, aggregate_id: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let message = next_json(socket).await;
        assert_eq!(message["type"], "event", "{message}");
        let event = message["event"].clone();
        let done = event["type"] == event_type && event["aggregate"]["id"] == aggregate_id;
        events.push(event);
        if done {
            return events;
        }
    }
}

#[tokio::test]
async fn events_reach_sockets_per_role_with_replay_and_revocation() {
    let app = spawn_app().await;
    let (viewer_user, viewer) = app.user_with_token("wsviewer", "viewer").await;
    let admin = app.admin_token.clone();

    // Tickets: single use, bound to their purpose, exec refused to viewers.
    let refused = app
        .request(
            Method::POST,
            "/api/v1/ws-tickets",
            Some(&viewer),
            Some(json!({"purpose": "container.exec", "resource_id": "web"})),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let missing = app
        .request(
            Method::POST,
            "/api/v1/ws-tickets",
            Some(&viewer),
            Some(json!({"purpose": "container.logs"})),
        )
        .await;
    assert_error(missing, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(
        connect(&app, "/ws/events", None, None).await.err(),
        Some(401)
    );
    let once = ticket(&app, &viewer, json!({"purpose": "events"})).await;
    let mut viewer_socket = connect(&app, "/ws/events", Some(&once), None)
        .await
        .unwrap();
    assert_eq!(next_json(&mut viewer_socket).await["type"], "ready");
    assert_eq!(
        connect(&app, "/ws/events", Some(&once), None).await.err(),
        Some(401),
        "a ticket opens one socket"
    );
    let expired = ticket(&app, &admin, json!({"purpose": "events"})).await;
    sqlx::query(
        "UPDATE ws_tickets SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        connect(&app, "/ws/events", Some(&expired), None)
            .await
            .err(),
        Some(401)
    );
    let foreign = ticket(&app, &admin, json!({"purpose": "events"})).await;
    assert_eq!(
        connect(
            &app,
            "/ws/events",
            Some(&foreign),
            Some("https://evil.example")
        )
        .await
        .err(),
        Some(403),
        "a page from another origin"
    );
    // The ticket may also come as ?ticket= (non-browser clients), from an allowed origin.
    let query_ticket = ticket(&app, &admin, json!({"purpose": "events"})).await;
    let mut admin_socket = connect(
        &app,
        &format!("/ws/events?ticket={query_ticket}"),
        None,
        Some("http://localhost:5173"),
    )
    .await
    .unwrap();
    let ready = next_json(&mut admin_socket).await;
    assert_eq!(ready["type"], "ready");
    let start: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // A user created by an admin reaches the admin's socket, not the viewer's; a change the
    // viewer may see (its own profile) reaches both.
    let created = app
        .create_user("wsnewcomer", "viewer", "wsnewcomer-password-1")
        .await;
    let created_id = created["id"].as_str().unwrap().to_string();
    let viewer_id = viewer_user["id"].as_str().unwrap().to_string();
    let seen = events_until(&mut admin_socket, "UserCreated", &created_id).await;
    assert!(seen.iter().all(|e| e["envelope_version"] == 1));
    let renamed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{viewer_id}"),
            Some(&admin),
            Some(json!({"full_name": "Viewer Renamed"})),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let viewer_events = events_until(&mut viewer_socket, "UserProfileUpdated", &viewer_id).await;
    assert!(
        viewer_events
            .iter()
            .all(|e| e["aggregate"]["id"] != created_id.as_str()),
        "a viewer saw another user's events: {viewer_events:?}"
    );
    let admin_events = events_until(&mut admin_socket, "UserProfileUpdated", &viewer_id).await;
    assert!(!admin_events.is_empty());

    // Resume from a position: the stored events after it, then live — no gap, no duplicate.
    let resume_ticket = ticket(&app, &admin, json!({"purpose": "events"})).await;
    let mut resumed = connect(
        &app,
        &format!("/ws/events?after={start}"),
        Some(&resume_ticket),
        None,
    )
    .await
    .unwrap();
    let mut positions = Vec::new();
    loop {
        let message = next_json(&mut resumed).await;
        match message["type"].as_str() {
            Some("event") => positions.push(message["event"]["global_position"].as_i64().unwrap()),
            Some("ready") => break,
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    let later = app
        .create_user("wslater", "viewer", "wslater-password-1")
        .await;
    let later_id = later["id"].as_str().unwrap().to_string();
    let live = events_until(&mut resumed, "UserCreated", &later_id).await;
    positions.extend(live.iter().map(|e| e["global_position"].as_i64().unwrap()));
    let last = *positions.last().unwrap();
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE global_position > $1 AND global_position <= $2 \
         ORDER BY transaction_id, global_position",
    )
    .bind(start)
    .bind(last)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        positions, stored,
        "replay then live: every event once, in log order"
    );
    let unknown = ticket(&app, &admin, json!({"purpose": "events"})).await;
    let mut refused = connect(&app, "/ws/events?after=999999999", Some(&unknown), None)
        .await
        .unwrap();
    let error = next_json(&mut refused).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["fatal"], true);
    assert!(error["timestamp"].is_string() && error["reconnect"].is_boolean());

    // Logout closes the user's sockets with 1008, within a second.
    let logout = app
        .request(Method::POST, "/api/v1/auth/logout", Some(&viewer), None)
        .await;
    assert!(logout.status().is_success());
    let closed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match viewer_socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within a second");
    assert_eq!(closed.map(|f| f.code), Some(CloseCode::Policy));
    // The admin's sockets stay open.
    admin_socket
        .send(Message::Ping(Default::default()))
        .await
        .unwrap();

    // A demotion closes the user's sockets too (what they may see has changed).
    let (demoted_user, demoted) = app.user_with_token("wsdemoted", "operator").await;
    let demoted_ticket = ticket(&app, &demoted, json!({"purpose": "events"})).await;
    let mut demoted_socket = connect(&app, "/ws/events", Some(&demoted_ticket), None)
        .await
        .unwrap();
    assert_eq!(next_json(&mut demoted_socket).await["type"], "ready");
    let demoted_id = demoted_user["id"].as_str().unwrap();
    let changed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{demoted_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let closed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match demoted_socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within a second of the demotion");
    assert_eq!(closed.map(|f| f.code), Some(CloseCode::Policy));
}

/// Reads messages until one of `kind`; returns everything read.
pub(crate) async fn until_type(socket: &mut Socket, kind: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        let message = next_json(socket).await;
        let done = message["type"] == kind;
        messages.push(message);
        if done {
            return messages;
        }
    }
}

/// A logs socket of the container `name` with a ticket of `token`'s.
async fn logs_socket(app: &TestApp, token: &str, name: &str, query: &str) -> Socket {
    let ticket = ticket(
        app,
        token,
        json!({"purpose": "container.logs", "resource_id": name}),
    )
    .await;
    connect(
        app,
        &format!("/ws/containers/{name}/logs?{query}"),
        Some(&ticket),
        None,
    )
    .await
    .unwrap()
}

/// With `batch=true` the lines Docker gives within a few milliseconds share a message: a
/// long history arrives in far fewer messages, every line once and in order, each with its
/// stream and timestamp.
#[tokio::test]
async fn container_logs_can_arrive_in_batches() {
    use crate::containers::{docker, test_image, Containers};

    let app = spawn_app().await;
    let (_, viewer) = app.user_with_token("batchviewer", "viewer").await;
    let run = Containers::new();
    let name = format!("counter-{}", &run.run[..8]);
    let label = format!("test.dcp-run={}", run.run);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &label,
        &test_image(),
        "sh",
        "-c",
        "seq 1 3000; echo done >&2",
    ]);
    docker(&["wait", &name]);

    let mut logs = logs_socket(
        &app,
        &viewer,
        &name,
        "tail=all&follow=false&timestamps=true&batch=true",
    )
    .await;
    let messages = until_type(&mut logs, "end").await;
    let batches: Vec<&Value> = messages.iter().filter(|m| m["type"] == "logs").collect();
    assert_eq!(
        batches.len() + 1,
        messages.len(),
        "only batches, then the end"
    );
    let lines: Vec<&Value> = batches
        .iter()
        .flat_map(|m| m["lines"].as_array().unwrap())
        .collect();
    let stdout: Vec<String> = lines
        .iter()
        .filter(|l| l["stream"] == "stdout")
        .map(|l| l["data"].as_str().unwrap().trim_end().to_string())
        .collect();
    let expected: Vec<String> = (1..=3000).map(|n| n.to_string()).collect();
    assert_eq!(stdout, expected);
    assert!(lines
        .iter()
        .any(|l| l["stream"] == "stderr" && l["data"].as_str().unwrap().trim_end() == "done"));
    assert!(lines.iter().all(
        |l| l["timestamp"].as_str().is_some_and(|t| t.contains('T')) && l.get("type").is_none()
    ));
    assert!(
        batches.len() * 10 < lines.len(),
        "{} lines in {} messages",
        lines.len(),
        batches.len()
    );
}

#[tokio::test]
async fn container_logs_and_stats_and_task_progress_stream_over_sockets() {
    use crate::containers::{docker, test_image, Containers};

    let app = spawn_app().await;
    let (_, viewer) = app.user_with_token("streamviewer", "viewer").await;
    let run = Containers::new();
    let name = format!("talker-{}", &run.run[..8]);
    let label = format!("test.dcp-run={}", run.run);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &label,
        "--memory",
        "64m",
        &test_image(),
        "sh",
        "-c",
        "for i in 1 2 3; do echo out-$i; echo err-$i >&2; done; while :; do :; done",
    ]);

    // Logs: the whole history with stdout and stderr marked, then the end.
    let mut logs = logs_socket(
        &app,
        &viewer,
        &name,
        "tail=all&follow=false&timestamps=true",
    )
    .await;
    let messages = until_type(&mut logs, "end").await;
    let lines: Vec<(String, String)> = messages
        .iter()
        .filter(|m| m["type"] == "log")
        .map(|m| {
            assert!(
                m["timestamp"].as_str().is_some_and(|t| t.contains('T')),
                "{m}"
            );
            (
                m["stream"].as_str().unwrap().to_string(),
                m["data"].as_str().unwrap().trim_end().to_string(),
            )
        })
        .collect();
    for i in 1..=3 {
        assert!(
            lines.contains(&("stdout".into(), format!("out-{i}"))),
            "{lines:?}"
        );
        assert!(
            lines.contains(&("stderr".into(), format!("err-{i}"))),
            "{lines:?}"
        );
    }
    // Following: a line written now arrives.
    let mut follow = logs_socket(&app, &viewer, &name, "tail=0").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    docker(&["exec", &name, "sh", "-c", "echo live-line > /proc/1/fd/1"]);
    let live = next_json(&mut follow).await;
    assert_eq!(live["type"], "log", "{live}");
    assert_eq!(live["data"].as_str().unwrap().trim_end(), "live-line");
    // A ticket opens only the socket it was made for.
    let wrong = ticket(
        &app,
        &viewer,
        json!({"purpose": "container.logs", "resource_id": name}),
    )
    .await;
    assert_eq!(
        connect(
            &app,
            &format!("/ws/containers/{name}/stats"),
            Some(&wrong),
            None
        )
        .await
        .err(),
        Some(401)
    );

    // Stats: one sample a second, with the limit Docker enforces and a busy CPU.
    let stats_ticket = ticket(
        &app,
        &viewer,
        json!({"purpose": "container.stats", "resource_id": name}),
    )
    .await;
    let mut stats = connect(
        &app,
        &format!("/ws/containers/{name}/stats"),
        Some(&stats_ticket),
        None,
    )
    .await
    .unwrap();
    let first = next_json(&mut stats).await;
    let second = next_json(&mut stats).await;
    let third = next_json(&mut stats).await;
    assert_eq!(second["type"], "stats", "{second}");
    assert_eq!(second["memory"]["limit"], 64 * 1024 * 1024, "{second}");
    let docker_limit = docker(&["inspect", "--format", "{{.HostConfig.Memory}}", &name]);
    assert_eq!(docker_limit, (64 * 1024 * 1024).to_string());
    assert!(
        third["cpu_percent"].as_f64().unwrap() > 30.0,
        "a busy loop uses a CPU: {third}"
    );
    let docker_pids = docker(&["stats", "--no-stream", "--format", "{{.PIDs}}", &name]);
    assert_eq!(
        third["pids"].as_u64().unwrap().to_string(),
        docker_pids,
        "{third}"
    );
    let docker_mem = docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &name]);
    assert!(docker_mem.ends_with("/ 64MiB"), "{docker_mem}");
    assert!(second["memory"]["usage"].as_u64().unwrap() > 0);
    let first_at =
        chrono::DateTime::parse_from_rfc3339(first["timestamp"].as_str().unwrap()).unwrap();
    let third_at =
        chrono::DateTime::parse_from_rfc3339(third["timestamp"].as_str().unwrap()).unwrap();
    let spacing = (third_at - first_at).num_milliseconds();
    assert!(
        (1000..=4000).contains(&spacing),
        "two samples {spacing} ms apart"
    );

    // A task: an image pull's per-layer progress, then its outcome.
    let registry = std::env::var("DCP_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55000".into());
    let repository = format!("{registry}/dcp-test/task-{}", &run.run[..8]);
    let reference = crate::resources::seed_registry_image(&repository, "1");
    let accepted = app
        .request(
            Method::POST,
            "/api/v1/images/pull",
            Some(&app.admin_token),
            Some(json!({"image": reference})),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let accepted: Value = accepted.json().await.unwrap();
    let op_id = accepted["operation_id"].as_str().unwrap().to_string();
    let task_ticket = ticket(
        &app,
        &viewer,
        json!({"purpose": "task", "resource_id": op_id}),
    )
    .await;
    let mut task = connect(
        &app,
        &format!("/ws/tasks/{op_id}"),
        Some(&task_ticket),
        None,
    )
    .await
    .unwrap();
    let messages = until_type(&mut task, "complete").await;
    let complete = messages.last().unwrap();
    assert_eq!(complete["status"], "succeeded", "{complete}");
    assert_eq!(complete["action"], "image.pull");
    assert!(
        complete["progress"]["layers"]
            .as_object()
            .is_some_and(|l| !l.is_empty()),
        "{complete}"
    );
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &reference])
        .output();
}

/// Binary output of an exec socket until `needle` appears; the text read so far.
pub(crate) async fn read_until(socket: &mut Socket, needle: &str) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains(needle) {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("'{needle}' not seen in {text:?}"))
            .expect("open")
            .expect("a frame");
        match message {
            Message::Binary(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Message::Text(other) => text.push_str(&format!("\n[text {other}]\n")),
            Message::Close(frame) => panic!("closed: {frame:?} after {text:?}"),
            _ => {}
        }
    }
    text
}

#[tokio::test]
async fn an_exec_terminal_runs_commands_resizes_and_reports_the_exit_code() {
    use crate::containers::Containers;

    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("termops", "operator").await;
    let run = Containers::new();
    let id = run.start("term", &[]);
    let exec_ticket = ticket(
        &app,
        &operator,
        json!({"purpose": "container.exec", "resource_id": id}),
    )
    .await;
    let mut terminal = connect(
        &app,
        &format!("/ws/containers/{id}/exec?cols=80&rows=24"),
        Some(&exec_ticket),
        None,
    )
    .await
    .unwrap();
    let started = next_json(&mut terminal).await;
    assert_eq!(started["type"], "started", "{started}");

    // A container that reaches the host is a shell on the host: not for operators.
    let privileged = run.start("host-term", &["-v", "/tmp:/host-tmp:ro"]);
    let refused = ticket(
        &app,
        &operator,
        json!({"purpose": "container.exec", "resource_id": privileged}),
    )
    .await;
    assert_eq!(
        connect(
            &app,
            &format!("/ws/containers/{privileged}/exec"),
            Some(&refused),
            None
        )
        .await
        .err(),
        Some(403)
    );

    terminal
        .send(Message::Binary("echo hel''lo\n".into()))
        .await
        .unwrap();
    // The shell echoes the typed line (with the quotes); the output has none.
    read_until(&mut terminal, "hello\r\n").await;
    terminal
        .send(Message::Text(
            json!({"type": "resize", "cols": 100, "rows": 40})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    terminal
        .send(Message::Binary("stty size\n".into()))
        .await
        .unwrap();
    read_until(&mut terminal, "40 100").await;
    terminal
        .send(Message::Text(
            json!({"type": "input", "data": "exit 3\n"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let mut exit = None;
    while let Some(Ok(message)) = terminal.next().await {
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "exit" {
                    exit = Some(value);
                }
            }
            Message::Close(frame) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(exit.expect("an exit message")["exit_code"], 3);

    // The session is in the container's history, with who, what and how it ended.
    let history = eventually(Duration::from_secs(10), || async {
        let history = app
            .get_json(
                &format!("/api/v1/containers/{id}/history"),
                &app.admin_token,
            )
            .await;
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "ContainerExecEnded")
            .then_some(history)
    })
    .await;
    let started = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "ContainerExecStarted")
        .unwrap();
    assert_eq!(started["actor_username"], "termops");
    let ended = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "ContainerExecEnded")
        .unwrap();
    assert_eq!(ended["data"]["exit_code"], 3);
    assert!(ended["data"]["duration_ms"].as_i64().unwrap() > 0);
}
