//! Sessions: login (with throttling per account and per client), refresh-token rotation
//! (a reused token revokes its session), logout, password changes, and the caller of a
//! request looked up from its access token. Logins and their failures are events
//! (`Session` and `AccessAttempt` aggregates), so the audit log shows attempts as well as
//! successes.

use std::time::Instant;

use chrono::Utc;
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand, LoginFailure};
use dcp_aggregates::session::{RevocationReason, Session, SessionCommand};
use dcp_aggregates::user::{User, UserCommand};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::revocation::revoke_sessions;
use super::users::{find_user, UserView};
use super::{Accounts, AccountsError};
use crate::auth::password::{check_policy, MAX_PASSWORD_LEN};
use crate::auth::principal::{load_principal, Principal, SessionRefusal};
use crate::auth::refresh::{self, Redemption};
use crate::auth::throttle::client_key;
use crate::auth::tokens::TokenError;
use crate::commands::{CommandBus, CommandError, CommandMeta, RequestContext};
use crate::event_store::SideWrite;
use crate::read_models::{SESSIONS, USERS};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email.
    pub username: Option<String>,
    /// Email (alternative to `username`).
    pub email: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token; may be omitted when the `dcp_refresh` cookie is sent.
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// A session's new tokens, for the caller to hand out.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the session (and its refresh token) expires.
    pub session_ttl: u64,
    pub user: UserView,
    /// Where the login was recorded (none for a refresh).
    pub position: Option<i64>,
}

/// The account a login names, as the read models have it.
struct Found {
    user_id: Uuid,
    username: String,
    role: String,
    is_active: bool,
    hash: Option<String>,
}

