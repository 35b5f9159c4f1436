//! CreateContainer: the rootfs, the OCI spec, the log file's place and the monitor that runs
//! `runc create`. Retry-safe like RunPodSandbox; a failure undoes every step taken.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crius_image_store::images::ImageRecord;
use crius_runtime::RuntimeError;
use crius_runtime::container::process;
use crius_runtime::container::record::{
    ContainerMetadata, ContainerRecord, ContainerState, UserSummary,
};
use crius_runtime::container::rootfs;
use crius_runtime::monitor::{self, ContainerArgs};
use crius_runtime::sandbox::record::{SandboxRecord, SandboxState};
use crius_runtime::spec::image_config::ImageConfig;
use crius_runtime::spec::request::{ContainerPidMode, ContainerRequest};
use crius_runtime::spec::{self, PodContext, SpecInputs};
use tonic::Status;

use super::ContainerManager;
use crate::blocking::run_blocking;
use crate::convert::container::log_file;
use crate::creations::{now_nanos, random_id};
use crate::status::{image_store as image_store_status, runtime as runtime_status};

/// What CreateContainer asks, once validated.
#[derive(Debug)]
pub struct CreateRequest {
    pub pod_id: String,
    pub container: ContainerRequest,
    /// The image as named in the request.
    pub image: String,
    pub request_digest: String,
}

impl ContainerManager {
    /// Creates a container; the same request again returns the same container, also while the
    /// first is still being created.
    pub async fn create(self: &Arc<Self>, request: CreateRequest) -> Result<String, Status> {
        let pod = self.pods.find(&request.pod_id).ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", request.pod_id))
        })?;
        if pod.state != SandboxState::Ready {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let image = self
            .images
            .status(&request.image)
            .map_err(|e| image_store_status(&e))?
            .ok_or_else(|| Status::not_found(format!("image {} not present", request.image)))?;
        let name = format!(
            "{}_{}_{}",
            request.container.name,
            pod.metadata.reserved_name(),
            request.container.attempt
        );
        if let Some(existing) = self.store.find_by_name(&name) {
            let settled = existing.state != ContainerState::Creating;
            if settled && existing.request_digest == request.request_digest {
                return Ok(existing.id);
            }
            if settled {
                return Err(Status::already_exists(format!(
                    "container name {name} is reserved by {}",
                    existing.id
                )));
            }
        }
        let manager = Arc::clone(self);
        let digest = request.request_digest.clone();
        let create = async move { manager.create_detached(pod, image, request).await };
        self.creations
            .run("container", name, digest, create, |id| {
                tracing::info!(container_id = %id, "container created after its caller gave up; a retry gets it");
            })
            .await
    }

    async fn create_detached(
        self: Arc<Self>,
        pod: SandboxRecord,
        image: ImageRecord,
        request: CreateRequest,
    ) -> Result<String, Status> {
        let id = random_id()?;
        let container = &request.container;
        let log_path = log_file(&pod.log_directory, &container.log_path)?.unwrap_or_default();
        let mut record = ContainerRecord {
            id: id.clone(),
            pod_id: pod.id.clone(),
            pod_name: pod.metadata.reserved_name(),
            metadata: ContainerMetadata {
                name: container.name.clone(),
                attempt: container.attempt,
            },
            state: ContainerState::Creating,
            created_at: now_nanos(),
            started_at: 0,
            exit: None,
            image: request.image.clone(),
            image_id: image.id.to_string(),
            image_ref: image
                .repo_digests
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.to_string()),
            labels: container.labels.clone(),
            annotations: container.annotations.clone(),
            log_path,
            mounts: container.mounts.clone(),
            resources: container.resources.clone(),
            user: UserSummary {
                uid: 0,
                gid: 0,
                additional_gids: Vec::new(),
            },
            runtime_handler: pod.runtime_handler.clone(),
            stop_signal: 15,
            tty: container.tty,
            stdin: container.stdin,
            stdin_once: container.stdin_once,
            cgroups_path: cgroups_path(&pod.cgroup_parent, &id),
            dir: self.run_dir(&id),
            layer_dir: self.layer_dir(&id),
            monitor: None,
            init: None,
            request_digest: request.request_digest.clone(),
        };
        self.store.save(&record).map_err(|e| runtime_status(&e))?;
        match self.set_up(&pod, &image, &request, &mut record).await {
            Ok(monitor) => {
                self.watch(&record, monitor);
                tracing::info!(container_id = %id, pod_id = %pod.id, name = %record.reserved_name(), "container created");
                Ok(id)
            }
            Err(status) => {
                let cleaned = match self.tear_down(&record).await {
                    Ok(()) => self.store.delete(&id).map_err(|e| runtime_status(&e)),
                    Err(cleanup) => Err(cleanup),
                };
                if let Err(cleanup) = cleaned {
                    tracing::error!(container_id = %id, error = %cleanup.message(), "cleaning up a failed container");
                }
                Err(status)
            }
        }
    }

    /// The steps of CreateContainer; returns the monitor's pidfd. `record` says how far they
    /// got, for the rollback.
    async fn set_up(
        &self,
        pod: &SandboxRecord,
        image: &ImageRecord,
        request: &CreateRequest,
        record: &mut ContainerRecord,
    ) -> Result<std::os::fd::OwnedFd, Status> {
        let config_json = self
            .images
            .config_json(image)
            .map_err(|e| image_store_status(&e))?;
        let image_config = ImageConfig::parse(&config_json).map_err(|e| runtime_status(&e))?;
        let target_pid_ns = match &request.container.security.pid_mode {
            ContainerPidMode::Target(target) => Some(self.target_pid_namespace(pod, target)?),
            _ => None,
        };
        let layers = self.images.layer_dirs(image);
        let pod_context = pod_context(pod);
        let runtime = self.oci_runtime(&pod.runtime_handler)?;
        let container = request.container.clone();
        let monitor_binary = self.monitor.clone();
        let built_record = record.clone();
        let memory_cgroup = self.cgroups.controller_dir("memory", &record.cgroups_path);
        let (built, started) = run_blocking(move || {
            let record = built_record;
            let began = std::time::Instant::now();
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&record.dir)
                .map_err(RuntimeError::io("create directory", &record.dir))?;
            let rootfs_dir = record.dir.join("rootfs");
            rootfs::mount(&layers, &record.layer_dir, &rootfs_dir)?;
            let mounted = began.elapsed();
            let built = spec::build(&SpecInputs {
                id: &record.id,
                request: &container,
                image: &image_config,
                rootfs: &rootfs_dir,
                pod: &pod_context,
                cgroups_path: record.cgroups_path.clone(),
                target_pid_ns,
            })?;
            write_spec(&record.dir, &built.spec)?;
            let specified = began.elapsed();
            if let Some(parent) = record
                .log_path
                .parent()
                .filter(|_| !record.log_path.as_os_str().is_empty())
            {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(RuntimeError::io("create log directory", parent))?;
            }
            let started = monitor::start(
                &monitor_binary,
                &ContainerArgs {
                    id: record.id.clone(),
                    runtime: runtime.binary.clone(),
                    runtime_root: runtime.root.clone(),
                    bundle: record.dir.clone(),
                    dir: record.dir.clone(),
                    log_path: (!record.log_path.as_os_str().is_empty())
                        .then(|| record.log_path.clone()),
                    tty: record.tty,
                    stdin: record.stdin,
                    stdin_once: record.stdin_once,
                    oom_cgroup: Some(memory_cgroup),
                },
            )?;
            tracing::debug!(
                container_id = %record.id,
                rootfs_ms = mounted.as_secs_f64() * 1e3,
                spec_ms = (specified - mounted).as_secs_f64() * 1e3,
                monitor_ms = (began.elapsed() - specified).as_secs_f64() * 1e3,
                "container set up"
            );
            Ok::<_, RuntimeError>((built, started))
        })
        .await
        .map_err(|e| runtime_status(&e))?;
        record.user = UserSummary {
            uid: built.user.uid,
            gid: built.user.gid,
            additional_gids: built.user.additional_gids.clone(),
        };
        record.stop_signal = built.stop_signal;
        record.monitor = process::identify(started.monitor_pid);
        record.init = process::identify(started.container_pid);
        let monitor = match record.monitor.map(process::open) {
            Some(Ok(Some(pidfd))) => pidfd,
            Some(Err(e)) => return Err(runtime_status(&e)),
            _ => {
                return Err(Status::internal(format!(
                    "the monitor of container {} ended right after creating it",
                    record.id
                )));
            }
        };
        record.state = ContainerState::Created;
        self.store.save(record).map_err(|e| runtime_status(&e))?;
        Ok(monitor)
    }

    /// The PID namespace of container `target` of the same pod, for a container that asks to
    /// share it.
    fn target_pid_namespace(&self, pod: &SandboxRecord, target: &str) -> Result<PathBuf, Status> {
        let container = self
            .find(target)
            .filter(|c| c.pod_id == pod.id)
            .ok_or_else(|| {
                Status::not_found(format!("target container {target} not found in the pod"))
            })?;
        let init = container
            .init
            .filter(|_| container.state != ContainerState::Exited)
            .ok_or_else(|| {
                Status::failed_precondition(format!("target container {target} is not running"))
            })?;
        Ok(PathBuf::from(format!("/proc/{}/ns/pid", init.pid)))
    }
}

