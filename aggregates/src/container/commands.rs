//! What may be asked of a container: the actions on an existing one and the commands of
//! the [`Container`](super::Container) aggregate, with the checks of their arguments.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::ContainerError;

/// What an operation does to an existing container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum ContainerAction {
    Start,
    /// Seconds Docker waits before it kills the container.
    Stop {
        timeout: Option<u32>,
    },
    Restart {
        timeout: Option<u32>,
    },
    /// `SIGKILL`, `SIGTERM`, `HUP`, `9`, …
    Kill {
        signal: String,
    },
    Pause,
    Unpause,
    Rename {
        name: String,
    },
    /// Remove the container (`force` also stops a running one; `volumes` removes its anonymous volumes).
    Remove {
        force: bool,
        volumes: bool,
    },
}

impl ContainerAction {
    /// The verb in audit actions: `container.<verb>`.
    pub fn verb(&self) -> &'static str {
        match self {
            ContainerAction::Start => "start",
            ContainerAction::Stop { .. } => "stop",
            ContainerAction::Restart { .. } => "restart",
            ContainerAction::Kill { .. } => "kill",
            ContainerAction::Pause => "pause",
            ContainerAction::Unpause => "unpause",
            ContainerAction::Rename { .. } => "rename",
            ContainerAction::Remove { .. } => "delete",
        }
    }
}

/// The longest stop or restart timeout accepted, in seconds.
pub const MAX_STOP_TIMEOUT: u32 = 600;

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, here at most 128 characters.
pub fn validate_container_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let ok = (2..=128).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::Invalid {
            field: "name",
            message: "name must be 2 to 128 characters: letters, digits, '_', '.', '-', starting with a letter or digit".into(),
        })
    }
}

/// A signal name (`SIGTERM`, `TERM`) or number (1–64).
pub fn validate_signal(signal: &str) -> Result<(), ContainerError> {
    let name = signal.strip_prefix("SIG").unwrap_or(signal);
    let ok = match name.parse::<u8>() {
        Ok(number) => (1..=64).contains(&number),
        Err(_) => {
            (2..=10).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ContainerError::Invalid {
            field: "signal",
            message: format!("'{signal}' is not a signal name or number"),
        })
    }
}

/// Checks the arguments of an action (a name, a signal, a timeout).
pub(super) fn validate(action: &ContainerAction) -> Result<(), ContainerError> {
    match action {
        ContainerAction::Stop { timeout: Some(t) }
        | ContainerAction::Restart { timeout: Some(t) }
            if *t > MAX_STOP_TIMEOUT =>
        {
            Err(ContainerError::Invalid {
                field: "timeout",
                message: format!("timeout must be at most {MAX_STOP_TIMEOUT} seconds"),
            })
        }
        ContainerAction::Kill { signal } => validate_signal(signal),
        ContainerAction::Rename { name } => validate_container_name(name),
        _ => Ok(()),
    }
}

/// Commands accepted by [`Container`](super::Container).
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerCommand {
    /// Accept a request to create a container on `host` from a normalized, policy-checked spec.
    RequestCreate {
        op_id: Uuid,
        host: String,
        spec: Value,
        at: DateTime<Utc>,
    },
    /// Docker created it (the runner, or a reconciliation that found it by its `dcp.op` label).
    RecordCreated {
        op_id: Uuid,
        docker_id: String,
        name: String,
        /// The image Docker resolved the reference to (`sha256:…`), when it said.
        image_id: Option<String>,
        at: DateTime<Utc>,
    },
    /// A container made outside dcp becomes known.
    Discover {
        host: String,
        docker_id: String,
        name: String,
        image: String,
        state: String,
        at: DateTime<Utc>,
    },
    /// Accept a request to act on the container.
    Request {
        op_id: Uuid,
        action: ContainerAction,
        at: DateTime<Utc>,
    },
    /// Docker reported a lifecycle change no dcp operation explains (`start`, `die`,
    /// `destroy`, `oom`, …); `time_nano` is Docker's event time.
    Observe {
        action: String,
        time_nano: i64,
        attributes: std::collections::BTreeMap<String, String>,
        at: DateTime<Utc>,
    },
    /// Accept a request to replace the container with one made from `spec` (a normalized,
    /// policy-checked create request), keeping its name and its history: how a
    /// container's environment, image, ports or limits change.
    RequestRecreate {
        op_id: Uuid,
        spec: Value,
        at: DateTime<Utc>,
    },
    /// The replacement exists (`docker_id`) and the previous container is gone.
    RecordRecreated {
        op_id: Uuid,
        docker_id: String,
        image_id: Option<String>,
        /// Whether the replacement was started.
        running: bool,
        at: DateTime<Utc>,
    },
    /// An interactive exec session opened (`command` is what runs, e.g. the detected shell).
    RecordExecStarted {
        exec_id: String,
        command: Vec<String>,
        at: DateTime<Utc>,
    },
    /// The exec session ended.
    RecordExecEnded {
        exec_id: String,
        exit_code: Option<i64>,
        duration_ms: i64,
        at: DateTime<Utc>,
    },
    /// The operation `op_id` succeeded.
    RecordDone { op_id: Uuid, at: DateTime<Utc> },
    /// The operation `op_id` failed; `code` is the API error code, `message` Docker's words.
    RecordFailed {
        op_id: Uuid,
        code: String,
        message: String,
        at: DateTime<Utc>,
    },
}
