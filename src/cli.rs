//! The command line: `dcp [serve]`, `dcp projections status|rebuild NAME`, `dcp replay`,
//! `dcp subscribe`, `dcp audit verify`, `dcp users reset-password`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dcp_projections::{
    all_projections, projection_statuses, rebuild_projection, GlobalLogReader, LogCursor,
};

use crate::app::Application;
use crate::config::Settings;
use crate::db;

#[derive(Debug, Parser)]
#[command(name = "dcp", version, about = "Docker Control Platform")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Inspect or rebuild projections.
    Projections {
        #[command(subcommand)]
        action: ProjectionAction,
    },
    /// Manage accounts from the server's machine (recovery when no admin can log in).
    Users {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Follow the events on NATS (`NATS_URL`) as a durable consumer and print them as
    /// NDJSON: resumes where it stopped, each event once. An example for integrations.
    Subscribe {
        /// The durable consumer's name (one per integration).
        #[arg(long, default_value = "dcp-subscribe")]
        durable: String,
        /// A subject filter, e.g. `dcp.events.container.>` (default: every event).
        #[arg(long)]
        subject: Option<String>,
        /// Stop after this many events (default: follow forever).
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Check the audit log's hash chain; names the first entry that was changed, removed,
    /// inserted or moved (exit code 1).
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print stored events as NDJSON in global log order; or, with `--into` or `--schema`,
    /// rebuild every read model as of `--until` into another database or schema, to query
    /// the past with SQL.
    Replay {
        /// Start after the event at this global position (printing only).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Stop after this many events (printing only; default: all).
        #[arg(long)]
        limit: Option<u64>,
        /// Only events recorded at or before this moment (RFC 3339; default: now).
        #[arg(long)]
        until: Option<String>,
        /// Rebuild the read models into this (migrated on the way, empty) database.
        #[arg(long, conflicts_with = "schema")]
        into: Option<String>,
        /// Rebuild the read models into this new schema of the same database.
        #[arg(long)]
        schema: Option<String>,
    },
    /// Print the OpenAPI document of this build's API (what `/api/v1/openapi.json` serves);
    /// the web UI's API types are generated from it (`npm run api-types` in `web/`).
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Walk the chain and recompute every entry's hash; with `--checkpoint`, also check
    /// checkpoints exported earlier (a rewrite of the entries they cover is detected even
    /// when the whole chain was recomputed).
    Verify {
        /// A checkpoint file written by `dcp audit checkpoint` (repeatable).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<std::path::PathBuf>,
    },
    /// Print a checkpoint of the newest entry, signed with the audit key (JSON); keep it
    /// outside the database.
    Checkpoint,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Give an account a new random password (printed once), end its sessions, and
    /// require a change at its next login.
    ResetPassword { username: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionAction {
    /// Position and lag of every projection.
    Status,
    /// Rebuild one projection from the start of the log.
    Rebuild { name: String },
}

/// Runs the parsed command line.
pub async fn run(mut cli: Cli) -> anyhow::Result<()> {
    cli.settings = cli.settings.without_empty_values().with_files_read()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Openapi => {
            println!("{}", crate::http::openapi::document_json());
            Ok(())
        }
        Command::Audit { action } => {
            let key = match &action {
                AuditAction::Checkpoint => {
                    Some(crate::checkpoints::AuditKey::from_settings(&cli.settings)?)
                }
                AuditAction::Verify { checkpoints } if !checkpoints.is_empty() => {
                    Some(crate::checkpoints::AuditKey::existing(&cli.settings)?)
                }
                AuditAction::Verify { .. } => None,
            };
            let (pool, database) = db::open_for_tool(&cli.settings).await?;
            db::prepare(&cli.settings, &pool).await?;
            let result = audit(&pool, key.as_ref(), action).await;
            pool.close().await;
            database.close().await?;
            result
        }
        Command::Subscribe {
            durable,
            subject,
            limit,
        } => {
            let url =
                cli.settings.nats_url.as_deref().context(
                    "dcp subscribe needs NATS_URL (the in-process bus has no subscribers)",
                )?;
            let mut out = std::io::stdout().lock();
            crate::realtime::bus::subscriber::subscribe(
                url,
                &durable,
                subject.as_deref(),
                limit,
                &mut out,
            )
            .await
        }
        Command::Projections { action } => {
            let (pool, database) = db::open_for_tool(&cli.settings).await?;
            db::prepare(&cli.settings, &pool).await?;
            let result = projections(&pool, action).await;
            pool.close().await;
            database.close().await?;
            result
        }
        Command::Users { action } => {
            let (pool, database) = db::open_for_tool(&cli.settings).await?;
            db::prepare(&cli.settings, &pool).await?;
            let result = users(&pool, action).await;
            pool.close().await;
            database.close().await?;
            result
        }
        Command::Replay {
            after,
            limit,
            until,
            into,
            schema,
        } => {
            let until = until
                .map(|text| {
                    chrono::DateTime::parse_from_rfc3339(&text)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .with_context(|| format!("--until {text} is not an RFC 3339 time"))
                })
                .transpose()?;
            let (pool, database) = db::open_for_tool(&cli.settings).await?;
            db::prepare(&cli.settings, &pool).await?;
            let target = match (into, schema) {
                (Some(url), _) => Some(ReplayTarget::Database(url)),
                (None, Some(schema)) => Some(ReplayTarget::Schema(schema)),
                (None, None) => None,
            };
            let result = match target {
                Some(target) => replay_into(&pool, target, until).await,
                None => replay(&pool, after, limit, until).await,
            };
            pool.close().await;
            database.close().await?;
            result
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let logins = app.generated_logins();
    if !logins.is_empty() {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "============================================================"
        )?;
        writeln!(out, " dcp first start: these passwords are shown only once")?;
        for login in logins {
            writeln!(
                out,
                "   {:<10} {:<24} ({})",
                login.username, login.password, login.role
            )?;
        }
        writeln!(
            out,
            " You will be asked to choose a new password at first login."
        )?;
        writeln!(
            out,
            "============================================================"
        )?;
    }
    println!("dcp is running at http://{}", app.address());
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    app.run_until_stopped().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn projections(pool: &sqlx::PgPool, action: ProjectionAction) -> anyhow::Result<()> {
    match action {
        ProjectionAction::Status => {
            let statuses = projection_statuses(pool).await?;
            println!(
                "{:<12} {:>7} {:>12} {:>14} {:>8}  updated",
                "projection", "version", "position", "applied", "lag"
            );
            for s in statuses {
                println!(
                    "{:<12} {:>7} {:>12} {:>14} {:>8}  {}",
                    s.name, s.version, s.position, s.events_applied, s.lag, s.updated_at
                );
            }
            Ok(())
        }
        ProjectionAction::Rebuild { name } => {
            let projection = all_projections()
                .into_iter()
                .find(|p| p.name() == name)
                .with_context(|| {
                    let names: Vec<&str> = all_projections().iter().map(|p| p.name()).collect();
                    format!("no projection named '{name}' (known: {})", names.join(", "))
                })?;
            let started = std::time::Instant::now();
            let status =
                rebuild_projection(pool, Arc::clone(&projection), Duration::from_secs(600)).await?;
            println!(
                "rebuilt {} in {:.1}s: {} events applied, position {}",
                status.name,
                started.elapsed().as_secs_f64(),
                status.events_applied,
                status.position
            );
            Ok(())
        }
    }
}

async fn audit(
    pool: &sqlx::PgPool,
    key: Option<&crate::checkpoints::AuditKey>,
    action: AuditAction,
) -> anyhow::Result<()> {
    match (action, key) {
        (AuditAction::Checkpoint, Some(key)) => {
            let checkpoint = crate::checkpoints::issue(pool, key)
                .await?
                .context("the audit log is empty: nothing to sign")?;
            println!("{}", serde_json::to_string_pretty(&checkpoint)?);
            Ok(())
        }
        (AuditAction::Checkpoint, None) => anyhow::bail!("no audit key"),
        (AuditAction::Verify { checkpoints }, key) => {
            let mut signed = Vec::with_capacity(checkpoints.len());
            for path in &checkpoints {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read {}", path.display()))?;
                signed.push(
                    serde_json::from_str::<crate::checkpoints::Checkpoint>(&text)
                        .with_context(|| format!("{} is not a checkpoint", path.display()))?,
                );
            }
            let chain = dcp_projections::audit::verify_chain(pool).await?;
            let checks = match key {
                Some(key) => crate::checkpoints::check(pool, key, &signed).await?,
                None => vec![],
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "chain": chain,
                    "checkpoints": checks,
                }))?
            );
            if let Some(invalid) = &chain.first_invalid {
                anyhow::bail!("the audit chain is broken at entry {}", invalid.seq);
            }
            if let Some(bad) = checks.iter().find(|c| c.status != "ok") {
                anyhow::bail!("checkpoint of entry {}: {}", bad.seq, bad.message);
            }
            Ok(())
        }
    }
}

async fn users(pool: &sqlx::PgPool, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::ResetPassword { username } => {
            let password = crate::accounts::reset_password(pool, &username).await?;
            println!("new password for {username}: {password}");
            println!("it is shown only once and must be changed at the next login; the account's sessions have ended");
            Ok(())
        }
    }
}

