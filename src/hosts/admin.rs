//! Registered remote hosts: listed with their liveness, added (here or by a setup wizard),
//! changed, removed and checked. `local`, the engine dcp runs next to, is always there and
//! is not changed here.

use chrono::{DateTime, Utc};
use dcp_aggregates::host::{check_name, check_tags, AuthMethod, Host, HostCommand, HostSpec};
use dcp_aggregates::wizard::parse_ssh_url;
use dcp_projections::past::HostState;
use dcp_projections::LogCursor;
use russh::keys::PublicKey;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::credentials::{auth_method, name_taken, parse_host_key, seal_credentials, AuthRequest};
use super::monitor::{ssh_error_kind, CheckResult};
use super::{Hosts, HostsError};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::docker::{DockerHosts, LOCAL_HOST};
use crate::event_store::SideWrite;
use crate::read_models::HOSTS;
use crate::ssh;

/// When a host last answered.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Liveness {
    pub last_seen: Option<DateTime<Utc>>,
    pub last_checked: DateTime<Utc>,
    pub last_error: Option<String>,
    pub latency_ms: Option<f64>,
}

/// A host as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostView {
    pub id: String,
    pub name: String,
    /// `local` or `ssh`.
    pub kind: String,
    /// `active`, `unreachable`, `setup_pending` or `disabled`.
    pub status: String,
    pub engine_version: Option<String>,
    /// The registered host (absent for `local`).
    pub ssh: Option<HostState>,
    pub liveness: Option<Liveness>,
    /// SSH handshakes made by this server's pooled connection to the host.
    pub ssh_handshakes: Option<u64>,
}

/// A new remote host. Prefer the `ssh_host_setup` wizard, which shows the host key before
/// it is pinned; here the key must be given: `host_key` (a line of `ssh-keyscan`), or
/// `host_key_fingerprint` (`SHA256:…`), which the key the host presents must match.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHostRequest {
    pub name: String,
    /// `ssh://user@host[:port]`.
    pub url: String,
    pub auth: AuthRequest,
    pub host_key: Option<String>,
    pub host_key_fingerprint: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHostRequest {
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    /// `false` disables the host (not used until enabled again).
    pub enabled: Option<bool>,
    /// New credentials.
    pub auth: Option<AuthRequest>,
    /// Pin another host key (after a legitimate reinstall): a line of `ssh-keyscan`.
    pub host_key: Option<String>,
}

/// A created host with its first check.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedHost {
    pub host: HostView,
    pub check: CheckResult,
}

