//! The `Wizard` aggregate: a guided, multi-step setup that can be paused and resumed (it is
//! event-sourced, so a wizard survives a restart as it was).
//!
//! Each wizard type has its steps. A step's data is validated by the step itself when it is
//! submitted; `next` refuses while the current step is incomplete or, for a step with a
//! test, while its last test has not passed. Changing a step's data forgets the tests of
//! the steps after it (they tested something else). Tests run outside (SSH, Docker):
//! their results arrive in the command. Secrets never enter a wizard's data: the caller
//! seals a key or password first and submits its id.

mod steps;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::audit::{AuditAction, Audited};
use steps::invalid;
pub use steps::{parse_ssh_url, SshTarget, StepSpec, WizardType};

/// Where a wizard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WizardStatus {
    #[default]
    InProgress,
    Completed,
    Cancelled,
    Failed,
}

/// The last test of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTest {
    pub passed: bool,
    /// What the test found (host key fingerprint, Docker version, the error).
    pub details: Value,
    pub tested_at: DateTime<Utc>,
}

/// Commands accepted by [`Wizard`].
#[derive(Debug, Clone, PartialEq)]
pub enum WizardCommand {
    Start {
        wizard_id: Uuid,
        wizard_type: WizardType,
        user_id: Uuid,
        /// The caller's notes on the wizard (a JSON object, at most 4 KiB).
        metadata: Map<String, Value>,
        at: DateTime<Utc>,
    },
    /// Data for the current step (a JSON object), checked by the step.
    SubmitStep {
        data: Value,
        at: DateTime<Utc>,
    },
    Next {
        at: DateTime<Utc>,
    },
    Previous {
        at: DateTime<Utc>,
    },
    /// The result of the current step's test, run by the caller.
    RecordTest {
        passed: bool,
        details: Value,
        at: DateTime<Utc>,
    },
    /// The wizard made its resource.
    Complete {
        resource_type: String,
        resource_id: String,
        at: DateTime<Utc>,
    },
    Cancel {
        at: DateTime<Utc>,
    },
    Fail {
        reason: String,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`Wizard`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WizardEvent {
    WizardStarted {
        wizard_id: Uuid,
        wizard_type: WizardType,
        user_id: Uuid,
        total_steps: u32,
        #[serde(default)]
        metadata: Map<String, Value>,
        started_at: DateTime<Utc>,
    },
    StepDataSubmitted {
        step: u32,
        step_name: String,
        data: Value,
        submitted_at: DateTime<Utc>,
    },
    StepAdvanced {
        from: u32,
        to: u32,
        advanced_at: DateTime<Utc>,
    },
    StepRetreated {
        from: u32,
        to: u32,
        retreated_at: DateTime<Utc>,
    },
    StepTested {
        step: u32,
        step_name: String,
        passed: bool,
        details: Value,
        tested_at: DateTime<Utc>,
    },
    WizardCompleted {
        resource_type: String,
        resource_id: String,
        completed_at: DateTime<Utc>,
    },
    WizardCancelled {
        cancelled_at: DateTime<Utc>,
    },
    WizardFailed {
        reason: String,
        failed_at: DateTime<Utc>,
    },
}

impl DomainEvent for WizardEvent {
    fn event_type(&self) -> String {
        match self {
            WizardEvent::WizardStarted { .. } => "WizardStarted",
            WizardEvent::StepDataSubmitted { .. } => "StepDataSubmitted",
            WizardEvent::StepAdvanced { .. } => "StepAdvanced",
            WizardEvent::StepRetreated { .. } => "StepRetreated",
            WizardEvent::StepTested { .. } => "StepTested",
            WizardEvent::WizardCompleted { .. } => "WizardCompleted",
            WizardEvent::WizardCancelled { .. } => "WizardCancelled",
            WizardEvent::WizardFailed { .. } => "WizardFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(Wizard::TYPE, &self.event_type())
    }
}

impl Audited for WizardEvent {
    fn audit_action(&self) -> AuditAction<'_> {
        let verb = match self {
            WizardEvent::WizardStarted { .. } => "start",
            WizardEvent::StepDataSubmitted { .. } => "step_submit",
            WizardEvent::StepAdvanced { .. } => "next",
            WizardEvent::StepRetreated { .. } => "previous",
            WizardEvent::StepTested { .. } => "test",
            WizardEvent::WizardCompleted { .. } => "complete",
            WizardEvent::WizardCancelled { .. } => "cancel",
            WizardEvent::WizardFailed { .. } => "fail",
        };
        AuditAction::new(Wizard::TYPE, verb)
    }

    fn user_id(&self) -> Option<Uuid> {
        match self {
            WizardEvent::WizardStarted { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }
}

/// Why a [`WizardCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WizardError {
    #[error("wizard not found")]
    NotFound,
    #[error("this wizard already exists")]
    AlreadyStarted,
    #[error("the wizard is {0:?}, no longer in progress")]
    Finished(WizardStatus),
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("step '{0}' is not complete")]
    StepIncomplete(&'static str),
    #[error("the test of step '{0}' has not passed")]
    TestNotPassed(&'static str),
    #[error("step '{0}' has no test")]
    NoTest(&'static str),
    #[error("this is the first step")]
    AtFirstStep,
    #[error("this is the last step: complete the wizard")]
    AtLastStep,
    #[error("the wizard can only be completed from its last step")]
    NotAtLastStep,
    #[error("no step '{0}' in this wizard")]
    UnknownStep(String),
}

/// The state a [`Wizard`] decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Wizard {
    started: bool,
    wizard_type: Option<WizardType>,
    current: u32,
    status: WizardStatus,
    /// Each step's submitted data, by step name.
    data: BTreeMap<String, Map<String, Value>>,
    /// Each tested step's last test, by step name.
    tests: BTreeMap<String, StepTest>,
}

impl Wizard {
    fn steps(&self) -> &'static [StepSpec] {
        self.wizard_type.map(WizardType::steps).unwrap_or(&[])
    }

    fn step(&self) -> StepSpec {
        self.steps()[self.current as usize]
    }

    fn require_in_progress(&self) -> Result<WizardType, WizardError> {
        let kind = self
            .wizard_type
            .filter(|_| self.started)
            .ok_or(WizardError::NotFound)?;
        match self.status {
            WizardStatus::InProgress => Ok(kind),
            other => Err(WizardError::Finished(other)),
        }
    }

    /// The current step is complete: its data passes its checks and its test passed. The
    /// SSH test must also have authenticated: with a password, the first test only reads
    /// the host key (no password goes to a key nobody confirmed), and the test is run again
    /// once the key is confirmed.
    fn require_step_done(&self, kind: WizardType) -> Result<(), WizardError> {
        let step = self.step();
        if step.tested && !self.tests.get(step.name).is_some_and(|t| t.passed) {
            return Err(WizardError::TestNotPassed(step.name));
        }
        let authenticated =
            |t: &StepTest| t.details.get("authenticated") == Some(&Value::Bool(true));
        if step.name == "ssh_test" && !self.tests.get(step.name).is_some_and(authenticated) {
            return Err(WizardError::TestNotPassed(step.name));
        }
        let empty = Map::new();
        let data = self.data.get(step.name).unwrap_or(&empty);
        kind.validate(step.name, data, &self.tests)
            .map_err(|_| WizardError::StepIncomplete(step.name))
    }

    fn decide(&self, command: WizardCommand) -> Result<Vec<WizardEvent>, WizardError> {
        let event = match command {
            WizardCommand::Start {
                wizard_id,
                wizard_type,
                user_id,
                metadata,
                at,
            } => {
                if self.started {
                    return Err(WizardError::AlreadyStarted);
                }
                if Value::Object(metadata.clone()).to_string().len() > 4096 {
                    return Err(invalid("metadata", "at most 4 KiB of JSON"));
                }
                WizardEvent::WizardStarted {
                    wizard_id,
                    wizard_type,
                    user_id,
                    total_steps: wizard_type.steps().len() as u32,
                    metadata,
                    started_at: at,
                }
            }
            WizardCommand::SubmitStep { data, at } => {
                let kind = self.require_in_progress()?;
                let step = self.step();
                let object = data
                    .as_object()
                    .ok_or_else(|| invalid("step_data", "a JSON object"))?;
                kind.validate(step.name, object, &self.tests)?;
                WizardEvent::StepDataSubmitted {
                    step: self.current,
                    step_name: step.name.to_string(),
                    data,
                    submitted_at: at,
                }
            }
            WizardCommand::Next { at } => {
                let kind = self.require_in_progress()?;
                if self.current as usize + 1 >= self.steps().len() {
                    return Err(WizardError::AtLastStep);
                }
                self.require_step_done(kind)?;
                WizardEvent::StepAdvanced {
                    from: self.current,
                    to: self.current + 1,
                    advanced_at: at,
                }
            }
            WizardCommand::Previous { at } => {
                self.require_in_progress()?;
                if self.current == 0 {
                    return Err(WizardError::AtFirstStep);
                }
                WizardEvent::StepRetreated {
                    from: self.current,
                    to: self.current - 1,
                    retreated_at: at,
                }
            }
            WizardCommand::RecordTest {
                passed,
                details,
                at,
            } => {
                self.require_in_progress()?;
                let step = self.step();
                if !step.tested {
                    return Err(WizardError::NoTest(step.name));
                }
                WizardEvent::StepTested {
                    step: self.current,
                    step_name: step.name.to_string(),
                    passed,
                    details,
                    tested_at: at,
                }
            }
            end @ (WizardCommand::Complete { .. }
            | WizardCommand::Cancel { .. }
            | WizardCommand::Fail { .. }) => return self.decide_end(end),
        };
        Ok(vec![event])
    }

    /// Ends the wizard: completed from its last step once that step is done, or
    /// cancelled or failed at any point.
    fn decide_end(&self, command: WizardCommand) -> Result<Vec<WizardEvent>, WizardError> {
        let event = match command {
            WizardCommand::Complete {
                resource_type,
                resource_id,
                at,
            } => {
                let kind = self.require_in_progress()?;
                if self.current as usize + 1 != self.steps().len() {
                    return Err(WizardError::NotAtLastStep);
                }
                self.require_step_done(kind)?;
                WizardEvent::WizardCompleted {
                    resource_type,
                    resource_id,
                    completed_at: at,
                }
            }
            WizardCommand::Cancel { at } => {
                self.require_in_progress()?;
                WizardEvent::WizardCancelled { cancelled_at: at }
            }
            WizardCommand::Fail { reason, at } => {
                self.require_in_progress()?;
                WizardEvent::WizardFailed {
                    reason,
                    failed_at: at,
                }
            }
            // `decide` sends only the ends of a wizard here: another command is a bug, and
            // sending it back would loop.
            other => unreachable!("not one of the ends of a wizard: {other:?}"),
        };
        Ok(vec![event])
    }
}

impl Aggregate for Wizard {
    const TYPE: &'static str = "wizard";
    type Command = WizardCommand;
    type Event = WizardEvent;
    type Error = WizardError;
    type Services = ();

    async fn handle(
        &mut self,
        command: WizardCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WizardError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: WizardEvent) {
        match event {
            WizardEvent::WizardStarted { wizard_type, .. } => {
                self.started = true;
                self.wizard_type = Some(wizard_type);
            }
            WizardEvent::StepDataSubmitted {
                step,
                step_name,
                data,
                ..
            } => {
                // The tests of the steps after this one tested something else. (A tested
                // step's own data confirms its test, so it keeps it.)
                let later: Vec<&str> = self
                    .steps()
                    .iter()
                    .skip(step as usize + 1)
                    .map(|s| s.name)
                    .collect();
                self.tests.retain(|name, _| !later.contains(&name.as_str()));
                self.data
                    .insert(step_name, data.as_object().cloned().unwrap_or_default());
            }
            WizardEvent::StepAdvanced { to, .. } | WizardEvent::StepRetreated { to, .. } => {
                self.current = to
            }
            WizardEvent::StepTested {
                step_name,
                passed,
                details,
                tested_at,
                ..
            } => {
                self.tests.insert(
                    step_name,
                    StepTest {
                        passed,
                        details,
                        tested_at,
                    },
                );
            }
            WizardEvent::WizardCompleted { .. } => self.status = WizardStatus::Completed,
            WizardEvent::WizardCancelled { .. } => self.status = WizardStatus::Cancelled,
            WizardEvent::WizardFailed { .. } => self.status = WizardStatus::Failed,
        }
    }
}
