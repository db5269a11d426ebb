//! Helpers shared by the benchmarks (each bench is its own binary and uses some of them).
#![allow(dead_code)]

use std::time::Duration;

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The `p` quantile (0 to 1) of sorted samples; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A new empty database on the server of `server_url`: its URL and its name.
pub async fn fresh_database(server_url: &str) -> anyhow::Result<(String, String)> {
    let mut conn = PgConnection::connect(server_url)
        .await
        .context("connect to DCP_TEST_DATABASE_URL")?;
    let name = format!("dcp_bench_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (base, _) = server_url
        .rsplit_once('/')
        .context("database URL without a database name")?;
    Ok((format!("{base}/{name}"), name))
}

/// Drops databases made by [`fresh_database`] (still connected sessions are ended).
pub async fn drop_databases(server_url: &str, names: &[String]) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(server_url).await?;
    for name in names {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}
