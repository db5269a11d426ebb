//! Accounts and sessions: users (created, changed, deleted as `User` commands), logins,
//! refresh-token rotation, logouts, password changes, the caller of a request, the first
//! users of a new installation, and password recovery from the command line.

mod bootstrap;
mod error;
mod recovery;
mod revocation;
mod sessions;
mod users;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use bootstrap::GeneratedLogin;
pub use error::AccountsError;
pub use recovery::reset_password;
pub use sessions::{ChangePasswordRequest, IssuedTokens, LoginRequest, RefreshRequest};
pub use users::{
    Answer, CreateUserRequest, NewUser, UpdateUserRequest, UserList, UserListQuery, UserView,
};

use crate::auth::password::PasswordHasher;
use crate::auth::refresh::Successors;
use crate::auth::throttle::{InFlight, Throttle, ThrottlePolicy};
use crate::auth::tokens::TokenKeys;
use crate::commands::CommandBus;
use crate::read_models::ReadModels;

/// Throttle for failed logins per account: 5 free, then 1 s doubling to 5 min.
pub const ACCOUNT_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    free_failures: 5,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(300),
    forget_after: Duration::from_secs(900),
};

/// Throttle for failed logins per client IP: 20 free, then 1 s doubling to 5 min.
pub const IP_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    free_failures: 20,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(300),
    forget_after: Duration::from_secs(900),
};

/// Failed logins and password checks, counted per account and per client, and the
/// attempts running now.
pub struct LoginThrottles {
    pub account: Throttle<String>,
    pub ip: Throttle<IpAddr>,
    /// Login or password-check attempts running now, per account (at most one).
    pub accounts_in_flight: InFlight<String>,
    /// Login attempts running now, per client (a few).
    pub ips_in_flight: InFlight<IpAddr>,
}

impl Default for LoginThrottles {
    fn default() -> Self {
        LoginThrottles {
            account: Throttle::new(ACCOUNT_THROTTLE),
            ip: Throttle::new(IP_THROTTLE),
            accounts_in_flight: InFlight::new(1),
            ips_in_flight: InFlight::new(4),
        }
    }
}

/// How long sessions live, and how long a just-traded refresh token is honoured again.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub session_ttl: Duration,
    pub refresh_reuse_grace: Duration,
}

/// The accounts service.
#[derive(Clone)]
pub struct Accounts {
    commands: CommandBus,
    reads: ReadModels,
    hasher: Arc<PasswordHasher>,
    tokens: Arc<TokenKeys>,
    /// Derives each refresh token's successor.
    successors: Successors,
    throttles: Arc<LoginThrottles>,
    sessions: SessionPolicy,
    /// Serialises, within this process, the changes that may remove an admin.
    admin_changes: Arc<tokio::sync::Mutex<()>>,
}

/// What an accounts service needs.
pub struct AccountsDeps {
    pub commands: CommandBus,
    pub reads: ReadModels,
    pub hasher: Arc<PasswordHasher>,
    pub tokens: Arc<TokenKeys>,
    pub successors: Successors,
    pub sessions: SessionPolicy,
}

impl Accounts {
    pub fn new(deps: AccountsDeps) -> Self {
        Accounts {
            commands: deps.commands,
            reads: deps.reads,
            hasher: deps.hasher,
            tokens: deps.tokens,
            successors: deps.successors,
            throttles: Arc::default(),
            sessions: deps.sessions,
            admin_changes: Arc::default(),
        }
    }
}
