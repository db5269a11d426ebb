//! SSH to remote Docker hosts with russh: connecting with a pinned host key, and the Docker
//! API of the remote engine through `direct-streamlocal` channels to its socket, bridged
//! into bollard.
//!
//! One SSH connection per host is kept and shared by every request ([`SshPool`]): each
//! Docker request opens a channel on it (cheap, no handshake) and speaks HTTP/1.1 over
//! the channel, with upgrades for exec and attach. A broken connection is replaced on the
//! next request; failed connects back off (0.5 s doubling to [`MAX_BACKOFF`]), and while
//! backing off requests fail at once instead of waiting, so a dead host never slows the
//! others. Keepalives notice a silently dead peer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::{BollardRequest, Docker};
use hyper_util::rt::TokioIo;
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

mod keys;

pub use keys::{
    authorized_keys_line, fingerprint, generate_key, openssh_public, parse_private_key,
    private_key_text,
};

/// How long a TCP connect, the SSH handshake and authentication may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait between two connection attempts to a failing host.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The remote engine's socket.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Where to connect: `ssh://user@address:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub user: String,
    pub address: String,
    pub port: u16,
}

/// How to authenticate.
#[derive(Clone)]
pub enum Credentials {
    Key(Arc<PrivateKey>),
    Password(SecretString),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Key(key) => write!(f, "Key({})", key.algorithm()),
            Credentials::Password(_) => write!(f, "Password(…)"),
        }
    }
}

/// Why an SSH connection or a channel failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    /// The TCP connection failed or timed out.
    #[error("cannot reach {address}:{port}: {message}")]
    Unreachable {
        address: String,
        port: u16,
        message: String,
    },
    /// The server presented a host key other than the pinned one: refused.
    #[error("the host key changed: expected {expected}, the server presented {seen}; refused (possible man-in-the-middle). Pin the new key if the host was legitimately reinstalled")]
    HostKeyChanged { expected: String, seen: String },
    /// The server refused the key or password.
    #[error("authentication as '{user}' was refused by the server ({method})")]
    AuthenticationFailed { user: String, method: &'static str },
    /// The SSH session broke or the server spoke something else.
    #[error("SSH failed: {0}")]
    Protocol(String),
    /// The server refused the channel to the Docker socket.
    #[error("the server refused a channel to {DOCKER_SOCKET} ({0}); is the user in the docker group, and does sshd allow it (AllowStreamLocalForwarding yes, AllowTcpForwarding local or yes)?")]
    SocketRefused(String),
    /// A recent attempt failed; the next one is not due yet.
    #[error("{last} (retrying in {retry_in_ms} ms)")]
    BackingOff {
        last: Box<SshError>,
        retry_in_ms: u64,
    },
}

impl SshError {
    /// The error under a back-off.
    pub fn root(&self) -> &SshError {
        match self {
            SshError::BackingOff { last, .. } => last.root(),
            other => other,
        }
    }
}

/// Which host key a connection accepts.
#[derive(Debug, Clone)]
pub enum HostKeyCheck {
    /// Only this key (pinned).
    Pinned(PublicKey),
    /// Only a key with this SHA-256 fingerprint (given by an admin, to be pinned).
    Fingerprint(String),
    /// Any key, to be shown and confirmed: never authenticate with a password after this.
    Probe,
}

impl HostKeyCheck {
    fn accepts(&self, key: &PublicKey) -> bool {
        match self {
            HostKeyCheck::Pinned(pinned) => pinned.key_data() == key.key_data(),
            HostKeyCheck::Fingerprint(expected) => fingerprint(key) == *expected,
            HostKeyCheck::Probe => true,
        }
    }

    fn expected(&self) -> String {
        match self {
            HostKeyCheck::Pinned(pinned) => fingerprint(pinned),
            HostKeyCheck::Fingerprint(expected) => expected.clone(),
            HostKeyCheck::Probe => String::new(),
        }
    }
}

/// Checks the server's key before anything is sent (the key exchange comes before
/// authentication), and records the key seen.
pub struct PinnedKey {
    check: HostKeyCheck,
    seen: Arc<std::sync::Mutex<Option<PublicKey>>>,
}

impl client::Handler for PinnedKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // Host certificates are not pinned keys.
            return Ok(false);
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(key.clone());
        }
        Ok(self.check.accepts(key))
    }
}

/// An authenticated SSH session.
pub type Session = Handle<PinnedKey>;

/// The TCP connection to an SSH server, acknowledging every read at once (`TCP_QUICKACK`).
///
/// sshd does not disable Nagle's algorithm on non-interactive sessions, so the last, short
/// segment of a response waits until everything before it is acknowledged; with Linux's
/// delayed acknowledgements that wait was up to 40 ms on a good share of Docker API
/// responses. Quick acknowledgements are not sticky in Linux, hence once per read.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if polled.is_ready() {
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        nodelay: true,
        ..client::Config::default()
    })
}