impl Accounts {
    /// The caller a bearer token names: the token verified, then its session and user looked
    /// up (so a logout, deactivation or demotion takes effect on the very next request).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal, AccountsError> {
        let token = token.ok_or(AccountsError::NotSignedIn(
            "authentication required: send a bearer access token",
        ))?;
        let (user_id, session_id) = self.tokens.verify(token).map_err(|e| match e {
            TokenError::Expired => AccountsError::TokenExpired,
            TokenError::Invalid => AccountsError::TokenInvalid("the access token is invalid"),
        })?;
        match load_principal(self.reads.pool(), user_id, session_id).await? {
            Ok(principal) => Ok(principal),
            Err(SessionRefusal::SessionClosed) => Err(AccountsError::TokenInvalid(
                "the session has ended; log in again",
            )),
            Err(SessionRefusal::AccountInactive) => {
                Err(AccountsError::NotSignedIn("the account is deactivated"))
            }
        }
    }

    /// Logs in with username (or email) and password; a new session and its tokens.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn login(
        &self,
        request: LoginRequest,
        context: &RequestContext,
        meta: &CommandMeta,
    ) -> Result<IssuedTokens, AccountsError> {
        let login = login_name(&request)?;
        if request.password.expose_secret().len() > MAX_PASSWORD_LEN {
            return Err(AccountsError::invalid("password", "password is too long"));
        }
        let now = Instant::now();
        let ip = context.client_ip.map(client_key);
        if let Some(wait) = ip.and_then(|ip| self.throttles.ip.check(&ip, now)) {
            return Err(AccountsError::rate_limited(wait));
        }
        // A few attempts at once per client, one per account: every attempt is counted
        // before the next may start, so parallel requests cannot outrun the throttle.
        let _ip_slot = match ip {
            Some(ip) => Some(
                self.throttles
                    .ips_in_flight
                    .try_enter(&ip)
                    .ok_or_else(AccountsError::busy)?,
            ),
            None => None,
        };
        let lowered = login.to_lowercase();
        let found = self.find_login(&lowered).await?;
        // Username and email of one account share one budget.
        let account_key = match &found {
            Some(user) => format!("user:{}", user.user_id),
            None => format!("login:{lowered}"),
        };
        if let Some(wait) = self.throttles.account.check(&account_key, now) {
            return Err(AccountsError::rate_limited(wait));
        }
        let _account_slot = self
            .throttles
            .accounts_in_flight
            .try_enter(&account_key)
            .ok_or_else(AccountsError::busy)?;
        let hash = found.as_ref().and_then(|f| f.hash.as_deref());
        let password_ok = self.hasher.verify(&request.password, hash).await?;
        let failure = match &found {
            None => Some(LoginFailure::UnknownUser),
            Some(_) if !password_ok => Some(LoginFailure::WrongPassword),
            Some(user) if !user.is_active => Some(LoginFailure::InactiveUser),
            Some(_) => None,
        };
        let found_id = found.as_ref().map(|f| f.user_id);
        let (Some(user), None) = (found, failure) else {
            self.throttles.account.fail(&account_key, now);
            if let Some(ip) = ip {
                self.throttles.ip.fail(&ip, now);
            }
            let reason = failure.unwrap_or(LoginFailure::UnknownUser);
            record_failed_login(&self.commands, meta, &login, found_id, reason).await;
            return Err(AccountsError::BadCredentials);
        };
        self.throttles.account.succeed(&account_key);
        self.start_session(user, meta).await
    }

    async fn find_login(&self, lowered: &str) -> Result<Option<Found>, sqlx::Error> {
        let found: Option<(Uuid, String, String, bool, Option<String>)> = sqlx::query_as(
            "SELECT u.id, u.username, u.role, u.is_active, c.password_hash FROM users u \
             LEFT JOIN credentials c ON c.user_id = u.id \
             WHERE lower(u.username) = $1 OR lower(u.email) = $1 ORDER BY (lower(u.username) = $1) DESC LIMIT 1",
        )
        .bind(lowered)
        .fetch_optional(self.reads.pool())
        .await?;
        Ok(
            found.map(|(user_id, username, role, is_active, hash)| Found {
                user_id,
                username,
                role,
                is_active,
                hash,
            }),
        )
    }

    /// Starts a session for `user`, with its refresh token, once the read models show it.
    async fn start_session(
        &self,
        user: Found,
        meta: &CommandMeta,
    ) -> Result<IssuedTokens, AccountsError> {
        let session_id = Uuid::now_v7();
        let expires_at = Utc::now() + self.sessions.session_ttl;
        let command = SessionCommand::Start {
            session_id,
            user_id: user.user_id,
            username: user.username.clone(),
            expires_at,
            at: Utc::now(),
        };
        let meta = meta.acting_as(user.user_id, &user.username, &user.role);
        let cursor = self
            .commands
            .execute::<Session>(&session_id.to_string(), command, &meta)
            .await?;
        let refresh_token = refresh::new_token();
        refresh::store(
            self.reads.pool(),
            &refresh_token,
            session_id,
            user.user_id,
            expires_at,
        )
        .await?;
        let position = self.reads.settle(cursor, SESSIONS).await?;
        let shown = find_user(self.reads.pool(), user.user_id)
            .await?
            .ok_or(AccountsError::BadCredentials)?;
        self.issue(shown, session_id, refresh_token, position)
    }

    fn issue(
        &self,
        user: UserView,
        session_id: Uuid,
        refresh_token: String,
        position: Option<i64>,
    ) -> Result<IssuedTokens, AccountsError> {
        Ok(IssuedTokens {
            access_token: self.tokens.issue(user.id, session_id)?,
            refresh_token,
            expires_in: self.tokens.access_ttl().as_secs(),
            session_ttl: self.sessions.session_ttl.as_secs(),
            user,
            position,
        })
    }

    /// Trades a refresh token for new tokens. The old one is spent; presenting it again
    /// within the grace period yields the same successor (or a refusal once that one is
    /// traded), and after it revokes the whole session.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn refresh(
        &self,
        token: Option<String>,
        meta: &CommandMeta,
    ) -> Result<IssuedTokens, AccountsError> {
        let token = token.ok_or(AccountsError::TokenInvalid("a refresh token is required"))?;
        let pool = self.reads.pool();
        let grace = self.sessions.refresh_reuse_grace;
        match refresh::redeem(pool, &token, grace, &self.successors).await? {
            Redemption::Invalid => Err(AccountsError::TokenInvalid(
                "the refresh token is invalid or expired",
            )),
            Redemption::Superseded => Err(AccountsError::TokenInvalid(
                "this refresh token was traded already and its successor since: use the newest one",
            )),
            Redemption::Reused {
                session_id,
                user_id,
            } => {
                self.revoke_reused(session_id, user_id, meta).await?;
                Err(AccountsError::TokenInvalid(
                    "this refresh token was already used: the session has been revoked; log in again",
                ))
            }
            Redemption::Rotated {
                session_id,
                user_id,
                token,
                ..
            } => {
                if load_principal(pool, user_id, session_id).await?.is_err() {
                    refresh::spend_session(pool, session_id).await?;
                    return Err(AccountsError::TokenInvalid(
                        "the session has ended; log in again",
                    ));
                }
                let user = find_user(pool, user_id)
                    .await?
                    .ok_or(AccountsError::TokenInvalid("the session has ended"))?;
                self.issue(user, session_id, token, None)
            }
        }
    }

    /// A refresh token presented again: its session is revoked.
    async fn revoke_reused(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        meta: &CommandMeta,
    ) -> Result<(), AccountsError> {
        let pool = self.reads.pool();
        let meta = match find_user(pool, user_id).await? {
            Some(user) => meta.acting_as(user_id, &user.username, &user.role),
            None => meta.clone(),
        };
        let command = SessionCommand::Revoke {
            reason: RevocationReason::RefreshTokenReuse,
            at: Utc::now(),
        };
        match self
            .commands
            .execute::<Session>(&session_id.to_string(), command, &meta)
            .await
        {
            Ok(cursor) => {
                self.reads.settle(cursor, SESSIONS).await?;
            }
            Err(CommandError::Rejected(_)) => {}
            Err(other) => return Err(other.into()),
        }
        refresh::spend_session(pool, session_id).await?;
        Ok(())
    }

    /// Ends `principal`'s session; where it was recorded.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn logout(
        &self,
        principal: &Principal,
        meta: &CommandMeta,
    ) -> Result<Option<i64>, AccountsError> {
        let command = SessionCommand::LogOut { at: Utc::now() };
        let cursor = self
            .commands
            .execute::<Session>(&principal.session_id.to_string(), command, meta)
            .await?;
        refresh::spend_session(self.reads.pool(), principal.session_id).await?;
        Ok(self.reads.settle(cursor, SESSIONS).await?)
    }

    /// The signed-in user.
    pub async fn me(&self, principal: &Principal) -> Result<UserView, AccountsError> {
        find_user(self.reads.pool(), principal.user_id)
            .await?
            .ok_or(AccountsError::NotSignedIn("the account no longer exists"))
    }

    /// Changes `principal`'s own password (the current one checked, throttled as logins
    /// are); the user's other sessions end.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn change_password(
        &self,
        principal: &Principal,
        request: ChangePasswordRequest,
        context: &RequestContext,
        meta: &CommandMeta,
    ) -> Result<(Option<i64>, UserView), AccountsError> {
        self.check_current_password(principal, &request.current_password, context)
            .await?;
        check_policy(request.new_password.expose_secret(), &principal.username)
            .map_err(|m| AccountsError::invalid("new_password", m))?;
        if request.new_password.expose_secret() == request.current_password.expose_secret() {
            return Err(AccountsError::invalid(
                "new_password",
                "the new password must differ from the current one",
            ));
        }
        let new_hash = self.hasher.hash(&request.new_password).await?;
        // The new hash commits in the same transaction as `UserPasswordChanged`.
        let command = UserCommand::ChangePassword {
            reset_by_admin: false,
            at: Utc::now(),
        };
        let side_writes = vec![SideWrite::SetPasswordHash {
            user_id: principal.user_id,
            hash: new_hash,
        }];
        let cursor = self
            .commands
            .execute_with::<User>(&principal.user_id.to_string(), command, meta, side_writes)
            .await?;
        let last = revoke_sessions(
            self.reads.pool(),
            &self.commands,
            principal.user_id,
            Some(principal.session_id),
            RevocationReason::PasswordChanged,
            meta,
        )
        .await?
        .max(cursor);
        let position = self.reads.settle(cursor, USERS).await?;
        self.reads.settle(last, SESSIONS).await?;
        let user = find_user(self.reads.pool(), principal.user_id)
            .await?
            .ok_or(AccountsError::NotFound)?;
        Ok((position, user))
    }

    /// Checks a password the caller gave as their current one, throttled as logins are.
    async fn check_current_password(
        &self,
        principal: &Principal,
        password: &SecretString,
        context: &RequestContext,
    ) -> Result<(), AccountsError> {
        let now = Instant::now();
        let account_key = format!("user:{}", principal.user_id);
        if let Some(wait) = self.throttles.account.check(&account_key, now) {
            return Err(AccountsError::rate_limited(wait));
        }
        let _account_slot = self
            .throttles
            .accounts_in_flight
            .try_enter(&account_key)
            .ok_or_else(AccountsError::busy)?;
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM credentials WHERE user_id = $1")
                .bind(principal.user_id)
                .fetch_optional(self.reads.pool())
                .await?;
        if password.expose_secret().len() > MAX_PASSWORD_LEN
            || !self.hasher.verify(password, hash.as_deref()).await?
        {
            self.throttles.account.fail(&account_key, now);
            if let Some(ip) = context.client_ip {
                self.throttles.ip.fail(&client_key(ip), now);
            }
            return Err(AccountsError::WrongPassword);
        }
        Ok(())
    }
}

