//! The container create request and its policy.
//!
//! The request is a platform-owned type: unknown fields, duplicate keys (also inside maps)
//! and case-variant keys are refused, and the Docker configuration is built from its
//! allowed fields only, never passed through. Operators get the safe profile: nothing
//! that reaches the host (privileged mode, added capabilities, host or `container:`
//! namespaces, host paths, devices, security options, sysctls). Admins may use those only
//! with `allow_privileged: true` and a `reason`, which the recorded request keeps. What
//! "reaches" is decided by the one judgement ([`crate::docker::reach`]) over the Docker
//! configuration the request becomes ([`container_config`]).

mod config;
mod request;

use dcp_aggregates::container::validate_container_name;
use dcp_aggregates::operation::SETTABLE_LABELS;
use dcp_aggregates::Role;

pub use config::container_config;
pub use request::{
    BindRequest, CreateContainerRequest, PortRequest, RestartPolicyRequest, UniqueMap,
    VolumeRequest,
};

use crate::auth::policy::{Consent, Judgement};
use crate::docker::reach::{self, Subject, Surroundings};
use crate::errors::{ErrorCode, ServiceError};

/// Why a request is refused: a bad value (400) or an option the role may not use (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    Forbidden { field: String, message: String },
    /// Refused too often: answered 429, not recorded.
    #[error("too many refused requests; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
}

/// A role's refusal ([`crate::auth::policy::may_touch`] and its kin) is a 403 naming its field.
impl From<crate::auth::policy::Refusal> for PolicyError {
    fn from(refusal: crate::auth::policy::Refusal) -> Self {
        PolicyError::Forbidden {
            field: refusal.field.to_string(),
            message: refusal.message,
        }
    }
}

impl ServiceError for PolicyError {
    fn code(&self) -> ErrorCode {
        match self {
            PolicyError::Invalid { .. } => ErrorCode::Validation,
            PolicyError::Forbidden { .. } => ErrorCode::Forbidden,
            PolicyError::Throttled { .. } => ErrorCode::RateLimited,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            PolicyError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            PolicyError::Invalid { field, .. } | PolicyError::Forbidden { field, .. } => {
                Some(field.clone())
            }
            PolicyError::Throttled { .. } => None,
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

/// The named volumes a request mounts (the well-formed names; the others are refused).
pub fn request_volumes(request: &CreateContainerRequest) -> Vec<String> {
    request
        .volumes
        .iter()
        .flatten()
        .filter(|v| volume_name("volumes.source", &v.source).is_ok())
        .map(|v| v.source.clone())
        .collect()
}

/// The network a request joins, when it names one (not `host`, `none`, `container:…`).
pub fn request_network(request: &CreateContainerRequest) -> Option<String> {
    request
        .network
        .clone()
        .filter(|n| !reach::is_special_network(n))
}

/// The one judgement ([`reach::judge`]) of the configuration `request` becomes, with what
/// the engine says of the volumes and network it uses.
pub fn judge_request(request: &CreateContainerRequest, around: &Surroundings) -> Judgement {
    let config = container_config(request, &[]);
    let volumes = request_volumes(request);
    let networks: Vec<String> = request_network(request).into_iter().collect();
    reach::judge(
        Subject {
            host_config: config.host_config.as_ref().unwrap_or(&Default::default()),
            volumes: &volumes,
            networks: &networks,
            protected: None,
        },
        around,
    )
}

/// Validates the request and applies the role's policy to what it would reach.
pub fn check(
    request: &CreateContainerRequest,
    role: Role,
    around: &Surroundings,
) -> Result<(), PolicyError> {
    check_process(request, role)?;
    check_resources(request)?;
    check_user(request)?;
    let consent = Consent::new(request.allow_privileged, request.reason.as_deref());
    gate(role, &judge_request(request, around), consent)
}

/// What the container runs: image, name, command, environment, labels.
fn check_process(request: &CreateContainerRequest, role: Role) -> Result<(), PolicyError> {
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
        check_labels(labels, role)?;
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
    // Docker takes only `host` or `container:…` for the pid and uts namespaces.
    let shared = |m: &str| m == "host" || m.starts_with("container:");
    for (field, mode) in [
        ("pid_mode", &request.pid_mode),
        ("uts_mode", &request.uts_mode),
    ] {
        if mode.as_deref().is_some_and(|m| !m.is_empty() && !shared(m)) {
            return Err(invalid(
                field,
                format!("{field} is host or container:<name>"),
            ));
        }
    }
    if request
        .ipc_mode
        .as_deref()
        .is_some_and(|m| !(shared(m) || ["", "private", "shareable", "none"].contains(&m)))
    {
        return Err(invalid(
            "ipc_mode",
            "ipc_mode is private, shareable, none, host or container:<name>",
        ));
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

/// The `dcp.` labels: reserved to the platform, but for the ones admins may set
/// ([`crate::auth::policy::may_label`]).
pub fn check_labels(labels: &UniqueMap, role: Role) -> Result<(), PolicyError> {
    let keys: Vec<&str> = labels.0.keys().map(String::as_str).collect();
    if let Some(reserved) = keys
        .iter()
        .find(|k| k.starts_with("dcp.") && !SETTABLE_LABELS.contains(k))
    {
        return Err(invalid(
            format!("labels.{reserved}"),
            "the dcp. label prefix is reserved (admins may set dcp.protected and dcp.shared)",
        ));
    }
    crate::auth::policy::may_label(role, &keys).map_err(|message| PolicyError::Forbidden {
        field: "labels".into(),
        message,
    })
}

/// The role rule ([`crate::auth::policy::may_touch`]) for what the judgement found, as a
/// refusal naming the first field.
pub fn gate(role: Role, judgement: &Judgement, consent: Consent<'_>) -> Result<(), PolicyError> {
    crate::auth::policy::may_touch(role, judgement, consent).map_err(PolicyError::from)
}

#[cfg(test)]
mod tests;
