//! What a daemon start finds: containers that kept running while crius was down are watched
//! again, those that ended meanwhile get their real exit status, creations a crash cut short are
//! undone.

use std::sync::Arc;

use crius_runtime::container::process;
use crius_runtime::container::record::ContainerState;

use super::ContainerManager;
use super::lifecycle::lost_exit;
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
    }
}
