//! The Docker configuration a create request becomes: built field by field from the
//! request type, never passed through. The create policy judges this configuration (what
//! would reach the engine), not the request.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};

use super::{CreateContainerRequest, RestartPolicyRequest};

/// The Docker configuration of a request: only the fields the request type has, with
/// `extra_labels` (the platform's own) added to the request's.
pub fn container_config(
    request: &CreateContainerRequest,
    extra_labels: &[(&str, String)],
) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = request
        .labels
        .clone()
        .unwrap_or_default()
        .0
        .into_iter()
        .collect();
    for (key, value) in extra_labels {
        labels.insert(key.to_string(), value.clone());
    }
    let (exposed, bindings) = ports_of(request);
    let binds = binds_of(request);
    let restart_policy = request.restart_policy.as_ref().map(restart_policy_of);
    let devices = request.devices.as_deref().map(devices_of);
    ContainerCreateBody {
        image: Some(request.image.clone()),
        cmd: request.command.clone(),
        entrypoint: request.entrypoint.clone(),
        env: request
            .env
            .as_ref()
            .map(|env| env.0.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        working_dir: request.working_dir.clone(),
        user: request.user.clone(),
        tty: request.tty,
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            binds: (!binds.is_empty()).then_some(binds),
            restart_policy,
            memory: request.memory_bytes,
            nano_cpus: request.cpus.map(|c| (c * 1e9) as i64),
            pids_limit: request.pids_limit,
            network_mode: request.network.clone(),
            privileged: request.privileged,
            cap_add: request.cap_add.clone(),
            devices,
            security_opt: request.security_opt.clone(),
            pid_mode: request.pid_mode.clone(),
            ipc_mode: request.ipc_mode.clone(),
            uts_mode: request.uts_mode.clone(),
            sysctls: request
                .sysctls
                .as_ref()
                .map(|s| s.0.clone().into_iter().collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Exposed ports (`80/tcp`) and their bindings on the host, when published.
fn ports_of(
    request: &CreateContainerRequest,
) -> (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>) {
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in request.ports.iter().flatten() {
        let key = format!(
            "{}/{}",
            port.container_port,
            port.protocol.as_deref().unwrap_or("tcp")
        );
        exposed.push(key.clone());
        if let Some(host_port) = port.host_port {
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: port.host_ip.clone(),
                    host_port: Some(host_port.to_string()),
                });
        }
    }
    (exposed, bindings)
}

/// Named volumes and host binds, as Docker's `source:target[:ro]`.
fn binds_of(request: &CreateContainerRequest) -> Vec<String> {
    let mode = |read_only: Option<bool>| if read_only == Some(true) { ":ro" } else { "" };
    let mut binds: Vec<String> = request
        .volumes
        .iter()
        .flatten()
        .map(|v| format!("{}:{}{}", v.source, v.target, mode(v.read_only)))
        .collect();
    binds.extend(
        request
            .binds
            .iter()
            .flatten()
            .map(|b| format!("{}:{}{}", b.source, b.target, mode(b.read_only))),
    );
    binds
}

fn restart_policy_of(p: &RestartPolicyRequest) -> RestartPolicy {
    RestartPolicy {
        name: Some(match p.name.as_str() {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: p.max_retries.map(i64::from),
    }
}

/// `host[:container[:permissions]]` as Docker's device mappings.
fn devices_of(devices: &[String]) -> Vec<DeviceMapping> {
    devices
        .iter()
        .map(|d| {
            let mut parts = d.splitn(3, ':');
            let on_host = parts.next().unwrap_or_default().to_string();
            let in_container = parts
                .next()
                .map(str::to_string)
                .unwrap_or_else(|| on_host.clone());
            DeviceMapping {
                path_on_host: Some(on_host),
                path_in_container: Some(in_container),
                cgroup_permissions: Some(parts.next().unwrap_or("rwm").to_string()),
            }
        })
        .collect()
}
