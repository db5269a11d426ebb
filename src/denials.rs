//! Refused requests are events too: the audit log shows attempts, not only successes.

use chrono::Utc;
use dcp_aggregates::access_attempt::{AccessAttempt, AccessAttemptCommand};
use uuid::Uuid;

use crate::auth::principal::Principal;
use crate::commands::{CommandBus, CommandMeta};
use crate::docker::policy::PolicyError;

/// Records denied requests (`access.denied`).
#[derive(Clone)]
pub struct Denials {
    commands: CommandBus,
}

/// What was refused: the method, the route template and the path asked for.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
}

impl Denials {
    pub fn new(commands: CommandBus) -> Self {
        Denials { commands }
    }

    /// Passes a role policy's verdict on `POST route` through; an option the role may not
    /// use (not a bad value) is recorded as a denied request first.
    pub async fn enforce<T>(
        &self,
        principal: &Principal,
        meta: &CommandMeta,
        route: &str,
        verdict: Result<T, PolicyError>,
    ) -> Result<T, PolicyError> {
        if let Err(PolicyError::Forbidden { .. }) = &verdict {
            let refused = Refused {
                method: "POST",
                route,
                path: route,
            };
            self.record(principal, meta, refused).await;
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
