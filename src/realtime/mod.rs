//! Real time: the event bus (NATS or in-process) with its relay, the sockets open on this
//! server, the tickets that open them, and the live streams they carry (events, container
//! logs, stats and exec sessions, operation progress). The WebSocket endpoints are the
//! HTTP layer's (its `ws` module).

pub mod bus;
mod error;
pub mod sockets;
pub mod streams;
pub mod tickets;

pub use error::RealtimeError;
