//! What the wizards do besides deciding: the `ssh_host_setup` steps' inputs (secrets are
//! sealed here and enter the wizard as ids), its tests (SSH, Docker through SSH), and its
//! completion (the host is registered `setup_pending`, then checked).
//!
//! The aggregate (`dcp_aggregates::wizard`) decides whether a step's data is complete and
//! whether the wizard may move on; this module runs the IO and hands it the results.

use chrono::Utc;
use dcp_aggregates::host::{AuthMethod, Host, HostCommand, HostError, HostSpec};
use dcp_aggregates::wizard::{parse_ssh_url, Wizard, WizardCommand, WizardError};
use dcp_projections::past::{AggregateState, WizardState};
use dcp_projections::LogCursor;
use russh::keys::PublicKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::principal::Principal;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;
use crate::hosts::monitor::{self, ssh_error_kind, CheckResult};
use crate::http::error::{ApiError, ApiResult, ErrorCode};
use crate::http::AppState;
use crate::secrets::sealed::{self, SecretKind};
use crate::ssh::{self, Credentials, Endpoint, SshPool};

/// Projections a wizard response reads.
pub const WIZARDS: &[&str] = &["wizards"];
/// Projections the hosts API reads.
pub const HOSTS: &[&str] = &["hosts"];

/// Maps a refused wizard command to the API error.
pub fn wizard_error(error: CommandError<WizardError>) -> ApiError {
    match error {
        CommandError::Rejected(WizardError::Invalid { field, message }) => {
            ApiError::validation(field, message)
        }
        CommandError::Rejected(WizardError::NotFound) => ApiError::not_found("wizard"),
        CommandError::Rejected(
            e @ (WizardError::StepIncomplete(step)
            | WizardError::TestNotPassed(step)
            | WizardError::NoTest(step)),
        ) => ApiError::conflict(e.to_string()).with_details(json!({ "step": step })),
        CommandError::Rejected(e) => ApiError::conflict(e.to_string()),
        CommandError::Conflict => {
            ApiError::conflict("the wizard was changed by another request at the same time; retry")
        }
        CommandError::Unavailable(e) => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable",
        )
        .with_source(e),
        CommandError::Other(e) => ApiError::internal(e),
    }
}

/// Maps a refused host command to the API error.
pub fn host_error(error: CommandError<HostError>) -> ApiError {
    match error {
        CommandError::Rejected(HostError::Invalid { field, message }) => {
            ApiError::validation(field, message)
        }
        CommandError::Rejected(HostError::NotFound) => ApiError::not_found("host"),
        CommandError::Rejected(e) => ApiError::conflict(e.to_string()),
        CommandError::Conflict => {
            ApiError::conflict("the host was changed by another request at the same time; retry")
        }
        CommandError::Unavailable(e) => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable",
        )
        .with_source(e),
        CommandError::Other(e) => ApiError::internal(e),
    }
}

/// A wizard as it is in the event store now (not the read model: decisions need the truth).
pub async fn current(state: &AppState, id: Uuid) -> ApiResult<WizardState> {
    let events = crate::http::state::events_of(state, "wizard", &id.to_string()).await?;
    let mut folded = AggregateState::Wizard(WizardState::default());
    for event in &events {
        folded
            .apply(event)
            .map_err(|e| ApiError::internal(anyhow::Error::new(e)))?;
    }
    match folded {
        AggregateState::Wizard(wizard) => Ok(wizard),
        _ => Err(ApiError::not_found("wizard")),
    }
}

/// The caller's wizard, or 404 (another user's wizard is not shown).
pub async fn owned(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<WizardState> {
    let wizard = current(state, id).await?;
    if wizard.user_id != Some(principal.user_id) {
        return Err(ApiError::not_found("wizard"));
    }
    Ok(wizard)
}

fn step_data<'a>(wizard: &'a WizardState, step: &str) -> Option<&'a Map<String, Value>> {
    wizard
        .steps
        .iter()
        .find(|s| s.name == step)
        .and_then(|s| s.data.as_ref())
        .and_then(Value::as_object)
}

fn step_test<'a>(wizard: &'a WizardState, step: &str) -> Option<&'a Value> {
    wizard
        .steps
        .iter()
        .find(|s| s.name == step)
        .and_then(|s| s.test.as_ref())
}

fn text_of<'a>(data: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    data.get(field).and_then(Value::as_str)
}

