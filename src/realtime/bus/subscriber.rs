//! `dcp subscribe`: a NATS subscriber for integrations, and the reference for writing one.
//!
//! It uses a durable JetStream consumer on `DCP_EVENTS` (so it resumes where it stopped,
//! across its own and the server's restarts), fetches no more than it handles,
//! acknowledges each message after handling it (and waits for the server to confirm), and
//! drops repeats by `event_id` (JetStream redelivers a message whose
//! acknowledgement was lost). Each envelope is printed as one JSON line.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use uuid::Uuid;

use super::{Envelope, STREAM, SUBJECTS};

/// Event ids remembered to drop redeliveries (they come soon after the original).
const REMEMBERED: usize = 100_000;
/// Messages fetched at a time.
const BATCH: usize = 200;

/// Prints the events of `filter` (default every event) as NDJSON to `out`, as the durable
/// consumer `durable`; stops after `limit` events if given.
pub async fn subscribe(
    url: &str,
    durable: &str,
    filter: Option<&str>,
    limit: Option<u64>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if limit == Some(0) {
        return Ok(());
    }
    let (options, servers) = super::connect_options(url);
    let client = options
        .name(format!("dcp-subscriber-{durable}"))
        .retry_on_initial_connect()
        .connect(servers.as_str())
        .await
        .with_context(|| format!("Failed to connect to {servers}"))?;
    let js = jetstream::new(client);
    let stream = loop {
        match js.get_stream(STREAM).await {
            Ok(stream) => break stream,
            Err(error) => {
                tracing::info!(%error, "waiting for the {STREAM} stream");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let consumer = stream
        .get_or_create_consumer(
            durable,
            pull::Config {
                durable_name: Some(durable.to_string()),
                filter_subject: filter.unwrap_or(SUBJECTS).to_string(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .context("Failed to create the durable consumer")?;
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut order: VecDeque<Uuid> = VecDeque::new();
    let mut printed = 0u64;
    loop {
        // Fetched in batches no larger than what is still wanted, each acknowledged before
        // the next fetch: a subscriber that stops leaves nothing delivered-but-unhandled
        // behind, so the next run resumes exactly where this one stopped, in order.
        let wanted = limit.map_or(BATCH, |limit| (limit - printed).min(BATCH as u64) as usize);
        let mut batch = consumer
            .fetch()
            .max_messages(wanted)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("fetching: {e}"))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("receiving: {e}"))?;
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(envelope) if seen.insert(envelope.event_id) => {
                    order.push_back(envelope.event_id);
                    if order.len() > REMEMBERED {
                        if let Some(old) = order.pop_front() {
                            seen.remove(&old);
                        }
                    }
                    serde_json::to_writer(&mut *out, &envelope)?;
                    writeln!(out)?;
                    out.flush()?;
                    printed += 1;
                }
                // A redelivery of an event already handled.
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, subject = %message.subject, "not an event envelope")
                }
            }
            // Confirmed by the server before the next one: stopping now loses nothing and
            // repeats nothing.
            message
                .double_ack()
                .await
                .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))?;
        }
        if limit.is_some_and(|limit| printed >= limit) {
            break;
        }
    }
    Ok(())
}
