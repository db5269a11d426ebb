//! The event bus: how events leave the server, for browsers (through each server's
//! WebSocket gateway) and for integrations (NATS subscribers).
//!
//! The relay ([`relay`]) reads the global log and publishes every event once, in log order,
//! as an [`Envelope`] — to JetStream stream `DCP_EVENTS` on
//! `dcp.events.<aggregate_type>.<aggregate_id>.<event_type>` with `Nats-Msg-Id` = the event
//! id ([`NatsBus`]), or, with no `NATS_URL`, to an in-process channel with the same
//! interface ([`InProcessBus`], single node). Each server subscribes once and fans the
//! envelopes out to its sockets ([`EventBus::subscribe`]).

pub mod envelope;
pub mod relay;
pub mod subscriber;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use envelope::Envelope;

/// The JetStream stream that holds every event.
pub const STREAM: &str = "DCP_EVENTS";
/// Subjects of the stream: `dcp.events.<aggregate_type>.<aggregate_id>.<event_type>`.
pub const SUBJECTS: &str = "dcp.events.>";
/// How long JetStream remembers a message id: a republish within it is dropped.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// Envelopes buffered per local subscriber before it counts as lagging.
pub const LOCAL_BUFFER: usize = 4096;

/// Why the bus did not take an event.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the message bus is unavailable: {0}")]
    Unavailable(String),
}

/// Where events go once they are in the store.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// `nats` or `in-process`.
    fn kind(&self) -> &'static str;

    /// Publishes a batch in order and returns once every envelope is stored by the bus
    /// (JetStream: acknowledged). A failure means some may have been stored: the caller
    /// publishes the batch again, and the bus drops the repeats by event id.
    async fn publish(&self, envelopes: &[Envelope]) -> Result<(), BusError>;

    /// Every envelope published from now on, on this server (bounded: a receiver that
    /// falls behind gets `Lagged`).
    fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>>;

    /// Whether the bus takes events now (readiness).
    async fn check(&self) -> Result<(), BusError>;
}

