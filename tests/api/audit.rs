//! The audit log: every command, login and denial with actor, IP, user agent and request
//! id; filters, pagination, and exports that parse.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, newlines inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The audit entries a test expects: (action, request id, acting user's id).
#[derive(Default)]
struct ExpectedEntries(Vec<(&'static str, String, Option<String>)>);

impl ExpectedEntries {
    fn push(&mut self, action: &'static str, response: &reqwest::Response, actor: Option<String>) {
        self.0.push((action, request_id(response), actor));
    }
}

#[tokio::test]
async fn every_command_login_and_denial_is_audited_with_its_context() {
    let app = spawn_app().await;
    let admin: Value = app.get_json("/api/v1/auth/me", &app.admin_token).await;
    let admin_id = admin["id"].as_str().map(str::to_string);
    let mut expected = ExpectedEntries::default();

    let created = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "hank", "email": "hank@example.com", "full_name": "Hank", "role": "viewer", "password": "hank-password-1", "must_change_password": false}),
        )
        .await;
    expected.push("user.create", &created, admin_id.clone());
    let hank: Value = created.json().await.unwrap();
    let hank_id = hank["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{hank_id}");
    let patch = |body: Value| app.request(Method::PATCH, &path, Some(&app.admin_token), Some(body));

    for (action, body) in [
        ("user.update", json!({"full_name": "Hank H"})),
        ("user.role_change", json!({"role": "operator"})),
    ] {
        expected.push(action, &patch(body).await, admin_id.clone());
    }
    hank_fails_signs_in_is_denied_changes_his_password_and_signs_out(&app, &mut expected, &hank_id)
        .await;
    for (action, body) in [
        ("user.deactivate", json!({"is_active": false})),
        ("user.reactivate", json!({"is_active": true})),
    ] {
        expected.push(action, &patch(body).await, admin_id.clone());
    }
    let deleted = app
        .request(Method::DELETE, &path, Some(&app.admin_token), None)
        .await;
    let last_position: i64 = deleted.headers()["x-dcp-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    expected.push("user.delete", &deleted, admin_id.clone());

    let page: Value = app
        .get_json_at(
            "/api/v1/audit-logs?limit=1000",
            &app.admin_token,
            last_position,
        )
        .await;
    every_entry_has_its_request_client_and_actor(&page, &expected);
    // No secret ever reaches the audit log.
    let text = page.to_string();
    for secret in ["hank-password-1", "hank-password-2", "$argon2", "dcp_rt_"] {
        assert!(!text.contains(secret), "audit log contains {secret}");
    }
}

/// Hank's own requests (and an unknown user's failed login), each to be audited.
async fn hank_fails_signs_in_is_denied_changes_his_password_and_signs_out(
    app: &TestApp,
    expected: &mut ExpectedEntries,
    hank_id: &str,
) {
    let hank = Some(hank_id.to_string());
    let failed = app.login("hank", "wrong-password").await;
    expected.push("auth.login_failed", &failed, hank.clone());
    let unknown = app.login("nobody-at-all", "wrong-password").await;
    expected.push("auth.login_failed", &unknown, None);
    let login = app.login("hank", "hank-password-1").await;
    expected.push("auth.login", &login, hank.clone());
    let hank_token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let denied = app.get("/api/v1/users", &hank_token).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    expected.push("access.denied", &denied, hank.clone());
    let password = app
        .post(
            "/api/v1/auth/password",
            &hank_token,
            json!({"current_password": "hank-password-1", "new_password": "hank-password-2"}),
        )
        .await;
    expected.push("user.password_change", &password, hank.clone());
    let logout = app
        .request(Method::POST, "/api/v1/auth/logout", Some(&hank_token), None)
        .await;
    expected.push("auth.logout", &logout, hank);
}

