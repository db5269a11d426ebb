//! The `User` aggregate: accounts, profiles, roles, activation and password changes.
//!
//! Password hashes never enter this aggregate or its events: the caller stores the
//! hash in the credentials table and the events only record that a change happened.
//! Rules that span users (unique usernames, "keep one active admin") are checked
//! by the caller, which passes the facts it looked up in the command.

#[cfg(test)]
mod tests;
mod validation;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{AuditAction, Audited};

use crate::Role;
pub use validation::{validate_email, validate_full_name, validate_username};

/// Commands accepted by [`User`].
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Register a new account.
    CreateUser {
        user_id: Uuid,
        username: String,
        email: String,
        full_name: String,
        role: Role,
        /// The account must choose a new password at its first login.
        must_change_password: bool,
        at: DateTime<Utc>,
    },
    /// Change email and/or full name. Fields left `None` stay as they are.
    UpdateProfile {
        email: Option<String>,
        full_name: Option<String>,
        at: DateTime<Utc>,
    },
    /// Give the account another role.
    ChangeRole {
        role: Role,
        /// Who asks: an admin may not demote themselves.
        actor_id: Option<Uuid>,
        /// Active admins other than this user, looked up by the caller.
        other_active_admins: u64,
        at: DateTime<Utc>,
    },
    /// Block every login and every request of the account.
    Deactivate {
        actor_id: Option<Uuid>,
        other_active_admins: u64,
        at: DateTime<Utc>,
    },
    /// Allow the account again.
    Reactivate { at: DateTime<Utc> },
    /// Record that a new password hash was stored for the account.
    ChangePassword {
        /// True when an admin set it for someone else: the user must change it again.
        reset_by_admin: bool,
        at: DateTime<Utc>,
    },
    /// Several admin changes at once: all their events are written together or none.
    Update {
        email: Option<String>,
        full_name: Option<String>,
        role: Option<Role>,
        active: Option<bool>,
        /// An admin set a new password (the hash is already stored by the caller).
        password_reset: bool,
        actor_id: Option<Uuid>,
        other_active_admins: u64,
        at: DateTime<Utc>,
    },
    /// Remove the account for good.
    Delete {
        actor_id: Option<Uuid>,
        other_active_admins: u64,
        at: DateTime<Utc>,
    },
}

impl UserCommand {
    /// A composite [`UserCommand::Update`] as the commands it is made of, in the order
    /// they are decided; any other command is its own only part.
    fn into_parts(self) -> Vec<UserCommand> {
        let UserCommand::Update {
            email,
            full_name,
            role,
            active,
            password_reset,
            actor_id,
            other_active_admins,
            at,
        } = self
        else {
            return vec![self];
        };
        let mut parts = vec![UserCommand::UpdateProfile {
            email,
            full_name,
            at,
        }];
        if let Some(role) = role {
            parts.push(UserCommand::ChangeRole {
                role,
                actor_id,
                other_active_admins,
                at,
            });
        }
        match active {
            Some(true) => parts.push(UserCommand::Reactivate { at }),
            Some(false) => parts.push(UserCommand::Deactivate {
                actor_id,
                other_active_admins,
                at,
            }),
            None => {}
        }
        if password_reset {
            parts.push(UserCommand::ChangePassword {
                reset_by_admin: true,
                at,
            });
        }
        parts
    }
}

/// Events emitted by [`User`]. Persisted names never change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserCreated {
        user_id: Uuid,
        username: String,
        email: String,
        full_name: String,
        role: Role,
        must_change_password: bool,
        created_at: DateTime<Utc>,
    },
    UserProfileUpdated {
        user_id: Uuid,
        /// The new email, when it changed.
        email: Option<String>,
        /// The new full name, when it changed.
        full_name: Option<String>,
        updated_at: DateTime<Utc>,
    },
    UserRoleChanged {
        user_id: Uuid,
        from: Role,
        to: Role,
        changed_at: DateTime<Utc>,
    },
    UserDeactivated {
        user_id: Uuid,
        deactivated_at: DateTime<Utc>,
    },
    UserReactivated {
        user_id: Uuid,
        reactivated_at: DateTime<Utc>,
    },
    UserPasswordChanged {
        user_id: Uuid,
        reset_by_admin: bool,
        must_change_password: bool,
        changed_at: DateTime<Utc>,
    },
    UserDeleted {
        user_id: Uuid,
        username: String,
        deleted_at: DateTime<Utc>,
    },
}

