//! The one host-reach judgement: what a container reaches beyond itself, judged on its
//! effective Docker configuration (what a create would send, or what the engine reports of
//! one resolved container) and on what the engine says of the volumes and networks it uses.
//!
//! Create, recreate, exec, logs, every action, network connect and disconnect, volume and
//! network removal (and stacks to come) ask this one function; what a role may do with the
//! answer is [`crate::auth::policy::may_touch`] (and its kin for shells and logs). A
//! judgement has three parts:
//! - **reaching**: options that reach the host (privileged mode, capabilities, devices,
//!   security options, host or shared namespaces, sysctls, host paths in binds and mounts,
//!   `VolumesFrom`, named volumes whose driver options mount a host path or device,
//!   networks of drivers other than `bridge`). Non-admins never; admins with
//!   `allow_privileged` and a reason (a shell in, or a network join of, such a container:
//!   admins as before).
//! - **admins' own**: what admins keep apart without it reaching the host: a named volume
//!   that a host-reaching container uses (writing to it is writing what a privileged
//!   container runs), an internal network or one an admin made (isolation) unless it is
//!   labelled `dcp.shared=true`. Non-admins never; admins freely.
//! - **protected**: the platform's own deployment and whatever is labelled
//!   `dcp.protected=true` or named in `DCP_PROTECTED` ([`Deployment`]), and the volumes and
//!   networks of a protected container. Non-admins never; admins with a reason, audited.

mod deployment;
mod facts;

use std::collections::BTreeMap;

use bollard::models::{HostConfig, MountType};

use crate::auth::policy::finding;

pub use crate::auth::policy::{Finding, Judgement};
pub use deployment::Deployment;
pub use facts::{own_project, resolve, surroundings, Resolved};

/// What the engine says of a named volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeFacts {
    /// Not a plain `local` volume (a plugin, or options that mount a host path or device).
    pub host_backed: bool,
    /// Why it is protected, if it is.
    pub protected: Option<String>,
    /// A container that reaches the host and uses it, if any.
    pub used_by_reaching: Option<String>,
}

/// What the engine says of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkFacts {
    pub driver: String,
    pub internal: bool,
    /// Why it is protected, if it is.
    pub protected: Option<String>,
    /// Made through dcp by an admin and not labelled `dcp.shared=true`.
    pub isolating: bool,
    /// Made through dcp by an operator (who may join their own internal networks).
    pub operators_own: bool,
}

/// The named volumes and networks around a container, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surroundings {
    pub volumes: BTreeMap<String, VolumeFacts>,
    pub networks: BTreeMap<String, NetworkFacts>,
}

/// A container's effective configuration, as the judgement reads it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub host_config: &'a HostConfig,
    /// The named volumes it mounts.
    pub volumes: &'a [String],
    /// The networks it is (or is to be) attached to, by name.
    pub networks: &'a [String],
    /// Why the container itself is protected, if it is.
    pub protected: Option<&'a str>,
}

/// Network modes that are no network of their own.
pub fn is_special_network(name: &str) -> bool {
    matches!(name, "" | "default" | "bridge" | "none" | "host") || name.starts_with("container:")
}

/// The judgement of a container.
pub fn judge(subject: Subject<'_>, around: &Surroundings) -> Judgement {
    let mut judgement = Judgement {
        reaching: reaching_options(subject.host_config),
        ..Judgement::default()
    };
    if let Some(why) = subject.protected {
        judgement
            .protected
            .push(finding("id", format!("this container {why}")));
    }
    for name in subject.volumes {
        let Some(facts) = around.volumes.get(name) else {
            continue;
        };
        judge_volume(name, facts, &mut judgement);
    }
    for name in subject.networks {
        if let Some(facts) = around.networks.get(name) {
            judgement = judgement.merge(judge_network(name, facts));
        }
    }
    judgement
}

fn judge_volume(name: &str, facts: &VolumeFacts, judgement: &mut Judgement) {
    if facts.host_backed {
        judgement.reaching.push(finding(
            "volumes",
            format!("volume '{name}' mounts something of the host (a driver or driver options)"),
        ));
    }
    if let Some(why) = &facts.protected {
        judgement
            .protected
            .push(finding("volumes", format!("volume '{name}' {why}")));
    }
    if let Some(container) = &facts.used_by_reaching {
        judgement.admins_own.push(finding(
            "volumes",
            format!("volume '{name}' is used by '{container}', which reaches the host"),
        ));
    }
}

