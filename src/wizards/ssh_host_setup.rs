//! The `ssh_host_setup` wizard's work besides deciding: its steps' inputs (secrets are
//! sealed here and enter the wizard as ids), its tests (SSH, Docker through SSH), and its
//! completion (the host is registered `setup_pending`, then checked).

use chrono::Utc;
use dcp_aggregates::host::{AuthMethod, HostError, HostSpec};
use dcp_aggregates::wizard::{parse_ssh_url, Wizard, WizardCommand, WizardError};
use dcp_projections::past::WizardState;
use dcp_projections::LogCursor;
use russh::keys::PublicKey;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Wizards, WizardsError};
use crate::auth::principal::Principal;
use crate::commands::{CommandError, CommandMeta};
use crate::event_store::SideWrite;
use crate::hosts::monitor::{ssh_error_kind, CheckResult, CHECK_TIMEOUT};
use crate::secrets::sealed::{self, SecretKind};
use crate::ssh::{self, Credentials, Endpoint, SshPool};

/// What completing a wizard made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Completion {
    /// The host registered (id and name).
    pub host_id: String,
    /// The host's first check (it is `active` when this passed).
    pub check: CheckResult,
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

impl Wizards {
    /// Turns what the caller sent for the current step into the data the aggregate checks, and
    /// the side writes that go with it (a secret sealed, a replaced one forgotten).
    pub(super) async fn prepare_step(
        &self,
        principal: &Principal,
        wizard: &WizardState,
        input: Value,
    ) -> Result<(Value, Vec<SideWrite>), WizardsError> {
        let Value::Object(input) = input else {
            return Err(WizardsError::invalid("step_data", "a JSON object"));
        };
        match wizard.step_name.as_str() {
            "connection" => {
                // An invalid name is the step's to refuse (400); a valid one must be free.
                if let Some(name) = text_of(&input, "connection_name")
                    .filter(|name| dcp_aggregates::host::check_name(name).is_ok())
                {
                    if self.hosts.name_taken(name, None).await? {
                        return Err(WizardsError::NameTaken(name.to_string()));
                    }
                }
                Ok((Value::Object(input), vec![]))
            }
            "authentication" => self.prepare_authentication(principal, wizard, input).await,
            _ => Ok((Value::Object(input), vec![])),
        }
    }

