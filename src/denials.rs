//! Refused requests are events too: the audit log shows attempts, not only successes.

use std::sync::Arc;

use chrono::Utc;
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand};
use uuid::Uuid;

use crate::auth::principal::Principal;
use crate::auth::throttle::{Throttle, ThrottlePolicy};
use crate::commands::{CommandBus, CommandMeta};
use crate::docker::policy::PolicyError;

/// Throttle for denied requests per user, whether the permission table or a role policy
/// refused them: 30 free, then 1 s doubling to 1 min.
pub const DENIAL_THROTTLE: ThrottlePolicy = ThrottlePolicy {
    free_failures: 30,
    base_delay: std::time::Duration::from_secs(1),
    max_delay: std::time::Duration::from_secs(60),
    forget_after: std::time::Duration::from_secs(300),
};

/// Records denied requests (`access.denied`), and throttles a user refused too often.
#[derive(Clone)]
pub struct Denials {
    commands: CommandBus,
    throttle: Arc<Throttle<Uuid>>,
}

/// What was refused: the method, the route template and the path asked for.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
}

impl<'a> Refused<'a> {
    /// A request to `method route` (the template stands for the path too: the services that
    /// judge a request know its route, not the path it was asked at).
    pub fn of(method: &'a str, route: &'a str) -> Self {
        Refused {
            method,
            route,
            path: route,
        }
    }
}

impl Denials {
    pub fn new(commands: CommandBus) -> Self {
        Denials {
            commands,
            throttle: Arc::new(Throttle::new(DENIAL_THROTTLE)),
        }
    }

    /// Counts one refusal of `principal`; `Some(seconds)` when they have been refused too
    /// often: the request is answered 429 and not recorded (a flood of refusals must not
    /// become a flood of events).
    pub fn count(&self, principal: &Principal) -> Option<u64> {
        let now = std::time::Instant::now();
        if let Some(wait) = self.throttle.check(&principal.user_id, now) {
            tracing::warn!(user = %principal.username, "repeated denied requests; throttled, not recorded");
            return Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        self.throttle.fail(&principal.user_id, now);
        None
    }

    /// Passes a role policy's verdict on the request `route` through; an option the role
    /// may not use (not a bad value) is counted and recorded as a denied request first, or
    /// answered as throttled when the user has been refused too often.
    pub async fn enforce<T>(
        &self,
        principal: &Principal,
        meta: &CommandMeta,
        route: Refused<'_>,
        verdict: Result<T, PolicyError>,
    ) -> Result<T, PolicyError> {
        if let Err(PolicyError::Forbidden { .. }) = &verdict {
            if let Some(retry_after) = self.count(principal) {
                return Err(PolicyError::Throttled { retry_after });
            }
            self.record(principal, meta, route).await;
        }
        verdict
    }

    /// Records that `principal` was refused `refused`; a failure to record is logged (the
    /// refusal stands either way).
    #[tracing::instrument(skip_all, fields(route = refused.route))]
    pub async fn record(&self, principal: &Principal, meta: &CommandMeta, refused: Refused<'_>) {
        let command = AccessAttemptCommand::RecordDeniedRequest {
            user_id: principal.user_id,
            role: principal.role,
            method: refused.method.to_string(),
            route: refused.route.to_string(),
            path: refused.path.to_string(),
            at: Utc::now(),
        };
        let id = Uuid::now_v7().to_string();
        if let Err(error) = self
            .commands
            .execute::<AccessAttempt>(&id, command, meta)
            .await
        {
            tracing::error!(%error, "Failed to record a denied request");
        }
    }
}