/// The judgement of joining a network.
pub fn judge_network(name: &str, facts: &NetworkFacts) -> Judgement {
    let mut judgement = Judgement::default();
    if facts.driver != "bridge" && !facts.driver.is_empty() {
        judgement.reaching.push(finding(
            "network",
            format!(
                "'{name}' is a {} network: it sits on the host's own networks",
                facts.driver
            ),
        ));
    }
    if let Some(why) = &facts.protected {
        judgement
            .protected
            .push(finding("network", format!("network '{name}' {why}")));
    }
    if facts.internal && !facts.operators_own {
        judgement.admins_own.push(finding(
            "network",
            format!("network '{name}' is internal (isolated by an admin)"),
        ));
    } else if facts.isolating {
        judgement.admins_own.push(finding(
            "network",
            format!("network '{name}' was made by an admin and is not labelled dcp.shared=true"),
        ));
    }
    judgement
}

/// The options of a container's configuration that reach the host, by field.
fn reaching_options(config: &HostConfig) -> Vec<Finding> {
    let mut found = Vec::new();
    let listed = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if config.privileged == Some(true) {
        found.push(finding("privileged", "privileged mode"));
    }
    if listed(&config.cap_add) {
        found.push(finding("cap_add", "added capabilities"));
    }
    let devices = config.devices.as_ref().is_some_and(|d| !d.is_empty())
        || listed(&config.device_cgroup_rules)
        || config
            .device_requests
            .as_ref()
            .is_some_and(|d| !d.is_empty());
    if devices {
        found.push(finding("devices", "host devices"));
    }
    if listed(&config.security_opt) {
        found.push(finding("security_opt", "security options"));
    }
    // Docker fills in the masked /proc paths unless told not to (`systempaths=unconfined`).
    let unmasked = |paths: &Option<Vec<String>>| paths.as_ref().is_some_and(Vec::is_empty);
    if config.privileged != Some(true)
        && (unmasked(&config.masked_paths) || unmasked(&config.readonly_paths))
    {
        found.push(finding("security_opt", "unmasked /proc paths"));
    }
    if config.sysctls.as_ref().is_some_and(|s| !s.is_empty()) {
        found.push(finding("sysctls", "kernel parameters"));
    }
    if host_paths(config) {
        found.push(finding("binds", "host paths"));
    }
    if listed(&config.volumes_from) {
        found.push(finding("volumes_from", "another container's mounts"));
    }
    namespaces(config, &mut found);
    found
}

/// Whether binds or mounts name a path of the host.
fn host_paths(config: &HostConfig) -> bool {
    // A bind is `/host/path:/target`; a named volume does not start with '/'.
    config.binds.iter().flatten().any(|b| b.starts_with('/'))
        || config.mounts.iter().flatten().any(|m| {
            m.typ == Some(MountType::BIND)
                || (m.typ == Some(MountType::VOLUME)
                    && m.volume_options
                        .as_ref()
                        .and_then(|o| o.driver_config.as_ref())
                        .is_some_and(|d| {
                            d.name.as_deref().is_some_and(|n| n != "local")
                                || d.options.as_ref().is_some_and(|o| !o.is_empty())
                        }))
        })
}

/// Namespaces shared with the host or with another container.
fn namespaces(config: &HostConfig, found: &mut Vec<Finding>) {
    let shared = |mode: &Option<String>| {
        mode.as_deref()
            .is_some_and(|m| m == "host" || m.starts_with("container:"))
    };
    for (field, mode) in [
        ("pid_mode", &config.pid_mode),
        ("uts_mode", &config.uts_mode),
        ("ipc_mode", &config.ipc_mode),
        ("network", &config.network_mode),
        ("userns_mode", &config.userns_mode),
        ("cgroup", &config.cgroup),
    ] {
        if shared(mode) {
            found.push(finding(
                field,
                format!("{field} shared with the host or another container"),
            ));
        }
    }
    // The cgroup namespace mode is not judged: `host` is the engine's default on cgroup v1
    // hosts and where the daemon is configured so (this machine's included), and there it
    // shows the host's hierarchy read-only, it does not open it.
}

#[cfg(test)]
mod tests;
