//! Real time: the event bus (NATS or in-process) with its relay, and the WebSocket gateway
//! that fans events and live Docker streams out to browsers.

pub mod bus;
pub mod gateway;
pub mod streams;
pub mod tickets;
