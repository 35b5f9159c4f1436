//! The pod sandbox lifecycle: what RunPodSandbox, StopPodSandbox and RemovePodSandbox do, in
//! order, composing the runtime crate (pinned namespaces, pod files, cgroups, records) with the
//! CNI crate (the pod network). A RunPodSandbox that fails undoes every step it took.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crius_cni::NetworkConfigList;
use crius_cni::exec::{Attachment, Bandwidth, Dns, PortMapping as CniPortMapping};
use crius_runtime::cgroup::CgroupFs;
use crius_runtime::pinning::{self, PinRequest};
use crius_runtime::record_store::{Durability, RecordStore};
use crius_runtime::sandbox::files;
use crius_runtime::sandbox::record::{PidMode, SandboxRecord, SandboxState};
use tonic::Status;

use crate::blocking::run_blocking;
use crate::config::Config;
use crate::convert::sandbox::{NetworkRequest, PodSpec};
use crate::creations::{Creations, now_nanos, random_id};
use crate::status::{cni as cni_status, runtime as runtime_status};

const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// The burst given with a pod's bandwidth limit (the plugin's maximum, as containerd sets it).
const BANDWIDTH_BURST_BITS: u64 = u32::MAX as u64;
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug)]
pub struct PodManager {
    config: Arc<Config>,
    store: RecordStore<SandboxRecord>,
    cgroups: CgroupFs,
    monitor: PathBuf,
    /// RunPodSandbox calls under way.
    creations: Arc<Creations>,
    /// Pods whose every caller went away before they were ready: removed unless a retry claims
    /// them in time (not kept across restarts).
    unclaimed: Mutex<HashSet<String>>,
}

impl PodManager {
    /// Loads the pod records. `node_rebooted` (the state dir was missing) means every pod's
    /// namespaces and mounts are gone: ready pods become not ready once their network is released.
    /// Pods whose creation a crash cut short are torn down either way.
    pub async fn open(config: Arc<Config>, node_rebooted: bool) -> anyhow::Result<Self> {
        let store = RecordStore::open(&config.root.join("pods"), Durability::Synced)?;
        let monitor = config.monitor_binary()?;
        let manager = PodManager {
            config,
            store,
            cgroups: CgroupFs::new(Path::new(CGROUP_ROOT)),
            monitor,
            creations: Arc::default(),
            unclaimed: Mutex::new(HashSet::new()),
        };
        manager.recover(node_rebooted).await;
        Ok(manager)
    }

    async fn recover(&self, node_rebooted: bool) {
        for mut record in self.store.list() {
            match record.state {
                SandboxState::Creating => {
                    tracing::warn!(pod_id = %record.id, "removing a pod whose creation was cut short");
                    let outcome = match self.tear_down(&record, true).await {
                        Ok(()) => self
                            .store
                            .delete(&record.id)
                            .map_err(|e| runtime_status(&e)),
                        Err(status) => Err(status),
                    };
                    if let Err(status) = outcome {
                        tracing::error!(pod_id = %record.id, error = %status.message(), "cleaning up");
                    }
                }
                SandboxState::Ready if node_rebooted => {
                    // Until its network is released, the pod stays ready: kubelet's
                    // StopPodSandbox then retries the DEL.
                    if let Err(status) = self.detach_network(&record).await {
                        tracing::error!(pod_id = %record.id, error = %status.message(), "releasing the network of a pod the reboot stopped; StopPodSandbox will retry");
                        continue;
                    }
                    record.state = SandboxState::NotReady;
                    if let Err(e) = self.store.save(&record) {
                        tracing::error!(pod_id = %record.id, error = %e, "saving a pod the reboot stopped");
                    }
                    tracing::info!(pod_id = %record.id, "pod stopped by a node reboot");
                }
                _ => {}
            }
        }
    }

    /// The pod with this id or unique id prefix, unless it is still being created.
    pub fn find(&self, id_or_prefix: &str) -> Option<SandboxRecord> {
        self.store
            .find(id_or_prefix)
            .filter(|r| r.state != SandboxState::Creating)
    }

