//! A user account at a past moment.

use chrono::{DateTime, Utc};
use dcp_aggregates::user::UserEvent;
use serde::Serialize;

/// A user as an admin saw it: profile, role and whether the account could be used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserState {
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub active: bool,
    pub must_change_password: bool,
    pub deleted: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub password_changed_at: Option<DateTime<Utc>>,
}

impl UserState {
    pub(super) fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserCreated {
                username,
                email,
                full_name,
                role,
                must_change_password,
                created_at,
                ..
            } => {
                self.username = username;
                self.email = email;
                self.full_name = full_name;
                self.role = role.as_str().to_string();
                self.must_change_password = must_change_password;
                self.active = true;
                self.created_at = Some(created_at);
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
            UserEvent::UserRoleChanged { to, .. } => self.role = to.as_str().to_string(),
            UserEvent::UserDeactivated { .. } => self.active = false,
            UserEvent::UserReactivated { .. } => self.active = true,
            UserEvent::UserPasswordChanged {
                must_change_password,
                changed_at,
                ..
            } => {
                self.must_change_password = must_change_password;
                self.password_changed_at = Some(changed_at);
            }
            UserEvent::UserDeleted { .. } => {
                self.deleted = true;
                self.active = false;
            }
        }
    }
}