/// Turns what the caller sent for the current step into the data the aggregate checks, and
/// the side writes that go with it (a secret sealed, a replaced one forgotten).
pub async fn prepare_step(
    state: &AppState,
    principal: &Principal,
    wizard: &WizardState,
    input: Value,
) -> ApiResult<(Value, Vec<SideWrite>)> {
    let Value::Object(mut input) = input else {
        return Err(ApiError::validation("step_data", "a JSON object"));
    };
    match wizard.step_name.as_str() {
        "connection" => {
            // An invalid name is the step's to refuse (400); a valid one must be free.
            if let Some(name) = text_of(&input, "connection_name")
                .filter(|name| dcp_aggregates::host::check_name(name).is_ok())
            {
                if name_taken(state, name, None).await? {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("a host named '{name}' already exists"),
                    )
                    .with_field("connection_name"));
                }
            }
            Ok((Value::Object(input), vec![]))
        }
        "authentication" => {
            let owner = wizard.id.map(|id| id.to_string()).unwrap_or_default();
            let previous = step_data(wizard, "authentication").and_then(|p| {
                let id = text_of(p, "secret_id")?.parse::<Uuid>().ok()?;
                Some((text_of(p, "method") == Some("generated_key"), id))
            });
            let method = text_of(&input, "method")
                .and_then(AuthMethod::parse)
                .ok_or_else(|| {
                    ApiError::validation("method", "generated_key, imported_key or password")
                })?;
            let mut writes = Vec::new();
            let (data, secret_id) = match method {
                AuthMethod::GeneratedKey => {
                    only(&input, &["method", "key_id"])?;
                    let id = text_of(&input, "key_id")
                        .and_then(|id| id.parse::<Uuid>().ok())
                        .ok_or_else(|| {
                            ApiError::validation(
                                "key_id",
                                "the key_id returned by POST /api/v1/wizards/generate-ssh-key",
                            )
                        })?;
                    let public_key = generated_key(state, principal, id, &owner).await?;
                    (
                        json!({"method": "generated_key", "secret_id": id, "public_key": public_key}),
                        id,
                    )
                }
                AuthMethod::ImportedKey => {
                    only(&input, &["method", "private_key", "passphrase"])?;
                    let text = text_of(&input, "private_key")
                        .ok_or_else(|| {
                            ApiError::validation("private_key", "the private key (OpenSSH or PEM)")
                        })?
                        .to_string();
                    let passphrase = input
                        .remove("passphrase")
                        .and_then(|p| p.as_str().map(str::to_string));
                    let key = ssh::parse_private_key(&text, passphrase.as_deref())
                        .map_err(|message| ApiError::validation("private_key", message))?;
                    // Stored decrypted (sealed): dcp must use it unattended.
                    let plain = ssh::private_key_text(&key);
                    let (id, write) = sealed::sealed_side_write(
                        &state.master_key,
                        SecretKind::SshPrivateKey,
                        plain.expose_secret().as_bytes(),
                        Some(principal.user_id),
                    );
                    writes.push(write);
                    (
                        json!({"method": "imported_key", "secret_id": id,
                               "public_key": ssh::authorized_keys_line(&key)}),
                        id,
                    )
                }
                AuthMethod::Password => {
                    only(&input, &["method", "password"])?;
                    let password = text_of(&input, "password")
                        .filter(|p| !p.is_empty() && p.len() <= 1024)
                        .ok_or_else(|| {
                            ApiError::validation("password", "the SSH password (1 to 1024 bytes)")
                        })?;
                    let (id, write) = sealed::sealed_side_write(
                        &state.master_key,
                        SecretKind::SshPassword,
                        password.as_bytes(),
                        Some(principal.user_id),
                    );
                    writes.push(write);
                    (json!({"method": "password", "secret_id": id}), id)
                }
            };
            writes.push(SideWrite::ClaimSecret {
                id: secret_id,
                owner: owner.clone(),
            });
            // The credentials replaced: a generated key goes back to its maker (usable
            // again), imported keys and passwords are forgotten.
            match previous {
                Some((_, old)) if old == secret_id => {}
                Some((true, old)) => writes.push(SideWrite::ReleaseSecret { id: old, owner }),
                Some((false, old)) => writes.push(SideWrite::ForgetSecrets { ids: vec![old] }),
                None => {}
            }
            Ok((data, writes))
        }
        _ => Ok((Value::Object(input), vec![])),
    }
}

fn only(input: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    match input.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::validation(
            unknown.clone(),
            "not a field of this step",
        )),
        None => Ok(()),
    }
}

