//! Projections apply every event exactly once, across failed transactions and a runner
//! killed mid-batch, and a rebuild from zero gives the same tables as catching up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dcp::commands::{CommandBus, CommandMeta};
use dcp_aggregates::session::{Session, SessionCommand};
use dcp_aggregates::user::{User, UserCommand};
use dcp_aggregates::Role;
use dcp_projections::audit::AuditLogProjection;
use dcp_projections::sessions::SessionsProjection;
use dcp_projections::users::UsersProjection;
use dcp_projections::{
    projection_statuses, rebuild_projection, DynProjection, LogWaker, Projection,
    ProjectionProgress, ProjectionRunner, StoredEvent,
};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::common::{eventually, migrated_pool};

/// Writes a realistic mix of events: users created, renamed, re-roled, deactivated,
/// deleted, and sessions started and ended.
async fn write_history(pool: &PgPool, users: usize) {
    let bus = CommandBus::new(pool.clone());
    let meta = CommandMeta {
        actor_id: Some(Uuid::new_v4()),
        actor_username: Some("tester".into()),
        actor_role: Some("admin".into()),
        request_id: Some("req-store-test".into()),
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some("store-test".into()),
        ..CommandMeta::default()
    };
    for i in 0..users {
        let id = Uuid::new_v4();
        let key = id.to_string();
        let at = Utc::now();
        bus.execute::<User>(
            &key,
            UserCommand::CreateUser {
                user_id: id,
                username: format!("user{i}"),
                email: format!("user{i}@example.com"),
                full_name: format!("User {i}"),
                role: Role::Viewer,
                must_change_password: i % 2 == 0,
                at,
            },
            &meta,
        )
        .await
        .unwrap();
        bus.execute::<User>(
            &key,
            UserCommand::UpdateProfile {
                email: None,
                full_name: Some(format!("User number {i}")),
                at,
            },
            &meta,
        )
        .await
        .unwrap();
        if i % 3 == 0 {
            let command = UserCommand::ChangeRole {
                role: Role::Operator,
                actor_id: None,
                other_active_admins: 1,
                at,
            };
            bus.execute::<User>(&key, command, &meta).await.unwrap();
        }
        let session = Uuid::new_v4();
        let start = SessionCommand::Start {
            session_id: session,
            user_id: id,
            username: format!("user{i}"),
            expires_at: at + chrono::Duration::hours(1),
            at,
        };
        bus.execute::<Session>(&session.to_string(), start, &meta)
            .await
            .unwrap();
        if i % 4 == 1 {
            bus.execute::<Session>(&session.to_string(), SessionCommand::LogOut { at }, &meta)
                .await
                .unwrap();
        }
        if i % 5 == 2 {
            let command = UserCommand::Deactivate {
                actor_id: None,
                other_active_admins: 1,
                at,
            };
            bus.execute::<User>(&key, command, &meta).await.unwrap();
        }
        if i % 7 == 6 {
            let command = UserCommand::Delete {
                actor_id: None,
                other_active_admins: 1,
                at,
            };
            bus.execute::<User>(&key, command, &meta).await.unwrap();
        }
    }
}

async fn dump(pool: &PgPool, table: &str, order: &str) -> Vec<Value> {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) FROM {table} t ORDER BY {order}"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn dump_all(pool: &PgPool) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    (
        dump(pool, "users", "id").await,
        dump(pool, "sessions", "id").await,
        // `seq` comes from a sequence, which a rolled-back batch advances: compare the
        // entries and their order, not the numbers.
        sqlx::query_scalar("SELECT to_jsonb(t) - 'seq' FROM audit_logs t ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap(),
    )
}

async fn caught_up(pool: &PgPool, names: &[&str]) {
    let pool = pool.clone();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    eventually(Duration::from_secs(30), || {
        let pool = pool.clone();
        let names = names.clone();
        async move {
            let statuses = projection_statuses(&pool).await.unwrap();
            let done = names.iter().all(|name| {
                statuses
                    .iter()
                    .any(|s| &s.name == name && s.lag == 0 && !s.rebuild_requested)
            });
            done.then_some(())
        }
    })
    .await
}

