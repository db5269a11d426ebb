//! dcp write model: aggregates decide, they do not act.
//!
//! Every module holds one aggregate with its commands, events, errors and
//! given/when/then tests. No IO, no clock and no randomness live here: time and
//! ids arrive in the command, anything that needs a lookup is looked up by the
//! caller and passed in.

pub mod access_attempt;
pub mod container;
pub mod role;
pub mod session;
pub mod user;

pub use role::Role;

/// The version every event type is written with until its shape changes.
pub const EVENT_VERSION_1: &str = "1";