/// The public key of generated key `id`, if the caller generated it and nothing but
/// `owner` uses it.
async fn generated_key(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    owner: &str,
) -> ApiResult<String> {
    let unknown = || {
        ApiError::validation(
            "key_id",
            "no key generated by you with this id (POST /api/v1/wizards/generate-ssh-key)",
        )
    };
    match sealed::describe(&state.pool, id).await? {
        Some((kind, Some(owner)))
            if kind == SecretKind::SshPrivateKey.as_str() && owner == principal.user_id => {}
        _ => return Err(unknown()),
    }
    let user: Option<String> =
        sqlx::query_scalar("SELECT owner FROM secret_claims WHERE secret_id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    if user.as_deref().is_some_and(|user| user != owner) {
        return Err(
            ApiError::conflict("this key is already used by another host or wizard")
                .with_field("key_id"),
        );
    }
    let credentials =
        crate::hosts::load_credentials(&state.pool, &state.master_key, "generated_key", id)
            .await
            .map_err(|_| unknown())?;
    match credentials {
        Credentials::Key(key) => Ok(ssh::authorized_keys_line(&key)),
        Credentials::Password(_) => Err(unknown()),
    }
}

/// Whether another host (not `except`) is named `name` (case-insensitively).
pub async fn name_taken(state: &AppState, name: &str, except: Option<&str>) -> ApiResult<bool> {
    if name.eq_ignore_ascii_case(crate::docker::LOCAL_HOST) {
        return Ok(true);
    }
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM host_names WHERE name_key = lower($1) AND host_id IS DISTINCT FROM $2)",
    )
    .bind(name)
    .bind(except)
    .fetch_one(&state.pool)
    .await?)
}

/// Generates an ED25519 key, sealed and usable only by `principal`; returns its id and
/// public key (the private key never leaves the server).
pub async fn generate_key(
    state: &AppState,
    principal: &Principal,
    comment: &str,
) -> ApiResult<(Uuid, String, String)> {
    let key = ssh::generate_key(comment);
    let text = ssh::private_key_text(&key);
    let id = sealed::store(
        &state.pool,
        &state.master_key,
        SecretKind::SshPrivateKey,
        text.expose_secret().as_bytes(),
        Some(principal.user_id),
    )
    .await?;
    Ok((
        id,
        ssh::authorized_keys_line(&key),
        ssh::fingerprint(key.public_key()),
    ))
}

/// Where and how the wizard connects, from its connection and authentication steps.
async fn wizard_target(
    state: &AppState,
    wizard: &WizardState,
) -> ApiResult<(Endpoint, Credentials, String)> {
    let incomplete = |step: &str| {
        ApiError::conflict(format!("step '{step}' is not complete"))
            .with_details(json!({"step": step}))
    };
    let connection = step_data(wizard, "connection").ok_or_else(|| incomplete("connection"))?;
    let target = text_of(connection, "host_url")
        .and_then(|url| parse_ssh_url(url).ok())
        .ok_or_else(|| incomplete("connection"))?;
    let auth = step_data(wizard, "authentication").ok_or_else(|| incomplete("authentication"))?;
    let method = text_of(auth, "method").unwrap_or_default().to_string();
    let secret_id = text_of(auth, "secret_id")
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or_else(|| incomplete("authentication"))?;
    let credentials =
        crate::hosts::load_credentials(&state.pool, &state.master_key, &method, secret_id)
            .await
            .map_err(|error| {
                ApiError::conflict(format!(
                    "the credentials of the authentication step cannot be used: {error:#}; submit them again"
                ))
                .with_details(json!({"step": "authentication"}))
            })?;
    Ok((
        Endpoint {
            user: target.user,
            address: target.host,
            port: target.port,
        },
        credentials,
        method,
    ))
}

