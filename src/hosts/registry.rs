//! The registry of Docker engines: the local engine plus every registered remote host,
//! reached over SSH.
//!
//! [`HostRegistry`] is the [`DockerHosts`] of the server. Remote hosts come from the `hosts`
//! read model ([`HostRegistry::sync`]): at start, after every host command of this process,
//! and every [`SYNC_INTERVAL`] (so a host added through another replica is picked up).
//! Each remote host has its own SSH pool, timeouts and back-off, so one dead host never
//! slows the others. A host's connection is kept across syncs while how it is reached
//! (address, user, secret, pinned key) stays the same.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bollard::Docker;
use dcp_projections::past::HostState;
use russh::keys::PublicKey;
use sqlx::PgPool;
use uuid::Uuid;

use super::credentials::load_credentials;
use crate::docker::{DockerError, DockerHosts, LocalDocker, CALL_TIMEOUT, LOCAL_HOST};
use crate::secrets::sealed::MasterKey;
use crate::ssh::{Endpoint, KeyMismatchHook, SshPool};

/// How often the registry re-reads the `hosts` read model.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// How a host is reached: a change means a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reach {
    user: String,
    address: String,
    port: u16,
    secret_id: Option<Uuid>,
    host_key: String,
}

impl Reach {
    fn of(host: &HostState) -> Self {
        Reach {
            user: host.user.clone(),
            address: host.address.clone(),
            port: host.port,
            secret_id: host.secret_id,
            host_key: host.host_key.clone(),
        }
    }
}

struct RemoteHost {
    name: String,
    enabled: bool,
    reach: Reach,
    /// Bumped when the connection is remade (new credentials, key or address).
    generation: u64,
    /// The client, or why none could be made (a secret that does not open, …).
    docker: Result<(Docker, Arc<SshPool>), String>,
}

/// Builds the callback a pool calls when it meets a foreign host key.
pub type MismatchHooks = Arc<dyn Fn(&str) -> KeyMismatchHook + Send + Sync>;

/// Every Docker engine dcp drives.
pub struct HostRegistry {
    local: LocalDocker,
    remote: RwLock<HashMap<String, RemoteHost>>,
    generations: std::sync::atomic::AtomicU64,
    /// Serialises syncs.
    syncing: tokio::sync::Mutex<()>,
    mismatch_hooks: RwLock<Option<MismatchHooks>>,
}

impl HostRegistry {
    pub fn new(local: LocalDocker) -> Self {
        HostRegistry {
            local,
            remote: RwLock::new(HashMap::new()),
            generations: std::sync::atomic::AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
            mismatch_hooks: RwLock::new(None),
        }
    }

    /// Sets what a pool does when a host presents a foreign key (records it, in the server).
    pub fn on_key_mismatch(&self, hooks: MismatchHooks) {
        if let Ok(mut slot) = self.mismatch_hooks.write() {
            *slot = Some(hooks);
        }
    }

    /// The SSH pool of remote host `id` (for checks and counters).
    pub fn pool(&self, id: &str) -> Option<Arc<SshPool>> {
        let remote = self.remote.read().ok()?;
        remote
            .get(id)
            .and_then(|host| host.docker.as_ref().ok())
            .map(|(_, pool)| pool.clone())
    }