/// Each expected entry is in `page` with its request id, the client's address and user
/// agent, and the acting user; a denial names the route and role, an unknown login its reason.
fn every_entry_has_its_request_client_and_actor(page: &Value, expected: &ExpectedEntries) {
    let entries = page["items"].as_array().unwrap();
    for (action, request_id, actor) in &expected.0 {
        let entry = entries
            .iter()
            .find(|e| e["request_id"] == *request_id && e["action"] == *action)
            .unwrap_or_else(|| panic!("no {action} entry for request {request_id}"));
        assert_eq!(entry["ip_address"], "127.0.0.1", "{entry}");
        assert_eq!(entry["user_agent"], "dcp-tests/1.0", "{entry}");
        assert_eq!(
            entry["user_id"].as_str().map(str::to_string),
            *actor,
            "{entry}"
        );
        assert!(entry["created_at"].is_string() && entry["global_position"].as_i64().unwrap() > 0);
    }
    let denial = entries
        .iter()
        .find(|e| e["action"] == "access.denied")
        .unwrap();
    assert_eq!(denial["resource_id"], "GET /api/v1/users");
    assert_eq!(denial["role"], "operator");
    // The name typed for no account is not kept (it may be a password in the wrong field).
    let unknown_failure = entries
        .iter()
        .find(|e| e["details"]["reason"] == "unknown_user")
        .unwrap();
    assert_eq!(unknown_failure["details"]["login"], "", "{unknown_failure}");
    assert!(!serde_json::to_string(&entries)
        .unwrap()
        .contains("nobody-at-all"));
}

