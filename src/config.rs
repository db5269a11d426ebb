//! Typed configuration from the environment (each setting is also a `dcp serve` flag).
//! Defaults live here; secrets are `SecretString`s; `DCP_BIND` may use port 0.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use secrecy::SecretString;

/// Settings of `dcp serve` and the other subcommands that reach the database.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address the HTTP server binds (port 0 picks a free port).
    #[arg(long, env = "DCP_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Where dcp keeps its files: the embedded PostgreSQL cluster and generated secrets.
    #[arg(long, env = "DCP_DATA_DIR", default_value = "./dcp-data")]
    pub data_dir: PathBuf,

    /// PostgreSQL connection URL. Unset: a private cluster is started in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// File holding `DATABASE_URL` (a compose secret, say), read at start.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,

    /// PostgreSQL URL of the role that owns dcp's tables, used only to migrate them. Set, the
    /// role of `DATABASE_URL` is granted what it needs after each migration and no more: it
    /// appends to `events` but cannot update, delete or truncate them. Unset: `DATABASE_URL`
    /// migrates (one role, as in the embedded default).
    #[arg(long, env = "DCP_DATABASE_OWNER_URL", hide_env_values = true)]
    pub database_owner_url: Option<SecretString>,

    /// File holding `DCP_DATABASE_OWNER_URL`.
    #[arg(long, env = "DCP_DATABASE_OWNER_URL_FILE")]
    pub database_owner_url_file: Option<PathBuf>,

    /// The local Docker engine (`unix:///var/run/docker.sock`, `tcp://host:2375`). Unset: the local socket.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Password of the first admin (`admin`). Unset: a random one is printed once and must be changed.
    #[arg(long, env = "DCP_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// File holding `DCP_ADMIN_PASSWORD`.
    #[arg(long, env = "DCP_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// Also create the demo users `operator` and `viewer` on first start.
    #[arg(long, env = "DCP_DEMO_USERS", default_value = "false", value_parser = BoolishValueParser::new())]
    pub demo_users: bool,

    /// Secret for signing access tokens (at least 32 bytes).
    #[arg(long, env = "DCP_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// File holding that secret. Neither set: generated into the data dir (mode 0600).
    #[arg(long, env = "DCP_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,

    /// Key for signing audit checkpoints (at least 32 bytes). Keep it out of the database
    /// and its backups: it is what makes a rewrite of the audit log by someone with
    /// database access detectable.
    #[arg(long, env = "DCP_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<SecretString>,

    /// File holding that key. Neither set: generated into the data dir (mode 0600).
    #[arg(long, env = "DCP_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,

    /// Master key sealing stored secrets (SSH keys and passwords): base64 of 32 random bytes.
    #[arg(long, env = "DCP_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<SecretString>,

    /// File holding that key. Neither set: generated into the data dir (mode 0600).
    #[arg(long, env = "DCP_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Origins allowed to call the API from a browser, comma-separated.
    #[arg(
        long,
        env = "DCP_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Containers, volumes and networks (names, comma-separated, on every host) that the
    /// platform protects besides its own container, its compose project and whatever is
    /// labelled `dcp.protected=true`: operators cannot act on, mount or join them.
    #[arg(long, env = "DCP_PROTECTED", default_value = "")]
    pub protected: String,

    /// Proxies (addresses or CIDR blocks, comma-separated) whose `X-Forwarded-For` names the
    /// client; requests from anywhere else are attributed to their peer address.
    #[arg(
        long,
        env = "DCP_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub trusted_proxies: Vec<String>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "DCP_ACCESS_TOKEN_TTL_SECS", default_value_t = 600)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a session (its refresh tokens), in seconds.
    #[arg(long, env = "DCP_SESSION_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_ttl_secs: u64,

    /// Seconds during which a just-traded refresh token is honoured again (tabs refreshing
    /// at once); presented later it counts as reuse and revokes the session.
    #[arg(long, env = "DCP_REFRESH_REUSE_GRACE_SECS", default_value_t = 10)]
    pub refresh_reuse_grace_secs: u64,

    /// Seconds after which an operation still without an outcome is settled from what Docker
    /// shows (stop and restart add their own timeout).
    #[arg(long, env = "DCP_OPERATION_SETTLE_AFTER_SECS", default_value_t = 90)]
    pub operation_settle_after_secs: u64,

    /// NATS server(s) with JetStream for the event bus (`nats://host:4222`, comma-separated
    /// for a cluster). Unset: an in-process bus (single node).
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// File holding `NATS_URL` (with its credentials: `nats://user:password@host:4222`).
    #[arg(long, env = "NATS_URL_FILE")]
    pub nats_url_file: Option<PathBuf>,

    /// Follow each engine's event stream and record changes made outside dcp.
    #[arg(long, env = "DCP_WATCH_DOCKER_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_docker_events: bool,

    /// Serve the web UI from this directory (a `web/dist` build) instead of the UI embedded
    /// in the binary: for working on the UI without rebuilding the server.
    #[arg(long, env = "DCP_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Maximum database connections of this process.
    #[arg(long, env = "DCP_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,

    /// Serve HTTPS natively with this certificate chain (PEM; with `DCP_TLS_KEY`). Cookies
    /// are then `Secure` and HSTS is sent.
    #[arg(long, env = "DCP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `DCP_TLS_CERT` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "DCP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Whether cookies get the `Secure` flag and HSTS is sent: set it when a proxy serves
    /// dcp over HTTPS (with `DCP_TLS_CERT`, always).
    #[arg(long, env = "DCP_SECURE_COOKIES", default_value = "false", value_parser = BoolishValueParser::new())]
    pub secure_cookies: bool,

    /// Also serve `/metrics` without authentication on this address (for a Prometheus on a
    /// private network); `/metrics` on the API needs an admin token.
    #[arg(long, env = "DCP_METRICS_BIND")]
    pub metrics_bind: Option<String>,
}

