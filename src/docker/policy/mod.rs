//! The container create request and its policy.
//!
//! The request is a platform-owned type: unknown fields, duplicate keys (also inside maps)
//! and case-variant keys are refused, and the Docker configuration is built from its
//! allowed fields only, never passed through. Operators get the safe profile: nothing
//! that reaches the host (privileged mode, added capabilities, host or `container:`
//! namespaces, host paths, devices, security options, sysctls). Admins may use those only
//! with `allow_privileged: true` and a `reason`, which the recorded request keeps.

mod request;

use dcp_aggregates::container::validate_container_name;
use dcp_aggregates::Role;

pub use request::{
    BindRequest, CreateContainerRequest, PortRequest, RestartPolicyRequest, UniqueMap,
    VolumeRequest,
};

use crate::errors::{ErrorCode, ServiceError};

/// Why a request is refused: a bad value (400) or an option the role may not use (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    Forbidden { field: String, message: String },
}

impl ServiceError for PolicyError {
    fn code(&self) -> ErrorCode {
        match self {
            PolicyError::Invalid { .. } => ErrorCode::Validation,
            PolicyError::Forbidden { .. } => ErrorCode::Forbidden,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            PolicyError::Invalid { field, .. } | PolicyError::Forbidden { field, .. } => {
                Some(field.clone())
            }
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `[registry[:port]/]path[:tag][@sha256:hex]`, lowercase path components.
pub fn validate_image(image: &str) -> Result<(), PolicyError> {
    let message = "image must be a reference like name:tag or registry:5000/team/name@sha256:…";
    if image.is_empty() || image.len() > 255 || image.starts_with(['-', '/', '.', ':']) {
        return Err(invalid("image", message));
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(invalid("image", message));
        }
    }
    let (path, tag) = match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = (1..=128).contains(&tag.len())
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(invalid("image", message));
        }
    }
    let mut components = path.split('/').peekable();
    let first = components.peek().copied().unwrap_or_default();
    // A first component with a dot, a colon or `localhost` is a registry host.
    if path.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        components.next();
    }
    for component in components {
        let ok = !component.is_empty()
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && component
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && component
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(invalid("image", message));
        }
    }
    Ok(())
}

fn absolute_path(field: &str, path: &str) -> Result<(), PolicyError> {
    let ok = path.starts_with('/')
        && path.len() <= 4096
        && !path.split('/').any(|part| part == ".." || part == ".")
        && !path.contains(':')
        && !path.contains(',')
        && !path.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{field} must be an absolute path without '..', ':' or ','"),
        ))
    }
}

pub fn volume_name(field: &str, name: &str) -> Result<(), PolicyError> {
    let mut chars = name.chars();
    let ok = (2..=128).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "a volume name (letters, digits, '_', '.', '-'); host paths go in binds",
        ))
    }
}

/// What the engine says about the named volumes and the network a request uses, looked up
/// by the caller (the policy itself does no IO).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineFacts {
    /// Existing named volumes that are not plain `local` volumes (without options, or tmpfs
    /// ones): a volume with driver options can be a bind of a host path
    /// (`type=none,o=bind,device=/etc`).
    pub host_backed_volumes: Vec<String>,
    /// The request's network, if it exists and is not a plain `bridge` network (macvlan,
    /// ipvlan and the like put the container on the host's own networks).
    pub host_attached_network: Option<String>,
}

/// What in the request reaches beyond the container, by field.
fn host_reaching(request: &CreateContainerRequest, facts: &EngineFacts) -> Vec<&'static str> {
    let mut found = Vec::new();
    let set = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if request.privileged == Some(true) {
        found.push("privileged");
    }
    if set(&request.cap_add) {
        found.push("cap_add");
    }
    if set(&request.devices) {
        found.push("devices");
    }
    if set(&request.security_opt) {
        found.push("security_opt");
    }
    if request.binds.as_ref().is_some_and(|b| !b.is_empty()) {
        found.push("binds");
    }
    if request.sysctls.as_ref().is_some_and(|s| !s.0.is_empty()) {
        found.push("sysctls");
    }
    // Docker takes only `host` or `container:…` for the pid and uts namespaces; the ipc one
    // also has safe values.
    for (field, mode) in [
        ("pid_mode", &request.pid_mode),
        ("uts_mode", &request.uts_mode),
    ] {
        if mode.as_deref().is_some_and(|m| !m.is_empty()) {
            found.push(field);
        }
    }
    if request
        .ipc_mode
        .as_deref()
        .is_some_and(|m| !["", "private", "shareable", "none"].contains(&m))
    {
        found.push("ipc_mode");
    }
    let special_network = request
        .network
        .as_deref()
        .is_some_and(|n| n == "host" || n.starts_with("container:"));
    if special_network || facts.host_attached_network.is_some() {
        found.push("network");
    }
    if !facts.host_backed_volumes.is_empty() {
        found.push("volumes");
    }
    found
}

