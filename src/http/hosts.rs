//! `/api/v1/hosts`: the Docker hosts dcp drives. `local` (the engine dcp runs next to) is
//! always there; remote hosts are reached over SSH with a pinned host key. Everyone reads;
//! admins add (here or through the `ssh_host_setup` wizard), change and remove hosts.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dcp_aggregates::host::{check_name, check_tags, AuthMethod, Host, HostCommand, HostSpec};
use dcp_aggregates::wizard::parse_ssh_url;
use dcp_projections::past::HostState;
use russh::keys::PublicKey;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, Auth};
use super::positions::Positioned;
use super::AppState;
use crate::commands::CommandMeta;
use crate::docker::LOCAL_HOST;
use crate::event_store::SideWrite;
use crate::hosts::monitor::{self, CheckResult};
use crate::ssh;
use crate::wizards::{host_error, name_taken, register_and_check, seal_credentials, HOSTS};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hosts, create_host))
        .routes(routes!(get_host, update_host, delete_host))
        .routes(routes!(test_host))
}

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

/// Credentials: `{"method": "password", "password"}`, or `{"method": "imported_key",
/// "private_key", "passphrase"}`. Sealed at once; only their id is kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    /// `password` or `imported_key`.
    pub method: String,
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub private_key: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub passphrase: Option<SecretString>,
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

async fn liveness(state: &AppState, id: &str) -> ApiResult<Option<Liveness>> {
    Ok(sqlx::query_as(
        "SELECT last_seen, last_checked, last_error, latency_ms FROM host_liveness WHERE host_id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?)
}

async fn local_view(state: &AppState) -> HostView {
    let status = state.docker.status(LOCAL_HOST).await;
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

async fn remote_view(state: &AppState, host: HostState) -> ApiResult<HostView> {
    let liveness = liveness(state, &host.id).await?;
    Ok(HostView {
        id: host.id.clone(),
        name: host.name.clone(),
        kind: "ssh".into(),
        status: host.status.clone(),
        engine_version: host.engine_version.clone(),
        ssh_handshakes: state.hosts.pool(&host.id).map(|pool| pool.handshakes()),
        liveness,
        ssh: Some(host),
    })
}

/// The registered host named or identified by `id`.
async fn find(state: &AppState, id: &str) -> ApiResult<HostState> {
    let row: Option<(sqlx::types::Json<HostState>,)> = sqlx::query_as(
        "SELECT doc FROM hosts WHERE id = $1 OR lower(name) = lower($1) ORDER BY id = $1 DESC LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    row.map(|(doc,)| doc.0)
        .ok_or_else(|| ApiError::not_found("host"))
}

/// List the hosts (`local` first).
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts",
    responses((status = 200, body = [HostView])))]
async fn list_hosts(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<ApiJson<Vec<HostView>>> {
    state.settle_request(&headers, HOSTS).await?;
    let rows: Vec<(sqlx::types::Json<HostState>,)> =
        sqlx::query_as("SELECT doc FROM hosts ORDER BY lower(name)")
            .fetch_all(&state.pool)
            .await?;
    let mut views = vec![local_view(&state).await];
    for (doc,) in rows {
        views.push(remote_view(&state, doc.0).await?);
    }
    Ok(ApiJson(views))
}

/// One host, by id or name.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path)),
    responses((status = 200, body = HostView), (status = 404)))]
async fn get_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<HostView>> {
    state.settle_request(&headers, HOSTS).await?;
    if id == LOCAL_HOST {
        return Ok(ApiJson(local_view(&state).await));
    }
    let host = find(&state, &id).await?;
    remote_view(&state, host).await.map(ApiJson)
}

fn parse_host_key(text: &str) -> ApiResult<PublicKey> {
    // `ssh-keyscan` prints `[host]:port type base64`: the key is the last two fields.
    let fields: Vec<&str> = text.split_whitespace().collect();
    let key = match fields.as_slice() {
        [kind, data] | [kind, data, ..]
            if kind.starts_with("ssh-") || kind.starts_with("ecdsa-") =>
        {
            format!("{kind} {data}")
        }
        [_, kind, data, ..] => format!("{kind} {data}"),
        _ => String::new(),
    };
    PublicKey::from_openssh(&key).map_err(|_| {
        ApiError::validation(
            "host_key",
            "an SSH public key line (`ssh-ed25519 AAAA…`, as ssh-keyscan prints it)",
        )
    })
}

fn auth_method(request: &AuthRequest) -> ApiResult<(AuthMethod, SecretString, Option<String>)> {
    use secrecy::ExposeSecret;
    match request.method.as_str() {
        "password" => {
            let password = request
                .password
                .clone()
                .ok_or_else(|| ApiError::validation("auth.password", "required"))?;
            Ok((AuthMethod::Password, password, None))
        }
        "imported_key" => {
            let key = request
                .private_key
                .clone()
                .ok_or_else(|| ApiError::validation("auth.private_key", "required"))?;
            Ok((
                AuthMethod::ImportedKey,
                key,
                request
                    .passphrase
                    .as_ref()
                    .map(|p| p.expose_secret().to_string()),
            ))
        }
        _ => Err(ApiError::validation(
            "auth.method",
            "password or imported_key (generated keys: use the ssh_host_setup wizard)",
        )),
    }
}

/// Add a remote host (admins). It is registered `setup_pending`, then checked.
#[utoipa::path(post, path = "/api/v1/hosts", tag = "hosts", request_body = CreateHostRequest,
    responses((status = 201, body = CreatedHost), (status = 400), (status = 409)))]
