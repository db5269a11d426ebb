//! Guided setups that can be paused and resumed: event-sourced, so a wizard is where it was
//! after a restart. A user sees only their own wizards.
//!
//! The aggregate (`dcp_aggregates::wizard`) decides whether a step's data is complete and
//! whether the wizard may move on; this service runs the IO (sealing secrets, connection
//! tests, registering the host) and hands it the results. [`ssh_host_setup`] is the one
//! wizard type today.

mod error;
mod ssh_host_setup;

use chrono::Utc;
use dcp_aggregates::wizard::{Wizard, WizardCommand, WizardType};
use dcp_projections::past::{AggregateState, WizardState};
use dcp_projections::LogCursor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

pub use error::WizardsError;
pub use ssh_host_setup::Completion;

use crate::auth::principal::Principal;
use crate::commands::{CommandBus, CommandError, CommandMeta};
use crate::event_store::SideWrite;
use crate::hosts::Hosts;
use crate::read_models::{ReadModels, WIZARDS};

/// The wizards service.
#[derive(Clone)]
pub struct Wizards {
    commands: CommandBus,
    reads: ReadModels,
    /// Registers and checks the hosts a wizard sets up.
    hosts: Hosts,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartWizardRequest {
    /// `ssh_host_setup`.
    pub wizard_type: String,
    /// Data for the first step, submitted at once (optional).
    #[schema(value_type = Option<Object>)]
    pub initial_state: Option<Map<String, Value>>,
    /// The caller's notes on the wizard (kept with it, at most 4 KiB).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// The current step's data. Connection: `connection_name`, `host_url`
    /// (`ssh://user@host[:port]`). Authentication: `method` = `generated_key` with `key_id`,
    /// `imported_key` with `private_key` (and `passphrase`), or `password` with `password`
    /// (keys and passwords are sealed at once; only their id is kept). SSH test:
    /// `confirm_fingerprint` (the fingerprint the test showed). Confirmation: `tags`.
    #[schema(value_type = Object)]
    pub step_data: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// `ssh_connection` (SSH test step) or `docker_api` (Docker test step); optional.
    pub test_type: Option<String>,
}

/// A step test's outcome with the wizard after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestOutcome {
    pub passed: bool,
    /// What the test found: the host key and its fingerprint, the engine's version, or
    /// the error (`error`, `error_kind`).
    #[schema(value_type = Object)]
    pub details: Value,
    pub wizard: WizardState,
}

/// A completed wizard with what it made.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionView {
    pub wizard: WizardState,
    pub result: Completion,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedKey {
    /// The sealed key's id: give it as `key_id` in the authentication step.
    pub key_id: Uuid,
    /// The line to add to the host's `~/.ssh/authorized_keys`.
    pub public_key: String,
    pub fingerprint: String,
    pub algorithm: String,
}

/// A wizard as the read model shows it, with the position of the change that made it so.
pub type Shown = (Option<i64>, WizardState);

impl Wizards {
    pub fn new(commands: CommandBus, reads: ReadModels, hosts: Hosts) -> Self {
        Wizards {
            commands,
            reads,
            hosts,
        }
    }

    /// Starts a wizard of `request.wizard_type` for `principal`, with the first step's data
    /// when given (checked before anything is recorded).
    #[tracing::instrument(skip_all, fields(wizard_type = %request.wizard_type), err(level = "debug"))]
    pub async fn start(
        &self,
        principal: &Principal,
        request: StartWizardRequest,
        meta: &CommandMeta,
    ) -> Result<(Uuid, Shown), WizardsError> {
        let wizard_type = match request.wizard_type.as_str() {
            "ssh_host_setup" => WizardType::SshHostSetup,
            _ => {
                return Err(WizardsError::invalid(
                    "wizard_type",
                    "unknown wizard type: expected ssh_host_setup",
                ))
            }
        };
        if let Some(initial) = request.initial_state.as_ref().filter(|m| !m.is_empty()) {
            let first = wizard_type.steps()[0].name;
            wizard_type
                .validate(first, initial, &Default::default())
                .map_err(CommandError::Rejected)?;
            if let Some(name) = initial.get("connection_name").and_then(Value::as_str) {
                if self.hosts.name_taken(name, None).await? {
                    return Err(WizardsError::NameTaken(name.to_string()));
                }
            }
        }
        let id = Uuid::now_v7();
        let start = WizardCommand::Start {
            wizard_id: id,
            wizard_type,
            user_id: principal.user_id,
            metadata: request.metadata.unwrap_or_default(),
            at: Utc::now(),
        };
        let mut cursor = self
            .commands
            .execute::<Wizard>(&id.to_string(), start, meta)
            .await?;
        if let Some(initial) = request.initial_state.filter(|m| !m.is_empty()) {
            let wizard = self.current(id).await?;
            let (data, writes) = self
                .prepare_step(principal, &wizard, Value::Object(initial))
                .await?;
            cursor = self.submit(id, data, writes, meta).await?.or(cursor);
        }
        Ok((id, self.view(id, cursor).await?))
    }

