//! The container create request: a platform-owned type. Unknown fields, duplicate keys
//! (also inside maps) and case-variant keys are refused, and the Docker configuration is
//! built from its allowed fields only, never passed through.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// A map that refuses duplicate keys (serde's default keeps the last one silently).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UniqueMap(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueMapVisitor;
        impl<'de> Visitor<'de> for UniqueMapVisitor {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    out.insert(key, value);
                }
                Ok(UniqueMap(out))
            }
        }
        deserializer.deserialize_map(UniqueMapVisitor)
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortRequest {
    pub container_port: u16,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
    /// Published on the host (absent: exposed only).
    pub host_port: Option<u16>,
    /// Host address to publish on (default all).
    pub host_ip: Option<String>,
}

/// A named volume mounted into the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeRequest {
    /// The volume's name (created by Docker if missing). Not a path.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    pub read_only: Option<bool>,
}

/// A host directory mounted into the container (admins, with `allow_privileged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    /// Absolute path on the host.
    pub source: String,
    pub target: String,
    pub read_only: Option<bool>,
}

/// The restart policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicyRequest {
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// With `on-failure`: how many times (default unlimited).
    pub max_retries: Option<u32>,
}

/// `POST /api/v1/containers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContainerRequest {
    /// Image reference, e.g. `nginx:1.27` or `registry.local:5000/team/app@sha256:…`.
    pub image: String,
    pub name: Option<String>,
    /// Arguments (exec form; no shell is involved).
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// Variables; names `[A-Z_][A-Z0-9_]*`.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub env: Option<UniqueMap>,
    /// Labels; the `dcp.` prefix is reserved.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub labels: Option<UniqueMap>,
    pub ports: Option<Vec<PortRequest>>,
    pub volumes: Option<Vec<VolumeRequest>>,
    pub binds: Option<Vec<BindRequest>>,
    pub restart_policy: Option<RestartPolicyRequest>,
    /// Memory limit in bytes (at least 6 MiB).
    pub memory_bytes: Option<i64>,
    /// CPU limit in cores (e.g. 0.5).
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    /// `bridge` (default), `none`, or a user-defined network.
    pub network: Option<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub tty: Option<bool>,
    /// Start it once created (default false).
    pub start: Option<bool>,
    pub privileged: Option<bool>,
    pub cap_add: Option<Vec<String>>,
    /// Host devices (`/dev/fuse`, `/dev/sda:/dev/xvda:rwm`).
    pub devices: Option<Vec<String>>,
    pub security_opt: Option<Vec<String>>,
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub uts_mode: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub sysctls: Option<UniqueMap>,
    /// Admins only: allow the options above that reach the host.
    pub allow_privileged: Option<bool>,
    /// Why (required with `allow_privileged`; recorded with the request).
    pub reason: Option<String>,
}
