//! Start, stop and remove, and how a container's exit is learned and recorded.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use crius_runtime::container::record::{ContainerRecord, ContainerState, ExitRecord};
use crius_runtime::container::{process, rootfs};
use crius_runtime::monitor;
use crius_runtime::spec::linux_resources;
use crius_runtime::spec::request::Resources;
use tonic::Status;

use super::{ContainerManager, lock};
use crate::blocking::run_blocking;
use crate::creations::now_nanos;
use crate::status::runtime as runtime_status;

/// How long a SIGKILLed container may take to be gone before it is killed again.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// Exit code reported when a container's real one could not be learned, as containerd does.
const UNKNOWN_EXIT_CODE: i32 = 255;
/// How long the processes a container's init left may take to die once SIGKILLed.
const LEFTOVERS_PATIENCE: Duration = Duration::from_secs(5);

impl ContainerManager {
    pub async fn start(&self, id: &str) -> Result<(), Status> {
        let record = self
            .find(id)
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        let guard = self.lock_of(&record.id);
        let _locked = guard.lock().await;
        let mut record = self
            .store
            .get(&record.id)
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        if record.state != ContainerState::Created {
            return Err(Status::failed_precondition(format!(
                "container {} is {:?}, not created",
                record.id, record.state
            )));
        }
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        let container_id = record.id.clone();
        // Taken before: the process may have ended by the time the runtime returns.
        let started_at = now_nanos();
        run_blocking(move || runtime.start(&container_id))
            .await
            .map_err(|e| runtime_status(&e))?;
        record.started_at = started_at;
        record.state = ContainerState::Running;
        self.store.save(&record).map_err(|e| runtime_status(&e))?;
        tracing::info!(container_id = %record.id, "container started");
        Ok(())
    }

    /// Stops the container: its stop signal, `timeout` to end, then SIGKILL until it is gone.
    /// An unknown or already stopped container is fine.
    pub async fn stop(&self, id: &str, timeout: Duration) -> Result<(), Status> {
        let Some(record) = self.find(id) else {
            return Ok(());
        };
        if record.state == ContainerState::Exited {
            return Ok(());
        }
        let Some(mut exited) = self.exit_signal(&record.id) else {
            return Ok(());
        };
        let init = self.init_pidfd(&record.id);
        if !timeout.is_zero() {
            self.send_signal(&record, init.as_deref(), record.stop_signal)
                .await?;
            if tokio::time::timeout(timeout, exited.wait_for(|done| *done))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tracing::info!(container_id = %record.id, ?timeout, "container ignored its stop signal; killing it");
        }
        loop {
            self.send_signal(&record, init.as_deref(), libc_sigkill())
                .await?;
            match tokio::time::timeout(KILL_GRACE, exited.wait_for(|done| *done)).await {
                Ok(_) => return Ok(()),
                Err(_) => {
                    tracing::warn!(container_id = %record.id, "container still running after SIGKILL; killing it again");
                }
            }
        }
    }

    /// Signals the container's init through its pidfd (a signal without a name through the
    /// OCI runtime).
    async fn send_signal(
        &self,
        record: &ContainerRecord,
        init: Option<&OwnedFd>,
        signal: i32,
    ) -> Result<(), Status> {
        match init.map(|pidfd| process::signal(pidfd, signal)) {
            Some(Ok(_)) => Ok(()),
            Some(Err(_)) | None => {
                let runtime = self.oci_runtime(&record.runtime_handler)?;
                let id = record.id.clone();
                // The container may have ended meanwhile: the exit watcher says so.
                if let Err(e) = run_blocking(move || runtime.kill(&id, signal)).await {
                    tracing::debug!(container_id = %record.id, error = %e, "signalling through the OCI runtime");
                }
                Ok(())
            }
        }
    }

    /// Stops the container if needed and deletes everything of it but its log; an unknown
    /// container is fine.
    pub async fn remove(&self, id: &str) -> Result<(), Status> {
        let Some(record) = self.find(id) else {
            return Ok(());
        };
        self.stop(&record.id, Duration::ZERO).await?;
        let guard = self.lock_of(&record.id);
        let _locked = guard.lock().await;
        let Some(record) = self.store.get(&record.id) else {
            return Ok(());
        };
        self.tear_down(&record).await?;
        self.store
            .delete(&record.id)
            .map_err(|e| runtime_status(&e))?;
        lock(&self.locks).remove(&record.id);
        lock(&self.cpu_samples).remove(&record.id);
        tracing::info!(container_id = %record.id, "container removed");
        Ok(())
    }

    /// Deletes what `record` says exists: the OCI runtime's container (and cgroup), the rootfs
    /// mount, the run dir, the writable layer. Each step tolerates what is already gone.
    pub(super) async fn tear_down(&self, record: &ContainerRecord) -> Result<(), Status> {
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        let record = record.clone();
        lock(&self.inits).remove(&record.id);
        lock(&self.exits).remove(&record.id);
        run_blocking(move || {
            runtime.delete(&record.id)?;
            rootfs::unmount(&record.dir.join("rootfs"))?;
            rootfs::remove_tree(&record.dir)?;
            rootfs::remove_tree(&record.layer_dir)
        })
        .await
        .map_err(|e| runtime_status(&e))
    }