/// Fails (after doing its writes) on the first batch that reaches `fail_at` events,
/// then behaves; or, in `stall` mode, hangs inside the transaction so the runner can be killed.
struct Faulty {
    inner: Arc<dyn DynProjection>,
    applied: AtomicUsize,
    fail_at: usize,
    stall: bool,
    faults: AtomicUsize,
}

#[async_trait::async_trait]
impl DynProjection for Faulty {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> i32 {
        self.inner.version()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    async fn reset(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        self.inner.reset(conn).await
    }
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> anyhow::Result<()> {
        self.inner.apply_batch(conn, events).await?;
        let before = self.applied.fetch_add(events.len(), Ordering::SeqCst);
        if before + events.len() >= self.fail_at && self.faults.fetch_add(1, Ordering::SeqCst) == 0
        {
            if self.stall {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            anyhow::bail!("injected failure after writing the batch");
        }
        Ok(())
    }
}

fn projections() -> Vec<Arc<dyn DynProjection>> {
    vec![
        Arc::new(UsersProjection),
        Arc::new(SessionsProjection),
        Arc::new(AuditLogProjection),
    ]
}

async fn run(
    pool: &PgPool,
    projection: Arc<dyn DynProjection>,
    token: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let waker = LogWaker::listen(pool, token.clone()).await.unwrap();
    let progress = ProjectionProgress::new(pool.clone(), waker.clone());
    ProjectionRunner::new(pool.clone(), projection, waker, progress)
        .with_batch_size(37)
        .with_standby_retry(Duration::from_millis(100))
        .spawn(token.clone())
}

#[tokio::test]
async fn a_failed_batch_is_retried_and_applied_once() {
    let pool = migrated_pool().await;
    let token = CancellationToken::new();
    let mut runners = Vec::new();
    for inner in projections() {
        let faulty = Arc::new(Faulty {
            inner,
            applied: AtomicUsize::new(0),
            fail_at: 60,
            stall: false,
            faults: AtomicUsize::new(0),
        });
        runners.push(run(&pool, faulty, &token).await);
    }
    // Events are written while the runners catch up (incremental).
    write_history(&pool, 40).await;
    caught_up(&pool, &["users", "sessions", "audit_log"]).await;
    let incremental = dump_all(&pool).await;
    token.cancel();
    for runner in runners {
        runner.await.unwrap();
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        incremental.2.len() as i64,
        events,
        "one audit entry per event"
    );
    for status in projection_statuses(&pool).await.unwrap() {
        assert_eq!(
            status.events_applied, events,
            "{} applied a different number of events",
            status.name
        );
    }
    for projection in projections() {
        rebuild_projection(&pool, projection, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let rebuilt = dump_all(&pool).await;
    assert_eq!(incremental.0, rebuilt.0, "users differ after a rebuild");
    assert_eq!(incremental.1, rebuilt.1, "sessions differ after a rebuild");
    assert_eq!(
        incremental.2, rebuilt.2,
        "audit log differs after a rebuild"
    );
    assert!(!rebuilt.0.is_empty() && !rebuilt.1.is_empty());
}

#[tokio::test]
async fn a_runner_killed_mid_batch_resumes_without_loss_or_duplicate() {
    let pool = migrated_pool().await;
    write_history(&pool, 30).await;
    // First runner: hangs inside its transaction on the batch reaching event 50; kill it there.
    let first = CancellationToken::new();
    let mut stalled = Vec::new();
    let mut faulties = Vec::new();
    for inner in projections() {
        let faulty = Arc::new(Faulty {
            inner,
            applied: AtomicUsize::new(0),
            fail_at: 50,
            stall: true,
            faults: AtomicUsize::new(0),
        });
        faulties.push(faulty.clone());
        stalled.push(run(&pool, faulty, &first).await);
    }
    eventually(Duration::from_secs(30), || {
        let faulties = faulties.clone();
        async move {
            faulties
                .iter()
                .all(|f| f.faults.load(Ordering::SeqCst) > 0)
                .then_some(())
        }
    })
    .await;
    let partial = projection_statuses(&pool).await.unwrap();
    assert!(
        partial.iter().all(|s| s.lag > 0),
        "the runners should be stuck mid-log: {partial:?}"
    );
    for runner in &stalled {
        runner.abort();
    }
    for runner in stalled {
        let _ = runner.await;
    }
    // Their connections (and advisory locks) are gone with the aborted tasks; a new runner takes over.
    let second = CancellationToken::new();
    let mut runners = Vec::new();
    for projection in projections() {
        runners.push(run(&pool, projection, &second).await);
    }
    caught_up(&pool, &["users", "sessions", "audit_log"]).await;
    let resumed = dump_all(&pool).await;
    second.cancel();
    for runner in runners {
        runner.await.unwrap();
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(resumed.2.len() as i64, events);
    let locks: Vec<(i32, String, bool)> = sqlx::query_as(
        "SELECT l.pid, coalesce(a.state, '?'), l.granted FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    eprintln!("advisory locks after stopping the runners: {locks:?}");
    for projection in projections() {
        rebuild_projection(&pool, projection, Duration::from_secs(60))
            .await
            .unwrap();
    }
    assert_eq!(
        resumed,
        dump_all(&pool).await,
        "resumed tables differ from a rebuild"
    );
}

#[tokio::test]
async fn a_version_bump_rebuilds_at_start() {
    struct Bumped;
    #[async_trait::async_trait]
    impl Projection for Bumped {
        const NAME: &'static str = "users";
        const VERSION: i32 = UsersProjection::VERSION + 1;
        const TABLES: &'static [&'static str] = UsersProjection::TABLES;
        async fn apply_batch(
            &self,
            conn: &mut PgConnection,
            events: &[StoredEvent],
        ) -> anyhow::Result<()> {
            Projection::apply_batch(&UsersProjection, conn, events).await
        }
    }
    let pool = migrated_pool().await;
    write_history(&pool, 10).await;
    let token = CancellationToken::new();
    let runner = run(&pool, Arc::new(UsersProjection), &token).await;
    caught_up(&pool, &["users"]).await;
    token.cancel();
    runner.await.unwrap();
    let before = dump(&pool, "users", "id").await;
    // Corrupt the read model: a rebuild must repair it.
    sqlx::query("UPDATE users SET full_name = 'corrupted'")
        .execute(&pool)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let runner = run(&pool, Arc::new(Bumped), &token).await;
    eventually(Duration::from_secs(30), || {
        let pool = pool.clone();
        async move {
            let status = projection_statuses(&pool)
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.name == "users")?;
            (status.version == UsersProjection::VERSION + 1 && status.lag == 0).then_some(())
        }
    })
    .await;
    token.cancel();
    runner.await.unwrap();
    assert_eq!(before, dump(&pool, "users", "id").await);
}

#[tokio::test]
async fn one_runner_per_projection_across_replicas() {
    let pool = migrated_pool().await;
    let token = CancellationToken::new();
    let mut runners = Vec::new();
    for _ in 0..3 {
        runners.push(run(&pool, Arc::new(AuditLogProjection), &token).await);
    }
    write_history(&pool, 15).await;
    caught_up(&pool, &["audit_log"]).await;
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = hashtext('audit_log')::oid \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(dcp_projections::runner::PROJECTION_LOCK_NAMESPACE)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(holders, 1, "exactly one runner holds the lock");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(entries, events);
    token.cancel();
    for runner in runners {
        runner.await.unwrap();
    }
}
