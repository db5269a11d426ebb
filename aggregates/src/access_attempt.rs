//! The `AccessAttempt` aggregate: refused logins and refused requests.
//!
//! Each attempt is its own one-event stream (the caller picks a fresh id), so
//! recording attempts never conflicts with commands on the user they concern,
//! and the audit trail shows attempts, not just successes.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{AuditAction, Audited};
use crate::user::User;

use crate::Role;

/// Why a login was refused. The API answers the same to all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    UnknownUser,
    WrongPassword,
    InactiveUser,
}

/// Commands accepted by [`AccessAttempt`].
#[derive(Debug, Clone, PartialEq)]
pub enum AccessAttemptCommand {
    RecordFailedLogin {
        /// What the client typed as username or email (trimmed, at most 256 chars).
        login: String,
        /// The account it matched, if any.
        user_id: Option<Uuid>,
        reason: LoginFailure,
        at: DateTime<Utc>,
    },
    RecordDeniedRequest {
        user_id: Uuid,
        role: Role,
        method: String,
        /// The route template, e.g. `/api/v1/users/{id}`.
        route: String,
        /// The concrete path requested.
        path: String,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`AccessAttempt`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccessAttemptEvent {
    LoginFailed {
        login: String,
        user_id: Option<Uuid>,
        reason: LoginFailure,
        attempted_at: DateTime<Utc>,
    },
    AccessDenied {
        user_id: Uuid,
        role: Role,
        method: String,
        route: String,
        path: String,
        denied_at: DateTime<Utc>,
    },
}

impl DomainEvent for AccessAttemptEvent {
    fn event_type(&self) -> String {
        match self {
            AccessAttemptEvent::LoginFailed { .. } => "LoginFailed",
            AccessAttemptEvent::AccessDenied { .. } => "AccessDenied",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(AccessAttempt::TYPE, &self.event_type())
    }
}

impl Audited for AccessAttemptEvent {
    fn audit_action(&self) -> AuditAction<'_> {
        match self {
            AccessAttemptEvent::LoginFailed { user_id, .. } => {
                AuditAction::new("auth", "login_failed")
                    .concerning(User::TYPE, user_id.map(|id| id.to_string()))
            }
            AccessAttemptEvent::AccessDenied { method, route, .. } => {
                AuditAction::new("access", "denied")
                    .concerning("route", Some(format!("{method} {route}")))
            }
        }
    }

    fn user_id(&self) -> Option<Uuid> {
        match self {
            AccessAttemptEvent::LoginFailed { user_id, .. } => *user_id,
            AccessAttemptEvent::AccessDenied { user_id, .. } => Some(*user_id),
        }
    }
}

/// Why an [`AccessAttemptCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessAttemptError {
    #[error("this attempt is already recorded")]
    AlreadyRecorded,
}

/// The state of one recorded attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessAttempt {
    recorded: bool,
}

/// The longest login string kept in an event; longer input is cut, never stored whole.
pub const MAX_LOGIN_LEN: usize = 256;

impl Aggregate for AccessAttempt {
    const TYPE: &'static str = "access_attempt";
    type Command = AccessAttemptCommand;
    type Event = AccessAttemptEvent;
    type Error = AccessAttemptError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccessAttemptCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccessAttemptError> {
        if self.recorded {
            return Err(AccessAttemptError::AlreadyRecorded);
        }
        let event = match command {
            AccessAttemptCommand::RecordFailedLogin {
                login,
                user_id,
                reason,
                at,
            } => AccessAttemptEvent::LoginFailed {
                // What was typed as the name of no account may be a password typed into
                // the wrong field: only a known account's name is kept.
                login: match user_id {
                    Some(_) => login
                        .trim()
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_LOGIN_LEN)
                        .collect(),
                    None => String::new(),
                },
                user_id,
                reason,
                attempted_at: at,
            },
            AccessAttemptCommand::RecordDeniedRequest {
                user_id,
                role,
                method,
                route,
                path,
                at,
            } => AccessAttemptEvent::AccessDenied {
                user_id,
                role,
                method,
                route,
                path: path
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(2048)
                    .collect(),
                denied_at: at,
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: AccessAttemptEvent) {
        self.recorded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 3, 3, 3, 3).unwrap()
    }

    #[test]
    fn failed_login_is_recorded_with_a_bounded_login() {
        let long = format!("  {}  ", "x".repeat(1000));
        TestFramework::<AccessAttempt>::with(())
            .given_no_previous_events()
            .when(AccessAttemptCommand::RecordFailedLogin {
                login: long,
                user_id: Some(Uuid::from_u128(7)),
                reason: LoginFailure::WrongPassword,
                at: at(),
            })
            .then_expect_events(vec![AccessAttemptEvent::LoginFailed {
                login: "x".repeat(MAX_LOGIN_LEN),
                user_id: Some(Uuid::from_u128(7)),
                reason: LoginFailure::WrongPassword,
                attempted_at: at(),
            }]);
    }

    #[test]
    fn the_name_typed_for_no_account_is_not_kept() {
        TestFramework::<AccessAttempt>::with(())
            .given_no_previous_events()
            .when(AccessAttemptCommand::RecordFailedLogin {
                login: "hunter2-typed-in-the-wrong-field".into(),
                user_id: None,
                reason: LoginFailure::UnknownUser,
                at: at(),
            })
            .then_expect_events(vec![AccessAttemptEvent::LoginFailed {
                login: String::new(),
                user_id: None,
                reason: LoginFailure::UnknownUser,
                attempted_at: at(),
            }]);
    }

    #[test]
    fn denied_request_is_recorded_once() {
        let denied = AccessAttemptEvent::AccessDenied {
            user_id: Uuid::from_u128(1),
            role: Role::Viewer,
            method: "POST".into(),
            route: "/api/v1/users".into(),
            path: "/api/v1/users".into(),
            denied_at: at(),
        };
        let command = AccessAttemptCommand::RecordDeniedRequest {
            user_id: Uuid::from_u128(1),
            role: Role::Viewer,
            method: "POST".into(),
            route: "/api/v1/users".into(),
            path: "/api/v1/users".into(),
            at: at(),
        };
        TestFramework::<AccessAttempt>::with(())
            .given_no_previous_events()
            .when(command.clone())
            .then_expect_events(vec![denied.clone()]);
        TestFramework::<AccessAttempt>::with(())
            .given(vec![denied])
            .when(command)
            .then_expect_error(AccessAttemptError::AlreadyRecorded);
    }
}
