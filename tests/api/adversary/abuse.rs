//! Abuse is bounded: refusals by a role policy are throttled as the permission table's are,
//! tickets per user are bounded, and a name typed for no account is not kept.

use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn policy_refusals_are_throttled_and_tickets_are_bounded() {
    let app = spawn_app().await;
    let (_, operator) = app.user_with_token("flood", "operator").await;
    let attack = create_body("flooder", json!({"privileged": true}));
    // 30 refusals are free, the 31st starts the delay; all are recorded. Then the caller is
    // slowed down, and no longer recorded.
    for _ in 0..31 {
        refused(
            &app,
            &operator,
            (Method::POST, "/api/v1/containers", Some(attack.clone())),
            Some("privileged"),
        )
        .await;
    }
    let before = head(&app).await;
    let throttled = app.post("/api/v1/containers", &operator, attack).await;
    assert!(throttled.headers().contains_key("retry-after"));
    assert_error(throttled, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    assert!(
        events_since(&app, before).await.is_empty(),
        "a throttled refusal is not recorded"
    );

    let (_, viewer) = app.user_with_token("hoarder", "viewer").await;
    for _ in 0..64 {
        app.ws_ticket(&viewer, ticket_request("events", None)).await;
    }
    let over = app
        .request(
            Method::POST,
            "/api/v1/ws-tickets",
            Some(&viewer),
            Some(ticket_request("events", None)),
        )
        .await;
    assert_eq!(over.headers()["retry-after"], "30");
    assert_error(over, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[tokio::test]
async fn a_name_typed_for_no_account_is_not_kept() {
    let app = spawn_app().await;
    let typed = "correct-horse-battery-staple";
    let failed = app.login(typed, "whatever-password").await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let known = app.login("admin", "not-the-password").await;
    assert_eq!(known.status(), StatusCode::UNAUTHORIZED);
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE event_type = 'LoginFailed' ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(!stored[0].contains(typed), "{}", stored[0]);
    assert!(
        stored[1].contains("admin"),
        "a known account's name is kept: {}",
        stored[1]
    );
}
