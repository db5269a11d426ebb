//! What each role may do beyond which routes it may call (that is the permission table,
//! the HTTP layer's `permissions` module): every other role decision of the server is one
//! function here, and so is the one redaction of values that may be secrets.

use dcp_aggregates::Role;
use serde_json::Value;

use super::principal::Principal;

/// What a redacted value reads as.
pub const REDACTED: &str = "<redacted>";

/// Whether `role` may read values that may be secrets (a container's environment values).
pub fn reads_secrets(role: Role) -> bool {
    role == Role::Admin
}

/// Replaces the values of `holder.env` (a create request's spec, or a container's
/// configuration) with [`REDACTED`], keeping the names: the one redaction of environment
/// values, for every reader that may not see them.
pub fn redact_env(holder: Option<&mut Value>) {
    if let Some(env) = holder
        .and_then(|holder| holder.get_mut("env"))
        .and_then(Value::as_object_mut)
    {
        for value in env.values_mut() {
            *value = Value::String(REDACTED.into());
        }
    }
}

/// Hides the environment values of a container's configuration for `role` unless it may
/// read secrets.
pub fn redact_config_for(role: Role, container: &mut Value) {
    if !reads_secrets(role) {
        redact_env(container.get_mut("config"));
    }
}

/// Whether what a container or network reaches on the host limits what `role` may do with
/// it: for everyone but admins, whose only limit is saying so and why.
pub fn reach_matters(role: Role) -> bool {
    role != Role::Admin
}

/// Options that reach the host (privileged mode, host paths, host namespaces, devices, …):
/// operators and viewers never; admins only when they say so (`allow_privileged`) and why.
/// `Err` says why not, naming the first option.
pub fn may_reach_host(
    role: Role,
    reaching: &[&str],
    allow_privileged: Option<bool>,
    reason: Option<&str>,
) -> Result<(), String> {
    if reaching.is_empty() {
        return Ok(());
    }
    match reach_matters(role) {
        false => {
            let reason = reason.map(str::trim).unwrap_or_default();
            if allow_privileged == Some(true) && !reason.is_empty() {
                return Ok(());
            }
            Err(format!(
                "{} reach the host: an admin must also send allow_privileged: true and a reason",
                reaching.join(", ")
            ))
        }
        true => Err(format!(
            "{} reach the host and are not allowed for the role '{role}'",
            reaching.join(", ")
        )),
    }
}

/// A shell in a container that reaches the host is a shell on the host: admins only, as
/// creating such a container is.
pub fn may_open_shell(role: Role, reaching: &[&str]) -> Result<(), String> {
    if reaching.is_empty() || !reach_matters(role) {
        return Ok(());
    }
    Err(format!(
        "this container reaches the host ({}): only admins open a shell in it",
        reaching.join(", ")
    ))
}

/// Connecting a container to a network other than a plain `bridge` one (`macvlan`,
/// `ipvlan`, overlay, plugins) reaches beyond the host's container bridge: admins only, as
/// for creating a container on it.
pub fn may_attach_to(role: Role, network_name: &str, driver: &str) -> Result<(), String> {
    if driver == "bridge" || !reach_matters(role) {
        return Ok(());
    }
    Err(format!(
        "'{network_name}' is a {driver} network: only admins connect containers to networks other than bridge ones"
    ))
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
    use serde_json::json;

    #[test]
    fn environment_values_are_hidden_and_names_kept() {
        let mut container = json!({"config": {"env": {"DB_PASSWORD": "hunter2"}, "image": "app"}});
        redact_config_for(Role::Operator, &mut container);
        assert_eq!(container["config"]["env"]["DB_PASSWORD"], REDACTED);
        assert_eq!(container["config"]["image"], "app");
        let mut admin = json!({"config": {"env": {"DB_PASSWORD": "hunter2"}}});
        redact_config_for(Role::Admin, &mut admin);
        assert_eq!(admin["config"]["env"]["DB_PASSWORD"], "hunter2");
    }

    #[test]
    fn reaching_the_host_needs_an_admin_who_says_why() {
        assert!(may_reach_host(Role::Operator, &[], None, None).is_ok());
        assert!(may_reach_host(Role::Operator, &["privileged"], Some(true), Some("x")).is_err());
        assert!(may_reach_host(Role::Admin, &["privileged"], Some(true), Some(" ")).is_err());
        assert!(may_reach_host(Role::Admin, &["privileged"], Some(true), Some("debug")).is_ok());
        assert!(may_open_shell(Role::Operator, &["binds"]).is_err());
        assert!(may_open_shell(Role::Admin, &["binds"]).is_ok());
        assert!(may_attach_to(Role::Operator, "lan", "macvlan").is_err());
        assert!(may_attach_to(Role::Operator, "app", "bridge").is_ok());
        assert!(!may_open_socket(Role::Viewer, SocketKind::Exec));
        assert!(may_open_socket(Role::Viewer, SocketKind::Reading));
    }
}