#[tokio::test]
async fn filters_pagination_and_exports() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.create_user(&format!("user{i}"), "viewer", "user-password-1")
            .await;
    }
    let last = app.create_user("last", "viewer", "user-password-1").await;
    let settle = |url: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(app.url(&url))
                .bearer_auth(&app.admin_token)
                .header("x-dcp-min-position", "1")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            response
        }
    };
    // Wait for the audit projection to reach the last create.
    let last_id = last["id"].as_str().unwrap().to_string();
    eventually(std::time::Duration::from_secs(10), || {
        let app = &app;
        let last_id = last_id.clone();
        async move {
            let page: Value = app
                .get_json(
                    &format!("/api/v1/audit-logs?resource_id={last_id}"),
                    &app.admin_token,
                )
                .await;
            (!page["items"].as_array().unwrap().is_empty()).then_some(())
        }
    })
    .await;

    // Cursor pagination walks every user.create entry exactly once, newest first.
    let mut seen = Vec::new();
    let mut url = "/api/v1/audit-logs?action=user.create&limit=3".to_string();
    loop {
        let page: Value = settle(url.clone()).await.json().await.unwrap();
        for entry in page["items"].as_array().unwrap() {
            seen.push(entry["seq"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                url = format!("/api/v1/audit-logs?action=user.create&limit=3&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 9, "admin + 8 users");
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    let by_resource: Value = settle(format!(
        "/api/v1/audit-logs?resource_type=user&resource_id={last_id}"
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(by_resource["items"].as_array().unwrap().len(), 1);
    let future: Value = settle("/api/v1/audit-logs?since=2999-01-01T00:00:00Z".into())
        .await
        .json()
        .await
        .unwrap();
    assert!(future["items"].as_array().unwrap().is_empty());

    let csv = settle("/api/v1/audit-logs?action=user.create&format=csv".into()).await;
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let rows = parse_csv(&csv.text().await.unwrap());
    assert_eq!(rows[0][0], "seq");
    assert_eq!(rows.len(), 10, "header + 9 entries");
    let action_column = rows[0].iter().position(|h| h == "action").unwrap();
    let details_column = rows[0].iter().position(|h| h == "details").unwrap();
    for row in &rows[1..] {
        assert_eq!(row.len(), rows[0].len());
        assert_eq!(row[action_column], "user.create");
        let details: Value = serde_json::from_str(&row[details_column]).unwrap();
        assert!(details["username"].is_string());
    }

    let ndjson = settle("/api/v1/audit-logs?format=ndjson".into())
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 10);
    assert!(lines
        .iter()
        .all(|l| l["action"].is_string() && l["seq"].is_i64()));
}

#[tokio::test]
async fn the_raw_event_stream_filters_by_aggregate_type_actor_and_time_and_streams_ndjson() {
    let app = spawn_app().await;
    let (ivy, ivy_token) = app.user_with_token("ivy-filter", "admin").await;
    let ivy_id = ivy["id"].as_str().unwrap().to_string();
    let before = chrono::Utc::now();
    for i in 0..3 {
        let response = app
            .post(
                "/api/v1/users",
                &ivy_token,
                json!({"username": format!("made-by-ivy-{i}"), "email": format!("ivy{i}@example.com"),
                    "full_name": "Made By Ivy", "password": "a-good-password-1", "role": "viewer"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let after_all = chrono::Utc::now();
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339().replace('+', "%2B");
    let page = |query: String| {
        let app = &app;
        async move {
            app.get_json(
                &format!("/api/v1/events?limit=1000&{query}"),
                &app.admin_token,
            )
            .await["events"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let by_ivy = page(format!("actor={ivy_id}&event_type=UserCreated")).await;
    assert_eq!(by_ivy.len(), 3, "{by_ivy:?}");
    let by_name = page("actor=ivy-filter&event_type=UserCreated".into()).await;
    assert_eq!(by_name.len(), 3);
    let in_window = page(format!(
        "aggregate_type=user&since={}&until={}",
        stamp(before),
        stamp(after_all)
    ))
    .await;
    assert!(in_window
        .iter()
        .all(|e| e["aggregate_type"] == "user" && e["event_type"] == "UserCreated"));
    assert_eq!(in_window.len(), 3);
    let one = page(format!("aggregate_type=user&aggregate_id={ivy_id}")).await;
    assert!(!one.is_empty());
    assert!(one.iter().all(|e| e["aggregate_id"] == ivy_id.as_str()));
    let later = page(format!("since={}", stamp(after_all))).await;
    assert!(later.iter().all(|e| e["event_type"] != "UserCreated"));

    // NDJSON: every matching event, one per line, by format or by Accept.
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let text = app
        .get("/api/v1/events?format=ndjson", &app.admin_token)
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() as i64 >= all, "{} of {all}", lines.len());
    let positions: Vec<i64> = lines
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] != w[1]));
    let response = app
        .client
        .get(app.url(&format!(
            "/api/v1/events?actor={ivy_id}&event_type=UserCreated"
        )))
        .bearer_auth(&app.admin_token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(response.text().await.unwrap().lines().count(), 3);
}

#[tokio::test]
async fn the_raw_event_stream_reads_in_log_order() {
    let app = spawn_app().await;
    app.create_user("ivy", "viewer", "ivy-password-1").await;
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let page: Value = app
            .get_json(
                &format!("/api/v1/events?after={after}&limit=2"),
                &app.admin_token,
            )
            .await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        all.extend(events.iter().cloned());
        after = page["next_after"].as_i64().unwrap();
    }
    let types: Vec<&str> = all
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "UserCreated").count(), 2);
    assert!(types.contains(&"SessionStarted"));
    let positions: Vec<i64> = all
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    let unique: std::collections::HashSet<_> = positions.iter().collect();
    assert_eq!(unique.len(), positions.len());
    assert!(all.iter().all(|e| e["metadata"]["request_id"].is_string()));
}

#[tokio::test]
async fn out_of_range_times_are_refused() {
    let app = spawn_app().await;
    for query in [
        "since=-5000-01-01T00:00:00Z",
        "until=+20000-01-01T00:00:00Z",
    ] {
        let response = app
            .get(&format!("/api/v1/audit-logs?{query}"), &app.admin_token)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
}

/// `dcp replay` prints the stored events as NDJSON in log order, and `dcp projections
/// status` reports every projection; both against the server's database.
#[tokio::test]
async fn the_replay_and_status_commands_read_the_store() {
    let app = spawn_app().await;
    let user = app
        .create_user("replayed", "viewer", "replayed-password-1")
        .await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_dcp"))
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "error")
            .output()
            .expect("run dcp");
        assert!(
            output.status.success(),
            "dcp {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    };
    let replay = run(&["replay"]);
    let events: Vec<Value> = replay
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events.len() as i64, stored);
    let order: Vec<(u64, i64)> = events
        .iter()
        .map(|e| {
            (
                e["transaction_id"].as_u64().unwrap(),
                e["global_position"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "not in log order");
    assert!(events
        .iter()
        .any(|e| e["event_type"] == "UserCreated" && e["aggregate_id"] == user["id"]));
    // --after continues after a position, --limit stops early.
    let first = events[0]["global_position"].as_i64().unwrap().to_string();
    let rest = run(&["replay", "--after", &first, "--limit", "2"]);
    let rest: Vec<Value> = rest
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0]["global_position"], events[1]["global_position"]);

    let status = run(&["projections", "status"]);
    for name in ["users", "sessions", "audit_log"] {
        assert!(
            status.lines().any(|line| line.starts_with(name)),
            "{name} missing:\n{status}"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_audited() {
    let app =
        spawn_app_with(|settings| settings.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"username": "admin", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    let request_id = request_id(&response);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let entry = eventually(std::time::Duration::from_secs(10), || {
        let app = &app;
        let request_id = request_id.clone();
        async move {
            let page = app
                .get_json(
                    "/api/v1/audit-logs?action=auth.login_failed",
                    &app.admin_token,
                )
                .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["request_id"] == request_id.as_str())
                .cloned()
        }
    })
    .await;
    assert_eq!(entry["ip_address"], "198.51.100.7");
}

/// The chain report once the audit log has caught up with every event (the first changed,
/// removed, moved or missing entry named).
async fn chain(app: &TestApp) -> Value {
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.get_json_at("/api/v1/audit-logs/verify", &app.admin_token, head)
        .await
}

#[tokio::test]
async fn the_audit_chain_names_the_first_changed_removed_or_moved_entry() {
    let app = spawn_app().await;
    for i in 0..8 {
        app.create_user(&format!("chain{i}"), "viewer", "chain-password-1")
            .await;
    }
    let report = chain(&app).await;
    assert_eq!(report["valid"], true, "{report}");
    let entries: Vec<(i64, serde_json::Value, String)> =
        sqlx::query_as("SELECT seq, details, action FROM audit_logs ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(report["checked"], entries.len() as i64);
    assert!(entries.len() >= 8, "{entries:?}");
    let exec = |sql: String| {
        let pool = app.pool.clone();
        async move { sqlx::query(&sql).execute(&pool).await.unwrap() }
    };

    // Edited: that entry is named.
    let edited = entries[3].0;
    exec(format!(
        "UPDATE audit_logs SET details = details || '{{\"forged\": true}}' WHERE seq = {edited}"
    ))
    .await;
    let report = chain(&app).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["first_invalid"]["seq"], edited);
    sqlx::query("UPDATE audit_logs SET details = $1 WHERE seq = $2")
        .bind(&entries[3].1)
        .bind(edited)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(chain(&app).await["valid"], true, "restored");

    // Moved (two entries swap places): the first of them is named.
    let (first, second) = (entries[5].0, entries[6].0);
    sqlx::query(
        "UPDATE audit_logs SET action = CASE seq WHEN $1 THEN $4 ELSE $3 END, \
         details = CASE seq WHEN $1 THEN $6::jsonb ELSE $5::jsonb END WHERE seq IN ($1, $2)",
    )
    .bind(first)
    .bind(second)
    .bind(&entries[5].2)
    .bind(&entries[6].2)
    .bind(&entries[5].1)
    .bind(&entries[6].1)
    .execute(&app.pool)
    .await
    .unwrap();
    let report = chain(&app).await;
    assert_eq!(report["first_invalid"]["seq"], first, "{report}");
    sqlx::query(
        "UPDATE audit_logs SET action = CASE seq WHEN $1 THEN $3 ELSE $4 END, \
         details = CASE seq WHEN $1 THEN $5::jsonb ELSE $6::jsonb END WHERE seq IN ($1, $2)",
    )
    .bind(first)
    .bind(second)
    .bind(&entries[5].2)
    .bind(&entries[6].2)
    .bind(&entries[5].1)
    .bind(&entries[6].1)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(chain(&app).await["valid"], true, "restored");

    // Removed: the entry after the gap is named.
    exec(format!(
        "DELETE FROM audit_logs WHERE seq = {}",
        entries[7].0
    ))
    .await;
    let report = chain(&app).await;
    assert_eq!(report["valid"], false);
    assert_eq!(report["first_invalid"]["seq"], entries[8].0, "{report}");

    // The command line says the same, with a failing exit code.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dcp"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["chain"]["first_invalid"]["seq"], entries[8].0);

    // Cut from the tail (the chain that is left holds): the first event without its entry
    // is named.
    exec(format!(
        "DELETE FROM audit_logs WHERE seq >= {}",
        entries[7].0
    ))
    .await;
    let report = chain(&app).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["first_invalid"], serde_json::Value::Null, "{report}");
    let gone: i64 = sqlx::query_scalar(
        "SELECT min(global_position) FROM events WHERE global_position NOT IN (SELECT global_position FROM audit_logs)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(report["first_missing"]["global_position"], gone, "{report}");
}

const AUDIT_KEY: &str = "an-audit-key-kept-away-from-the-database-0123";

/// `dcp audit …` against the test's database with the test's audit key.
fn dcp_audit(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dcp"))
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("DCP_AUDIT_KEY", AUDIT_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_signed_checkpoint_exposes_a_rewrite_that_recomputed_the_whole_chain() {
    let app = spawn_app_with(|settings| {
        settings.audit_key = Some(secrecy::SecretString::from(AUDIT_KEY.to_string()));
    })
    .await;
    for i in 0..5 {
        app.create_user(&format!("signed{i}"), "viewer", "signed-password-1")
            .await;
    }
    assert_eq!(chain(&app).await["valid"], true);
    let checkpoint = app
        .get_json("/api/v1/audit-logs/checkpoint", &app.admin_token)
        .await;
    assert_eq!(checkpoint["format"], "dcp-audit-checkpoint/1");
    let newest: i64 = sqlx::query_scalar("SELECT max(seq) FROM audit_logs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(checkpoint["seq"], newest);
    let verify = |checkpoints: Vec<Value>| {
        let app = &app;
        async move {
            let response = app
                .post(
                    "/api/v1/audit-logs/verify",
                    &app.admin_token,
                    serde_json::json!({ "checkpoints": checkpoints }),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let report = verify(vec![checkpoint.clone()]).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["checkpoints"][0]["status"], "ok");

    // The command line issues and checks checkpoints with the same key.
    let file = temp_dir().join("checkpoint.json");
    let issued = dcp_audit(&app, &["checkpoint"]);
    assert!(issued.status.success(), "{issued:?}");
    std::fs::write(&file, &issued.stdout).unwrap();
    let checked = dcp_audit(&app, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert!(checked.status.success(), "{checked:?}");

    // Someone with database access forges an event (past the append-only trigger) and
    // rebuilds the audit log from the store: the chain is whole again, and says the forgery.
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{UserCreated,role}', '\"admin\"')::json \
         WHERE event_type = 'UserCreated' AND payload::jsonb -> 'UserCreated' ->> 'username' = 'signed2'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .execute(&app.pool)
        .await
        .unwrap();
    dcp_projections::rebuild_projection(
        &app.pool,
        std::sync::Arc::new(dcp_projections::audit::AuditLogProjection),
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    let forged: Value = sqlx::query_scalar(
        "SELECT details FROM audit_logs WHERE action = 'user.create' AND details ->> 'username' = 'signed2'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(forged["role"], "admin", "the forgery is in the rebuilt log");
    assert_eq!(
        chain(&app).await["valid"],
        true,
        "the chain alone is fooled"
    );
    let report = verify(vec![checkpoint.clone()]).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["checkpoints"][0]["status"], "changed", "{report}");
    let checked = dcp_audit(&app, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert!(!checked.status.success());
    assert!(String::from_utf8_lossy(&checked.stderr).contains("rewritten"));

    // A checkpoint cannot be forged or edited without the key.
    let mut edited = checkpoint.clone();
    edited["hash"] = serde_json::json!(report["chain"]["last_hash"]);
    let report = verify(vec![edited]).await;
    assert_eq!(report["checkpoints"][0]["status"], "bad_signature");

    // Cut: the checkpointed entry is gone.
    sqlx::query("DELETE FROM audit_logs WHERE seq >= $1")
        .bind(newest)
        .execute(&app.pool)
        .await
        .unwrap();
    let report = verify(vec![checkpoint]).await;
    assert_eq!(report["checkpoints"][0]["status"], "missing", "{report}");

    // Bad bodies are client errors.
    for body in [
        serde_json::json!({}),
        serde_json::json!({"checkpoints": [{"seq": 1}]}),
        serde_json::json!({"checkpoints": "all"}),
    ] {
        let response = app
            .post("/api/v1/audit-logs/verify", &app.admin_token, body)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    }
}
