//! What each role may do beyond which routes it may call (that is the permission table,
//! the HTTP layer's `permissions` module): every other role decision of the server is one
//! function here (the one redaction of values that may be secrets is `redaction`).

use dcp_aggregates::operation::SETTABLE_LABELS;
use dcp_aggregates::Role;

use super::principal::Principal;

/// One thing the judgement found, by the request field (or Docker option) that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub field: &'static str,
    pub why: String,
}

pub fn finding(field: &'static str, why: impl Into<String>) -> Finding {
    Finding {
        field,
        why: why.into(),
    }
}

/// What a container reaches, as `crate::docker::reach` judges it (the one host-reach
/// judgement): options that reach the host, what admins keep for themselves, and what the
/// platform protects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    pub reaching: Vec<Finding>,
    pub admins_own: Vec<Finding>,
    pub protected: Vec<Finding>,
}

impl Judgement {
    /// Adds what another judgement found (a container and the network it is to join).
    pub fn merge(mut self, other: Judgement) -> Judgement {
        self.reaching.extend(other.reaching);
        self.admins_own.extend(other.admins_own);
        self.protected.extend(other.protected);
        self
    }
}

/// What a caller says along with a request that touches what the judgement found: that
/// it means to reach the host (`allow_privileged`), and why.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consent<'a> {
    pub allow_privileged: bool,
    pub reason: Option<&'a str>,
}

impl<'a> Consent<'a> {
    pub fn new(allow_privileged: Option<bool>, reason: Option<&'a str>) -> Self {
        Consent {
            allow_privileged: allow_privileged == Some(true),
            reason: reason.map(str::trim).filter(|r| !r.is_empty()),
        }
    }
}

/// A refusal naming the first field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub message: String,
}

/// What `role` may do with what [`crate::docker::reach`] found (the one judgement): nothing
/// for operators and viewers; for admins, options that reach the host with
/// `allow_privileged` and a reason, protected resources with a reason, and their own
/// volumes and networks freely.
pub fn may_touch(role: Role, judgement: &Judgement, consent: Consent<'_>) -> Result<(), Refusal> {
    let whys = |findings: &[Finding]| {
        findings
            .iter()
            .map(|f| f.why.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let first = |findings: &[Finding]| findings.first().map(|f| f.field).unwrap_or("id");
    if role != Role::Admin {
        for (findings, what) in [
            (&judgement.reaching, "reaches the host"),
            (&judgement.protected, "is protected"),
            (&judgement.admins_own, "is kept for admins"),
        ] {
            if !findings.is_empty() {
                return Err(Refusal {
                    field: first(findings),
                    message: format!(
                        "not allowed for the role '{role}': {} ({what})",
                        whys(findings)
                    ),
                });
            }
        }
        return Ok(());
    }
    let consented = consent.allow_privileged && consent.reason.is_some();
    if !judgement.reaching.is_empty() && !consented {
        return Err(Refusal {
            field: first(&judgement.reaching),
            message: format!(
                "these reach the host: {}; an admin must also send allow_privileged: true and a reason",
                whys(&judgement.reaching)
            ),
        });
    }
    if !judgement.protected.is_empty() && consent.reason.is_none() {
        return Err(Refusal {
            field: first(&judgement.protected),
            message: format!(
                "{}: an admin acts on what the platform protects only with a reason",
                whys(&judgement.protected)
            ),
        });
    }
    Ok(())
}

/// Entering a container (a shell in it, or joining it to a network): for operators and
/// viewers nothing the judgement found; admins open shells and join networks in what
/// reaches the host as before (they made it so, saying why), and need a reason only for
/// what the platform protects.
pub fn may_enter(role: Role, judgement: &Judgement, reason: Option<&str>) -> Result<(), Refusal> {
    if role != Role::Admin {
        return may_touch(role, judgement, Consent::default());
    }
    let protected = Judgement {
        protected: judgement.protected.clone(),
        ..Judgement::default()
    };
    may_touch(role, &protected, Consent::new(None, reason))
}

/// Reading what a container prints (its logs): not for operators and viewers when the
/// platform protects it (its services print what should stay with admins); admins read it
/// as they read everything.
pub fn may_read(role: Role, judgement: &Judgement) -> Result<(), Refusal> {
    match role {
        Role::Admin => Ok(()),
        _ => may_touch(role, judgement, Consent::default()),
    }
}

/// The `dcp.` labels a request may set (`dcp.protected`, `dcp.shared`): admins only, as
/// they decide what the platform protects and which of their networks others may join.
pub fn may_label(role: Role, keys: &[&str]) -> Result<(), String> {
    match keys.iter().find(|k| SETTABLE_LABELS.contains(k)) {
        Some(key) if role != Role::Admin => Err(format!("only admins set the label '{key}'")),
        _ => Ok(()),
    }
}

/// What a socket is opened for, as far as roles go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// A shell in a container (runs commands in it).
    Exec,
    /// Events, logs, stats, task progress: reading.
    Reading,
}

/// Exec runs commands in a container: operators and admins only; the others read.
pub fn may_open_socket(role: Role, kind: SocketKind) -> bool {
    match kind {
        SocketKind::Exec => matches!(role, Role::Admin | Role::Operator),
        SocketKind::Reading => true,
    }
}

/// The facts about an event that decide who may see it.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    /// Who caused it.
    pub actor_id: Option<&'a str>,
    /// For a session's events, whose session it is.
    pub session_user: Option<&'a str>,
}