    /// Every pod, but those still being created.
    pub fn list(&self) -> Vec<SandboxRecord> {
        let mut pods = self.store.list();
        pods.retain(|r| r.state != SandboxState::Creating);
        pods
    }

    /// The pod network as configured now (the config dir is read off the async workers).
    async fn network(&self) -> Result<NetworkConfigList, Status> {
        let config = self.config.network.clone();
        run_blocking(move || crate::network::load(&config))
            .await
            .map_err(|e| cni_status(&e))
    }

    /// Creates a pod; the same request again returns the same pod, also while the first is
    /// still being created. The creation runs on its own: a caller that gives up (a deadline)
    /// does not cut it short, and its retry gets the result.
    pub async fn run(
        self: &Arc<Self>,
        spec: PodSpec,
        request_digest: String,
    ) -> Result<String, Status> {
        let name = spec.metadata.reserved_name();
        if let Some(existing) = self.store.find_by_name(&name) {
            let orphan = self.unclaimed().contains(&existing.id);
            let settled = existing.state != SandboxState::Creating;
            if settled && existing.request_digest == request_digest {
                // A retry claims the pod its earlier call created.
                self.unclaimed().remove(&existing.id);
                return Ok(existing.id);
            }
            if orphan {
                tracing::info!(pod_id = %existing.id, "a changed request replaces an unclaimed pod");
                self.unclaimed().remove(&existing.id);
                self.remove(&existing.id).await?;
            } else if settled {
                return Err(Status::already_exists(format!(
                    "pod sandbox name {name} is reserved by {}",
                    existing.id
                )));
            }
        }
        let manager = Arc::clone(self);
        let digest = request_digest.clone();
        let create = async move { manager.create(spec, request_digest).await };
        let manager = Arc::clone(self);
        self.creations
            .run("pod sandbox", name, digest, create, move |id| {
                manager.expire_unless_claimed(id);
            })
            .await
    }

