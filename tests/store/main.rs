//! Event store tests against a real PostgreSQL: the global log order, and projections
//! that apply every event exactly once.

#[path = "../common/mod.rs"]
mod common;

mod global_log;
mod projections;
mod sealed;
mod versioning;