/// Connects and, with `credentials`, authenticates. A host key `check` refuses is refused
/// during the key exchange, before anything is sent ([`SshError::HostKeyChanged`]).
/// Returns the session and the host key the server presented. With
/// [`HostKeyCheck::Probe`], a password is never sent.
#[tracing::instrument(skip_all, fields(address = %endpoint.address, port = endpoint.port), err(level = "debug"))]
pub async fn connect(
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
    check: HostKeyCheck,
) -> Result<(Session, PublicKey), SshError> {
    if matches!(
        (&check, credentials),
        (HostKeyCheck::Probe, Some(Credentials::Password(_)))
    ) {
        return Err(SshError::Protocol(
            "a password is only sent to a confirmed host key".into(),
        ));
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_now(endpoint, credentials, check)).await {
        Ok(result) => result,
        Err(_) => Err(SshError::Unreachable {
            address: endpoint.address.clone(),
            port: endpoint.port,
            message: format!("no SSH session within {CONNECT_TIMEOUT:?}"),
        }),
    }
}

async fn connect_now(
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
    check: HostKeyCheck,
) -> Result<(Session, PublicKey), SshError> {
    let unreachable = |message: String| SshError::Unreachable {
        address: endpoint.address.clone(),
        port: endpoint.port,
        message,
    };
    let socket = tokio::net::TcpStream::connect((endpoint.address.as_str(), endpoint.port))
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    let seen = Arc::new(std::sync::Mutex::new(None));
    let handler = PinnedKey {
        check: check.clone(),
        seen: seen.clone(),
    };
    let seen_key = || seen.lock().ok().and_then(|seen| seen.clone());
    let _ = socket.set_nodelay(true);
    let mut session = match client::connect_stream(config(), QuickAck(socket), handler).await {
        Ok(session) => session,
        Err(error) => {
            if let Some(seen) = seen_key().filter(|seen| !check.accepts(seen)) {
                return Err(SshError::HostKeyChanged {
                    expected: check.expected(),
                    seen: fingerprint(&seen),
                });
            }
            return Err(match error {
                russh::Error::IO(error) => unreachable(error.to_string()),
                other => SshError::Protocol(other.to_string()),
            });
        }
    };
    let host_key = seen_key().ok_or_else(|| SshError::Protocol("no host key".into()))?;
    let Some(credentials) = credentials else {
        return Ok((session, host_key));
    };
    let (result, method) = match credentials {
        Credentials::Key(key) => {
            let hash = if key.algorithm().is_rsa() {
                session
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?
                    .flatten()
            } else {
                None
            };
            (
                session
                    .authenticate_publickey(
                        endpoint.user.clone(),
                        PrivateKeyWithHashAlg::new(key.clone(), hash),
                    )
                    .await,
                "public key",
            )
        }
        Credentials::Password(password) => (
            session
                .authenticate_password(endpoint.user.clone(), password.expose_secret())
                .await,
            "password",
        ),
    };
    match result {
        Ok(russh::client::AuthResult::Success) => Ok((session, host_key)),
        Ok(russh::client::AuthResult::Failure { .. }) => Err(SshError::AuthenticationFailed {
            user: endpoint.user.clone(),
            method,
        }),
        Err(error) => Err(SshError::Protocol(error.to_string())),
    }
}

/// Opens a channel to the remote Docker socket.
async fn docker_channel(
    session: &Session,
) -> Result<russh::ChannelStream<russh::client::Msg>, SshError> {
    session
        .channel_open_direct_streamlocal(DOCKER_SOCKET)
        .await
        .map(|channel| channel.into_stream())
        .map_err(|error| match error {
            russh::Error::ChannelOpenFailure(reason) => {
                SshError::SocketRefused(format!("{reason:?}"))
            }
            other => SshError::Protocol(other.to_string()),
        })
}

/// A connection attempt in flight: its outcome, once known.
type Attempt = tokio::sync::watch::Receiver<Option<Result<Arc<Session>, SshError>>>;

/// What the pool remembers between requests.
#[derive(Default)]
struct PoolState {
    session: Option<Arc<Session>>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<SshError>,
    /// The attempt running now, shared by everyone who needs the connection meanwhile.
    connecting: Option<Attempt>,
}

/// Reported by a pool when its connection attempts meet a foreign host key.
pub type KeyMismatchHook = Arc<dyn Fn(String) + Send + Sync>;

/// One shared SSH connection to a host, made on first use and remade when it breaks.
pub struct SshPool {
    endpoint: Endpoint,
    credentials: Credentials,
    pinned: PublicKey,
    state: Mutex<PoolState>,
    handshakes: AtomicU64,
    on_key_mismatch: Option<KeyMismatchHook>,
}

impl SshPool {
    pub fn new(
        endpoint: Endpoint,
        credentials: Credentials,
        pinned: PublicKey,
        on_key_mismatch: Option<KeyMismatchHook>,
    ) -> Arc<Self> {
        Arc::new(SshPool {
            endpoint,
            credentials,
            pinned,
            state: Mutex::new(PoolState::default()),
            handshakes: AtomicU64::new(0),
            on_key_mismatch,
        })
    }