    /// Applies new resource limits through the OCI runtime, and records them.
    pub async fn update_resources(&self, id: &str, asked: Resources) -> Result<(), Status> {
        let guard = self.lock_of(id);
        let _locked = guard.lock().await;
        let mut record = self
            .store
            .get(id)
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        if !matches!(
            record.state,
            ContainerState::Created | ContainerState::Running
        ) {
            return Err(Status::failed_precondition(format!(
                "container {id} is not running"
            )));
        }
        let resources = linux_resources(&asked).map_err(|e| runtime_status(&e))?;
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        let container_id = record.id.clone();
        run_blocking(move || runtime.update(&container_id, &resources))
            .await
            .map_err(|e| runtime_status(&e))?;
        record.resources = asked;
        self.store.save(&record).map_err(|e| runtime_status(&e))
    }

    /// Stops every container of the pod, at once (kubelet has given them their grace period).
    pub async fn stop_pod_containers(&self, pod_id: &str) -> Result<(), Status> {
        for record in self.of_pod(pod_id) {
            self.stop(&record.id, Duration::ZERO).await?;
        }
        Ok(())
    }

    /// Removes every container of the pod.
    pub async fn remove_pod_containers(&self, pod_id: &str) -> Result<(), Status> {
        for record in self.of_pod(pod_id) {
            self.remove(&record.id).await?;
        }
        Ok(())
    }

    fn exit_signal(&self, id: &str) -> Option<tokio::sync::watch::Receiver<bool>> {
        lock(&self.exits).get(id).cloned()
    }

    fn init_pidfd(&self, id: &str) -> Option<Arc<OwnedFd>> {
        lock(&self.inits).get(id).cloned()
    }

    /// Watches a live container: holds its init's pidfd for signals, and records its exit when
    /// its monitor ends. `monitor` is the monitor's pidfd.
    pub(super) fn watch(self: &Arc<Self>, record: &ContainerRecord, monitor: OwnedFd) {
        let (announce, exited) = tokio::sync::watch::channel(false);
        lock(&self.exits).insert(record.id.clone(), exited);
        if let Some(init) = record.init
            && let Ok(Some(pidfd)) = process::open(init)
        {
            lock(&self.inits).insert(record.id.clone(), Arc::new(pidfd));
        }
        let manager = Arc::clone(self);
        let id = record.id.clone();
        let runtime = tokio::runtime::Handle::current();
        let watched = self.exit_watcher.watch(monitor, move || {
            runtime.spawn(async move {
                manager.record_exit(&id).await;
                announce.send_replace(true);
            });
        });
        if let Err(e) = watched {
            tracing::error!(container_id = %record.id, error = %e, "watching the monitor; the container's exit will not be seen");
        }
    }

    /// Records how the container ended, from its monitor's exit file.
    pub(super) async fn record_exit(&self, id: &str) {
        let guard = self.lock_of(id);
        let _locked = guard.lock().await;
        let Some(mut record) = self.store.get(id) else {
            return;
        };
        lock(&self.inits).remove(id);
        let dir = record.dir.clone();
        let exit = run_blocking(move || monitor::read_exit(&dir)).await;
        self.kill_leftovers(&record).await;
        record.exit = Some(match exit {
            Ok(Some(status)) => ExitRecord {
                finished_at: status.finished_at,
                exit_code: status.exit_code,
                reason: if status.oom_killed {
                    "OOMKilled"
                } else if status.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .to_owned(),
                message: String::new(),
            },
            Ok(None) => lost_exit("the container's monitor ended without recording its exit"),
            Err(e) => lost_exit(&format!("reading the exit status: {e}")),
        });
        record.state = ContainerState::Exited;
        if let Err(e) = self.store.save(&record) {
            tracing::error!(container_id = %id, error = %e, "saving a container's exit");
        }
        tracing::info!(container_id = %id, exit = ?record.exit, "container exited");
    }
}

impl ContainerManager {
    /// Kills what is left in a container's cgroup once its init has ended, and waits (bounded)
    /// for it to go: in a PID namespace shared with the pod (or the host), the init's children
    /// outlive it.
    async fn kill_leftovers(&self, record: &ContainerRecord) {
        let procs = self
            .cgroups
            .controller_dir("memory", &record.cgroups_path)
            .join("cgroup.procs");
        let Ok(runtime) = self.oci_runtime(&record.runtime_handler) else {
            return;
        };
        let id = record.id.clone();
        run_blocking(move || {
            let anything_left = || {
                !std::fs::read_to_string(&procs)
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
            };
            if !anything_left() {
                return;
            }
            if let Err(e) = runtime.kill_all(&id, libc_sigkill()) {
                tracing::warn!(container_id = %id, error = %e, "killing what the container's init left");
                return;
            }
            // The kill is only sent: wait for the processes to go, so that a container that
            // reads as exited has nothing left running.
            let deadline = std::time::Instant::now() + LEFTOVERS_PATIENCE;
            while anything_left() {
                if std::time::Instant::now() >= deadline {
                    tracing::warn!(container_id = %id, "processes the container's init left outlive SIGKILL");
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .await;
    }
}

/// The exit of a container whose real exit status is not known.
pub(super) fn lost_exit(message: &str) -> ExitRecord {
    ExitRecord {
        finished_at: now_nanos(),
        exit_code: UNKNOWN_EXIT_CODE,
        reason: "Error".to_owned(),
        message: message.to_owned(),
    }
}

fn libc_sigkill() -> i32 {
    nix::sys::signal::Signal::SIGKILL as i32
}