    /// The caller's wizards in progress (to resume), newest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<WizardState>, WizardsError> {
        let rows: Vec<(sqlx::types::Json<WizardState>,)> = sqlx::query_as(
            "SELECT doc FROM wizards WHERE user_id = $1 AND status = 'in_progress' ORDER BY updated_at DESC LIMIT 100",
        )
        .bind(principal.user_id)
        .fetch_all(self.reads.pool())
        .await?;
        Ok(rows.into_iter().map(|(doc,)| doc.0).collect())
    }

    /// The caller's wizard (another user's wizard is not shown), as the store has it now.
    pub async fn owned(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<WizardState, WizardsError> {
        let wizard = self.current(id).await?;
        if wizard.user_id != Some(principal.user_id) {
            return Err(WizardsError::NotFound);
        }
        Ok(wizard)
    }

    /// Submits the current step's data, sealing what is secret in it.
    #[tracing::instrument(skip_all, fields(%id), err(level = "debug"))]
    pub async fn submit_step(
        &self,
        principal: &Principal,
        id: Uuid,
        step_data: Value,
        meta: &CommandMeta,
    ) -> Result<Shown, WizardsError> {
        let wizard = self.in_progress(principal, id).await?;
        let (data, writes) = self.prepare_step(principal, &wizard, step_data).await?;
        let cursor = self.submit(id, data, writes, meta).await?;
        self.view(id, cursor).await
    }

    /// Moves to the next or the previous step, as `command` says.
    #[tracing::instrument(skip_all, fields(%id), err(level = "debug"))]
    pub async fn navigate(
        &self,
        principal: &Principal,
        id: Uuid,
        command: WizardCommand,
        meta: &CommandMeta,
    ) -> Result<Shown, WizardsError> {
        self.owned(principal, id).await?;
        let cursor = self
            .commands
            .execute::<Wizard>(&id.to_string(), command, meta)
            .await?;
        self.view(id, cursor).await
    }

    /// Runs the current step's test and records its outcome, passed or not.
    #[tracing::instrument(skip_all, fields(%id), err(level = "debug"))]
    pub async fn test_step(
        &self,
        principal: &Principal,
        id: Uuid,
        test_type: Option<String>,
        meta: &CommandMeta,
    ) -> Result<(Option<i64>, TestOutcome), WizardsError> {
        let wizard = self.in_progress(principal, id).await?;
        if let Some(test_type) = test_type {
            check_test_type(&wizard.step_name, &test_type)?;
        }
        let (passed, details) = self.run_test(&wizard).await?;
        let record = WizardCommand::RecordTest {
            passed,
            details: details.clone(),
            at: Utc::now(),
        };
        let cursor = self
            .commands
            .execute::<Wizard>(&id.to_string(), record, meta)
            .await?;
        let (position, wizard) = self.view(id, cursor).await?;
        let outcome = TestOutcome {
            passed,
            details,
            wizard,
        };
        Ok((position, outcome))
    }

    /// Completes the wizard: what it sets up is made.
    #[tracing::instrument(skip_all, fields(%id), err(level = "debug"))]
    pub async fn complete(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &CommandMeta,
    ) -> Result<(Option<i64>, CompletionView), WizardsError> {
        let wizard = self.owned(principal, id).await?;
        let (result, cursor) = self.complete_host_setup(&wizard, meta).await?;
        let (position, wizard) = self.view(id, cursor).await?;
        Ok((position, CompletionView { wizard, result }))
    }

    /// Cancels the wizard; the credentials it sealed are forgotten.
    #[tracing::instrument(skip_all, fields(%id), err(level = "debug"))]
    pub async fn cancel(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &CommandMeta,
    ) -> Result<Shown, WizardsError> {
        let wizard = self.owned(principal, id).await?;
        let secrets = ssh_host_setup::wizard_secrets(&wizard);
        let writes = if secrets.is_empty() {
            vec![]
        } else {
            vec![SideWrite::ForgetSecrets { ids: secrets }]
        };
        let cursor = self
            .commands
            .execute_with::<Wizard>(
                &id.to_string(),
                WizardCommand::Cancel { at: Utc::now() },
                meta,
                writes,
            )
            .await?;
        self.view(id, cursor).await
    }

    /// Generates an ED25519 key pair, sealed and usable only by `principal`; its comment is
    /// at most 128 printable characters.
    pub async fn generate_key(
        &self,
        principal: &Principal,
        comment: Option<String>,
    ) -> Result<GeneratedKey, WizardsError> {
        let comment = comment.unwrap_or_else(|| format!("dcp-{}", principal.username));
        if comment.chars().count() > 128
            || comment.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(WizardsError::invalid(
                "comment",
                "at most 128 printable characters without spaces",
            ));
        }
        let (key_id, public_key, fingerprint) =
            self.store_generated_key(principal, &comment).await?;
        Ok(GeneratedKey {
            key_id,
            public_key,
            fingerprint,
            algorithm: "ssh-ed25519".into(),
        })
    }

    /// The caller's wizard, refused unless it is still in progress.
    async fn in_progress(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<WizardState, WizardsError> {
        let wizard = self.owned(principal, id).await?;
        if wizard.status != "in_progress" {
            return Err(WizardsError::NotInProgress(wizard.status));
        }
        Ok(wizard)
    }

    async fn submit(
        &self,
        id: Uuid,
        data: Value,
        writes: Vec<SideWrite>,
        meta: &CommandMeta,
    ) -> Result<Option<LogCursor>, WizardsError> {
        let command = WizardCommand::SubmitStep {
            data,
            at: Utc::now(),
        };
        Ok(self
            .commands
            .execute_with::<Wizard>(&id.to_string(), command, meta, writes)
            .await?)
    }

    /// A wizard as it is in the event store now (not the read model: decisions need the truth).
    async fn current(&self, id: Uuid) -> Result<WizardState, WizardsError> {
        let events = self
            .reads
            .aggregate_events("wizard", &id.to_string())
            .await?
            .ok_or(WizardsError::NotFound)?;
        let mut folded = AggregateState::Wizard(WizardState::default());
        for event in &events {
            folded.apply(event).map_err(anyhow::Error::new)?;
        }
        match folded {
            AggregateState::Wizard(wizard) => Ok(wizard),
            _ => Err(WizardsError::NotFound),
        }
    }

    /// The wizard as the read model shows it once it has applied `cursor`.
    async fn view(&self, id: Uuid, cursor: Option<LogCursor>) -> Result<Shown, WizardsError> {
        let position = self.reads.settle(cursor, WIZARDS).await?;
        let row: Option<(sqlx::types::Json<WizardState>,)> =
            sqlx::query_as("SELECT doc FROM wizards WHERE id = $1")
                .bind(id)
                .fetch_optional(self.reads.pool())
                .await?;
        match row {
            Some((doc,)) => Ok((position, doc.0)),
            None => Ok((position, self.current(id).await?)),
        }
    }
}

/// A test named by the caller must be the current step's.
fn check_test_type(step: &str, test_type: &str) -> Result<(), WizardsError> {
    let expected = match step {
        "ssh_test" => "ssh_connection",
        "docker_test" => "docker_api",
        _ => "",
    };
    if test_type == expected {
        return Ok(());
    }
    let has = if expected.is_empty() {
        "no test".to_string()
    } else {
        format!("the test '{expected}'")
    };
    Err(WizardsError::invalid(
        "test_type",
        format!("step '{step}' has {has}"),
    ))
}
