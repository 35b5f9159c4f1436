//! What a daemon start finds: containers that kept running while crius was down are watched
//! again, those that ended meanwhile get their real exit status, creations a crash cut short are
//! undone.

use std::sync::Arc;

use crius_runtime::container::record::ContainerState;
use crius_runtime::container::{process, rootfs};

use super::ContainerManager;
use super::lifecycle::lost_exit;
use crate::blocking::run_blocking;
use crate::status::runtime as runtime_status;

impl ContainerManager {
    pub(super) async fn recover(self: &Arc<Self>, node_rebooted: bool) {
        for mut record in self.store.list() {
            match record.state {
                ContainerState::Creating => {
                    tracing::warn!(container_id = %record.id, "removing a container whose creation was cut short");
                    let outcome = match self.tear_down(&record).await {
                        Ok(()) => self
                            .store
                            .delete(&record.id)
                            .map_err(|e| runtime_status(&e)),
                        Err(status) => Err(status),
                    };
                    if let Err(status) = outcome {
                        tracing::error!(container_id = %record.id, error = %status.message(), "cleaning up");
                    }
                }
                ContainerState::Created | ContainerState::Running if node_rebooted => {
                    record.exit = Some(lost_exit("the node rebooted"));
                    record.state = ContainerState::Exited;
                    if let Err(e) = self.store.save(&record) {
                        tracing::error!(container_id = %record.id, error = %e, "saving a container the reboot stopped");
                    }
                }
                ContainerState::Created | ContainerState::Running => {
                    let monitor = record.monitor.map(process::open);
                    match monitor {
                        Some(Ok(Some(pidfd))) => self.watch(&record, pidfd),
                        Some(Err(e)) => {
                            tracing::error!(container_id = %record.id, error = %e, "opening the monitor");
                            self.record_exit(&record.id).await;
                        }
                        // The monitor ended while crius was down: its exit file says how.
                        Some(Ok(None)) | None => self.record_exit(&record.id).await,
                    }
                }
                ContainerState::Exited => {}
            }
        }
        self.sweep_unrecorded().await;
    }

    /// Removes run dirs and writable layers no record names: what containers whose records a
    /// power cut took left behind (records are not fsync'd).
    async fn sweep_unrecorded(&self) {
        let known: std::collections::HashSet<String> =
            self.store.list().into_iter().map(|r| r.id).collect();
        let places = [
            self.config.state_dir.join("containers"),
            self.config.root.join("container-layers"),
        ];
        run_blocking(move || {
            for place in places {
                let Ok(entries) = std::fs::read_dir(&place) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if known.contains(&name) {
                        continue;
                    }
                    let path = entry.path();
                    tracing::warn!(path = %path.display(), "removing what a container without a record left");
                    let removed = rootfs::unmount(&path.join("rootfs"))
                        .and_then(|()| rootfs::remove_tree(&path));
                    if let Err(e) = removed {
                        tracing::error!(path = %path.display(), error = %e, "sweeping");
                    }
                }
            }
        })
        .await;
    }
}
