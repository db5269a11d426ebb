//! First start: the admin account (and demo users when asked for).

use base64::Engine;
use cqrs_es::Aggregate;
use dcp_aggregates::user::User;
use dcp_aggregates::Role;
use dcp_projections::GlobalLogReader;
use secrecy::SecretString;

use super::users::NewUser;
use super::Accounts;
use crate::commands::CommandMeta;
use crate::read_models::USERS;

/// Advisory lock key serialising first-start bootstraps across replicas.
const BOOTSTRAP_LOCK: i64 = 0x0dc9_0000_0000_0001;

/// A password generated for an account at first start, to print once.
#[derive(Clone)]
pub struct GeneratedLogin {
    pub username: String,
    pub password: String,
    pub role: Role,
}

impl std::fmt::Debug for GeneratedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

fn random_password() -> String {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Accounts {
    /// Creates `admin` (and `operator`/`viewer` with `demo_users`) if no account was ever
    /// created, `admin` with `admin_password` when given. Returns the passwords that were
    /// generated, to print once.
    pub async fn ensure_first_users(
        &self,
        admin_password: Option<&SecretString>,
        demo_users: bool,
    ) -> anyhow::Result<Vec<GeneratedLogin>> {
        // Replicas starting together take turns; the lock goes with its connection.
        let mut lock = self.reads.pool().acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut lock)
            .await?;
        let result = self.create_first_users(admin_password, demo_users).await;
        let _ = sqlx::Connection::close(lock).await;
        result
    }

    async fn create_first_users(
        &self,
        admin_password: Option<&SecretString>,
        demo_users: bool,
    ) -> anyhow::Result<Vec<GeneratedLogin>> {
        let pool = self.reads.pool();
        let any_user = GlobalLogReader::any_aggregate(pool, User::TYPE).await?;
        if any_user {
            return Ok(vec![]);
        }
        // No account was ever created, so any claim or hash left here is from a first start
        // that died half-way: clear them, or the admin's username would stay taken.
        sqlx::query("DELETE FROM user_handles")
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM credentials").execute(pool).await?;
        let mut accounts = vec![(
            "admin",
            "admin@localhost",
            "System Administrator",
            Role::Admin,
        )];
        if demo_users {
            accounts.push((
                "operator",
                "operator@localhost",
                "Demo Operator",
                Role::Operator,
            ));
            accounts.push(("viewer", "viewer@localhost", "Demo Viewer", Role::Viewer));
        }
        let mut generated = Vec::new();
        for (username, email, full_name, role) in accounts {
            let (password, must_change) = match (admin_password, role) {
                (Some(password), Role::Admin) => (password.clone(), false),
                _ => {
                    let password = random_password();
                    generated.push(GeneratedLogin {
                        username: username.into(),
                        password: password.clone(),
                        role,
                    });
                    (SecretString::from(password), true)
                }
            };
            let new = NewUser {
                username: username.into(),
                email: email.into(),
                full_name: full_name.into(),
                role,
                password,
                must_change_password: must_change,
            };
            match self.create_account(new, &CommandMeta::system()).await {
                Ok((_, cursor)) => {
                    self.reads.settle(cursor, USERS).await?;
                }
                Err(error) => {
                    anyhow::bail!("Failed to create the first user '{username}': {error}")
                }
            }
        }
        Ok(generated)
    }
}