/// Validates the request and applies the role's policy.
pub fn check(
    request: &CreateContainerRequest,
    role: Role,
    facts: &EngineFacts,
) -> Result<(), PolicyError> {
    check_process(request)?;
    check_resources(request)?;
    check_user(request)?;
    let reaching = host_reaching(request, facts);
    gate(
        role,
        &reaching,
        request.allow_privileged,
        request.reason.as_deref(),
    )
}

/// What the container runs: image, name, command, environment, labels.
fn check_process(request: &CreateContainerRequest) -> Result<(), PolicyError> {
    validate_image(&request.image)?;
    if let Some(name) = &request.name {
        validate_container_name(name).map_err(|_| invalid("name", "name must be 2 to 128 characters: letters, digits, '_', '.', '-', starting with a letter or digit"))?;
    }
    for (field, args) in [
        ("command", &request.command),
        ("entrypoint", &request.entrypoint),
    ] {
        if let Some(args) = args {
            if args.len() > 256 || args.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
                return Err(invalid(
                    field,
                    format!("{field} takes at most 256 arguments of at most 4096 bytes"),
                ));
            }
        }
    }
    if let Some(env) = &request.env {
        for name in env.0.keys() {
            let mut chars = name.chars();
            let ok = name.len() <= 256
                && chars
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(invalid(
                    format!("env.{name}"),
                    "variable names are [A-Z_][A-Z0-9_]*",
                ));
            }
        }
    }
    if let Some(labels) = &request.labels {
        if let Some(reserved) = labels.0.keys().find(|k| k.starts_with("dcp.")) {
            return Err(invalid(
                format!("labels.{reserved}"),
                "the dcp. label prefix is reserved",
            ));
        }
    }
    Ok(())
}

/// What the container gets: ports, volumes and binds, restart policy, limits, network.
fn check_resources(request: &CreateContainerRequest) -> Result<(), PolicyError> {
    for port in request.ports.iter().flatten() {
        if port.container_port == 0 || port.host_port == Some(0) {
            return Err(invalid("ports", "ports are 1 to 65535"));
        }
        if port
            .protocol
            .as_deref()
            .is_some_and(|p| p != "tcp" && p != "udp")
        {
            return Err(invalid("ports.protocol", "protocol is tcp or udp"));
        }
        if port
            .host_ip
            .as_deref()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_err())
        {
            return Err(invalid("ports.host_ip", "host_ip must be an IP address"));
        }
    }
    for volume in request.volumes.iter().flatten() {
        volume_name("volumes.source", &volume.source)?;
        absolute_path("volumes.target", &volume.target)?;
    }
    for bind in request.binds.iter().flatten() {
        absolute_path("binds.source", &bind.source)?;
        absolute_path("binds.target", &bind.target)?;
    }
    if let Some(policy) = &request.restart_policy {
        if !["no", "always", "unless-stopped", "on-failure"].contains(&policy.name.as_str()) {
            return Err(invalid(
                "restart_policy.name",
                "no, always, unless-stopped or on-failure",
            ));
        }
    }
    if request.memory_bytes.is_some_and(|m| m < 6 * 1024 * 1024) {
        return Err(invalid(
            "memory_bytes",
            "memory_bytes must be at least 6 MiB",
        ));
    }
    if request.cpus.is_some_and(|c| !(0.01..=1024.0).contains(&c)) {
        return Err(invalid("cpus", "cpus must be from 0.01 to 1024"));
    }
    if request.pids_limit.is_some_and(|p| p < 1) {
        return Err(invalid("pids_limit", "pids_limit must be positive"));
    }
    if let Some(network) = &request.network {
        let plain = network == "host"
            || network.starts_with("container:")
            || validate_container_name(network).is_ok()
            || network == "none";
        if !plain {
            return Err(invalid("network", "a network name"));
        }
    }
    Ok(())
}

/// As whom and where it runs: working directory, user.
fn check_user(request: &CreateContainerRequest) -> Result<(), PolicyError> {
    if let Some(dir) = &request.working_dir {
        absolute_path("working_dir", dir)?;
    }
    if request.user.as_deref().is_some_and(|u| {
        u.is_empty()
            || u.len() > 64
            || !u
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'))
    }) {
        return Err(invalid("user", "user is a name or uid, optionally :group"));
    }
    Ok(())
}

/// The role rule for options that reach the host ([`crate::auth::policy::may_reach_host`]),
/// as a refusal naming the first of them.
pub fn gate(
    role: Role,
    reaching: &[&str],
    allow_privileged: Option<bool>,
    reason: Option<&str>,
) -> Result<(), PolicyError> {
    crate::auth::policy::may_reach_host(role, reaching, allow_privileged, reason).map_err(
        |message| PolicyError::Forbidden {
            field: reaching.first().copied().unwrap_or_default().to_string(),
            message,
        },
    )
}

#[cfg(test)]
mod tests;
