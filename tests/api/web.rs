//! The web UI's routes: the embedded build (or `DCP_WEB_DIR`) with a page for every client
//! route, a 404 for a missing asset, and the security headers on pages.

use reqwest::{Method, StatusCode};

use crate::common::*;

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.request(Method::GET, path, None, None).await
}

#[tokio::test]
async fn the_embedded_ui_answers_every_client_route() {
    let app = spawn_app().await;
    let page = get(&app, "/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let index = page.text().await.unwrap();
    if dcp::http::web::embedded() {
        assert!(index.contains(r#"<div id="root">"#), "{index}");
    }
    // Client routes, including a container name with a dot, are the same page.
    for route in [
        "/containers",
        "/containers/my.app?host=local",
        "/hosts?wizard=x",
    ] {
        let response = get(&app, route).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert_eq!(response.text().await.unwrap(), index, "{route}");
    }
    let missing = get(&app, "/assets/missing-0000.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let post = app.request(Method::POST, "/", None, None).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn a_web_dir_is_served_the_same_way() {
    let root = temp_dir();
    std::fs::write(root.join("outside.txt"), "secret").unwrap();
    let dir = root.join("web");
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<html>dev build</html>").unwrap();
    std::fs::write(dir.join("assets/app-123.js"), "console.log(1)").unwrap();
    let web_dir = dir.clone();
    let app = spawn_app_with(move |settings| settings.web_dir = Some(web_dir)).await;

    let script = get(&app, "/assets/app-123.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(script.text().await.unwrap(), "console.log(1)");

    let page = get(&app, "/containers/abc").await;
    assert!(page.headers().contains_key("content-security-policy"));
    assert_eq!(page.text().await.unwrap(), "<html>dev build</html>");
    assert_eq!(
        get(&app, "/assets/gone.js").await.status(),
        StatusCode::NOT_FOUND
    );
    // Nothing outside the directory, however the path is spelled (sent raw: an HTTP client
    // would resolve the dots itself).
    for path in [
        "/../outside.txt",
        "/assets/../../outside.txt",
        "/%2e%2e/outside.txt",
    ] {
        let answer = raw_get(&app, path).await;
        assert!(answer.starts_with("HTTP/1.1 "), "{path}: {answer}");
        assert!(!answer.contains("secret"), "{path}: {answer}");
    }
    app.stop().await;
}

/// A GET with the path exactly as given.
async fn raw_get(app: &TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}