/// What a container takes from its pod.
fn pod_context(pod: &SandboxRecord) -> PodContext {
    let namespaces = pod.namespaces.as_ref();
    PodContext {
        pod_id: pod.id.clone(),
        net_ns: namespaces.and_then(|n| n.net.clone()),
        ipc_ns: namespaces.and_then(|n| n.ipc.clone()),
        uts_ns: namespaces.and_then(|n| n.uts.clone()),
        pid_ns: namespaces.and_then(|n| n.pid.clone()),
        host_network: pod.host_namespaces.network,
        host_ipc: pod.host_namespaces.ipc,
        host_pid: pod.host_namespaces.pid,
        hostname: pod.hostname.clone(),
        hostname_file: pod.dir.join("hostname"),
        resolv_conf: pod.dir.join("resolv.conf"),
        shm: (!pod.host_namespaces.ipc).then(|| pod.dir.join("shm")),
    }
}

/// The container's cgroup: a child of the pod's (cgroupfs form).
fn cgroups_path(pod_cgroup: &str, id: &str) -> String {
    let parent = if pod_cgroup.is_empty() {
        "/crius"
    } else {
        pod_cgroup.trim_end_matches('/')
    };
    format!("{parent}/crius-{id}")
}

/// Writes the bundle's `config.json` (0600).
fn write_spec(dir: &Path, spec: &oci_spec::runtime::Spec) -> Result<(), RuntimeError> {
    use std::io::Write;
    let path = dir.join("config.json");
    let json = serde_json::to_vec(spec).map_err(|e| RuntimeError::Io {
        op: "serialize",
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(&json))
        .map_err(RuntimeError::io("write", &path))
}
