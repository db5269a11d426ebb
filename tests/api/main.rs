//! HTTP API tests against a real server and a real PostgreSQL.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod malformed;
mod permissions;
