//! dcp's database role appends to the event log and cannot rewrite it: migrations run as an
//! owner role (`DCP_DATABASE_OWNER_URL`), and the role dcp runs as gets no UPDATE, DELETE
//! or TRUNCATE on `events`. A superuser as dcp's role is refused at start.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::*;

/// A login role of its own for one test, dropped with what it was granted when done.
struct Role {
    name: String,
}

impl Role {
    async fn create(superuser: bool) -> Role {
        let name = format!("dcp_app_{}", &Uuid::new_v4().simple().to_string()[..12]);
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        let kind = if superuser {
            "SUPERUSER"
        } else {
            "NOSUPERUSER"
        };
        sqlx::query(&format!("CREATE ROLE {name} LOGIN {kind}"))
            .execute(&mut conn)
            .await
            .unwrap();
        Role { name }
    }

    /// `database_url` with this role as its user.
    fn url(&self, database_url: &str) -> String {
        database_url.replacen(
            "postgres://postgres@",
            &format!("postgres://{}@", self.name),
            1,
        )
    }

    async fn drop_in(self, database_url: &str) {
        let mut conn = PgConnection::connect(database_url).await.unwrap();
        sqlx::query(&format!("DROP OWNED BY {}", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        let _ = sqlx::query(&format!("DROP ROLE {}", self.name))
            .execute(&mut conn)
            .await;
    }
}

#[tokio::test]
async fn dcps_role_appends_to_the_event_log_and_cannot_rewrite_it() {
    let owner_url = fresh_database().await;
    assert!(owner_url.starts_with("postgres://postgres@"), "{owner_url}");
    let role = Role::create(false).await;
    let app_url = role.url(&owner_url);
    let owner = owner_url.clone();
    let app = spawn_app_on(app_url.clone(), move |settings| {
        settings.database_owner_url = Some(owner.into());
    })
    .await;
    // The server works as that role: a user is created (events appended, read models kept).
    app.create_user("appender", "viewer", "appender-password-1")
        .await;
    let mut conn = PgConnection::connect(&app_url).await.unwrap();
    let who: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(who, role.name);
    for rewrite in [
        "UPDATE events SET payload = '{}' WHERE sequence = 0",
        "DELETE FROM events WHERE sequence = 0",
        "TRUNCATE events",
        "DELETE FROM _sqlx_migrations",
    ] {
        let error = sqlx::query(rewrite)
            .execute(&mut conn)
            .await
            .expect_err(rewrite)
            .to_string();
        assert!(error.contains("permission denied"), "{rewrite}: {error}");
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(events > 0);
    conn.close().await.unwrap();
    app.stop().await;

    // A superuser as dcp's role is refused: it could rewrite the log.
    let superuser = Role::create(true).await;
    let owner = owner_url.clone();
    let mut settings = dcp::config::Settings::for_tests(&superuser.url(&owner_url), temp_dir());
    settings.database_owner_url = Some(owner.into());
    let refused = dcp::app::Application::build(settings).await;
    let message = refused.err().expect("a superuser is refused").to_string();
    assert!(message.contains("superuser"), "{message}");
    superuser.drop_in(&owner_url).await;
    role.drop_in(&owner_url).await;
}
