//! The `Session` aggregate: one login, from its start to its logout or revocation.
//!
//! A session is the refresh-token family: rotating the refresh token is not an event
//! (it is bookkeeping in the refresh token table), but starting, ending and revoking
//! the family are, so the audit log shows every login and logout.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{AuditAction, Audited};

/// Why a session ended without a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// A refresh token that had already been used was presented again: the family is burnt.
    RefreshTokenReuse,
    /// The password changed (by the user: their other sessions end; reset by an admin: all end).
    PasswordChanged,
    /// An admin deactivated the account.
    AccountDeactivated,
    /// The account was deleted.
    AccountDeleted,
}

/// Commands accepted by [`Session`].
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    Start {
        session_id: Uuid,
        user_id: Uuid,
        username: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    LogOut {
        at: DateTime<Utc>,
    },
    Revoke {
        reason: RevocationReason,
        at: DateTime<Utc>,
    },
}

/// Events emitted by [`Session`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SessionEvent {
    SessionStarted {
        session_id: Uuid,
        user_id: Uuid,
        username: String,
        expires_at: DateTime<Utc>,
        started_at: DateTime<Utc>,
    },
    SessionLoggedOut {
        session_id: Uuid,
        user_id: Uuid,
        logged_out_at: DateTime<Utc>,
    },
    SessionRevoked {
        session_id: Uuid,
        user_id: Uuid,
        reason: RevocationReason,
        revoked_at: DateTime<Utc>,
    },
}

impl SessionEvent {
    /// The stored name of [`SessionEvent::SessionStarted`]: readers that want only the
    /// starts skip the other events without decoding them.
    pub const STARTED: &'static str = "SessionStarted";
    /// The stored names of the events that end a session.
    pub const ENDING: [&'static str; 2] = ["SessionLoggedOut", "SessionRevoked"];
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        match self {
            SessionEvent::SessionStarted { .. } => Self::STARTED,
            SessionEvent::SessionLoggedOut { .. } => Self::ENDING[0],
            SessionEvent::SessionRevoked { .. } => Self::ENDING[1],
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(Session::TYPE, &self.event_type())
    }
}

impl Audited for SessionEvent {
    fn audit_action(&self) -> AuditAction<'_> {
        let verb = match self {
            SessionEvent::SessionStarted { .. } => "login",
            SessionEvent::SessionLoggedOut { .. } => "logout",
            SessionEvent::SessionRevoked { .. } => "session_revoked",
        };
        AuditAction::new("auth", verb)
    }

    fn user_id(&self) -> Option<Uuid> {
        match self {
            SessionEvent::SessionStarted { user_id, .. }
            | SessionEvent::SessionLoggedOut { user_id, .. }
            | SessionEvent::SessionRevoked { user_id, .. } => Some(*user_id),
        }
    }

    fn username(&self) -> Option<&str> {
        match self {
            SessionEvent::SessionStarted { username, .. } => Some(username),
            SessionEvent::SessionLoggedOut { .. } | SessionEvent::SessionRevoked { .. } => None,
        }
    }
}

/// Why a [`SessionCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session already started")]
    AlreadyStarted,
    #[error("session not found")]
    NotFound,
    #[error("session has already ended")]
    AlreadyEnded,
    #[error("session must expire after it starts")]
    ExpiresBeforeStart,
}

/// The state a [`Session`] decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    id: Option<Uuid>,
    user_id: Option<Uuid>,
    ended: bool,
}

impl Session {
    fn require_open(&self) -> Result<(Uuid, Uuid), SessionError> {
        let (Some(id), Some(user_id)) = (self.id, self.user_id) else {
            return Err(SessionError::NotFound);
        };
        if self.ended {
            return Err(SessionError::AlreadyEnded);
        }
        Ok((id, user_id))
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: SessionCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), SessionError> {
        let event = match command {
            SessionCommand::Start {
                session_id,
                user_id,
                username,
                expires_at,
                at,
            } => {
                if self.id.is_some() {
                    return Err(SessionError::AlreadyStarted);
                }
                if expires_at <= at {
                    return Err(SessionError::ExpiresBeforeStart);
                }
                SessionEvent::SessionStarted {
                    session_id,
                    user_id,
                    username,
                    expires_at,
                    started_at: at,
                }
            }
            SessionCommand::LogOut { at } => {
                let (session_id, user_id) = self.require_open()?;
                SessionEvent::SessionLoggedOut {
                    session_id,
                    user_id,
                    logged_out_at: at,
                }
            }
            SessionCommand::Revoke { reason, at } => {
                let (session_id, user_id) = self.require_open()?;
                SessionEvent::SessionRevoked {
                    session_id,
                    user_id,
                    reason,
                    revoked_at: at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::SessionStarted {
                session_id,
                user_id,
                ..
            } => {
                self.id = Some(session_id);
                self.user_id = Some(user_id);
            }
            SessionEvent::SessionLoggedOut { .. } | SessionEvent::SessionRevoked { .. } => {
                self.ended = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use cqrs_es::test::TestFramework;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap()
    }
    const SID: Uuid = Uuid::from_u128(7);
    const UID: Uuid = Uuid::from_u128(8);

    fn started() -> SessionEvent {
        SessionEvent::SessionStarted {
            session_id: SID,
            user_id: UID,
            username: "bob".into(),
            expires_at: at() + Duration::days(7),
            started_at: at(),
        }
    }

    #[test]
    fn start_then_log_out() {
        TestFramework::<Session>::with(())
            .given_no_previous_events()
            .when(SessionCommand::Start {
                session_id: SID,
                user_id: UID,
                username: "bob".into(),
                expires_at: at() + Duration::days(7),
                at: at(),
            })
            .then_expect_events(vec![started()]);
        TestFramework::<Session>::with(())
            .given(vec![started()])
            .when(SessionCommand::LogOut { at: at() })
            .then_expect_events(vec![SessionEvent::SessionLoggedOut {
                session_id: SID,
                user_id: UID,
                logged_out_at: at(),
            }]);
    }

    #[test]
    fn start_rules() {
        TestFramework::<Session>::with(())
            .given(vec![started()])
            .when(SessionCommand::Start {
                session_id: SID,
                user_id: UID,
                username: "bob".into(),
                expires_at: at() + Duration::days(7),
                at: at(),
            })
            .then_expect_error(SessionError::AlreadyStarted);
        TestFramework::<Session>::with(())
            .given_no_previous_events()
            .when(SessionCommand::Start {
                session_id: SID,
                user_id: UID,
                username: "bob".into(),
                expires_at: at(),
                at: at(),
            })
            .then_expect_error(SessionError::ExpiresBeforeStart);
    }

    #[test]
    fn revoke_and_ended_sessions() {
        let revoked = SessionEvent::SessionRevoked {
            session_id: SID,
            user_id: UID,
            reason: RevocationReason::RefreshTokenReuse,
            revoked_at: at(),
        };
        TestFramework::<Session>::with(())
            .given(vec![started()])
            .when(SessionCommand::Revoke {
                reason: RevocationReason::RefreshTokenReuse,
                at: at(),
            })
            .then_expect_events(vec![revoked.clone()]);
        TestFramework::<Session>::with(())
            .given(vec![started(), revoked])
            .when(SessionCommand::LogOut { at: at() })
            .then_expect_error(SessionError::AlreadyEnded);
        TestFramework::<Session>::with(())
            .given_no_previous_events()
            .when(SessionCommand::LogOut { at: at() })
            .then_expect_error(SessionError::NotFound);
    }
}
