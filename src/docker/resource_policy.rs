//! The volume and network create requests and their policy.
//!
//! Like the container request, they are platform-owned types (unknown fields, duplicate
//! and case-variant keys refused) turned into Docker configuration field by field.
//! Operators get plain resources: a `local` volume without options (or a tmpfs one) and a
//! `bridge` network on an address range Docker picks. What reaches the host — volume driver
//! options that mount a host path or device, volume plugins, networks of other drivers
//! (`macvlan`/`ipvlan` sit on the host's own networks), a chosen subnet (it becomes a route
//! on the host and can shadow the host's own networks) — needs an admin with
//! `allow_privileged: true` and a `reason`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dcp_aggregates::network::DRIVERS;
use dcp_aggregates::operation::{validate_labels, validate_name};
use dcp_aggregates::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::{gate, PolicyError, UniqueMap};
use crate::auth::policy::{finding, Consent, Judgement};

/// `POST /api/v1/volumes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVolumeRequest {
    /// Letters, digits, `_`, `.`, `-`; 2–128 characters.
    pub name: String,
    /// `local` (default) or a volume plugin such as `vieux/sshfs:latest` (admins, with
    /// `allow_privileged`).
    pub driver: Option<String>,
    /// Driver options. For operators only a tmpfs: `type=tmpfs`, `device=tmpfs`,
    /// `o=size=…,mode=…,uid=…,gid=…`.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub driver_opts: Option<UniqueMap>,
    /// Labels; the `dcp.` prefix is reserved.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub labels: Option<UniqueMap>,
    /// Admins only: allow options that reach the host.
    pub allow_privileged: Option<bool>,
    /// Why (required with `allow_privileged`; recorded with the request).
    pub reason: Option<String>,
}

/// `POST /api/v1/networks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNetworkRequest {
    /// Letters, digits, `_`, `.`, `-`; 2–128 characters.
    pub name: String,
    /// `bridge` (default); `macvlan`, `ipvlan`, `overlay` (admins, with `allow_privileged`).
    pub driver: Option<String>,
    /// No route outside the network.
    pub internal: Option<bool>,
    pub attachable: Option<bool>,
    /// CIDR, e.g. `172.30.0.0/24` (admins, with `allow_privileged`: it becomes a route on the
    /// host). Absent: Docker picks a free range.
    pub subnet: Option<String>,
    /// An address in the subnet.
    pub gateway: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub labels: Option<UniqueMap>,
    pub allow_privileged: Option<bool>,
    pub reason: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

fn resource_invalid(error: dcp_aggregates::operation::ResourceError) -> PolicyError {
    match error {
        dcp_aggregates::operation::ResourceError::Invalid { field, message } => {
            invalid(field, message)
        }
        other => invalid("request", other.to_string()),
    }
}

/// A tmpfs volume's options: nothing of the host is mounted.
pub fn is_tmpfs(options: &BTreeMap<String, String>) -> bool {
    let allowed_mount_options = ["size", "mode", "uid", "gid", "nr_inodes"];
    options.get("type").map(String::as_str) == Some("tmpfs")
        && options.get("device").is_none_or(|d| d == "tmpfs")
        && options
            .keys()
            .all(|k| ["type", "device", "o"].contains(&k.as_str()))
        && options.get("o").is_none_or(|o| {
            o.split(',').all(|option| {
                option
                    .split_once('=')
                    .is_some_and(|(key, _)| allowed_mount_options.contains(&key))
            })
        })
}

/// A network in CIDR form: an address with no host bits set, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// The prefix mask of `bits` ones in an address `width` bits wide.
    fn mask(width: u32, bits: u8) -> u128 {
        let all = u128::MAX >> (128 - width);
        if bits == 0 {
            0
        } else {
            (u128::MAX << (width - u32::from(bits))) & all
        }
    }

    fn contains(&self, address: IpAddr) -> bool {
        let (network, address, width) = match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(a)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let mask = Self::mask(width, self.bits);
        network & mask == address & mask
    }
}

fn parse_cidr(text: &str) -> Option<Cidr> {
    let (address, bits) = text.split_once('/')?;
    let network: IpAddr = address.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let (value, width) = match network {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    if u32::from(bits) > width || value & !Cidr::mask(width, bits) != 0 {
        return None;
    }
    Some(Cidr { network, bits })
}

/// Admins alone set `dcp.protected` and `dcp.shared`.
fn may_label(role: Role, labels: &BTreeMap<String, String>) -> Result<(), PolicyError> {
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    crate::auth::policy::may_label(role, &keys).map_err(|message| PolicyError::Forbidden {
        field: "labels".into(),
        message,
    })
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), PolicyError> {
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} takes at most {max} characters, without control characters"),
        ));
    }
    Ok(())
}