    /// The remote hosts (id, name), enabled or not.
    pub fn remote_hosts(&self) -> Vec<(String, String, bool)> {
        self.remote
            .read()
            .map(|remote| {
                remote
                    .iter()
                    .map(|(id, h)| (id.clone(), h.name.clone(), h.enabled))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The enabled hosts with the generation of their connection (`local` is 0): what the
    /// Docker event watchers follow; a new generation means a new connection to follow.
    pub fn watch_targets(&self) -> Vec<(String, u64)> {
        let mut targets = vec![(LOCAL_HOST.to_string(), 0)];
        if let Ok(remote) = self.remote.read() {
            targets.extend(
                remote
                    .iter()
                    .filter(|(_, host)| host.enabled)
                    .map(|(id, host)| (id.clone(), host.generation)),
            );
        }
        targets
    }

    /// Brings the remote hosts in line with the `hosts` read model.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn sync(&self, pool: &PgPool, master_key: &MasterKey) -> anyhow::Result<()> {
        let _one_at_a_time = self.syncing.lock().await;
        let rows: Vec<(String, sqlx::types::Json<HostState>)> =
            sqlx::query_as("SELECT id, doc FROM hosts")
                .fetch_all(pool)
                .await?;
        let current: HashMap<String, Reach> = self
            .remote
            .read()
            .map(|remote| {
                remote
                    .iter()
                    .map(|(id, h)| (id.clone(), h.reach.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut built = HashMap::new();
        for (id, host) in &rows {
            let reach = Reach::of(host);
            if current.get(id) != Some(&reach) {
                built.insert(
                    id.clone(),
                    self.connect_to(pool, master_key, id, host).await,
                );
            }
        }
        let Ok(mut remote) = self.remote.write() else {
            anyhow::bail!("the host registry lock is poisoned");
        };
        let wanted: HashMap<&String, &HostState> =
            rows.iter().map(|(id, host)| (id, &host.0)).collect();
        remote.retain(|id, _| wanted.contains_key(id));
        for (id, host) in wanted {
            let enabled = host.status != "disabled";
            match built.remove(id) {
                Some(docker) => {
                    let generation = self
                        .generations
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        + 1;
                    remote.insert(
                        id.clone(),
                        RemoteHost {
                            name: host.name.clone(),
                            enabled,
                            reach: Reach::of(host),
                            generation,
                            docker,
                        },
                    );
                }
                None => {
                    if let Some(existing) = remote.get_mut(id) {
                        existing.name = host.name.clone();
                        existing.enabled = enabled;
                    }
                }
            }
        }
        Ok(())
    }

    async fn connect_to(
        &self,
        pool: &PgPool,
        master_key: &MasterKey,
        id: &str,
        host: &HostState,
    ) -> Result<(Docker, Arc<SshPool>), String> {
        let pinned = PublicKey::from_openssh(&host.host_key)
            .map_err(|error| format!("the pinned host key does not parse: {error}"))?;
        let secret_id = host.secret_id.ok_or("the host has no credentials")?;
        let credentials = load_credentials(pool, master_key, &host.auth_method, secret_id)
            .await
            .map_err(|error| error.to_string())?;
        let hook = self
            .mismatch_hooks
            .read()
            .ok()
            .and_then(|hooks| hooks.as_ref().map(|make| make(id)));
        let ssh = SshPool::new(
            Endpoint {
                user: host.user.clone(),
                address: host.address.clone(),
                port: host.port,
            },
            credentials,
            pinned,
            hook,
        );
        Ok((ssh.docker(CALL_TIMEOUT.as_secs()), ssh))
    }
}

#[async_trait::async_trait]
impl DockerHosts for HostRegistry {
    fn host_ids(&self) -> Vec<String> {
        let mut ids = vec![LOCAL_HOST.to_string()];
        if let Ok(remote) = self.remote.read() {
            let mut enabled: Vec<String> = remote
                .iter()
                .filter(|(_, host)| host.enabled)
                .map(|(id, _)| id.clone())
                .collect();
            enabled.sort();
            ids.extend(enabled);
        }
        ids
    }

    /// The id of the host named or identified by `name_or_id`.
    fn resolve(&self, name_or_id: &str) -> Option<String> {
        if name_or_id == LOCAL_HOST {
            return Some(LOCAL_HOST.to_string());
        }
        let remote = self.remote.read().ok()?;
        if remote.contains_key(name_or_id) {
            return Some(name_or_id.to_string());
        }
        // Names are unique case-insensitively.
        let wanted = name_or_id.to_lowercase();
        remote
            .iter()
            .find(|(_, host)| host.name.to_lowercase() == wanted)
            .map(|(id, _)| id.clone())
    }

    fn client(&self, host: &str) -> Result<Docker, DockerError> {
        if host == LOCAL_HOST {
            return self.local.client(host);
        }
        let remote = self
            .remote
            .read()
            .map_err(|_| DockerError::UnknownHost(host.to_string()))?;
        let Some(entry) = remote.get(host) else {
            return Err(DockerError::UnknownHost(host.to_string()));
        };
        if !entry.enabled {
            return Err(DockerError::Unavailable {
                host: host.to_string(),
                message: "the host is disabled".into(),
            });
        }
        entry
            .docker
            .as_ref()
            .map(|(docker, _)| docker.clone())
            .map_err(|message| DockerError::Unavailable {
                host: host.to_string(),
                message: message.clone(),
            })
    }
}