impl Settings {
    /// Reads the settings given as files (`…_FILE`, e.g. compose secrets) into their values;
    /// a setting given both ways, or a file that cannot be read, is an error.
    pub fn with_files_read(mut self) -> anyhow::Result<Self> {
        fn read(
            name: &str,
            file: &Option<PathBuf>,
            value_set: bool,
        ) -> anyhow::Result<Option<String>> {
            let Some(file) = file else { return Ok(None) };
            anyhow::ensure!(!value_set, "{name} and {name}_FILE are both set: keep one");
            let text = std::fs::read_to_string(file)
                .map_err(|error| anyhow::anyhow!("{name}_FILE ({}): {error}", file.display()))?;
            let text = text.trim().to_string();
            anyhow::ensure!(
                !text.is_empty(),
                "{name}_FILE ({}) is empty",
                file.display()
            );
            Ok(Some(text))
        }
        let secret = |value: Option<String>| value.map(SecretString::from);
        if let Some(url) = read(
            "DATABASE_URL",
            &self.database_url_file,
            self.database_url.is_some(),
        )? {
            self.database_url = secret(Some(url));
        }
        if let Some(url) = read(
            "DCP_DATABASE_OWNER_URL",
            &self.database_owner_url_file,
            self.database_owner_url.is_some(),
        )? {
            self.database_owner_url = secret(Some(url));
        }
        if let Some(password) = read(
            "DCP_ADMIN_PASSWORD",
            &self.admin_password_file,
            self.admin_password.is_some(),
        )? {
            self.admin_password = secret(Some(password));
        }
        if let Some(url) = read("NATS_URL", &self.nats_url_file, self.nats_url.is_some())? {
            self.nats_url = Some(url);
        }
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "DCP_TLS_CERT and DCP_TLS_KEY go together"
        );
        anyhow::ensure!(
            self.database_owner_url.is_none() || self.database_url.is_some(),
            "DCP_DATABASE_OWNER_URL needs DATABASE_URL (the role dcp runs as)"
        );
        Ok(self)
    }

    /// An optional setting given empty (`DCP_MASTER_KEY=` in a compose file or `.env`) is
    /// unset, not an empty value to reject.
    pub fn without_empty_values(mut self) -> Self {
        use secrecy::ExposeSecret;
        fn secret(value: &mut Option<SecretString>) {
            if value
                .as_ref()
                .is_some_and(|v| v.expose_secret().trim().is_empty())
            {
                *value = None;
            }
        }
        fn text(value: &mut Option<String>) {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        fn path(value: &mut Option<PathBuf>) {
            if value.as_ref().is_some_and(|v| v.as_os_str().is_empty()) {
                *value = None;
            }
        }
        secret(&mut self.database_url);
        secret(&mut self.database_owner_url);
        secret(&mut self.admin_password);
        secret(&mut self.jwt_secret);
        secret(&mut self.audit_key);
        secret(&mut self.master_key);
        text(&mut self.docker_host);
        text(&mut self.nats_url);
        text(&mut self.metrics_bind);
        path(&mut self.database_url_file);
        path(&mut self.database_owner_url_file);
        path(&mut self.admin_password_file);
        path(&mut self.nats_url_file);
        path(&mut self.tls_cert);
        path(&mut self.tls_key);
        path(&mut self.jwt_secret_file);
        path(&mut self.audit_key_file);
        path(&mut self.master_key_file);
        self
    }

    /// Defaults for an in-process test server on a free port against `database_url`.
    pub fn for_tests(database_url: &str, data_dir: PathBuf) -> Self {
        Settings {
            bind: "127.0.0.1:0".into(),
            data_dir,
            database_url: Some(SecretString::from(database_url.to_string())),
            database_url_file: None,
            database_owner_url: None,
            database_owner_url_file: None,
            admin_password_file: None,
            nats_url_file: None,
            docker_host: std::env::var("DOCKER_HOST").ok(),
            admin_password: Some(SecretString::from("admin-password-for-tests".to_string())),
            demo_users: false,
            jwt_secret: Some(SecretString::from(
                "a-test-secret-that-is-long-enough-0123456789".to_string(),
            )),
            jwt_secret_file: None,
            audit_key: None,
            audit_key_file: None,
            master_key: None,
            master_key_file: None,
            cors_origins: vec!["http://localhost:5173".into()],
            protected: String::new(),
            trusted_proxies: vec![],
            access_token_ttl_secs: 600,
            session_ttl_secs: 7 * 24 * 3600,
            refresh_reuse_grace_secs: 10,
            operation_settle_after_secs: 90,
            nats_url: None,
            // Test servers share one engine: only the tests about observed changes watch it.
            watch_docker_events: false,
            web_dir: None,
            db_max_connections: 16,
            secure_cookies: false,
            tls_cert: None,
            tls_key: None,
            metrics_bind: None,
        }
    }

    /// Whether dcp is reached over HTTPS (natively, or through a proxy it was told of):
    /// cookies are `Secure` and HSTS is sent.
    pub fn https(&self) -> bool {
        self.secure_cookies || self.tls_cert.is_some()
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs.max(30))
    }

    pub fn refresh_reuse_grace(&self) -> Duration {
        Duration::from_secs(self.refresh_reuse_grace_secs.min(300))
    }

    pub fn operation_settle_after(&self) -> Duration {
        Duration::from_secs(self.operation_settle_after_secs)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs.max(300))
    }

    /// The non-empty CORS origins.
    pub fn cors_allowlist(&self) -> Vec<String> {
        self.cors_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn empty_optional_settings_are_unset() {
        let mut settings = Settings::for_tests("postgres://x/y", PathBuf::from("/tmp"));
        settings.master_key = Some(SecretString::from(String::new()));
        settings.admin_password = Some(SecretString::from("  ".to_string()));
        settings.nats_url = Some(String::new());
        settings.master_key_file = Some(PathBuf::new());
        let settings = settings.without_empty_values();
        assert!(settings.master_key.is_none());
        assert!(settings.admin_password.is_none());
        assert!(settings.nats_url.is_none());
        assert!(settings.master_key_file.is_none());
        assert_eq!(
            settings.database_url.unwrap().expose_secret(),
            "postgres://x/y"
        );
    }
}