fn check_map(field: &str, map: &BTreeMap<String, String>) -> Result<(), PolicyError> {
    if map.len() > 64 {
        return Err(invalid(field, format!("{field} takes at most 64 entries")));
    }
    for (key, value) in map {
        check_text(field, key, 256)?;
        check_text(field, value, 4096)?;
    }
    Ok(())
}

/// A checked volume create request.
#[derive(Debug, Clone)]
pub struct VolumeSpec {
    pub name: String,
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub reason: Option<String>,
}

/// A checked network create request.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub reason: Option<String>,
}

/// Docker's own networks, which no one removes.
pub const PREDEFINED_NETWORKS: &[&str] = &["bridge", "host", "none"];

pub fn check_volume(request: CreateVolumeRequest, role: Role) -> Result<VolumeSpec, PolicyError> {
    validate_name("name", &request.name).map_err(resource_invalid)?;
    let driver = request.driver.clone().unwrap_or_else(|| "local".into());
    dcp_aggregates::operation::validate_driver(&driver).map_err(resource_invalid)?;
    let driver_opts = request.driver_opts.clone().unwrap_or_default().0;
    let labels = request.labels.clone().unwrap_or_default().0;
    check_map("driver_opts", &driver_opts)?;
    check_map("labels", &labels)?;
    validate_labels(labels.keys()).map_err(resource_invalid)?;
    may_label(role, &labels)?;
    let mut reaching = Vec::new();
    if driver != "local" {
        reaching.push(finding("driver", format!("the volume plugin '{driver}'")));
    }
    if !driver_opts.is_empty() && !is_tmpfs(&driver_opts) {
        reaching.push(finding(
            "driver_opts",
            "driver options that mount a host path or device",
        ));
    }
    let consent = Consent::new(request.allow_privileged, request.reason.as_deref());
    gate(
        role,
        &Judgement {
            reaching,
            ..Judgement::default()
        },
        consent,
    )?;
    Ok(VolumeSpec {
        name: request.name,
        driver,
        driver_opts,
        labels,
        reason: request
            .reason
            .filter(|_| request.allow_privileged == Some(true)),
    })
}