/// What a step test found: `(passed, details)`.
pub async fn run_test(state: &AppState, wizard: &WizardState) -> ApiResult<(bool, Value)> {
    let (endpoint, credentials, _) = wizard_target(state, wizard).await?;
    match wizard.step_name.as_str() {
        "ssh_test" => {
            // Until the admin confirms the key, the test only reads it when the credentials
            // are a password (a password must not go to a key nobody checked); a key
            // authenticates at once (that reveals nothing secret). Once confirmed, the test
            // accepts only that key.
            let confirmed = step_data(wizard, "ssh_test")
                .and_then(|d| text_of(d, "confirm_fingerprint"))
                .map(str::to_string);
            let check = match confirmed {
                Some(fingerprint) => ssh::HostKeyCheck::Fingerprint(fingerprint),
                None => ssh::HostKeyCheck::Probe,
            };
            let authenticate = !matches!(
                (&check, &credentials),
                (ssh::HostKeyCheck::Probe, Credentials::Password(_))
            );
            let credentials = authenticate.then_some(&credentials);
            Ok(match ssh::connect(&endpoint, credentials, check).await {
                Ok((session, host_key)) => {
                    let _ = session
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                    let message = if authenticate {
                        "connected and authenticated; confirm the host key fingerprint to pin it"
                    } else {
                        "connected; confirm the host key fingerprint, then run the test again to log in with the password"
                    };
                    (
                        true,
                        json!({
                            "fingerprint": ssh::fingerprint(&host_key),
                            "host_key": ssh::openssh_public(&host_key),
                            "algorithm": host_key.algorithm().as_str(),
                            "authenticated": authenticate,
                            "message": message,
                        }),
                    )
                }
                Err(error) => (false, failure(&error.to_string(), ssh_error_kind(&error))),
            })
        }
        "docker_test" => {
            let host_key = step_test(wizard, "ssh_test")
                .and_then(|t| t.pointer("/details/host_key"))
                .and_then(Value::as_str)
                .and_then(|key| PublicKey::from_openssh(key).ok())
                .ok_or_else(|| {
                    ApiError::conflict("the SSH test has not passed")
                        .with_details(json!({"step": "ssh_test"}))
                })?;
            let pool = SshPool::new(endpoint, credentials, host_key, None);
            if let Err(error) = pool.ensure_connected().await {
                return Ok((false, failure(&error.to_string(), ssh_error_kind(&error))));
            }
            let docker = pool.docker(monitor::CHECK_TIMEOUT.as_secs());
            let call = async {
                let version = docker.version().await?;
                let info = docker.info().await?;
                Ok::<_, bollard::errors::Error>((version, info))
            };
            Ok(
                match tokio::time::timeout(monitor::CHECK_TIMEOUT, call).await {
                    Err(_) => (
                        false,
                        failure("the engine did not answer in time", "docker_failed"),
                    ),
                    Ok(Err(error)) => (false, failure(&error.to_string(), "docker_failed")),
                    Ok(Ok((version, info))) => (
                        true,
                        json!({
                            "version": version.version,
                            "api_version": version.api_version,
                            "os": info.operating_system,
                            "kernel": info.kernel_version,
                            "architecture": info.architecture,
                            "name": info.name,
                            "containers": info.containers,
                            "containers_running": info.containers_running,
                            "images": info.images,
                        }),
                    ),
                },
            )
        }
        other => Err(wizard_error(CommandError::Rejected(WizardError::NoTest(
            static_step(other),
        )))),
    }
}

fn static_step(name: &str) -> &'static str {
    dcp_aggregates::wizard::WizardType::SshHostSetup
        .steps()
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.name)
        .unwrap_or("unknown")
}

fn failure(message: &str, kind: &str) -> Value {
    json!({"error": message, "error_kind": kind})
}

/// What completing a wizard made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Completion {
    /// The host registered (id and name).
    pub host_id: String,
    /// The host's first check (it is `active` when this passed).
    pub check: CheckResult,
}

