//! dcp write model: aggregates decide, they do not act.
//!
//! Every module holds one aggregate with its commands, events, errors and
//! given/when/then tests. No IO, no clock and no randomness live here: time and
//! ids arrive in the command, anything that needs a lookup is looked up by the
//! caller and passed in.
//!
//! Events also say what they mean to the read side: their audit action ([`audit`]) and the
//! step of a Docker operation they record ([`operation::OperationEvent`]), so readers
//! decode them ([`AnyEvent`]) instead of matching event names. A query that narrows by
//! event type before decoding takes the names the events declare beside themselves
//! ([`operation::OperationEventTypes`]), never its own spelling of them.

pub mod access_attempt;
pub mod any_event;
pub mod audit;
pub mod container;
pub mod host;
pub mod image;
pub mod network;
pub mod operation;
pub mod role;
pub mod session;
mod upcasting;
pub mod user;
pub mod versioning;
pub mod volume;
pub mod wizard;

pub use any_event::AnyEvent;
pub use role::Role;

/// The version every event type is written with until its shape changes.
pub const EVENT_VERSION_1: &str = "1";

/// The aggregate id of a Docker resource known by a natural key: `(kind, host, key)` →
/// always the same id, so concurrent first uses of a resource meet on one stream (and
/// the store's optimistic concurrency) instead of creating two.
pub fn resource_key(kind: &str, host: &str, key: &str) -> uuid::Uuid {
    // FNV-1a over the parts, twice with different offsets, gives 128 stable bits; the
    // ids are not secret and collisions across realistic names are negligible.
    let mut halves = [0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4u64];
    for (i, half) in halves.iter_mut().enumerate() {
        for byte in [kind, host, key]
            .iter()
            .flat_map(|part| part.bytes().chain(std::iter::once(0u8)))
            .chain(std::iter::once(i as u8))
        {
            *half ^= u64::from(byte);
            *half = half.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&halves[0].to_be_bytes());
    bytes[8..].copy_from_slice(&halves[1].to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