/// Whether `viewer` may see an event: admins see everything; the others see Docker
/// resources and hosts, their own wizards, and of users and sessions only their own.
pub fn may_see_event(viewer: &Principal, event: EventFacts<'_>) -> bool {
    if viewer.role == Role::Admin {
        return true;
    }
    let own = viewer.user_id.to_string();
    match event.aggregate_type {
        "container" | "image" | "volume" | "network" | "host" => true,
        "wizard" => event.actor_id == Some(own.as_str()),
        "user" => event.aggregate_id == own,
        "session" => event.session_user == Some(own.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgement(reaching: bool, protected: bool, admins_own: bool) -> Judgement {
        let found = |on: bool, field| {
            on.then(|| Finding {
                field,
                why: format!("{field} found"),
            })
            .into_iter()
            .collect()
        };
        Judgement {
            reaching: found(reaching, "privileged"),
            protected: found(protected, "id"),
            admins_own: found(admins_own, "volumes"),
        }
    }

    #[test]
    fn what_reaches_is_for_admins_who_say_so_and_why() {
        let none = Consent::default();
        let why = Consent::new(None, Some("maintenance"));
        let all = Consent::new(Some(true), Some("debug"));
        let blank = Consent::new(Some(true), Some("  "));
        assert!(may_touch(Role::Operator, &Judgement::default(), none).is_ok());
        for (r, p, a) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            for role in [Role::Operator, Role::Viewer] {
                assert!(may_touch(role, &judgement(r, p, a), all).is_err());
            }
        }
        assert_eq!(
            may_touch(Role::Admin, &judgement(true, false, false), blank)
                .unwrap_err()
                .field,
            "privileged"
        );
        assert!(may_touch(Role::Admin, &judgement(true, false, false), why).is_err());
        assert!(may_touch(Role::Admin, &judgement(true, false, false), all).is_ok());
        assert!(may_touch(Role::Admin, &judgement(false, true, false), none).is_err());
        assert!(may_touch(Role::Admin, &judgement(false, true, false), why).is_ok());
        assert!(may_touch(Role::Admin, &judgement(false, false, true), none).is_ok());
        assert!(may_enter(Role::Admin, &judgement(true, false, true), None).is_ok());
        assert!(may_enter(Role::Admin, &judgement(true, true, false), None).is_err());
        assert!(may_enter(Role::Admin, &judgement(false, true, false), Some("why")).is_ok());
        assert!(may_enter(Role::Operator, &judgement(false, false, true), Some("why")).is_err());
        assert!(!may_open_socket(Role::Viewer, SocketKind::Exec));
        assert!(may_open_socket(Role::Viewer, SocketKind::Reading));
    }
}
