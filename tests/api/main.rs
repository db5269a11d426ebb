//! HTTP API tests against a real server and a real PostgreSQL.

#[path = "../common/mod.rs"]
mod common;

mod adversary;
mod audit;
mod auth;
mod containers;
mod history;
mod hosts;
mod http;
mod malformed;
mod observed;
mod openapi;
mod permissions;
mod realtime;
mod replay;
mod resources;
mod users;
mod web;
