//! dcp, the Docker Control Platform: an event-sourced control plane for Docker engines.
//!
//! Commands (HTTP) → events in PostgreSQL → projections (read models, audit log).
//! See `DESIGN.md` in the shared folder for the architecture.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod checkpoints;
pub mod cli;
pub mod commands;
pub mod config;
pub mod containers;
pub mod db;
pub mod denials;
pub mod docker;
pub mod embedded_pg;
pub mod errors;
pub mod event_store;
pub mod history;
pub mod hosts;
pub mod http;
pub mod metrics;
pub mod read_models;
pub mod realtime;
pub mod resources;
pub mod secrets;
pub mod ssh;
pub mod telemetry;
pub mod watcher;
pub mod wizards;