impl UserEvent {
    /// The stored names of the events that change what a user may do: a role change
    /// (`to`), a deactivation, a reactivation, a deletion.
    pub const ACCESS: [&'static str; 4] = [
        "UserRoleChanged",
        "UserDeactivated",
        "UserReactivated",
        "UserDeleted",
    ];
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserCreated { .. } => "UserCreated",
            UserEvent::UserProfileUpdated { .. } => "UserProfileUpdated",
            UserEvent::UserRoleChanged { .. } => Self::ACCESS[0],
            UserEvent::UserDeactivated { .. } => Self::ACCESS[1],
            UserEvent::UserReactivated { .. } => Self::ACCESS[2],
            UserEvent::UserPasswordChanged { .. } => "UserPasswordChanged",
            UserEvent::UserDeleted { .. } => Self::ACCESS[3],
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        crate::upcasting::version_of(User::TYPE, &self.event_type())
    }
}

impl Audited for UserEvent {
    fn audit_action(&self) -> AuditAction<'_> {
        let verb = match self {
            UserEvent::UserCreated { .. } => "create",
            UserEvent::UserProfileUpdated { .. } => "update",
            UserEvent::UserRoleChanged { .. } => "role_change",
            UserEvent::UserDeactivated { .. } => "deactivate",
            UserEvent::UserReactivated { .. } => "reactivate",
            UserEvent::UserPasswordChanged { .. } => "password_change",
            UserEvent::UserDeleted { .. } => "delete",
        };
        AuditAction::new(User::TYPE, verb)
    }

    fn user_id(&self) -> Option<Uuid> {
        match self {
            UserEvent::UserCreated { user_id, .. }
            | UserEvent::UserProfileUpdated { user_id, .. }
            | UserEvent::UserRoleChanged { user_id, .. }
            | UserEvent::UserDeactivated { user_id, .. }
            | UserEvent::UserReactivated { user_id, .. }
            | UserEvent::UserPasswordChanged { user_id, .. }
            | UserEvent::UserDeleted { user_id, .. } => Some(*user_id),
        }
    }

    fn username(&self) -> Option<&str> {
        match self {
            UserEvent::UserCreated { username, .. } | UserEvent::UserDeleted { username, .. } => {
                Some(username)
            }
            _ => None,
        }
    }
}

/// Why a [`UserCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user already exists")]
    AlreadyExists,
    #[error("user not found")]
    NotFound,
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("you cannot {0} your own account")]
    SelfChange(&'static str),
    #[error("this is the last active admin: keep at least one active admin")]
    LastAdmin,
}

/// The state a [`User`] decides from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    id: Option<Uuid>,
    username: String,
    email: String,
    full_name: String,
    role: Option<Role>,
    active: bool,
    must_change_password: bool,
    deleted: bool,
}

impl User {
    fn require_existing(&self) -> Result<Uuid, UserError> {
        match self.id {
            Some(id) if !self.deleted => Ok(id),
            _ => Err(UserError::NotFound),
        }
    }

    /// True when this user is an active admin, whose loss must leave another one.
    fn is_active_admin(&self) -> bool {
        self.active && self.role == Some(Role::Admin)
    }

    fn refuse_self(actor_id: Option<Uuid>, id: Uuid, what: &'static str) -> Result<(), UserError> {
        if actor_id == Some(id) {
            return Err(UserError::SelfChange(what));
        }
        Ok(())
    }

    fn keep_an_admin(&self, other_active_admins: u64) -> Result<(), UserError> {
        if self.is_active_admin() && other_active_admins == 0 {
            return Err(UserError::LastAdmin);
        }
        Ok(())
    }

