//! The users API: CRUD, uniqueness, admin safety rules, read-your-writes, concurrency.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

fn position(response: &reqwest::Response) -> i64 {
    response.headers()["x-dcp-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn create_read_update_list_and_delete() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    let response = app
        .post(
            "/api/v1/users",
            &token,
            json!({"username": "Carol", "email": "Carol@Example.com", "full_name": " Carol C ", "role": "operator", "password": "carol-password-1"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(position(&response) > 0);
    let carol: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/users/{}", carol["id"].as_str().unwrap())
    );
    assert_eq!(carol["email"], "carol@example.com");
    assert_eq!(carol["full_name"], "Carol C");
    assert_eq!(carol["must_change_password"], true);
    assert_eq!(carol["version"], 1);

    let fetched: Value = app.get_json(&location, &token).await;
    assert_eq!(fetched, carol);

    let response = app
        .request(
            Method::PATCH,
            &location,
            Some(&token),
            Some(json!({"full_name": "Carol Changed", "role": "viewer"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["full_name"], "Carol Changed");
    assert_eq!(updated["role"], "viewer");
    assert_eq!(updated["version"], 3, "one command, two events");

    let list: Value = app
        .get_json("/api/v1/users?role=viewer&q=carol", &token)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["username"], "Carol");
    let all: Value = app.get_json("/api/v1/users?limit=1", &token).await;
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"].as_array().unwrap().len(), 1);

    let response = app
        .request(Method::DELETE, &location, Some(&token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get(&location, &token).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.login("carol", "carol-password-1").await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;
    // The username and email are free again.
    app.create_user("carol", "viewer", "carol-password-2").await;
}

#[tokio::test]
async fn usernames_and_emails_are_unique_case_insensitively() {
    let app = spawn_app().await;
    let dave = app.create_user("dave", "viewer", "dave-password-1").await;
    let body = |username: &str, email: &str| json!({"username": username, "email": email, "full_name": "X", "role": "viewer", "password": "some-password-1"});
    let taken = assert_error(
        app.post(
            "/api/v1/users",
            &app.admin_token,
            body("DAVE", "other@example.com"),
        )
        .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    assert_eq!(taken["error"]["field"], "username");
    let taken = assert_error(
        app.post(
            "/api/v1/users",
            &app.admin_token,
            body("dave2", "Dave@example.com"),
        )
        .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    assert_eq!(taken["error"]["field"], "email");
    // A refused create leaves no claim behind.
    app.create_user("dave2", "viewer", "dave-password-2").await;
    // Changing an email frees the old one and claims the new one.
    let eve = app.create_user("eve", "viewer", "eve-password-1").await;
    let eve_path = format!("/api/v1/users/{}", eve["id"].as_str().unwrap());
    let dave_path = format!("/api/v1/users/{}", dave["id"].as_str().unwrap());
    let clash = app
        .request(
            Method::PATCH,
            &eve_path,
            Some(&app.admin_token),
            Some(json!({"email": "dave@example.com"})),
        )
        .await;
    assert_error(clash, StatusCode::CONFLICT, "CONFLICT").await;
    let moved = app
        .request(
            Method::PATCH,
            &dave_path,
            Some(&app.admin_token),
            Some(json!({"email": "david@example.com"})),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let taken = app
        .request(
            Method::PATCH,
            &eve_path,
            Some(&app.admin_token),
            Some(json!({"email": "dave@example.com"})),
        )
        .await;
    assert_eq!(taken.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_last_admin_is_protected_and_nobody_removes_themselves() {
    let app = spawn_app().await;
    let me: Value = app.get_json("/api/v1/auth/me", &app.admin_token).await;
    let my_path = format!("/api/v1/users/{}", me["id"].as_str().unwrap());
    for body in [json!({"is_active": false}), json!({"role": "viewer"})] {
        let response = app
            .request(Method::PATCH, &my_path, Some(&app.admin_token), Some(body))
            .await;
        assert_error(response, StatusCode::CONFLICT, "CONFLICT").await;
    }
    assert_error(
        app.request(Method::DELETE, &my_path, Some(&app.admin_token), None)
            .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    // A second admin cannot demote the only other admin once it is the last one.
    let (other, other_token) = app.user_with_token("admin2", "admin").await;
    let other_path = format!("/api/v1/users/{}", other["id"].as_str().unwrap());
    let response = app
        .request(
            Method::PATCH,
            &my_path,
            Some(&other_token),
            Some(json!({"role": "operator"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .request(Method::DELETE, &other_path, Some(&other_token), None)
        .await;
    assert_error(response, StatusCode::CONFLICT, "CONFLICT").await;
}

#[tokio::test]
async fn a_refused_update_writes_nothing() {
    let app = spawn_app().await;
    let me: Value = app.get_json("/api/v1/auth/me", &app.admin_token).await;
    let my_path = format!("/api/v1/users/{}", me["id"].as_str().unwrap());
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // The profile part is valid, the role part is refused: nothing at all changes.
    let response = app
        .request(
            Method::PATCH,
            &my_path,
            Some(&app.admin_token),
            Some(json!({"full_name": "Renamed", "role": "viewer"})),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "CONFLICT").await;
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_before, events_after);
    let unchanged: Value = app.get_json(&my_path, &app.admin_token).await;
    assert_eq!(unchanged["full_name"], "System Administrator");
}

#[tokio::test]
async fn reads_wait_for_the_position_they_are_given() {
    let app = spawn_app().await;
    let user = app.create_user("frank", "viewer", "frank-password-1").await;
    let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
    for i in 0..20 {
        let response = app
            .request(
                Method::PATCH,
                &path,
                Some(&app.admin_token),
                Some(json!({"full_name": format!("Frank {i}")})),
            )
            .await;
        let at = position(&response);
        let read: Value = app.get_json_at(&path, &app.admin_token, at).await;
        assert_eq!(read["full_name"], format!("Frank {i}"));
    }
}

#[tokio::test]
async fn prefer_return_minimal_answers_once_committed() {
    let app = spawn_app().await;
    let created = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&app.admin_token)
        .header("prefer", "return=minimal")
        .json(&json!({"username": "mini", "email": "mini@example.com", "full_name": "Mini", "role": "viewer", "password": "mini-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["preference-applied"], "return=minimal");
    let path = created.headers()["location"].to_str().unwrap().to_string();
    let at = position(&created);
    assert!(created.text().await.unwrap().is_empty());
    let patched = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&app.admin_token)
        .header("prefer", "return=minimal")
        // The user may not be in the read model yet: commands that look it up wait too.
        .header("x-dcp-min-position", at.to_string())
        .json(&json!({"full_name": "Mini Changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);
    let after = position(&patched);
    assert!(after > at);
    let read: Value = app.get_json_at(&path, &app.admin_token, after).await;
    assert_eq!(read["full_name"], "Mini Changed");
}

/// 100 concurrent conflicting commands on one user: every success is an event, every
/// loser gets 409, and no update is lost.
#[tokio::test]
async fn concurrent_conflicting_commands_lose_no_update() {
    let app = spawn_app().await;
    let user = app.create_user("grace", "viewer", "grace-password-1").await;
    let id = user["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{id}");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = app.client.clone();
        let url = app.url(&path);
        let token = app.admin_token.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .patch(url)
                .bearer_auth(token)
                .json(&json!({"full_name": format!("Grace {i}")}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (i, status, body)
        }));
    }
    let mut winners = HashSet::new();
    let mut losers = 0;
    for task in tasks {
        let (i, status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => {
                winners.insert(format!("Grace {i}"));
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "CONFLICT", "{body}");
                losers += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len() + losers, 100);
    assert!(!winners.is_empty());
    let names: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT sequence, payload::jsonb -> 'UserProfileUpdated' -> 'full_name' FROM events \
         WHERE aggregate_type = 'user' AND aggregate_id = $1 AND event_type = 'UserProfileUpdated' ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let recorded: HashSet<String> = names
        .iter()
        .map(|(_, n)| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        recorded, winners,
        "every acknowledged update is an event, and only those"
    );
    let sequences: Vec<i64> = names.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        sequences,
        (2..2 + sequences.len() as i64).collect::<Vec<_>>(),
        "no gaps, no duplicates"
    );
    let last = names.last().unwrap().1.as_str().unwrap().to_string();
    let read: Value = app.get_json(&path, &app.admin_token).await;
    assert_eq!(read["full_name"], last);
    eprintln!("{} winners, {} losers (409)", winners.len(), losers);
}
