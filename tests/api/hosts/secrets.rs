//! No secret leaves its seal: after hosts are set up with an imported key and a password,
//! neither the key nor the password is in a dump of the database or in the event stream.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn no_private_key_or_password_reaches_the_database_dump_or_the_event_stream() {
    let nats = Nats::start();
    let url = nats.url();
    let app = spawn_app_with(|settings| settings.nats_url = Some(url.clone())).await;
    let dir = temp_dir();
    let key_file = ssh_keygen(&dir, "dumped", "");
    authorize_key(&std::fs::read_to_string(dir.join("dumped.pub")).unwrap());
    let private_key = std::fs::read_to_string(&key_file).unwrap();
    let password = ssh_password();

    for (prefix, credentials) in [
        (
            "dump-key",
            json!({"method": "imported_key", "private_key": private_key}),
        ),
        (
            "dump-pw",
            json!({"method": "password", "password": password}),
        ),
    ] {
        let wizard =
            with_credentials(&app, &unique_name(prefix), shared_sshd_port(), credentials).await;
        finish_wizard(&wizard, &shared_fingerprint()).await;
    }
    let (status, generated) =
        call(&app, Method::POST, "/api/v1/wizards/generate-ssh-key", None).await;
    assert_eq!(status, StatusCode::CREATED);

    // What must not appear: the password, the key's text and its base64 body lines.
    let key_lines: Vec<&str> = private_key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    assert!(!key_lines.is_empty());
    let leaks = |text: &str| -> Vec<String> {
        let mut found = Vec::new();
        if text.contains(&password) {
            found.push("the password".to_string());
        }
        if text.contains("PRIVATE KEY") {
            found.push("a private key header".to_string());
        }
        for line in &key_lines {
            if text.contains(line) {
                found.push(format!("a key line {line}"));
            }
        }
        found
    };

    // The whole database, as pg_dump writes it.
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut versions| versions.next())
        .and_then(|v| v.ok())
        .map(|v| v.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "pg_dump".into());
    let dump = std::process::Command::new(pg_dump)
        .arg("--no-owner")
        .arg(&app.database_url)
        .output()
        .expect("run pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(dump.contains("HostRegistered"), "the dump holds the events");
    assert!(dump.contains("sealed_secrets"), "and the sealed secrets");
    assert_eq!(leaks(&dump), Vec::<String>::new(), "in the database dump");
    // The generated key is in the dump only sealed, under its id.
    assert!(dump.contains(generated["key_id"].as_str().unwrap()));

    // The whole event stream on NATS.
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = eventually(Duration::from_secs(10), || {
        let js = js.clone();
        async move { js.get_stream("DCP_EVENTS").await.ok() }
    })
    .await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen = 0i64;
    let mut all = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < events {
        assert!(
            Instant::now() < deadline,
            "{seen} of {events} events on the stream"
        );
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        use futures_util::StreamExt;
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            all.push_str(&String::from_utf8_lossy(&message.payload));
            all.push('\n');
            seen += 1;
            let _ = message.ack().await;
        }
    }
    assert!(all.contains("HostRegistered") && all.contains("StepDataSubmitted"));
    assert_eq!(leaks(&all), Vec::<String>::new(), "in the event stream");
}
