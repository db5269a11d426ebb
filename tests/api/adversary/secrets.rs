//! One redaction: a secret planted in a container's environment and in a volume's driver
//! options is found only in admins' answers, searched in the body of every GET route of the
//! API document for each role, in the events sockets of every role, in what NATS carries to
//! integrations, and in the exports.

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;

use super::*;
use crate::containers::Containers;

#[tokio::test]
async fn planted_secrets_reach_only_admins() {
    let nats = Nats::start();
    let url = nats.url();
    // What integrations read: every event the relay publishes, off NATS itself.
    let integration = async_nats::connect(nats.url()).await.unwrap();
    let mut published = integration.subscribe("dcp.events.>").await.unwrap();
    let app = spawn_app_with(|settings| settings.nats_url = Some(url)).await;
    let (operator_user, operator) = app.user_with_token("olga", "operator").await;
    let (_, viewer) = app.user_with_token("vera", "viewer").await;
    let run = Containers::new();
    let short = run.run[..8].to_string();
    let env_secret = format!("env-secret-{short}");
    let volume_secret = format!("volume-secret-{short}");
    let mut sockets = Vec::new();
    for token in [&app.admin_token, &operator, &viewer] {
        sockets.push(app.events_socket(token).await);
    }

    let name = format!("vault-{short}");
    let created = app
        .post(
            "/api/v1/containers",
            &app.admin_token,
            create_body(
                &name,
                json!({"env": {"DB_PASSWORD": env_secret}, "labels": {"test.dcp-run": run.run}}),
            ),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let container = created["container_id"].as_str().unwrap().to_string();
    let operation = created["operation_id"].as_str().unwrap().to_string();
    let share = format!("share-{short}");
    let mut made = Leftovers::new();
    made.volumes.push(share.clone());
    let volume = app
        .post(
            "/api/v1/volumes",
            &app.admin_token,
            json!({"name": share, "driver_opts": {"type": "cifs", "device": "//127.0.0.1/share",
                "o": format!("username=svc,password={volume_secret}")},
                "allow_privileged": true, "reason": "the team's file share"}),
        )
        .await;
    assert_eq!(volume.status(), StatusCode::CREATED);
    let position = volume.json::<Value>().await.unwrap()["position"]
        .as_i64()
        .unwrap();

    // Every GET route of the document, for each role.
    let document: Value = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let network = "bridge".to_string();
    let user = operator_user["id"].as_str().unwrap().to_string();
    let mut paths: Vec<String> = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let path = template
            .replace("/containers/{id}", &format!("/containers/{container}"))
            .replace("/volumes/{name}", &format!("/volumes/{share}"))
            .replace("/networks/{id}", &format!("/networks/{network}"))
            .replace("/users/{id}", &format!("/users/{user}"))
            .replace("/operations/{id}", &format!("/operations/{operation}"))
            .replace("/hosts/{id}", "/hosts/local")
            .replace(
                "/images/{id}",
                &format!("/images/{}", crate::containers::test_image()),
            )
            .replace("/wizards/{id}", &format!("/wizards/{operation}"));
        match path.rsplit('/').next() {
            Some("diff") => paths.push(format!("{path}?from=1")),
            Some("state") => paths.push(format!("{path}?position={position}")),
            _ => paths.push(path),
        }
    }
    paths.push("/api/v1/audit-logs?format=csv&limit=1000".into());
    paths.push("/api/v1/events?format=ndjson".into());
    let mut admin_saw = (false, false);
    for (role, token) in [
        ("admin", &app.admin_token),
        ("operator", &operator),
        ("viewer", &viewer),
    ] {
        for path in &paths {
            let response = app
                .client
                .get(app.url(path))
                .bearer_auth(token)
                .header("x-dcp-min-position", position.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(status.as_u16() < 500, "{role} GET {path}: {status} {body}");
            let leaks = (body.contains(&env_secret), body.contains(&volume_secret));
            if role == "admin" {
                admin_saw = (admin_saw.0 || leaks.0, admin_saw.1 || leaks.1);
            } else {
                assert_eq!(leaks, (false, false), "{role} GET {path} leaks: {body}");
            }
        }
    }
    assert_eq!(
        admin_saw,
        (true, true),
        "the secrets were planted and admins read them"
    );

    // The events sockets (the bus's envelopes) carry them for no one.
    for (socket, role) in sockets.iter_mut().zip(["admin", "operator", "viewer"]) {
        let messages = socket
            .until(|m| m["type"] == "event" && m["event"]["type"] == "VolumeCreated")
            .await;
        let text = serde_json::to_string(&messages).unwrap();
        assert!(
            text.contains("DB_PASSWORD")
                && !text.contains(&env_secret)
                && !text.contains(&volume_secret),
            "{role}: {text}"
        );
    }
    // The same on NATS, up to the volume's creation.
    let mut carried = String::new();
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), published.next())
            .await
            .expect("the relay publishes within 10 s")
            .expect("the subscription is open");
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        carried.push_str(&text);
        if message.subject.as_str().ends_with(".VolumeCreated") {
            break;
        }
    }
    assert!(
        carried.contains("DB_PASSWORD")
            && !carried.contains(&env_secret)
            && !carried.contains(&volume_secret),
        "NATS: {carried}"
    );
    crate::containers::docker(&["rm", "-f", &container]);
    drop(run);
}
