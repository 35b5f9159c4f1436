//! What crius knows of one container, persisted as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::record_store::Record;
use crate::spec::request::{MountRequest, Resources};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// CreateContainer is setting it up. Never shown to clients; a record still in this state
    /// when the daemon starts belongs to a creation a crash cut short, and is torn down.
    Creating,
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMetadata {
    pub name: String,
    pub attempt: u32,
}

/// A process crius watches, told apart from a later process with the same pid by its start time
/// (clock ticks after boot, field 22 of `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: i32,
    pub start_ticks: u64,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Nanoseconds since the epoch.
    pub finished_at: i64,
    pub exit_code: i32,
    /// `Completed`, `Error` or `OOMKilled`, as kubelet expects.
    pub reason: String,
    pub message: String,
}

/// The user the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 lowercase hex digits.
    pub id: String,
    pub pod_id: String,
    /// The pod's reserved name, part of the container's.
    pub pod_name: String,
    pub metadata: ContainerMetadata,
    pub state: ContainerState,
    /// Nanoseconds since the epoch; `started_at` is 0 until the container starts.
    pub created_at: i64,
    pub started_at: i64,
    pub exit: Option<ExitRecord>,
    /// The image as the request named it, the image id, and the reference it was pulled by.
    pub image: String,
    pub image_id: String,
    pub image_ref: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The host path of the kubelet log file; empty when the pod has no log directory.
    pub log_path: PathBuf,
    /// The mounts as asked, reported back in ContainerStatus.
    pub mounts: Vec<MountRequest>,
    /// The resources as last asked (at creation, or by UpdateContainerResources).
    #[serde(default)]
    pub resources: Resources,
    pub user: UserSummary,
    pub runtime_handler: String,
    pub stop_signal: i32,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// OCI `linux.cgroupsPath`, and its cgroupfs form for reading the container's statistics.
    pub cgroups_path: String,
    /// The bundle and monitor directory under the state dir.
    pub dir: PathBuf,
    /// Holds the writable layer (`upper/`, `work/`) under the root dir.
    pub layer_dir: PathBuf,
    /// Known once the monitor reported `runc create` done.
    pub monitor: Option<ProcessIdentity>,
    pub init: Option<ProcessIdentity>,
    /// A hash of the request, so that a retry of the same request gets the same container.
    pub request_digest: String,
}

impl ContainerRecord {
    /// The name a container is known by while it exists: one per name in its pod.
    pub fn reserved_name(&self) -> String {
        format!(
            "{}_{}_{}",
            self.metadata.name, self.pod_name, self.metadata.attempt
        )
    }
}

impl Record for ContainerRecord {
    const KIND: &'static str = "container";

    fn id(&self) -> &str {
        &self.id
    }

    fn reserved_name(&self) -> String {
        ContainerRecord::reserved_name(self)
    }
}
