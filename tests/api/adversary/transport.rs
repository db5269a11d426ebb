//! Native HTTPS (`DCP_TLS_CERT`, `DCP_TLS_KEY`): the API answers over TLS only, with HSTS,
//! and the refresh cookie is `Secure`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::*;

/// A CA and a certificate it signed for 127.0.0.1, made with the openssl command line.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dcp test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// One HTTP/1.1 request over TLS to `address`, trusting `ca`; the raw answer.
async fn https_request(address: &str, ca: &Path, request: &str) -> String {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("a TLS handshake");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn https_natively_with_hsts_and_a_secure_refresh_cookie() {
    let dir = temp_dir();
    certificates(&dir);
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    let database = fresh_database().await;
    let mut settings = dcp::config::Settings::for_tests(&database, temp_dir());
    settings.tls_cert = Some(cert);
    settings.tls_key = Some(key);
    let app = dcp::app::Application::build(settings).await.unwrap();
    let address = app.address().to_string();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    let health = https_request(
        &address,
        &dir.join("ca.pem"),
        "GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{health}"
    );

    let body = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let login = https_request(
        &address,
        &dir.join("ca.pem"),
        &format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie = login
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: dcp_refresh=")
        })
        .unwrap_or_else(|| panic!("{login}"));
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/health/live"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// NATS that requires credentials: dcp connects with the ones in its URL (and publishes:
/// an event reaches a socket through the bus); a client without them is refused.
#[tokio::test]
async fn nats_requires_credentials_and_dcp_sends_them() {
    let nats = Nats::start_with(&["--user", "dcp", "--pass", "nats-secret-for-tests"]);
    let without = async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect(nats.url())
        .await;
    assert!(without.is_err(), "a client without credentials is refused");
    let url = nats
        .url()
        .replace("nats://", "nats://dcp:nats-secret-for-tests@");
    let app = spawn_app_with(|settings| settings.nats_url = Some(url)).await;
    let mut events = app.events_socket(&app.admin_token).await;
    app.create_user("over-the-bus", "viewer", "over-the-bus-password")
        .await;
    events
        .until(|m| m["type"] == "event" && m["event"]["type"] == "UserCreated")
        .await;
}
