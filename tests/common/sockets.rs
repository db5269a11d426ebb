//! WebSockets as a browser opens them: a ticket from `POST /api/v1/ws-tickets`, offered in
//! `Sec-WebSocket-Protocol` (or `?ticket=`), then JSON messages read with a deadline.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// How long a socket may stay silent when a message is expected.
const MESSAGE_WITHIN: Duration = Duration::from_secs(10);

/// The `ws://` URL of `path` on the server at `base` (`http://host:port`).
pub fn ws_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("http://", "ws://", 1))
}

/// A ticket from the server at `base`, for a client that is not a `TestApp` (a replica in
/// its own process); anything but 201 fails the test with the server's answer.
pub async fn request_ws_ticket(client: &Client, base: &str, token: &str, body: Value) -> String {
    let response = client
        .post(format!("{base}/api/v1/ws-tickets"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "a ticket for {body}: {answer}");
    answer["ticket"].as_str().unwrap().to_string()
}

/// The body of a ticket request: what the socket is for and, for a container's or a task's
/// socket, which one.
pub fn ticket_request(purpose: &str, resource: Option<&str>) -> Value {
    match resource {
        Some(resource) => json!({"purpose": purpose, "resource_id": resource}),
        None => json!({"purpose": purpose}),
    }
}

/// How a socket ended: the text messages read before, and the close code if the server
/// sent a close frame (`Some(None)` for a frame without a code).
pub struct Ended {
    pub texts: Vec<String>,
    pub close: Option<Option<CloseCode>>,
}

/// An open WebSocket; the raw stream is there too (`Deref`) for a test that reads frames
/// itself.
pub struct Socket<S = MaybeTlsStream<TcpStream>> {
    stream: WebSocketStream<S>,
}

impl<S> std::ops::Deref for Socket<S> {
    type Target = WebSocketStream<S>;
    fn deref(&self) -> &Self::Target {
        &self.stream
    }
}

impl<S> std::ops::DerefMut for Socket<S> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.stream
    }
}

impl Socket {
    /// Connects to `url` (a ticket in its query); panics if the handshake fails.
    pub async fn connect(url: &str) -> Socket {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Socket { stream }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// The handshake for `url` over a TCP connection the test set up itself.
    pub async fn connect_over(stream: S, url: &str) -> Socket<S> {
        let (stream, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Socket { stream }
    }

    /// The next JSON message within 10 s (pings are answered by the library); panics on
    /// a close.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(MESSAGE_WITHIN, self.stream.next())
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

    /// Reads messages until (and including) one that `done` accepts; returns all of them.
    pub async fn until(&mut self, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut messages = Vec::new();
        loop {
            let message = self.next_json().await;
            let last = done(&message);
            messages.push(message);
            if last {
                return messages;
            }
        }
    }

    /// Reads messages until (and including) one of `kind`.
    pub async fn until_type(&mut self, kind: &str) -> Vec<Value> {
        self.until(|message| message["type"] == kind).await
    }

    /// The terminal output (binary frames) until `needle` appears, within 10 s; returns
    /// the text read so far.
    pub async fn read_terminal_until(&mut self, needle: &str) -> String {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + MESSAGE_WITHIN;
        while !text.contains(needle) {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
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

    /// Waits up to `within` for the server's close frame, skipping other messages; its code.
    pub async fn expect_close(&mut self, within: Duration) -> Option<CloseCode> {
        tokio::time::timeout(within, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                    Some(Ok(_)) => continue,
                    other => panic!("no close frame: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no close frame within {within:?}"))
    }

    /// Reads until the socket ends (a close frame, an error or the end of the stream),
    /// however long that takes.
    pub async fn read_to_end(&mut self) -> Ended {
        let mut ended = Ended {
            texts: Vec::new(),
            close: None,
        };
        while let Some(Ok(message)) = self.stream.next().await {
            match message {
                Message::Text(text) => ended.texts.push(text.to_string()),
                Message::Close(frame) => {
                    ended.close = Some(frame.map(|f| f.code));
                    break;
                }
                _ => {}
            }
        }
        ended
    }

    /// Types `text` into a terminal (a binary frame).
    pub async fn type_in(&mut self, text: &str) {
        self.stream
            .send(Message::Binary(text.to_string().into_bytes().into()))
            .await
            .unwrap();
    }

    /// Sends `message` as a JSON text frame.
    pub async fn send_json(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// A ping: fails if the socket is closed.
    pub async fn ping(&mut self) {
        self.stream
            .send(Message::Ping(Default::default()))
            .await
            .unwrap();
    }
}

impl TestApp {
    /// A ticket of `token`'s for the socket `body` names; asserts the documented answer.
    pub async fn ws_ticket(&self, token: &str, body: Value) -> String {
        let response = self
            .request(Method::POST, "/api/v1/ws-tickets", Some(token), Some(body))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 30);
        body["ticket"].as_str().unwrap().to_string()
    }

    /// Connects to `path` with the ticket in `Sec-WebSocket-Protocol` (as a browser does)
    /// and from `origin`; the HTTP status of a refused handshake otherwise.
    pub async fn try_socket(
        &self,
        path: &str,
        ticket: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Socket, u16> {
        let mut request = ws_url(&self.address, path).into_client_request().unwrap();
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
            Ok((stream, response)) => {
                if let Some(ticket) = ticket {
                    assert_eq!(
                        response.headers()["sec-websocket-protocol"],
                        format!("dcp.ticket.{ticket}").as_str(),
                        "the server answers with the offered protocol"
                    );
                }
                Ok(Socket { stream })
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("connect failed: {other}"),
        }
    }

    /// The ticket flow in one step: a ticket of `token`'s for `purpose` (on `resource`),
    /// then the socket at `path` opened with it.
    pub async fn open_socket(
        &self,
        token: &str,
        purpose: &str,
        resource: Option<&str>,
        path: &str,
    ) -> Socket {
        let ticket = self
            .ws_ticket(token, ticket_request(purpose, resource))
            .await;
        self.try_socket(path, Some(&ticket), None)
            .await
            .unwrap_or_else(|status| panic!("{path} refused with {status}"))
    }

    /// A socket on a container (`logs`, `stats` or `exec`), `query` appended to its path.
    pub async fn container_socket(
        &self,
        token: &str,
        container: &str,
        kind: &str,
        query: &str,
    ) -> Socket {
        let path = match query {
            "" => format!("/ws/containers/{container}/{kind}"),
            query => format!("/ws/containers/{container}/{kind}?{query}"),
        };
        self.open_socket(token, &format!("container.{kind}"), Some(container), &path)
            .await
    }

    /// `/ws/events` opened with a ticket of `token`'s; the `ready` message is read.
    pub async fn events_socket(&self, token: &str) -> Socket {
        let mut socket = self.open_socket(token, "events", None, "/ws/events").await;
        assert_eq!(socket.next_json().await["type"], "ready");
        socket
    }
}