/// The login a request names: its username or its email, not both.
fn login_name(request: &LoginRequest) -> Result<String, AccountsError> {
    let login = match (&request.username, &request.email) {
        (Some(login), None) | (None, Some(login)) => login.trim().to_string(),
        (Some(_), Some(_)) => {
            return Err(AccountsError::invalid(
                "username",
                "send either username or email, not both",
            ))
        }
        (None, None) => {
            return Err(AccountsError::invalid(
                "username",
                "username or email is required",
            ))
        }
    };
    if login.is_empty() || login.len() > 256 {
        return Err(AccountsError::invalid(
            "username",
            "username or email must be 1 to 256 characters",
        ));
    }
    Ok(login)
}

/// Records a failed login (the real reason, which the answer does not tell).
async fn record_failed_login(
    commands: &CommandBus,
    meta: &CommandMeta,
    login: &str,
    user_id: Option<Uuid>,
    reason: LoginFailure,
) {
    let command = AccessAttemptCommand::RecordFailedLogin {
        login: login.to_string(),
        user_id,
        reason,
        at: Utc::now(),
    };
    let id = Uuid::now_v7().to_string();
    if let Err(error) = commands.execute::<AccessAttempt>(&id, command, meta).await {
        tracing::error!(%error, "Failed to record a failed login");
    }
}