/// Where `dcp replay` rebuilds the read models.
enum ReplayTarget {
    Database(String),
    Schema(String),
}

async fn replay_into(
    source: &sqlx::PgPool,
    target: ReplayTarget,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    let source_options = source.connect_options();
    let source_name = format!(
        "{}:{}/{}",
        source_options.get_host(),
        source_options.get_port(),
        source_options.get_database().unwrap_or_default()
    );
    let (options, described) = match &target {
        ReplayTarget::Database(url) => {
            let options: sqlx::postgres::PgConnectOptions =
                url.parse().context("--into is not a PostgreSQL URL")?;
            let described = format!("database {}", options.get_database().unwrap_or_default());
            (options, described)
        }
        ReplayTarget::Schema(schema) => {
            let valid = schema.len() <= 63
                && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !schema.starts_with("pg_")
                && schema != "public";
            anyhow::ensure!(
                valid,
                "--schema must be a new lowercase name (letters, digits, '_'), not public or pg_*"
            );
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(source)
                .await
                .with_context(|| format!("Failed to create schema {schema}"))?;
            let options = (*source_options)
                .clone()
                .options([("search_path", schema.as_str())]);
            (options, format!("schema {schema}"))
        }
    };
    let target_pool = db::connect(options, 8).await?;
    db::migrate(&target_pool)
        .await
        .context("Failed to prepare the replay target")?;
    eprintln!(
        "replaying {source_name} into {described}{}",
        until
            .map(|u| format!(" as of {}", u.to_rfc3339()))
            .unwrap_or_default()
    );
    let summary = dcp_projections::replay::replay_into(
        source,
        &target_pool,
        &source_name,
        until,
        all_projections(),
    )
    .await;
    target_pool.close().await;
    let summary = summary?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "{} events in {:.1}s ({:.0} events/s), up to position {}",
        summary.events,
        summary.seconds,
        summary.events as f64 / summary.seconds.max(1e-9),
        summary.last_position
    );
    Ok(())
}

async fn replay(
    pool: &sqlx::PgPool,
    after: i64,
    limit: Option<u64>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    let mut cursor = if after > 0 {
        GlobalLogReader::cursor_of(pool, after)
            .await?
            .with_context(|| format!("no event at position {after}"))?
    } else {
        LogCursor::START
    };
    let mut remaining = limit.unwrap_or(u64::MAX);
    let mut conn = pool.acquire().await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while remaining > 0 {
        let batch =
            GlobalLogReader::read_batch(&mut conn, cursor, remaining.min(1000) as i64).await?;
        let Some(last) = batch.last() else { break };
        cursor = last.cursor();
        for event in &batch {
            if until.is_some_and(|until| event.recorded_at > until) {
                continue;
            }
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
            remaining -= 1;
            if remaining == 0 {
                break;
            }
        }
    }
    out.flush()?;
    Ok(())
}