/// Completes an `ssh_host_setup` wizard: the wizard checks it is complete and records it,
/// then the host is registered `setup_pending` (its id is the wizard's) and checked.
/// Completing again is refused (409); a completion whose registration failed midway
/// (the database went away) registers the host when retried.
pub async fn complete(
    state: &AppState,
    wizard: &WizardState,
    meta: &CommandMeta,
) -> ApiResult<(Completion, Option<LogCursor>)> {
    let id = wizard.id.ok_or_else(|| ApiError::not_found("wizard"))?;
    let host_id = id.to_string();
    let incomplete = |step: &'static str| {
        wizard_error(CommandError::Rejected(WizardError::StepIncomplete(step)))
    };
    let connection = step_data(wizard, "connection").ok_or_else(|| incomplete("connection"))?;
    let name = text_of(connection, "connection_name")
        .unwrap_or_default()
        .to_string();
    if wizard.status == "in_progress" && name_taken(state, &name, Some(&host_id)).await? {
        return Err(
            ApiError::conflict(format!("a host named '{name}' already exists"))
                .with_field("connection_name"),
        );
    }
    match wizard.status.as_str() {
        "in_progress" => {
            // The name is claimed with the completion: a wizard is never completed with a
            // name its host cannot have.
            state
                .commands
                .execute_with::<Wizard>(
                    &host_id,
                    WizardCommand::Complete {
                        resource_type: "host".into(),
                        resource_id: host_id.clone(),
                        at: Utc::now(),
                    },
                    meta,
                    vec![SideWrite::ClaimHostName {
                        host_id: host_id.clone(),
                        name: name.clone(),
                    }],
                )
                .await
                .map_err(wizard_error)?;
        }
        "completed" => {}
        other => {
            return Err(ApiError::conflict(format!(
                "the wizard is {other}, no longer in progress"
            )))
        }
    }
    let target = text_of(connection, "host_url")
        .and_then(|url| parse_ssh_url(url).ok())
        .ok_or_else(|| incomplete("connection"))?;
    let auth = step_data(wizard, "authentication").ok_or_else(|| incomplete("authentication"))?;
    let auth_method = text_of(auth, "method")
        .and_then(AuthMethod::parse)
        .ok_or_else(|| incomplete("authentication"))?;
    let secret_id = text_of(auth, "secret_id")
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or_else(|| incomplete("authentication"))?;
    let details = step_test(wizard, "ssh_test").and_then(|t| t.get("details"));
    let detail = |field: &str| {
        details
            .and_then(|d| d.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let tags: Vec<String> = step_data(wizard, "confirmation")
        .and_then(|d| d.get("tags"))
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let spec = HostSpec {
        name,
        user: target.user,
        address: target.host,
        port: target.port,
        auth_method,
        secret_id,
        host_key: detail("host_key"),
        fingerprint: detail("fingerprint"),
        tags,
        wizard_id: Some(id),
    };
    let cursor = register(state, &host_id, spec, vec![], meta)
        .await
        .map_err(|error| match error {
            CommandError::Rejected(HostError::AlreadyRegistered) => {
                ApiError::conflict("the wizard is completed, no longer in progress")
            }
            other => host_error(other),
        })?;
    let check = register_and_check(state, &host_id, cursor, meta).await?;
    Ok((Completion { host_id, check }, cursor))
}

/// Registers host `host_id` (`setup_pending`), claiming its name in the same append, with
/// `writes` (its sealed credentials, when new).
pub async fn register(
    state: &AppState,
    host_id: &str,
    spec: HostSpec,
    mut writes: Vec<SideWrite>,
    meta: &CommandMeta,
) -> Result<Option<LogCursor>, CommandError<HostError>> {
    writes.push(SideWrite::ClaimHostName {
        host_id: host_id.to_string(),
        name: spec.name.clone(),
    });
    state
        .commands
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
}

/// After a host command: waits for the read model, loads the host into the registry and
/// checks it (recording the result).
pub async fn register_and_check(
    state: &AppState,
    host_id: &str,
    cursor: Option<LogCursor>,
    meta: &CommandMeta,
) -> ApiResult<CheckResult> {
    state.settle(cursor, HOSTS).await?;
    state.hosts.sync(&state.pool, &state.master_key).await?;
    let check = monitor::check(state, host_id).await;
    let recorded = monitor::record(state, &check, meta).await;
    state.settle(recorded, HOSTS).await?;
    Ok(check)
}

/// The secrets a wizard holds (claimed by it alone), forgotten when it is cancelled.
pub fn wizard_secrets(wizard: &WizardState) -> Vec<Uuid> {
    step_data(wizard, "authentication")
        .and_then(|auth| text_of(auth, "secret_id"))
        .and_then(|id| id.parse().ok())
        .into_iter()
        .collect()
}

/// A secret given in a request, for the hosts API: sealed, and returned as the side writes
/// that store it and give it to host `owner`.
pub fn seal_credentials(
    state: &AppState,
    principal: &Principal,
    method: AuthMethod,
    secret: &SecretString,
    passphrase: Option<&str>,
    owner: &str,
) -> ApiResult<(Uuid, Vec<SideWrite>)> {
    let (kind, plain) = match method {
        AuthMethod::Password => {
            if secret.expose_secret().is_empty() || secret.expose_secret().len() > 1024 {
                return Err(ApiError::validation("auth.password", "1 to 1024 bytes"));
            }
            (SecretKind::SshPassword, secret.clone())
        }
        AuthMethod::ImportedKey | AuthMethod::GeneratedKey => {
            let key = ssh::parse_private_key(secret.expose_secret(), passphrase)
                .map_err(|message| ApiError::validation("auth.private_key", message))?;
            (SecretKind::SshPrivateKey, ssh::private_key_text(&key))
        }
    };
    let (id, write) = sealed::sealed_side_write(
        &state.master_key,
        kind,
        plain.expose_secret().as_bytes(),
        Some(principal.user_id),
    );
    let claim = SideWrite::ClaimSecret {
        id,
        owner: owner.to_string(),
    };
    Ok((id, vec![write, claim]))
}