    /// Decides the events of `command`, applying each to `self` as it goes, so a
    /// composite command decides every part on the state left by the previous ones.
    fn decide(&mut self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        let mut out = Vec::new();
        match command {
            UserCommand::CreateUser {
                user_id,
                username,
                email,
                full_name,
                role,
                must_change_password,
                at,
            } => {
                if self.id.is_some() {
                    return Err(UserError::AlreadyExists);
                }
                validate_username(&username)?;
                validate_email(&email)?;
                validate_full_name(&full_name)?;
                let event = UserEvent::UserCreated {
                    user_id,
                    username,
                    email: email.to_lowercase(),
                    full_name: full_name.trim().to_string(),
                    role,
                    must_change_password,
                    created_at: at,
                };
                self.emit(event, &mut out);
            }
            UserCommand::UpdateProfile {
                email,
                full_name,
                at,
            } => {
                let user_id = self.require_existing()?;
                if let Some(email) = &email {
                    validate_email(email)?;
                }
                if let Some(full_name) = &full_name {
                    validate_full_name(full_name)?;
                }
                let email = email.map(|e| e.to_lowercase()).filter(|e| *e != self.email);
                let full_name = full_name
                    .map(|n| n.trim().to_string())
                    .filter(|n| *n != self.full_name);
                if email.is_none() && full_name.is_none() {
                    return Ok(out);
                }
                let event = UserEvent::UserProfileUpdated {
                    user_id,
                    email,
                    full_name,
                    updated_at: at,
                };
                self.emit(event, &mut out);
            }
            UserCommand::Reactivate { at } => {
                let user_id = self.require_existing()?;
                if self.active {
                    return Ok(out);
                }
                let event = UserEvent::UserReactivated {
                    user_id,
                    reactivated_at: at,
                };
                self.emit(event, &mut out);
            }
            UserCommand::ChangePassword { reset_by_admin, at } => {
                let user_id = self.require_existing()?;
                let event = UserEvent::UserPasswordChanged {
                    user_id,
                    reset_by_admin,
                    must_change_password: reset_by_admin,
                    changed_at: at,
                };
                self.emit(event, &mut out);
            }
            update @ UserCommand::Update { .. } => {
                self.require_existing()?;
                // Each part decides on the state left by the previous ones; an error in
                // any part discards the events of all of them.
                for part in update.into_parts() {
                    out.extend(self.decide(part)?);
                }
            }
            guarded @ (UserCommand::ChangeRole { .. }
            | UserCommand::Deactivate { .. }
            | UserCommand::Delete { .. }) => return self.decide_guarded(guarded, out),
        }
        Ok(out)
    }

    /// Commands that take rights away: an admin may not apply them to their own account,
    /// and one active admin must remain.
    fn decide_guarded(
        &mut self,
        command: UserCommand,
        mut out: Vec<UserEvent>,
    ) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::ChangeRole {
                role,
                actor_id,
                other_active_admins,
                at,
            } => {
                let user_id = self.require_existing()?;
                let from = self.role.unwrap_or(Role::Viewer);
                if from == role {
                    return Ok(out);
                }
                Self::refuse_self(actor_id, user_id, "change the role of")?;
                self.keep_an_admin(other_active_admins)?;
                let event = UserEvent::UserRoleChanged {
                    user_id,
                    from,
                    to: role,
                    changed_at: at,
                };
                self.emit(event, &mut out);
            }
            UserCommand::Deactivate {
                actor_id,
                other_active_admins,
                at,
            } => {
                let user_id = self.require_existing()?;
                if !self.active {
                    return Ok(out);
                }
                Self::refuse_self(actor_id, user_id, "deactivate")?;
                self.keep_an_admin(other_active_admins)?;
                let event = UserEvent::UserDeactivated {
                    user_id,
                    deactivated_at: at,
                };
                self.emit(event, &mut out);
            }
            UserCommand::Delete {
                actor_id,
                other_active_admins,
                at,
            } => {
                let user_id = self.require_existing()?;
                Self::refuse_self(actor_id, user_id, "delete")?;
                self.keep_an_admin(other_active_admins)?;
                let event = UserEvent::UserDeleted {
                    user_id,
                    username: self.username.clone(),
                    deleted_at: at,
                };
                self.emit(event, &mut out);
            }
            // `decide` sends only these commands here: another command is a bug, and
            // sending it back would loop.
            other => unreachable!("not one of these commands: {other:?}"),
        }
        Ok(out)
    }

    fn emit(&mut self, event: UserEvent, out: &mut Vec<UserEvent>) {
        self.apply(event.clone());
        out.push(event);
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: UserCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), UserError> {
        // Decide on a copy: a refused part leaves this state untouched.
        let events = self.clone().decide(command)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserCreated {
                user_id,
                username,
                email,
                full_name,
                role,
                must_change_password,
                ..
            } => {
                self.id = Some(user_id);
                self.username = username;
                self.email = email;
                self.full_name = full_name;
                self.role = Some(role);
                self.active = true;
                self.must_change_password = must_change_password;
            }
            UserEvent::UserProfileUpdated {
                email, full_name, ..
            } => {
                if let Some(email) = email {
                    self.email = email;
                }
                if let Some(full_name) = full_name {
                    self.full_name = full_name;
                }
            }
            UserEvent::UserRoleChanged { to, .. } => self.role = Some(to),
            UserEvent::UserDeactivated { .. } => self.active = false,
            UserEvent::UserReactivated { .. } => self.active = true,
            UserEvent::UserPasswordChanged {
                must_change_password,
                ..
            } => self.must_change_password = must_change_password,
            UserEvent::UserDeleted { .. } => self.deleted = true,
        }
    }
}