    /// SSH handshakes made so far (a pooled connection makes one for many requests).
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// The live session, connecting if there is none. While backing off after a failure,
    /// fails at once unless `now` (an explicit check) is set. One attempt runs at a time,
    /// in its own task: its outcome is recorded even if every caller gave up waiting, and
    /// the state is never locked across network waits.
    async fn session(self: &Arc<Self>, now: bool) -> Result<Arc<Session>, SshError> {
        let mut attempt = {
            let mut state = self.state.lock().await;
            if let Some(session) = &state.session {
                if !session.is_closed() {
                    return Ok(session.clone());
                }
                state.session = None;
            }
            if let (false, Some(retry_at), Some(last)) = (now, state.retry_at, &state.last_error) {
                let wait = retry_at.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    return Err(SshError::BackingOff {
                        last: Box::new(last.clone()),
                        retry_in_ms: wait.as_millis() as u64,
                    });
                }
            }
            match &state.connecting {
                Some(attempt) => attempt.clone(),
                None => {
                    let (outcome, attempt) = tokio::sync::watch::channel(None);
                    state.connecting = Some(attempt.clone());
                    let pool = self.clone();
                    tokio::spawn(async move {
                        let result = pool.connect_once().await;
                        let _ = outcome.send(Some(result));
                    });
                    attempt
                }
            }
        };
        loop {
            if let Some(result) = attempt.borrow_and_update().clone() {
                return result;
            }
            if attempt.changed().await.is_err() {
                // The attempt's task died without an outcome: let the next caller retry.
                let mut state = self.state.lock().await;
                if state
                    .connecting
                    .as_ref()
                    .is_some_and(|current| current.same_channel(&attempt))
                {
                    state.connecting = None;
                }
                return Err(SshError::Protocol("the connection attempt ended".into()));
            }
        }
    }

    /// One connection attempt; records its outcome (the session, or the failure and when
    /// to try again).
    async fn connect_once(self: Arc<Self>) -> Result<Arc<Session>, SshError> {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        let result = connect(
            &self.endpoint,
            Some(&self.credentials),
            HostKeyCheck::Pinned(self.pinned.clone()),
        )
        .await
        .map(|(session, _)| Arc::new(session));
        let mut state = self.state.lock().await;
        state.connecting = None;
        match &result {
            Ok(session) => {
                *state = PoolState {
                    session: Some(session.clone()),
                    ..PoolState::default()
                };
            }
            Err(error) => {
                if let (SshError::HostKeyChanged { seen, .. }, Some(hook)) =
                    (error, &self.on_key_mismatch)
                {
                    hook(seen.clone());
                }
                state.failures += 1;
                let backoff = Duration::from_millis(500)
                    .saturating_mul(1 << state.failures.min(8).saturating_sub(1))
                    .min(MAX_BACKOFF);
                state.retry_at = Some(Instant::now() + backoff);
                state.last_error = Some(error.clone());
            }
        }
        result
    }

    /// Forgets `session` if it is still the pooled one (it failed under a request).
    async fn discard(&self, session: &Arc<Session>) {
        let mut state = self.state.lock().await;
        if state
            .session
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, session))
        {
            state.session = None;
        }
    }

    /// A channel to the Docker socket; a pooled session that broke is replaced once.
    #[tracing::instrument(skip_all, fields(address = %self.endpoint.address), err(level = "debug"))]
    async fn channel(
        self: &Arc<Self>,
        now: bool,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, SshError> {
        let session = self.session(now).await?;
        match docker_channel(&session).await {
            Ok(channel) => Ok(channel),
            Err(SshError::SocketRefused(reason)) => Err(SshError::SocketRefused(reason)),
            Err(_) => {
                self.discard(&session).await;
                let session = self.session(now).await?;
                docker_channel(&session).await
            }
        }
    }

    /// Connects now if not connected (ignoring a back-off), for an explicit check.
    pub async fn ensure_connected(self: &Arc<Self>) -> Result<(), SshError> {
        self.session(true).await.map(|_| ())
    }

    /// Sends one Docker API request over a fresh channel.
    async fn request(
        self: Arc<Self>,
        request: BollardRequest,
    ) -> Result<hyper::Response<hyper::body::Incoming>, bollard::errors::Error> {
        let channel = self
            .channel(false)
            .await
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::NotConnected, error))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(channel)).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "Docker connection over SSH ended");
            }
        });
        let (mut parts, body) = request.into_parts();
        // The channel is the connection: the request line takes the path only.
        let origin_form = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        parts.uri = origin_form
            .parse()
            .map_err(|error: axum::http::uri::InvalidUri| {
                bollard::errors::Error::from(axum::http::Error::from(error))
            })?;
        parts.headers.insert(
            axum::http::header::HOST,
            axum::http::HeaderValue::from_static("docker"),
        );
        Ok(sender
            .send_request(hyper::Request::from_parts(parts, body))
            .await?)
    }

    /// A bollard client whose every request goes through this pool.
    pub fn docker(self: &Arc<Self>, timeout_secs: u64) -> Docker {
        let pool = self.clone();
        Docker::connect_with_custom_transport(
            move |request: BollardRequest| pool.clone().request(request),
            Some("http://docker"),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("a custom transport with a fixed address always builds")
    }
}