impl Hosts {
    /// Every host, `local` first.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list(&self) -> Result<Vec<HostView>, HostsError> {
        let rows: Vec<(sqlx::types::Json<HostState>,)> =
            sqlx::query_as("SELECT doc FROM hosts ORDER BY lower(name)")
                .fetch_all(self.reads.pool())
                .await?;
        let mut views = vec![self.local_view().await];
        for (doc,) in rows {
            views.push(self.remote_view(doc.0).await?);
        }
        Ok(views)
    }

    /// One host, by id or name.
    pub async fn get(&self, id: &str) -> Result<HostView, HostsError> {
        if id == LOCAL_HOST {
            return Ok(self.local_view().await);
        }
        let host = self.find(id).await?;
        self.remote_view(host).await
    }

    /// Adds a remote host: registered `setup_pending`, then checked. Its key is pinned:
    /// given as a line of `ssh-keyscan`, or seen now and matched against the fingerprint given.
    #[tracing::instrument(skip_all, fields(name = %request.name), err(level = "debug"))]
    pub async fn create(
        &self,
        principal: &Principal,
        request: CreateHostRequest,
        meta: &CommandMeta,
    ) -> Result<(CreatedHost, Option<LogCursor>), HostsError> {
        check_name(&request.name).map_err(|e| HostsError::invalid("name", e.to_string()))?;
        check_tags(&request.tags).map_err(|e| HostsError::invalid("tags", e.to_string()))?;
        let target = parse_ssh_url(&request.url)
            .map_err(|_| HostsError::invalid("url", "ssh://user@host[:port]"))?;
        let (method, secret, passphrase) = auth_method(&request.auth)?;
        if name_taken(self.reads.pool(), &request.name, None).await? {
            return Err(HostsError::NameTaken {
                name: request.name,
                field: "name",
            });
        }
        let host_id = Uuid::now_v7().to_string();
        let (secret_id, writes) = seal_credentials(
            &self.master_key,
            principal,
            method,
            &secret,
            passphrase.as_deref(),
            &host_id,
        )?;
        let endpoint = ssh::Endpoint {
            user: target.user.clone(),
            address: target.host.clone(),
            port: target.port,
        };
        let host_key = match (&request.host_key, &request.host_key_fingerprint) {
            (Some(line), _) => parse_host_key(line)?,
            (None, Some(expected)) => {
                let credentials = match method {
                    AuthMethod::Password => ssh::Credentials::Password(secret.clone()),
                    _ => ssh::Credentials::Key(std::sync::Arc::new(
                        ssh::parse_private_key(secret.expose_secret(), passphrase.as_deref())
                            .map_err(|m| HostsError::invalid("auth.private_key", m))?,
                    )),
                };
                seen_key(&endpoint, &credentials, expected).await?
            }
            (None, None) => {
                return Err(HostsError::invalid(
                    "host_key",
                    "give host_key or host_key_fingerprint: the host key is pinned",
                ))
            }
        };
        let spec = HostSpec {
            name: request.name,
            user: target.user,
            address: target.host,
            port: target.port,
            auth_method: method,
            secret_id,
            host_key: ssh::openssh_public(&host_key),
            fingerprint: ssh::fingerprint(&host_key),
            tags: request.tags,
            wizard_id: None,
        };
        let cursor = self.register(&host_id, spec, writes, meta).await?;
        let check = self.register_and_check(&host_id, cursor, meta).await?;
        let host = self.remote_view(self.find(&host_id).await?).await?;
        Ok((CreatedHost { host, check }, cursor))
    }

    /// Changes a host: rename, retag, disable or enable, new credentials, pin a new host
    /// key, all in one append. New credentials or a new key are checked at once.
    #[tracing::instrument(skip_all, fields(host = id), err(level = "debug"))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        request: UpdateHostRequest,
        meta: &CommandMeta,
    ) -> Result<(HostView, Option<LogCursor>), HostsError> {
        if id == LOCAL_HOST {
            return Err(HostsError::LocalHost(
                "the local host is the engine dcp runs next to: it cannot be changed",
            ));
        }
        self.reads.settle_to_head(HOSTS).await?;
        let host = self.find(id).await?;
        let (changes, writes) = self.changes_of(principal, &host, &request).await?;
        let reconnect =
            request.auth.is_some() || request.host_key.is_some() || request.enabled == Some(true);
        let cursor = self
            .commands
            .execute_with::<Host>(&host.id, HostCommand::Change { changes }, meta, writes)
            .await?;
        if reconnect && request.enabled != Some(false) {
            self.register_and_check(&host.id, cursor, meta).await?;
        } else {
            self.reads.settle(cursor, HOSTS).await?;
            self.monitor.sync().await?;
        }
        let view = self.remote_view(self.find(&host.id).await?).await?;
        Ok((view, cursor))
    }

    /// The commands and side writes of an update, checked.
    async fn changes_of(
        &self,
        principal: &Principal,
        host: &HostState,
        request: &UpdateHostRequest,
    ) -> Result<(Vec<HostCommand>, Vec<SideWrite>), HostsError> {
        if let Some(name) = &request.name {
            check_name(name).map_err(|e| HostsError::invalid("name", e.to_string()))?;
            if name_taken(self.reads.pool(), name, Some(&host.id)).await? {
                return Err(HostsError::NameTaken {
                    name: name.clone(),
                    field: "name",
                });
            }
        }
        if let Some(tags) = &request.tags {
            check_tags(tags).map_err(|e| HostsError::invalid("tags", e.to_string()))?;
        }
        let pinned = request
            .host_key
            .as_deref()
            .map(parse_host_key)
            .transpose()?;
        let now = Utc::now();
        let mut changes = Vec::new();
        let mut writes = Vec::new();
        if request.name.is_some() || request.tags.is_some() {
            changes.push(HostCommand::Update {
                name: request.name.clone(),
                tags: request.tags.clone(),
                at: now,
            });
        }
        if let Some(name) = &request.name {
            writes.push(SideWrite::ClaimHostName {
                host_id: host.id.clone(),
                name: name.clone(),
            });
            writes.push(SideWrite::ReleaseHostNames {
                host_id: host.id.clone(),
                keep: Some(name.clone()),
            });
        }
        if let Some(auth) = &request.auth {
            let (method, secret, passphrase) = auth_method(auth)?;
            let (secret_id, sealed) = seal_credentials(
                &self.master_key,
                principal,
                method,
                &secret,
                passphrase.as_deref(),
                &host.id,
            )?;
            let replaces = host.secret_id.ok_or(HostsError::NoCredentials(
                "the host has no credentials to replace",
            ))?;
            changes.push(HostCommand::ChangeCredentials {
                auth_method: method,
                secret_id,
                replaces,
                at: now,
            });
            writes.extend(sealed);
            writes.push(SideWrite::ForgetSecrets {
                ids: vec![replaces],
            });
        }
        if let Some(key) = &pinned {
            changes.push(HostCommand::PinHostKey {
                host_key: ssh::openssh_public(key),
                fingerprint: ssh::fingerprint(key),
                at: now,
            });
        }
        match request.enabled {
            Some(false) => changes.push(HostCommand::Disable { at: now }),
            Some(true) => changes.push(HostCommand::Enable { at: now }),
            None => {}
        }
        Ok((changes, writes))
    }

    /// Removes a host: dcp stops using it and forgets its credentials. Its containers are
    /// left running.
    #[tracing::instrument(skip_all, fields(host = id), err(level = "debug"))]
    pub async fn delete(
        &self,
        id: &str,
        meta: &CommandMeta,
    ) -> Result<Option<LogCursor>, HostsError> {
        if id == LOCAL_HOST {
            return Err(HostsError::LocalHost("the local host cannot be removed"));
        }
        self.reads.settle_to_head(HOSTS).await?;
        let host = self.find(id).await?;
        let secret = host
            .secret_id
            .ok_or(HostsError::NoCredentials("the host has no credentials"))?;
        let cursor = self
            .commands
            .execute_with::<Host>(
                &host.id,
                HostCommand::Remove {
                    secret,
                    at: Utc::now(),
                },
                meta,
                vec![
                    SideWrite::ForgetSecrets { ids: vec![secret] },
                    SideWrite::ReleaseHostNames {
                        host_id: host.id.clone(),
                        keep: None,
                    },
                ],
            )
            .await?;
        self.reads.settle(cursor, HOSTS).await?;
        self.monitor.sync().await?;
        sqlx::query("DELETE FROM host_liveness WHERE host_id = $1")
            .bind(&host.id)
            .execute(self.reads.pool())
            .await?;
        Ok(cursor)
    }

    /// Checks a host now: connect (ignoring a back-off), ask the engine for its version;
    /// the result is recorded (`active` or `unreachable`).
    #[tracing::instrument(skip_all, fields(host = id), err(level = "debug"))]
    pub async fn test(&self, id: &str, meta: &CommandMeta) -> Result<CheckResult, HostsError> {
        if id == LOCAL_HOST {
            return Ok(self.check_local().await);
        }
        let host = self.find(id).await?;
        let check = self.monitor.check(&host.id).await;
        let recorded = self.monitor.record(&check, meta).await;
        self.reads.settle(recorded, HOSTS).await?;
        Ok(check)
    }

    async fn check_local(&self) -> CheckResult {
        let started = std::time::Instant::now();
        let status = self.registry.status(LOCAL_HOST).await;
        CheckResult {
            host: LOCAL_HOST.into(),
            reachable: status.is_ok(),
            engine_version: status.as_ref().ok().and_then(|s| s.version.clone()),
            api_version: status.as_ref().ok().and_then(|s| s.api_version.clone()),
            os: None,
            containers: status.as_ref().ok().and_then(|s| s.containers),
            images: status.as_ref().ok().and_then(|s| s.images),
            error: status.as_ref().err().map(|e| e.to_string()),
            error_kind: status.as_ref().err().map(|_| "docker_failed".to_string()),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            ssh_handshakes: 0,
        }
    }

    /// Whether another host (not `except`) is named `name` (case-insensitively).
    pub async fn name_taken(&self, name: &str, except: Option<&str>) -> Result<bool, sqlx::Error> {
        name_taken(self.reads.pool(), name, except).await
    }

    /// Registers host `host_id` (`setup_pending`), claiming its name in the same append, with
    /// `writes` (its sealed credentials, when new).
    pub async fn register(
        &self,
        host_id: &str,
        spec: HostSpec,
        mut writes: Vec<SideWrite>,
        meta: &CommandMeta,
    ) -> Result<Option<LogCursor>, HostsError> {
        writes.push(SideWrite::ClaimHostName {
            host_id: host_id.to_string(),
            name: spec.name.clone(),
        });
        self.commands
            .execute_with::<Host>(
                host_id,
                HostCommand::Register {
                    host_id: host_id.to_string(),
                    spec,
                    at: Utc::now(),
                },
                meta,
                writes,
            )
            .await
            .map_err(HostsError::from)
    }

    /// After a host command: waits for the read model, loads the host into the registry and
    /// checks it (recording the result).
    pub async fn register_and_check(
        &self,
        host_id: &str,
        cursor: Option<LogCursor>,
        meta: &CommandMeta,
    ) -> Result<CheckResult, HostsError> {
        self.reads.settle(cursor, HOSTS).await?;
        self.monitor.sync().await?;
        let check = self.monitor.check(host_id).await;
        let recorded = self.monitor.record(&check, meta).await;
        self.reads.settle(recorded, HOSTS).await?;
        Ok(check)
    }

    /// The registered host named or identified by `id`.
    async fn find(&self, id: &str) -> Result<HostState, HostsError> {
        let row: Option<(sqlx::types::Json<HostState>,)> = sqlx::query_as(
            "SELECT doc FROM hosts WHERE id = $1 OR lower(name) = lower($1) ORDER BY id = $1 DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(self.reads.pool())
        .await?;
        row.map(|(doc,)| doc.0).ok_or(HostsError::NotFound)
    }

    async fn local_view(&self) -> HostView {
        let status = self.registry.status(LOCAL_HOST).await;
        HostView {
            id: LOCAL_HOST.into(),
            name: LOCAL_HOST.into(),
            kind: "local".into(),
            status: if status.is_ok() {
                "active"
            } else {
                "unreachable"
            }
            .into(),
            engine_version: status.ok().and_then(|s| s.version),
            ssh: None,
            liveness: None,
            ssh_handshakes: None,
        }
    }

    async fn remote_view(&self, host: HostState) -> Result<HostView, HostsError> {
        let liveness: Option<Liveness> = sqlx::query_as(
            "SELECT last_seen, last_checked, last_error, latency_ms FROM host_liveness WHERE host_id = $1",
        )
        .bind(&host.id)
        .fetch_optional(self.reads.pool())
        .await?;
        Ok(HostView {
            id: host.id.clone(),
            name: host.name.clone(),
            kind: "ssh".into(),
            status: host.status.clone(),
            engine_version: host.engine_version.clone(),
            ssh_handshakes: self.registry.pool(&host.id).map(|pool| pool.handshakes()),
            liveness,
            ssh: Some(host),
        })
    }
}

/// Connects once to see the host's key, which must have fingerprint `expected`: the key is
/// checked during the key exchange, before the credentials are sent.
async fn seen_key(
    endpoint: &ssh::Endpoint,
    credentials: &ssh::Credentials,
    expected: &str,
) -> Result<PublicKey, HostsError> {
    let (session, seen) = ssh::connect(
        endpoint,
        Some(credentials),
        ssh::HostKeyCheck::Fingerprint(expected.to_string()),
    )
    .await
    .map_err(|error| match &error {
        ssh::SshError::HostKeyChanged { seen, .. } => {
            HostsError::HostKeyMismatch { seen: seen.clone() }
        }
        _ => HostsError::Unreachable {
            message: error.to_string(),
            kind: ssh_error_kind(&error),
        },
    })?;
    let _ = session
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(seen)
}
