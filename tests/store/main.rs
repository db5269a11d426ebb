//! Event store tests against a real PostgreSQL: the global log order, projections that
//! apply every event exactly once, and the server's lookups in the log.

#[path = "../common/mod.rs"]
mod common;

mod global_log;
mod lookups;
mod projections;
mod sealed;
mod versioning;