pub fn check_network(
    request: CreateNetworkRequest,
    role: Role,
) -> Result<NetworkSpec, PolicyError> {
    validate_name("name", &request.name).map_err(resource_invalid)?;
    if PREDEFINED_NETWORKS.contains(&request.name.as_str()) {
        return Err(invalid(
            "name",
            "bridge, host and none are Docker's own networks",
        ));
    }
    let driver = request.driver.clone().unwrap_or_else(|| "bridge".into());
    if !DRIVERS.contains(&driver.as_str()) {
        return Err(invalid(
            "driver",
            format!("driver must be one of {}", DRIVERS.join(", ")),
        ));
    }
    let labels = request.labels.clone().unwrap_or_default().0;
    check_map("labels", &labels)?;
    validate_labels(labels.keys()).map_err(resource_invalid)?;
    may_label(role, &labels)?;
    let subnet = match &request.subnet {
        Some(subnet) => Some(parse_cidr(subnet).ok_or_else(|| {
            invalid(
                "subnet",
                "subnet must be a network in CIDR form such as 172.30.0.0/24",
            )
        })?),
        None => None,
    };
    if let Some(gateway) = &request.gateway {
        let Ok(address) = gateway.parse::<IpAddr>() else {
            return Err(invalid("gateway", "gateway must be an IP address"));
        };
        match subnet {
            None => return Err(invalid("gateway", "a gateway needs a subnet")),
            Some(network) if !network.contains(address) => {
                return Err(invalid("gateway", "the gateway must be inside the subnet"))
            }
            Some(_) => {}
        }
    }
    let mut reaching = Vec::new();
    if driver != "bridge" {
        reaching.push(finding(
            "driver",
            format!("a {driver} network (it sits on the host's own networks)"),
        ));
    }
    if subnet.is_some() {
        reaching.push(finding(
            "subnet",
            "a chosen subnet (it becomes a route on the host)",
        ));
    }
    let consent = Consent::new(request.allow_privileged, request.reason.as_deref());
    gate(
        role,
        &Judgement {
            reaching,
            ..Judgement::default()
        },
        consent,
    )?;
    Ok(NetworkSpec {
        name: request.name,
        driver,
        internal: request.internal.unwrap_or(false),
        attachable: request.attachable.unwrap_or(false),
        subnet: request.subnet,
        gateway: request.gateway,
        labels,
        reason: request
            .reason
            .filter(|_| request.allow_privileged == Some(true)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volume(body: serde_json::Value) -> CreateVolumeRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn operators_get_plain_and_tmpfs_volumes_only() {
        assert!(check_volume(volume(json!({"name": "data"})), Role::Operator).is_ok());
        let tmpfs = json!({"name": "scratch", "driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1000"}});
        assert!(check_volume(volume(tmpfs), Role::Operator).is_ok());
        for reaching in [
            json!({"name": "etc", "driver_opts": {"type": "none", "o": "bind", "device": "/etc"}}),
            json!({"name": "etc", "driver_opts": {"type": "tmpfs", "device": "/etc", "o": "bind"}}),
            json!({"name": "etc", "driver_opts": {"type": "tmpfs", "o": "size=1m,bind"}}),
            json!({"name": "disk", "driver_opts": {"type": "ext4", "device": "/dev/sda1"}}),
            json!({"name": "nfs", "driver_opts": {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}}),
            json!({"name": "plug", "driver": "rexray"}),
            json!({"name": "plug", "driver": "vieux/sshfs:latest"}),
        ] {
            let refused = check_volume(volume(reaching.clone()), Role::Operator);
            assert!(
                matches!(refused, Err(PolicyError::Forbidden { .. })),
                "{reaching}"
            );
            let admin = check_volume(volume(reaching.clone()), Role::Admin);
            assert!(
                matches!(admin, Err(PolicyError::Forbidden { .. })),
                "{reaching}"
            );
            let mut allowed = reaching.clone();
            allowed["allow_privileged"] = json!(true);
            allowed["reason"] = json!("backup of /etc");
            let spec = check_volume(volume(allowed), Role::Admin).unwrap();
            assert_eq!(spec.reason.as_deref(), Some("backup of /etc"));
        }
    }

    #[test]
    fn volume_requests_are_platform_owned() {
        for bad in [
            json!({"name": "data", "Name": "x"}),
            json!({"name": "data", "DriverOpts": {}}),
            json!({"name": "data", "mountpoint": "/etc"}),
        ] {
            assert!(
                serde_json::from_value::<CreateVolumeRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let duplicate = r#"{"name": "data", "driver_opts": {"o": "size=1m", "o": "bind"}}"#;
        assert!(serde_json::from_str::<CreateVolumeRequest>(duplicate).is_err());
        assert!(matches!(
            check_volume(volume(json!({"name": "../etc"})), Role::Admin),
            Err(PolicyError::Invalid { .. })
        ));
        assert!(matches!(
            check_volume(
                volume(json!({"name": "data", "labels": {"dcp.op": "x"}})),
                Role::Admin
            ),
            Err(PolicyError::Invalid { .. })
        ));
    }

    #[test]
    fn networks_on_the_host_need_an_admin_and_a_reason() {
        let network = |body: serde_json::Value| -> CreateNetworkRequest {
            serde_json::from_value(body).unwrap()
        };
        assert!(check_network(
            network(json!({"name": "backend", "internal": true})),
            Role::Operator
        )
        .is_ok());
        // A chosen subnet becomes a route on the host.
        assert!(matches!(
            check_network(
                network(
                    json!({"name": "backend", "subnet": "172.30.0.0/24", "gateway": "172.30.0.1"})
                ),
                Role::Operator
            ),
            Err(PolicyError::Forbidden { .. })
        ));
        assert!(check_network(
            network(
                json!({"name": "backend", "subnet": "172.30.0.0/24", "gateway": "172.30.0.1",
                "allow_privileged": true, "reason": "fixed addresses for the VPN"})
            ),
            Role::Admin
        )
        .is_ok());
        assert!(check_network(
            network(
                json!({"name": "v6", "subnet": "fd00:1::/64", "gateway": "fd00:1::1",
                "allow_privileged": true, "reason": "IPv6 lab"})
            ),
            Role::Admin
        )
        .is_ok());
        assert!(matches!(
            check_network(
                network(json!({"name": "ov", "driver": "overlay"})),
                Role::Operator
            ),
            Err(PolicyError::Forbidden { .. })
        ));
        assert!(matches!(
            check_network(
                network(json!({"name": "lan", "driver": "macvlan"})),
                Role::Operator
            ),
            Err(PolicyError::Forbidden { .. })
        ));
        assert!(check_network(
            network(json!({"name": "lan", "driver": "macvlan", "allow_privileged": true, "reason": "LAN access"})),
            Role::Admin
        )
        .is_ok());
        for bad in [
            json!({"name": "host"}),
            json!({"name": "x y"}),
            json!({"name": "n1", "driver": "host"}),
            json!({"name": "n1", "subnet": "10.0.0.0/33"}),
            json!({"name": "n1", "subnet": "10.0.0.1/24"}),
            json!({"name": "n1", "gateway": "10.0.0.1"}),
            json!({"name": "n1", "subnet": "10.0.0.0/24", "gateway": "10.0.1.1"}),
            json!({"name": "n1", "subnet": "fd00::/64", "gateway": "10.0.0.1"}),
        ] {
            assert!(
                matches!(
                    check_network(network(bad.clone()), Role::Admin),
                    Err(PolicyError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