/// The bus of a single server without NATS: a bounded broadcast channel.
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Envelope>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        InProcessBus {
            sender: broadcast::channel(LOCAL_BUFFER).0,
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl EventBus for InProcessBus {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    async fn publish(&self, envelopes: &[Envelope]) -> Result<(), BusError> {
        for envelope in envelopes {
            // No receiver is not an error: nobody is listening right now.
            let _ = self.sender.send(Arc::new(envelope.clone()));
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.sender.subscribe()
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// JetStream on a NATS server (or cluster).
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    local: broadcast::Sender<Arc<Envelope>>,
}

/// How long a publish waits for JetStream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for NATS at `url` (comma-separated servers): credentials written in it
/// (`nats://user:password@host:4222`, for a server that requires them) are sent as the
/// user and password, and the servers are given without them.
pub fn connect_options(url: &str) -> (async_nats::ConnectOptions, String) {
    let mut credentials = None;
    let servers: Vec<String> = url
        .split(',')
        .map(|server| {
            let server = server.trim();
            let (scheme, rest) = server.split_once("://").unwrap_or(("nats", server));
            match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    if credentials.is_none() {
                        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                        credentials = Some((user.to_string(), password.to_string()));
                    }
                    format!("{scheme}://{host}")
                }
                None => server.to_string(),
            }
        })
        .collect();
    let options = match credentials {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        None => async_nats::ConnectOptions::new(),
    };
    (options, servers.join(","))
}

impl NatsBus {
    /// Connects (retrying in the background while the server is away), makes sure the
    /// stream exists, and starts this server's subscription for local fan-out.
    pub async fn connect(url: &str, shutdown: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let (options, servers) = connect_options(url);
        let client = options
            .name("dcp")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers)
            .await?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(ACK_TIMEOUT);
        let bus = Arc::new(NatsBus {
            client,
            jetstream,
            local: broadcast::channel(LOCAL_BUFFER).0,
        });
        let fan_out = bus.clone();
        tokio::spawn(async move { fan_out.fan_out(shutdown).await });
        Ok(bus)
    }

    async fn ensure_stream(&self) -> Result<(), BusError> {
        self.jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: STREAM.to_string(),
                subjects: vec![SUBJECTS.to_string()],
                duplicate_window: DUPLICATE_WINDOW,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| BusError::Unavailable(format!("stream {STREAM}: {e}")))
    }

    /// Forwards what the relay (on any replica) publishes to this server's sockets, from
    /// an ordered JetStream consumer: the stream holds each event once (no repeat of a
    /// republished batch), and after a reconnect the consumer resumes at the next stream
    /// sequence (nothing published meanwhile is missed).
    async fn fan_out(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let consumer = async {
                self.ensure_stream().await?;
                let stream = self
                    .jetstream
                    .get_stream(STREAM)
                    .await
                    .map_err(|e| BusError::Unavailable(e.to_string()))?;
                stream
                    .create_consumer(jetstream::consumer::push::OrderedConfig {
                        deliver_subject: self.client.new_inbox(),
                        filter_subject: SUBJECTS.to_string(),
                        deliver_policy: jetstream::consumer::DeliverPolicy::New,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| BusError::Unavailable(e.to_string()))?
                    .messages()
                    .await
                    .map_err(|e| BusError::Unavailable(e.to_string()))
            };
            let mut messages = match consumer.await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(%error, "following the event stream failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = messages.next() => message,
                };
                match message {
                    Some(Ok(message)) => match serde_json::from_slice::<Envelope>(&message.payload)
                    {
                        Ok(envelope) => {
                            let _ = self.local.send(Arc::new(envelope));
                        }
                        Err(error) => {
                            tracing::warn!(%error, subject = %message.subject, "an event on the bus is not an envelope")
                        }
                    },
                    Some(Err(error)) => {
                        tracing::warn!(%error, "the event stream consumer failed; recreating it");
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl EventBus for NatsBus {
    fn kind(&self) -> &'static str {
        "nats"
    }

    async fn publish(&self, envelopes: &[Envelope]) -> Result<(), BusError> {
        let unavailable = |e: &dyn std::fmt::Display| BusError::Unavailable(e.to_string());
        let mut acks = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                envelope.event_id.to_string().as_str(),
            );
            let payload = Bytes::from(serde_json::to_vec(envelope).map_err(|e| unavailable(&e))?);
            let ack = match self
                .jetstream
                .publish_with_headers(envelope.subject(), headers.clone(), payload.clone())
                .await
            {
                Ok(ack) => ack,
                Err(error) => {
                    // A first publish may find no stream (a fresh or wiped server).
                    self.ensure_stream().await?;
                    let _ = error;
                    self.jetstream
                        .publish_with_headers(envelope.subject(), headers, payload)
                        .await
                        .map_err(|e| unavailable(&e))?
                }
            };
            acks.push(ack);
        }
        for ack in acks {
            match ack.await {
                Ok(_) => {}
                Err(error) => {
                    // "no responders": the stream is missing (a wiped server) — create it;
                    // the caller publishes the batch again.
                    let _ = self.ensure_stream().await;
                    return Err(unavailable(&error));
                }
            }
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.local.subscribe()
    }

    async fn check(&self) -> Result<(), BusError> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::Unavailable("not connected to NATS".into()));
        }
        tokio::time::timeout(Duration::from_secs(3), self.client.flush())
            .await
            .map_err(|_| BusError::Unavailable("NATS did not answer within 3 s".into()))?
            .map_err(|e| BusError::Unavailable(e.to_string()))
    }
}

/// The bus the settings ask for: NATS at `url`, or the in-process one.
pub async fn connect(
    url: Option<&str>,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<dyn EventBus>> {
    match url {
        Some(url) => {
            let bus = NatsBus::connect(url, shutdown).await?;
            if let Err(error) = bus.ensure_stream().await {
                // Not fatal: the relay creates it once NATS answers.
                tracing::warn!(%error, "the event stream could not be prepared yet");
            }
            Ok(bus)
        }
        None => Ok(Arc::new(InProcessBus::new())),
    }
}