    /// The credentials of the authentication step: sealed at once, entered as their id.
    async fn prepare_authentication(
        &self,
        principal: &Principal,
        wizard: &WizardState,
        mut input: Map<String, Value>,
    ) -> Result<(Value, Vec<SideWrite>), WizardsError> {
        let owner = wizard.id.map(|id| id.to_string()).unwrap_or_default();
        let previous = step_data(wizard, "authentication").and_then(|p| {
            let id = text_of(p, "secret_id")?.parse::<Uuid>().ok()?;
            Some((text_of(p, "method") == Some("generated_key"), id))
        });
        let method = text_of(&input, "method")
            .and_then(AuthMethod::parse)
            .ok_or_else(|| {
                WizardsError::invalid("method", "generated_key, imported_key or password")
            })?;
        let mut writes = Vec::new();
        let (data, secret_id) = match method {
            AuthMethod::GeneratedKey => {
                only(&input, &["method", "key_id"])?;
                let id = text_of(&input, "key_id")
                    .and_then(|id| id.parse::<Uuid>().ok())
                    .ok_or_else(|| {
                        WizardsError::invalid(
                            "key_id",
                            "the key_id returned by POST /api/v1/wizards/generate-ssh-key",
                        )
                    })?;
                let public_key = self.generated_key(principal, id, &owner).await?;
                (
                    json!({"method": "generated_key", "secret_id": id, "public_key": public_key}),
                    id,
                )
            }
            AuthMethod::ImportedKey => {
                only(&input, &["method", "private_key", "passphrase"])?;
                let text = text_of(&input, "private_key")
                    .ok_or_else(|| {
                        WizardsError::invalid("private_key", "the private key (OpenSSH or PEM)")
                    })?
                    .to_string();
                let passphrase = input
                    .remove("passphrase")
                    .and_then(|p| p.as_str().map(str::to_string));
                let key = ssh::parse_private_key(&text, passphrase.as_deref())
                    .map_err(|message| WizardsError::invalid("private_key", message))?;
                // Stored decrypted (sealed): dcp must use it unattended.
                let plain = ssh::private_key_text(&key);
                let (id, write) = sealed::sealed_side_write(
                    self.hosts.master_key(),
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
                        WizardsError::invalid("password", "the SSH password (1 to 1024 bytes)")
                    })?;
                let (id, write) = sealed::sealed_side_write(
                    self.hosts.master_key(),
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

    /// The public key of generated key `id`, if the caller generated it and nothing but
    /// `owner` uses it.
    async fn generated_key(
        &self,
        principal: &Principal,
        id: Uuid,
        owner: &str,
    ) -> Result<String, WizardsError> {
        let unknown = || {
            WizardsError::invalid(
                "key_id",
                "no key generated by you with this id (POST /api/v1/wizards/generate-ssh-key)",
            )
        };
        let pool = self.reads.pool();
        match sealed::describe(pool, id).await? {
            Some((kind, Some(owner)))
                if kind == SecretKind::SshPrivateKey.as_str() && owner == principal.user_id => {}
            _ => return Err(unknown()),
        }
        let user: Option<String> =
            sqlx::query_scalar("SELECT owner FROM secret_claims WHERE secret_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        if user.as_deref().is_some_and(|user| user != owner) {
            return Err(WizardsError::KeyInUse);
        }
        let credentials =
            crate::hosts::load_credentials(pool, self.hosts.master_key(), "generated_key", id)
                .await
                .map_err(|_| unknown())?;
        match credentials {
            Credentials::Key(key) => Ok(ssh::authorized_keys_line(&key)),
            Credentials::Password(_) => Err(unknown()),
        }
    }

    /// Generates an ED25519 key, sealed and usable only by `principal`; returns its id and
    /// public key (the private key never leaves the server).
    pub(super) async fn store_generated_key(
        &self,
        principal: &Principal,
        comment: &str,
    ) -> Result<(Uuid, String, String), WizardsError> {
        let key = ssh::generate_key(comment);
        let text = ssh::private_key_text(&key);
        let id = sealed::store(
            self.reads.pool(),
            self.hosts.master_key(),
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
        &self,
        wizard: &WizardState,
    ) -> Result<(Endpoint, Credentials, String), WizardsError> {
        let connection = step_data(wizard, "connection")
            .ok_or_else(|| WizardsError::incomplete("connection"))?;
        let target = text_of(connection, "host_url")
            .and_then(|url| parse_ssh_url(url).ok())
            .ok_or_else(|| WizardsError::incomplete("connection"))?;
        let auth = step_data(wizard, "authentication")
            .ok_or_else(|| WizardsError::incomplete("authentication"))?;
        let method = text_of(auth, "method").unwrap_or_default().to_string();
        let secret_id = text_of(auth, "secret_id")
            .and_then(|id| id.parse::<Uuid>().ok())
            .ok_or_else(|| WizardsError::incomplete("authentication"))?;
        let credentials =
        crate::hosts::load_credentials(self.reads.pool(), self.hosts.master_key(), &method, secret_id)
            .await
            .map_err(|error| WizardsError::StepNotReady {
                step: "authentication",
                message: format!(
                    "the credentials of the authentication step cannot be used: {error:#}; submit them again"
                ),
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

    /// Completes an `ssh_host_setup` wizard: the wizard checks it is complete and records it,
    /// then the host is registered `setup_pending` (its id is the wizard's) and checked.
    /// Completing again is refused (409); a completion whose registration failed midway
    /// (the database went away) registers the host when retried.
    pub(super) async fn complete_host_setup(
        &self,
        wizard: &WizardState,
        meta: &CommandMeta,
    ) -> Result<(Completion, Option<LogCursor>), WizardsError> {
        let id = wizard.id.ok_or(WizardsError::NotFound)?;
        let host_id = id.to_string();
        let name = step_data(wizard, "connection")
            .ok_or_else(|| WizardsError::incomplete("connection"))?
            .get("connection_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if wizard.status == "in_progress" && self.hosts.name_taken(&name, Some(&host_id)).await? {
            return Err(WizardsError::NameTaken(name));
        }
        match wizard.status.as_str() {
            "in_progress" => {
                // The name is claimed with the completion: a wizard is never completed with a
                // name its host cannot have.
                self.commands
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
                    .await?;
            }
            "completed" => {}
            other => return Err(WizardsError::NotInProgress(other.to_string())),
        }
        // The aggregate has checked every step is complete: what they hold is the host.
        let spec = host_spec(wizard, id)?;
        let cursor = self
            .hosts
            .register(&host_id, spec, vec![], meta)
            .await
            .map_err(|error| match error {
                crate::hosts::HostsError::Command(CommandError::Rejected(
                    HostError::AlreadyRegistered,
                )) => WizardsError::NotInProgress("completed".into()),
                other => other.into(),
            })?;
        let check = self
            .hosts
            .register_and_check(&host_id, cursor, meta)
            .await?;
        Ok((Completion { host_id, check }, cursor))
    }

    /// What a step test found: `(passed, details)`.
    pub(super) async fn run_test(
        &self,
        wizard: &WizardState,
    ) -> Result<(bool, Value), WizardsError> {
        let (endpoint, credentials, _) = self.wizard_target(wizard).await?;
        match wizard.step_name.as_str() {
            "ssh_test" => Ok(ssh_test(wizard, &endpoint, credentials).await),
            "docker_test" => docker_test(wizard, endpoint, credentials).await,
            other => Err(CommandError::Rejected(WizardError::NoTest(static_step(other))).into()),
        }
    }
}

/// The host a complete `ssh_host_setup` wizard describes (its id is the wizard's).
fn host_spec(wizard: &WizardState, id: Uuid) -> Result<HostSpec, WizardsError> {
    let connection =
        step_data(wizard, "connection").ok_or_else(|| WizardsError::incomplete("connection"))?;
    let name = text_of(connection, "connection_name")
        .unwrap_or_default()
        .to_string();
    let target = text_of(connection, "host_url")
        .and_then(|url| parse_ssh_url(url).ok())
        .ok_or_else(|| WizardsError::incomplete("connection"))?;
    let auth = step_data(wizard, "authentication")
        .ok_or_else(|| WizardsError::incomplete("authentication"))?;
    let auth_method = text_of(auth, "method")
        .and_then(AuthMethod::parse)
        .ok_or_else(|| WizardsError::incomplete("authentication"))?;
    let secret_id = text_of(auth, "secret_id")
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or_else(|| WizardsError::incomplete("authentication"))?;
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
    Ok(HostSpec {
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
    })
}

/// Connects to the host: until the admin confirms the key, only reads it when the
/// credentials are a password; once confirmed, accepts only that key.
async fn ssh_test(
    wizard: &WizardState,
    endpoint: &Endpoint,
    credentials: Credentials,
) -> (bool, Value) {
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
    match ssh::connect(endpoint, credentials, check).await {
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
    }
}

/// Reaches the engine through the SSH connection the SSH test pinned.
async fn docker_test(
    wizard: &WizardState,
    endpoint: Endpoint,
    credentials: Credentials,
) -> Result<(bool, Value), WizardsError> {
    let host_key = step_test(wizard, "ssh_test")
        .and_then(|t| t.pointer("/details/host_key"))
        .and_then(Value::as_str)
        .and_then(|key| PublicKey::from_openssh(key).ok())
        .ok_or_else(|| WizardsError::StepNotReady {
            step: "ssh_test",
            message: "the SSH test has not passed".into(),
        })?;
    let pool = SshPool::new(endpoint, credentials, host_key, None);
    if let Err(error) = pool.ensure_connected().await {
        return Ok((false, failure(&error.to_string(), ssh_error_kind(&error))));
    }
    let docker = pool.docker(CHECK_TIMEOUT.as_secs());
    let call = async {
        let version = docker.version().await?;
        let info = docker.info().await?;
        Ok::<_, bollard::errors::Error>((version, info))
    };
    Ok(match tokio::time::timeout(CHECK_TIMEOUT, call).await {
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
    })
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

fn only(input: &Map<String, Value>, allowed: &[&str]) -> Result<(), WizardsError> {
    match input.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(WizardsError::invalid(unknown, "not a field of this step")),
        None => Ok(()),
    }
}

/// The secrets a wizard holds (claimed by it alone), forgotten when it is cancelled.
pub fn wizard_secrets(wizard: &WizardState) -> Vec<Uuid> {
    step_data(wizard, "authentication")
        .and_then(|auth| text_of(auth, "secret_id"))
        .and_then(|id| id.parse().ok())
        .into_iter()
        .collect()
}
