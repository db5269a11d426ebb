//! Login, refresh rotation and reuse, logout, deactivation, demotion, token tampering, throttling.

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn login_returns_tokens_and_the_user() {
    let app = spawn_app().await;
    let body = app.login_ok("admin", ADMIN_PASSWORD).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert!(body["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("dcp_rt_"));
    assert_eq!(body["user"]["username"], "admin");
    assert_eq!(body["user"]["role"], "admin");
    let me: Value = app
        .get_json("/api/v1/auth/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me["username"], "admin");
    // Login by email, case-insensitively.
    app.login_ok("ADMIN@localhost", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    let wrong = assert_error(
        app.login("admin", "not-the-password").await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;
    let unknown = assert_error(
        app.login("nobody", "whatever-password").await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    // No grace: any second use of a traded token is reuse.
    let app = spawn_app_with(|settings| settings.refresh_reuse_grace_secs = 0).await;
    let login = app.login_ok("admin", ADMIN_PASSWORD).await;
    let first = login["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await
        }
    };
    let rotated: Value = refresh(first.clone()).await.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let access = rotated["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/v1/auth/me", &access).await.status(),
        StatusCode::OK
    );
    // Reusing the first token burns the session: its newest tokens stop working too.
    assert_error(
        refresh(first).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    assert_error(
        refresh(second).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    assert_error(
        app.get("/api/v1/auth/me", &access).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    // The revocation is in the audit log.
    let audit: Value = app
        .get_json(
            "/api/v1/audit-logs?action=auth.session_revoked",
            &app.admin_token,
        )
        .await;
    assert_eq!(
        audit["items"][0]["details"]["reason"],
        "refresh_token_reuse"
    );
}

/// Two tabs refreshing with the same token at once both get tokens, and the same successor
/// (the family does not fork); once that successor is traded, the old token is refused
/// without ending the session; presented after the grace window it is reuse and revokes
/// the session.
#[tokio::test]
async fn concurrent_refreshes_within_the_grace_window_are_not_reuse() {
    let app = spawn_app_with(|settings| settings.refresh_reuse_grace_secs = 2).await;
    let login = app.login_ok("admin", ADMIN_PASSWORD).await;
    let token = login["refresh_token"].as_str().unwrap().to_string();
    let tabs: Vec<_> = (0..2)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/refresh");
            let token = token.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut access = Vec::new();
    let mut successors = Vec::new();
    for tab in tabs {
        let response = tab.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        access.push(body["access_token"].as_str().unwrap().to_string());
        successors.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    assert_eq!(
        successors[0], successors[1],
        "one successor, not two chains"
    );
    let refresh = |token: &str| {
        app.request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": token})),
        )
    };
    let next = refresh(&successors[0]).await;
    assert_eq!(next.status(), StatusCode::OK);
    let next: Value = next.json().await.unwrap();
    assert_error(
        refresh(&token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    let newest = next["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/v1/auth/me", &newest).await.status(),
        StatusCode::OK,
        "a superseded token is refused without ending the session"
    );
    for token in &access {
        assert_eq!(
            app.get("/api/v1/auth/me", token).await.status(),
            StatusCode::OK
        );
    }
    // After the window the old token is reuse: the session ends for every tab.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let late = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": token})),
        )
        .await;
    assert_error(late, StatusCode::UNAUTHORIZED, "TOKEN_INVALID").await;
    for token in &access {
        assert_error(
            app.get("/api/v1/auth/me", token).await,
            StatusCode::UNAUTHORIZED,
            "TOKEN_INVALID",
        )
        .await;
    }
}

#[tokio::test]
async fn refresh_accepts_the_cookie() {
    let app = spawn_app().await;
    let response = app.login("admin", ADMIN_PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/api/v1/auth")
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
}

/// The browser UI asks for the refresh token in the HttpOnly cookie only: a script in the
/// page never sees it, at login or at any refresh.
#[tokio::test]
async fn the_refresh_token_can_stay_in_the_cookie_only() {
    let app = spawn_app().await;
    let cookie_pair = |response: &reqwest::Response| {
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    };
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-dcp-refresh-cookie-only", "1")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let pair = cookie_pair(&login);
    let body: Value = login.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "{body}");

    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("x-dcp-refresh-cookie-only", "1")
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert!(cookie_pair(&refreshed).starts_with("dcp_refresh="));
    let body: Value = refreshed.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "{body}");

    // Without the header, API clients get it in the body as before.
    assert!(app.login_ok("admin", ADMIN_PASSWORD).await["refresh_token"].is_string());
}

#[tokio::test]
async fn logout_revokes_the_session_at_once() {
    let app = spawn_app().await;
    let login = app.login_ok("admin", ADMIN_PASSWORD).await;
    let token = login["access_token"].as_str().unwrap();
    let response = app
        .request(Method::POST, "/api/v1/auth/logout", Some(token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/v1/auth/me", token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    let refresh = app
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": login["refresh_token"]})),
        )
        .await;
    assert_error(refresh, StatusCode::UNAUTHORIZED, "TOKEN_INVALID").await;
}

#[tokio::test]
async fn deactivated_user_and_demoted_admin_lose_access_on_the_next_request() {
    let app = spawn_app().await;
    let (op, op_token) = app.user_with_token("opal", "operator").await;
    let (adm, adm_token) = app.user_with_token("second-admin", "admin").await;
    assert_eq!(
        app.get("/api/v1/auth/me", &op_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/users", &adm_token).await.status(),
        StatusCode::OK
    );

    let path = format!("/api/v1/users/{}", op["id"].as_str().unwrap());
    let response = app
        .request(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Deactivation ends the account's sessions: its token is refused at once.
    assert_error(
        app.get("/api/v1/auth/me", &op_token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    assert_error(
        app.login("opal", "opal-password-123").await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;

    let path = format!("/api/v1/users/{}", adm["id"].as_str().unwrap());
    let response = app
        .request(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_error(
        app.get("/api/v1/users", &adm_token).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn expired_tampered_alg_none_and_wrong_audience_tokens_are_401() {
    let app = spawn_app().await;
    let secret = b"a-test-secret-that-is-long-enough-0123456789";
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let good = app.admin_token.clone();
    let payload: Value =
        serde_json::from_slice(&b64.decode(good.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();

    let mut expired = payload.clone();
    expired["exp"] = json!(now - 120);
    expired["nbf"] = json!(now - 800);
    assert_error(
        app.get("/api/v1/auth/me", &sign(&expired, secret)).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_EXPIRED",
    )
    .await;

    let mut audience = payload.clone();
    audience["aud"] = json!("someone-else");
    assert_error(
        app.get("/api/v1/auth/me", &sign(&audience, secret)).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;

    let mut issuer = payload.clone();
    issuer["iss"] = json!("evil");
    assert_error(
        app.get("/api/v1/auth/me", &sign(&issuer, secret)).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;

    let forged = sign(&payload, b"not-the-secret-but-long-enough-000000");
    assert_error(
        app.get("/api/v1/auth/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;

    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut tampered = payload.clone();
    tampered["sub"] = json!(uuid::Uuid::new_v4().to_string());
    parts[1] = b64.encode(tampered.to_string());
    assert_error(
        app.get("/api/v1/auth/me", &parts.join(".")).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;

    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        good.split('.').nth(1).unwrap()
    );
    assert_error(
        app.get("/api/v1/auth/me", &none).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;

    assert_error(
        app.request(Method::GET, "/api/v1/auth/me", None, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;
}

#[tokio::test]
async fn failed_logins_are_throttled_with_retry_after_and_never_locked_for_good() {
    let app = spawn_app().await;
    app.create_user("target", "viewer", "target-password-123")
        .await;
    for _ in 0..5 {
        assert_eq!(
            app.login("target", "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The sixth failure imposes a wait; the next attempt, even with the right password, is 429.
    assert_eq!(
        app.login("target", "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = app.login("target", "target-password-123").await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // After the wait the right password works again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    app.login_ok("target", "target-password-123").await;
}

#[tokio::test]
async fn first_login_with_a_generated_password_requires_a_change() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "newbie", "email": "newbie@example.com", "full_name": "New Bie", "role": "operator", "password": "initial-password-1"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let login = app.login_ok("newbie", "initial-password-1").await;
    assert_eq!(login["user"]["must_change_password"], true);
    let token = login["access_token"].as_str().unwrap();
    assert_error(
        app.get("/api/v1/users", token).await,
        StatusCode::FORBIDDEN,
        "PASSWORD_CHANGE_REQUIRED",
    )
    .await;
    let changed = app
        .post(
            "/api/v1/auth/password",
            token,
            json!({"current_password": "initial-password-1", "new_password": "my-own-password-2"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["must_change_password"], false);
    assert_error(
        app.login("newbie", "initial-password-1").await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;
    app.login_ok("newbie", "my-own-password-2").await;
}

#[tokio::test]
async fn demo_users_exist_only_when_asked_for() {
    let plain = spawn_app().await;
    let users = plain.get_json("/api/v1/users", &plain.admin_token).await;
    assert_eq!(users["total"], 1, "{users}");
    assert_eq!(users["items"][0]["username"], "admin");
    assert_eq!(
        users["items"][0]["must_change_password"], false,
        "DCP_ADMIN_PASSWORD was given"
    );

    let demo = spawn_app_with(|settings| settings.demo_users = true).await;
    let users = demo.get_json("/api/v1/users", &demo.admin_token).await;
    let mut found: Vec<(String, String, bool)> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap().to_string(),
                u["role"].as_str().unwrap().to_string(),
                u["must_change_password"].as_bool().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("admin".into(), "admin".into(), false),
            ("operator".into(), "operator".into(), true),
            ("viewer".into(), "viewer".into(), true),
        ]
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_throttle() {
    let app = spawn_app().await;
    app.create_user("parallel", "viewer", "parallel-password-1")
        .await;
    let mut attempts = Vec::new();
    for i in 0..24 {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/login");
        attempts.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"username": "parallel", "password": format!("guess-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut guesses_checked = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            StatusCode::UNAUTHORIZED => guesses_checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // One attempt per account at a time, and each failure counts before the next:
    // the free failures plus the one that starts the wait, never the whole burst.
    assert!(
        guesses_checked <= 6,
        "{guesses_checked} guesses were checked"
    );
    // The same account by email shares the budget: counting on from the burst, the sixth
    // failure in all starts the wait.
    loop {
        let response = app.login("parallel@example.com", "still-guessing").await;
        match response.status() {
            StatusCode::UNAUTHORIZED => guesses_checked += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("unexpected {other}"),
        }
        assert!(guesses_checked <= 6, "the throttle never engaged");
    }
    assert_eq!(guesses_checked, 6);
}

#[tokio::test]
async fn an_admin_password_reset_ends_the_users_sessions() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_token("resetme", "operator").await;
    let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
    let response = app
        .request(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"password": "a-new-password-1"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_error(
        app.get("/api/v1/auth/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    let login = app.login_ok("resetme", "a-new-password-1").await;
    assert_eq!(login["user"]["must_change_password"], true);
}

#[tokio::test]
async fn head_requests_follow_the_get_rules() {
    let app = spawn_app().await;
    let health = app.request(Method::HEAD, "/health", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let users = app.request(Method::HEAD, "/api/v1/users", None, None).await;
    assert_eq!(users.status(), StatusCode::UNAUTHORIZED);
    let users = app
        .request(Method::HEAD, "/api/v1/users", Some(&app.admin_token), None)
        .await;
    assert_eq!(users.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_user_who_keeps_being_refused_is_slowed_down() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("pest", "viewer").await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(app.get("/api/v1/users", &token).await.status());
    }
    let denied = statuses
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(denied + throttled, 40);
    assert!((30..=32).contains(&denied), "{denied} denials recorded");
    assert!(throttled > 0);
}

/// `dcp users reset-password` recovers an account from the server's machine: a new
/// password printed once, the old one and the account's sessions gone, the change audited.
#[tokio::test]
async fn the_cli_resets_a_password() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("forgetful", "admin").await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dcp"))
        .args(["users", "reset-password", "Forgetful"])
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "error")
        .output()
        .expect("run dcp");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let password = stdout
        .lines()
        .find_map(|line| line.strip_prefix("new password for Forgetful: "))
        .expect("the password is printed")
        .trim()
        .to_string();
    assert_error(
        app.login("forgetful", "forgetful-password-123").await,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILED",
    )
    .await;
    let login = eventually(std::time::Duration::from_secs(10), || {
        let app = &app;
        let password = password.clone();
        async move {
            let response = app.login("forgetful", &password).await;
            if response.status() != StatusCode::OK {
                return None;
            }
            let body: Value = response.json().await.unwrap();
            (body["user"]["must_change_password"] == true).then_some(body)
        }
    })
    .await;
    assert_eq!(login["user"]["username"], "forgetful");
    assert_error(
        app.get("/api/v1/auth/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_INVALID",
    )
    .await;
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_dcp"))
        .args(["users", "reset-password", "nobody"])
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "off")
        .output()
        .expect("run dcp");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account named 'nobody'"));
}