    fn unclaimed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.unclaimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes pod `id` after the orphan timeout unless a retry claimed it meanwhile.
    fn expire_unless_claimed(self: &Arc<Self>, id: String) {
        tracing::info!(pod_id = %id, "pod created after its caller gave up; waiting for a retry to claim it");
        self.unclaimed().insert(id.clone());
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(manager.config.runtime.orphan_pod_timeout).await;
            if manager.unclaimed().remove(&id) {
                tracing::info!(pod_id = %id, "removing a pod no retry claimed");
                if let Err(status) = manager.remove(&id).await {
                    tracing::error!(pod_id = %id, error = %status.message(), "removing an unclaimed pod");
                }
            }
        });
    }

    /// The creation itself: a pending record first (so a crash is cleaned up at the next start),
    /// then every step; on failure, every step taken is undone.
    async fn create(&self, spec: PodSpec, request_digest: String) -> Result<String, Status> {
        let id = random_id()?;
        let dir = self.config.state_dir.join("pods").join(&id);
        let mut record = SandboxRecord {
            id: id.clone(),
            metadata: spec.metadata.clone(),
            state: SandboxState::Creating,
            created_at: now_nanos(),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            runtime_handler: spec.runtime_handler.clone(),
            log_directory: spec.log_directory.clone(),
            hostname: spec.hostname.clone(),
            host_namespaces: spec.host,
            pid_mode: spec.pid_mode,
            dir,
            namespaces: None,
            cgroup_parent: spec.cgroup_parent.clone(),
            cgroup_created: false,
            ips: Vec::new(),
            network_request: serde_json::to_value(&spec.network)
                .map_err(|e| Status::internal(format!("serialize the network request: {e}")))?,
            cni_result: None,
            request_digest,
        };
        self.store.save(&record).map_err(|e| runtime_status(&e))?;
        match self.set_up(&spec, &mut record).await {
            Ok(()) => {
                tracing::info!(pod_id = %id, name = %record.metadata.reserved_name(), ips = ?record.ips, "pod sandbox ready");
                Ok(id)
            }
            Err(status) => {
                let cleaned = match self.tear_down(&record, true).await {
                    Ok(()) => self.store.delete(&id).map_err(|e| runtime_status(&e)),
                    Err(cleanup) => Err(cleanup),
                };
                if let Err(cleanup) = cleaned {
                    tracing::error!(pod_id = %id, error = %cleanup.message(), "cleaning up a failed pod sandbox");
                }
                Err(status)
            }
        }
    }

    /// The steps of RunPodSandbox; `record` says how far they got, for the rollback.
    async fn set_up(&self, spec: &PodSpec, record: &mut SandboxRecord) -> Result<(), Status> {
        let dir = record.dir.clone();
        let monitor = self.monitor.clone();
        let request = PinRequest {
            net: !spec.host.network,
            ipc: !spec.host.ipc,
            uts: !spec.host.network,
            hostname: (!spec.host.network).then(|| spec.hostname.clone()),
            sysctls: spec.sysctls.clone(),
            // A pod-wide PID namespace is held by crius's own init, started by the helper.
            pid: spec.pid_mode == PidMode::Pod,
        };
        let resolv_source = if spec.host.network {
            None
        } else {
            spec.dns.clone()
        };
        let hostname = spec.hostname.clone();
        let shm_size = (!spec.host.ipc).then_some(self.config.runtime.shm_size);
        let namespaces = run_blocking(move || {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Status::internal(format!("create {}: {e}", dir.display())))?;
            let resolv = files::resolv_conf(resolv_source.as_ref(), Path::new(HOST_RESOLV_CONF))
                .map_err(|e| runtime_status(&e))?;
            files::write_pod_files(&dir, &hostname, &resolv).map_err(|e| runtime_status(&e))?;
            let namespaces = pinning::pin(&monitor, &dir.join("ns"), &request)
                .map_err(|e| runtime_status(&e))?;
            if let Some(size) = shm_size {
                files::mount_shm(&dir, size).map_err(|e| runtime_status(&e))?;
            }
            Ok::<_, Status>(namespaces)
        })
        .await?;
        record.namespaces = Some(namespaces);

        if !spec.cgroup_parent.is_empty() {
            let cgroups = self.cgroups.clone();
            let path = spec.cgroup_parent.clone();
            // The pod's init (if any) stays in crius's cgroup: moving a process between v1
            // cgroups costs 1 to 10 ms per hierarchy, and a sleeping reaper needs no accounting.
            record.cgroup_created =
                run_blocking(move || cgroups.create(&path).map_err(|e| runtime_status(&e))).await?;
        }

        if !spec.host.network {
            let network = self.network().await.map_err(|status| {
                Status::failed_precondition(format!(
                    "the pod network is not ready: {}",
                    status.message()
                ))
            })?;
            let attachment = self.attachment(record)?;
            let result = network
                .add(
                    &attachment,
                    &self.config.network.cni_plugin_dirs,
                    self.config.network.plugin_timeout,
                )
                .await
                .map_err(|e| cni_status(&e))?;
            record.ips = result.ips.iter().map(|ip| ip.address.to_string()).collect();
            record.cni_result = Some(result.result);
        }
        record.state = SandboxState::Ready;
        self.store.save(record).map_err(|e| runtime_status(&e))
    }

    fn attachment(&self, record: &SandboxRecord) -> Result<Attachment, Status> {
        let request: NetworkRequest = serde_json::from_value(record.network_request.clone())
            .map_err(|e| Status::internal(format!("pod record's network request: {e}")))?;
        let netns = record
            .namespaces
            .as_ref()
            .and_then(|n| n.net.clone())
            .unwrap_or_else(|| record.dir.join("ns/net"));
        let dns = (!request.dns_servers.is_empty()
            || !request.dns_searches.is_empty()
            || !request.dns_options.is_empty())
        .then(|| Dns {
            servers: request.dns_servers.clone(),
            searches: request.dns_searches.clone(),
            options: request.dns_options.clone(),
        });
        Ok(Attachment {
            container_id: record.id.clone(),
            netns,
            ifname: "eth0".into(),
            pod_name: record.metadata.name.clone(),
            pod_namespace: record.metadata.namespace.clone(),
            pod_uid: record.metadata.uid.clone(),
            port_mappings: request
                .port_mappings
                .iter()
                .filter(|m| m.host_port != 0)
                .map(|m| CniPortMapping {
                    host_port: m.host_port,
                    container_port: m.container_port,
                    protocol: m.protocol.clone(),
                    host_ip: m.host_ip.clone(),
                })
                .collect(),
            bandwidth: (request.ingress_bits_per_second.is_some()
                || request.egress_bits_per_second.is_some())
            .then(|| Bandwidth {
                // The burst is as large as the plugin takes, as containerd sets it.
                ingress_rate: request.ingress_bits_per_second.unwrap_or(0),
                ingress_burst: request
                    .ingress_bits_per_second
                    .map_or(0, |_| BANDWIDTH_BURST_BITS),
                egress_rate: request.egress_bits_per_second.unwrap_or(0),
                egress_burst: request
                    .egress_bits_per_second
                    .map_or(0, |_| BANDWIDTH_BURST_BITS),
            }),
            dns,
        })
    }

    /// Takes the pod off the network and marks it not ready; an unknown pod is fine.
    pub async fn stop(&self, id: &str) -> Result<(), Status> {
        let Some(mut record) = self.find(id) else {
            return Ok(());
        };
        if record.state == SandboxState::NotReady {
            return Ok(());
        }
        self.detach_network(&record).await?;
        record.state = SandboxState::NotReady;
        self.store.save(&record).map_err(|e| runtime_status(&e))?;
        tracing::info!(pod_id = %record.id, "pod sandbox stopped");
        Ok(())
    }

    /// CNI DEL for the pod, also when its namespaces are gone (a crash cut its creation short,
    /// or the node rebooted): plugins release what they hold by container id.
    async fn detach_network(&self, record: &SandboxRecord) -> Result<(), Status> {
        if record.host_namespaces.network {
            return Ok(());
        }
        let network = match self.network().await {
            Ok(network) => network,
            Err(status) => {
                tracing::warn!(pod_id = %record.id, reason = %status.message(), "no CNI network to detach the pod from");
                return Ok(());
            }
        };
        let attachment = self.attachment(record)?;
        network
            .del(
                &attachment,
                record.cni_result.as_ref(),
                &self.config.network.cni_plugin_dirs,
                self.config.network.plugin_timeout,
            )
            .await
            .map_err(|e| cni_status(&e))
    }

    /// Stops the pod if needed and deletes everything of it; an unknown pod is fine.
    pub async fn remove(&self, id: &str) -> Result<(), Status> {
        let Some(record) = self.find(id) else {
            return Ok(());
        };
        self.tear_down(&record, record.state == SandboxState::Ready)
            .await?;
        self.store
            .delete(&record.id)
            .map_err(|e| runtime_status(&e))?;
        tracing::info!(pod_id = %record.id, "pod sandbox removed");
        Ok(())
    }

    /// Undoes what `record` says exists: network, pinned namespaces (and the pod's init),
    /// /dev/shm, cgroup, the pod directory. Each step tolerates what is already gone.
    async fn tear_down(&self, record: &SandboxRecord, attached: bool) -> Result<(), Status> {
        if attached {
            self.detach_network(record).await?;
        }
        let record = record.clone();
        let cgroups = self.cgroups.clone();
        run_blocking(move || {
            // First the namespaces: unpinning also ends the pod's init.
            pinning::unpin(&record.dir.join("ns")).map_err(|e| runtime_status(&e))?;
            // Mounted by every pod with its own IPC namespace; unmounting a missing one is fine.
            files::unmount_shm(&record.dir.join("shm")).map_err(|e| runtime_status(&e))?;
            if record.cgroup_created {
                cgroups
                    .remove(&record.cgroup_parent)
                    .map_err(|e| runtime_status(&e))?;
            }
            match std::fs::remove_dir_all(&record.dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Status::internal(format!(
                    "remove {}: {e}",
                    record.dir.display()
                ))),
            }
        })
        .await
    }
}
