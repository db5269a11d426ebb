//! The database restarts under load: requests answer 503 quickly, never a 500 or a hang,
//! and the same server recovers by itself.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;

/// A private PostgreSQL cluster the test can stop and start (run as user `postgres`).
struct Postgres {
    dir: std::path::PathBuf,
    port: u16,
    bin: std::path::PathBuf,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("the PostgreSQL server (scripts/services.sh installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("pg_ctl").exists())
            .expect("pg_ctl");
        let dir = std::path::PathBuf::from("/tmp")
            .join(format!("dcp-pg-restart-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let postgres = Postgres { dir, port, bin };
        assert!(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&postgres.dir)
            .status()
            .unwrap()
            .success());
        postgres.run(&[
            "initdb",
            "-D",
            &postgres.data(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        postgres.pg_ctl_start();
        postgres
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(args[0]))
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-o",
            &options,
            "-l",
            &log,
            "-w",
            "start",
        ]);
    }

    fn stop(&self) {
        self.run(&["pg_ctl", "-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_database_restart_under_load_answers_503_quickly_and_recovers_by_itself() {
    let postgres = Postgres::start();
    let nats = Nats::start();
    let master_key = master_key();
    let client = http_client();
    let server = Replica::start(&postgres.url(), &nats.url(), &master_key);
    server.ready(&client).await;
    let token = login(&client, &server).await;
    let admin = my_id(&client, &server, &token).await;

    // Requests keep coming while the database goes away: each answers within seconds, as
    // 503 DATABASE_UNAVAILABLE, never a 500 or a hang.
    postgres.stop();
    let mut outage = Vec::new();
    for n in 0..6 {
        let started = Instant::now();
        let response = if n % 2 == 0 {
            client
                .get(server.url("/api/v1/users"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
        } else {
            client
                .patch(server.url(&format!("/api/v1/users/{admin}")))
                .bearer_auth(&token)
                .json(&json!({"full_name": format!("During {n}")}))
                .send()
                .await
                .unwrap()
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        outage.push((status, started.elapsed(), body));
    }
    for (n, (status, took, body)) in outage.iter().enumerate() {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "DATABASE_UNAVAILABLE", "{body}");
        // The first finds out (the pool's acquire timeout); the next fail at once.
        let limit = if n == 0 {
            Duration::from_secs(7)
        } else {
            Duration::from_secs(2)
        };
        assert!(*took < limit, "request {n} answered in {took:?}");
    }
    let ready = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back: the same server answers again, writes, and its read models follow.
    postgres.pg_ctl_start();
    let back = Instant::now();
    let updated = eventually(Duration::from_secs(30), || async {
        let response = client
            .patch(server.url(&format!("/api/v1/users/{admin}")))
            .bearer_auth(&token)
            .json(&json!({"full_name": "After the restart"}))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<Value>().await.ok()
    })
    .await;
    // Answered with the read model: the projection runs again.
    assert_eq!(updated["full_name"], "After the restart", "{updated}");
    let ready = client
        .get(server.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    eprintln!(
        "outage answers: {:?}; recovered {:.1} s after the database came back",
        outage.iter().map(|(_, took, _)| *took).collect::<Vec<_>>(),
        back.elapsed().as_secs_f64()
    );
}
