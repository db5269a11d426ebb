//! A setup wizard at a past moment; also the document of the `wizards` read model.

use chrono::{DateTime, Utc};
use dcp_aggregates::wizard::WizardEvent;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// A wizard as its user sees it: where it is, each step's data and last test, and what it
/// created. Secrets appear as sealed secret ids only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WizardState {
    pub id: Option<Uuid>,
    /// `ssh_host_setup`.
    pub wizard_type: String,
    pub user_id: Option<Uuid>,
    /// The caller's notes, as given at start.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// `in_progress`, `completed`, `cancelled` or `failed`.
    pub status: String,
    /// 0-based.
    pub current_step: u32,
    pub total_steps: u32,
    /// The name of the current step.
    pub step_name: String,
    pub steps: Vec<WizardStepState>,
    /// What the wizard created (`{"type": "host", "id": …}`).
    #[schema(value_type = Option<Object>)]
    pub resource: Option<Value>,
    pub failure_reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One step of a wizard: its data and its last test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WizardStepState {
    pub name: String,
    /// Whether `next` needs a passed test of this step.
    pub tested: bool,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// `{passed, details, tested_at}`.
    #[schema(value_type = Option<Object>)]
    pub test: Option<Value>,
}

impl WizardState {
    pub(super) fn apply(&mut self, event: WizardEvent) {
        match event {
            WizardEvent::WizardStarted {
                wizard_id,
                wizard_type,
                user_id,
                total_steps,
                metadata,
                started_at,
            } => {
                let steps = wizard_type
                    .steps()
                    .iter()
                    .map(|s| WizardStepState {
                        name: s.name.to_string(),
                        tested: s.tested,
                        data: None,
                        test: None,
                    })
                    .collect::<Vec<_>>();
                *self = WizardState {
                    id: Some(wizard_id),
                    wizard_type: serde_json::to_value(wizard_type)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    user_id: Some(user_id),
                    metadata,
                    status: "in_progress".into(),
                    current_step: 0,
                    total_steps,
                    step_name: steps.first().map(|s| s.name.clone()).unwrap_or_default(),
                    steps,
                    started_at: Some(started_at),
                    updated_at: Some(started_at),
                    ..WizardState::default()
                };
            }
            WizardEvent::StepDataSubmitted {
                step,
                data,
                submitted_at,
                ..
            } => {
                for later in self.steps.iter_mut().skip(step as usize + 1) {
                    later.test = None;
                }
                if let Some(s) = self.steps.get_mut(step as usize) {
                    s.data = Some(data);
                }
                self.updated_at = Some(submitted_at);
            }
            WizardEvent::StepAdvanced {
                to, advanced_at, ..
            } => self.move_to(to, advanced_at),
            WizardEvent::StepRetreated {
                to, retreated_at, ..
            } => self.move_to(to, retreated_at),
            WizardEvent::StepTested {
                step,
                passed,
                details,
                tested_at,
                ..
            } => {
                if let Some(s) = self.steps.get_mut(step as usize) {
                    s.test = Some(serde_json::json!({
                        "passed": passed,
                        "details": details,
                        "tested_at": tested_at,
                    }));
                }
                self.updated_at = Some(tested_at);
            }
            WizardEvent::WizardCompleted {
                resource_type,
                resource_id,
                completed_at,
            } => {
                self.status = "completed".into();
                self.resource = Some(serde_json::json!({"type": resource_type, "id": resource_id}));
                self.finish(completed_at);
            }
            WizardEvent::WizardCancelled { cancelled_at } => {
                self.status = "cancelled".into();
                self.finish(cancelled_at);
            }
            WizardEvent::WizardFailed { reason, failed_at } => {
                self.status = "failed".into();
                self.failure_reason = Some(reason);
                self.finish(failed_at);
            }
        }
    }

    fn move_to(&mut self, step: u32, at: DateTime<Utc>) {
        self.current_step = step;
        self.step_name = self
            .steps
            .get(step as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.updated_at = Some(at);
    }

    fn finish(&mut self, at: DateTime<Utc>) {
        self.updated_at = Some(at);
        self.finished_at = Some(at);
    }
}
