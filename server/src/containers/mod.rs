//! The container lifecycle: CreateContainer, StartContainer, StopContainer, RemoveContainer and
//! what they leave behind, composing the runtime crate (records, rootfs, spec, monitor, OCI
//! runtime) with the image store and the pods.
//!
//! Each container is supervised by its own `crius-monitor`, which outlives the daemon; crius
//! holds a pidfd of the monitor and learns of the container's exit when the monitor ends (it
//! writes the exit file first). Operations on one container are serialized by a lock of its own.

pub mod create;
pub mod exec;
mod lifecycle;
mod recover;
mod stats;
pub mod terminal;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use crius_image_store::store::ImageStore;
use crius_runtime::cgroup::CgroupFs;
use crius_runtime::container::exit_watcher::ExitWatcher;
use crius_runtime::container::oci_runtime::OciRuntime;
use crius_runtime::container::record::{ContainerRecord, ContainerState};
use crius_runtime::record_store::{Durability, RecordStore};
use tonic::Status;

use crate::config::Config;
use crate::creations::Creations;
use crate::pods::{CGROUP_ROOT, PodManager};

#[derive(Debug)]
pub struct ContainerManager {
    config: Arc<Config>,
    pods: Arc<PodManager>,
    images: Arc<ImageStore>,
    store: RecordStore<ContainerRecord>,
    creations: Arc<Creations>,
    monitor: PathBuf,
    /// Where the containers' cgroups are read.
    cgroups: CgroupFs,
    /// Learns of the end of each container's monitor.
    exit_watcher: ExitWatcher,
    /// Serializes the operations on one container, exit handling included.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per live container: becomes true once its exit is recorded.
    exits: Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>>,
    /// Pidfds of live containers' init processes, for signals.
    inits: Mutex<HashMap<String, Arc<OwnedFd>>>,
    /// The last CPU sample of each container, for the CPU rate.
    cpu_samples: Mutex<HashMap<String, stats::CpuSample>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ContainerManager {
    /// Loads the container records and takes up watching the containers that still run.
    /// `node_rebooted`: every container is gone; those not yet exited are marked exited.
    pub async fn open(
        config: Arc<Config>,
        pods: Arc<PodManager>,
        images: Arc<ImageStore>,
        node_rebooted: bool,
    ) -> anyhow::Result<Arc<Self>> {
        // A container does not outlive a power cut: its record need not either. What a lost
        // record leaves on disk is swept at start.
        let store = RecordStore::open(&config.root.join("containers"), Durability::Atomic)?;
        for dir in [
            config.root.join("container-layers"),
            config.state_dir.join("containers"),
        ] {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("create {}", dir.display()))?;
        }
        let monitor = config.monitor_binary()?;
        let manager = Arc::new(ContainerManager {
            config,
            pods,
            images,
            store,
            creations: Arc::default(),
            monitor,
            cgroups: CgroupFs::new(Path::new(CGROUP_ROOT)),
            exit_watcher: ExitWatcher::start()?,
            locks: Mutex::default(),
            exits: Mutex::default(),
            inits: Mutex::default(),
            cpu_samples: Mutex::default(),
        });
        manager.recover(node_rebooted).await;
        Ok(manager)
    }

    /// The container with this id or unique id prefix, unless it is still being created.
    pub fn find(&self, id_or_prefix: &str) -> Option<ContainerRecord> {
        self.store
            .find(id_or_prefix)
            .filter(|r| r.state != ContainerState::Creating)
    }

    /// Every container, but those still being created.
    pub fn list(&self) -> Vec<ContainerRecord> {
        let mut containers = self.store.list();
        containers.retain(|r| r.state != ContainerState::Creating);
        containers
    }

    /// The containers of pod `pod_id`, those being created included.
    fn of_pod(&self, pod_id: &str) -> Vec<ContainerRecord> {
        let mut containers = self.store.list();
        containers.retain(|r| r.pod_id == pod_id);
        containers
    }

    /// Whether any container uses the image with this id.
    pub fn uses_image(&self, image_id: &str) -> bool {
        self.store.list().iter().any(|r| r.image_id == image_id)
    }

    /// The lock of container `id`.
    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(lock(&self.locks).entry(id.to_owned()).or_default())
    }

    /// The OCI runtime that runs the pod's containers: its handler's binary, state under the
    /// state dir.
    fn oci_runtime(&self, handler: &str) -> Result<OciRuntime, Status> {
        let name = if handler.is_empty() {
            self.config.runtime.default_runtime.as_str()
        } else {
            handler
        };
        let binary = self.config.runtime.handlers.get(name).ok_or_else(|| {
            Status::invalid_argument(format!("runtime handler {name:?} is not configured"))
        })?;
        Ok(OciRuntime {
            binary: binary.clone(),
            root: self.config.state_dir.join("runtimes").join(name),
        })
    }

    /// Where a container's bundle, rootfs mount and monitor files live (tmpfs).
    fn run_dir(&self, id: &str) -> PathBuf {
        self.config.state_dir.join("containers").join(id)
    }

    /// Where a container's writable layer lives (disk).
    fn layer_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("container-layers").join(id)
    }
}
