//! Before anything is done to an existing container: it is looked up once, judged by the one
//! host-reach judgement ([`crate::docker::reach`]), and the role policy applied to what the
//! caller means to do; a refusal is recorded as a denied request. Everything after uses the
//! Docker id of that one lookup.

use super::{ContainerTarget, Containers, ContainersError};
use crate::auth::policy::{self, Consent, Judgement};
use crate::auth::principal::Principal;
use crate::commands::CommandMeta;
use crate::denials::Refused;
use crate::docker::policy::PolicyError;
use crate::docker::reach::{self, Resolved};
use crate::docker::DockerHosts;

/// What the caller means to do with a container, as far as the judgement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Change it (start, stop, restart, kill, pause, rename, remove, recreate) or
    /// disconnect it: what the platform protects matters.
    Act,
    /// Read what it prints (its logs): what the platform protects matters.
    Read,
    /// Run commands in it (a shell), or attach it to a network: everything it reaches
    /// matters, since a shell in it is a shell with its reach.
    Enter,
}

impl Containers {
    /// Looks up `reference` on `host` once and applies `principal`'s policy for `intent`,
    /// with `also` (what else the request touches: the network a container joins) and an
    /// admin's reason (`meta.reason`); a refusal is recorded as a denied request of `route`.
    pub async fn resolve_for(
        &self,
        principal: &Principal,
        at: (&str, &str),
        intent: Intent,
        also: Judgement,
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<Resolved, ContainersError> {
        let (host, reference) = at;
        super::check_reference(reference)?;
        let docker = self.hosts.client(host)?;
        let resolved = reach::resolve(&docker, host, reference)
            .await
            .map_err(ContainersError::lookup)?;
        let judgement = self.judge(&resolved, intent).await?.merge(also);
        let reason = meta.reason.as_deref();
        let verdict = match intent {
            Intent::Act => {
                policy::may_touch(principal.role, &judgement, Consent::new(None, reason))
            }
            Intent::Enter => policy::may_enter(principal.role, &judgement, reason),
            Intent::Read => policy::may_read(principal.role, &judgement),
        }
        .map_err(PolicyError::from);
        self.denials
            .enforce(principal, meta, route, verdict)
            .await?;
        Ok(resolved)
    }

    /// [`Containers::resolve_for`] a change of the container itself (an action, a recreate).
    pub async fn resolve_to_act(
        &self,
        principal: &Principal,
        at: (&str, &str),
        meta: &CommandMeta,
        route: Refused<'_>,
    ) -> Result<Resolved, ContainersError> {
        self.resolve_for(
            principal,
            at,
            Intent::Act,
            Judgement::default(),
            meta,
            route,
        )
        .await
    }

    /// The judgement of a resolved container for `intent`.
    async fn judge(
        &self,
        resolved: &Resolved,
        intent: Intent,
    ) -> Result<Judgement, ContainersError> {
        let docker = self.hosts.client(&resolved.host)?;
        Ok(match intent {
            Intent::Enter => resolved.judge(&docker, &self.deployment).await?,
            Intent::Act | Intent::Read => Judgement {
                protected: resolved
                    .protection(&docker, &self.deployment)
                    .await
                    .map(|why| policy::finding("id", format!("this container {why}")))
                    .into_iter()
                    .collect(),
                ..Judgement::default()
            },
        })
    }

    /// The container a resolved one is, with its aggregate (discovered if dcp has not seen
    /// it before).
    pub async fn target_of(
        &self,
        resolved: &Resolved,
        meta: &CommandMeta,
    ) -> Result<ContainerTarget, ContainersError> {
        self.resolve_inspected(&resolved.host, &resolved.inspect, meta)
            .await
    }

    /// What the platform protects, for the callers that judge networks and volumes.
    pub fn deployment(&self) -> &reach::Deployment {
        &self.deployment
    }
}