async fn create_host(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiJson(request): ApiJson<CreateHostRequest>,
) -> ApiResult<Response> {
    check_name(&request.name).map_err(|e| ApiError::validation("name", e.to_string()))?;
    check_tags(&request.tags).map_err(|e| ApiError::validation("tags", e.to_string()))?;
    let target = parse_ssh_url(&request.url)
        .map_err(|_| ApiError::validation("url", "ssh://user@host[:port]"))?;
    let (method, secret, passphrase) = auth_method(&request.auth)?;
    if name_taken(&state, &request.name, None).await? {
        return Err(
            ApiError::conflict(format!("a host named '{}' already exists", request.name))
                .with_field("name"),
        );
    }
    let host_id = Uuid::now_v7().to_string();
    let (secret_id, writes) = seal_credentials(
        &state,
        &principal,
        method,
        &secret,
        passphrase.as_deref(),
        &host_id,
    )?;
    let host_key = match (&request.host_key, &request.host_key_fingerprint) {
        (Some(line), _) => parse_host_key(line)?,
        (None, Some(expected)) => {
            // Connect once to see the key; it must be the one the admin gave.
            let credentials = match method {
                AuthMethod::Password => ssh::Credentials::Password(secret.clone()),
                _ => {
                    use secrecy::ExposeSecret;
                    ssh::Credentials::Key(std::sync::Arc::new(
                        ssh::parse_private_key(secret.expose_secret(), passphrase.as_deref())
                            .map_err(|m| ApiError::validation("auth.private_key", m))?,
                    ))
                }
            };
            let endpoint = ssh::Endpoint {
                user: target.user.clone(),
                address: target.host.clone(),
                port: target.port,
            };
            // The key is checked during the key exchange, before the credentials are sent.
            let (session, seen) = ssh::connect(
                &endpoint,
                Some(&credentials),
                ssh::HostKeyCheck::Fingerprint(expected.clone()),
            )
            .await
            .map_err(|error| match &error {
                ssh::SshError::HostKeyChanged { seen, .. } => ApiError::validation(
                    "host_key_fingerprint",
                    "the host presented another key (nothing was sent to it): check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
                )
                .with_details(serde_json::json!({ "seen_fingerprint": seen })),
                _ => ApiError::validation("url", format!("the host could not be reached: {error}"))
                    .with_details(serde_json::json!({
                        "error_kind": monitor::ssh_error_kind(&error)
                    })),
            })?;
            let _ = session
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
            seen
        }
        (None, None) => {
            return Err(ApiError::validation(
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
    let cursor = crate::wizards::register(&state, &host_id, spec, writes, &meta)
        .await
        .map_err(host_error)?;
    let check = register_and_check(&state, &host_id, cursor, &meta).await?;
    let host = find(&state, &host_id).await?;
    let host = remote_view(&state, host).await?;
    Ok(Positioned(
        cursor.map(|c| c.position),
        (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/api/v1/hosts/{host_id}"))],
            ApiJson(CreatedHost { host, check }),
        ),
    )
    .into_response())
}

/// Change a host (admins): rename, retag, disable or enable, new credentials, pin a new
/// host key. New credentials or a new key are checked at once.
#[utoipa::path(patch, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path)),
    request_body = UpdateHostRequest,
    responses((status = 200, body = HostView), (status = 400), (status = 404), (status = 409)))]
async fn update_host(
    State(state): State<AppState>,
    Auth(principal): Auth,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<UpdateHostRequest>,
) -> ApiResult<Response> {
    if id == LOCAL_HOST {
        return Err(ApiError::conflict(
            "the local host is the engine dcp runs next to: it cannot be changed",
        ));
    }
    state.settle_to_head(HOSTS).await?;
    let host = find(&state, &id).await?;
    if let Some(name) = &request.name {
        check_name(name).map_err(|e| ApiError::validation("name", e.to_string()))?;
        if name_taken(&state, name, Some(&host.id)).await? {
            return Err(
                ApiError::conflict(format!("a host named '{name}' already exists"))
                    .with_field("name"),
            );
        }
    }
    if let Some(tags) = &request.tags {
        check_tags(tags).map_err(|e| ApiError::validation("tags", e.to_string()))?;
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
            &state,
            &principal,
            method,
            &secret,
            passphrase.as_deref(),
            &host.id,
        )?;
        let replaces = host
            .secret_id
            .ok_or_else(|| ApiError::conflict("the host has no credentials to replace"))?;
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
    let reconnect = request.auth.is_some() || pinned.is_some() || request.enabled == Some(true);
    // All the changes are one append: all or none.
    let cursor = state
        .commands
        .execute_with::<Host>(&host.id, HostCommand::Change { changes }, &meta, writes)
        .await
        .map_err(host_error)?;
    if reconnect && request.enabled != Some(false) {
        register_and_check(&state, &host.id, cursor, &meta).await?;
    } else {
        state.settle(cursor, HOSTS).await?;
        state.hosts.sync(&state.pool, &state.master_key).await?;
    }
    let host = find(&state, &host.id).await?;
    let view = remote_view(&state, host).await?;
    Ok(Positioned(cursor.map(|c| c.position), ApiJson(view)).into_response())
}

/// Remove a host (admins): dcp stops using it and forgets its credentials. Its containers
/// are left running.
#[utoipa::path(delete, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
async fn delete_host(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    if id == LOCAL_HOST {
        return Err(ApiError::conflict("the local host cannot be removed"));
    }
    state.settle_to_head(HOSTS).await?;
    let host = find(&state, &id).await?;
    let secret = host
        .secret_id
        .ok_or_else(|| ApiError::conflict("the host has no credentials"))?;
    let cursor = state
        .commands
        .execute_with::<Host>(
            &host.id,
            HostCommand::Remove {
                secret,
                at: Utc::now(),
            },
            &meta,
            vec![
                SideWrite::ForgetSecrets { ids: vec![secret] },
                SideWrite::ReleaseHostNames {
                    host_id: host.id.clone(),
                    keep: None,
                },
            ],
        )
        .await
        .map_err(host_error)?;
    state.settle(cursor, HOSTS).await?;
    state.hosts.sync(&state.pool, &state.master_key).await?;
    sqlx::query("DELETE FROM host_liveness WHERE host_id = $1")
        .bind(&host.id)
        .execute(&state.pool)
        .await?;
    Ok(Positioned(cursor.map(|c| c.position), StatusCode::NO_CONTENT).into_response())
}

/// Check a host now: connect (ignoring a back-off), ask the engine for its version. The
/// result is recorded (`active` or `unreachable`); an unreachable host is a 200 with
/// `reachable: false` and the reason.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/test", tag = "hosts", params(("id" = String, Path)),
    responses((status = 200, body = CheckResult), (status = 404)))]
async fn test_host(
    State(state): State<AppState>,
    meta: CommandMeta,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<CheckResult>> {
    if id == LOCAL_HOST {
        let started = std::time::Instant::now();
        let status = state.docker.status(LOCAL_HOST).await;
        return Ok(ApiJson(CheckResult {
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
        }));
    }
    let host = find(&state, &id).await?;
    let check = monitor::check(&state, &host.id).await;
    let recorded = monitor::record(&state, &check, &meta).await;
    state.settle(recorded, HOSTS).await?;
    Ok(ApiJson(check))
}
