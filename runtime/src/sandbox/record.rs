//! What crius knows of one pod sandbox, persisted as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::pinning::PinnedNamespaces;
use crate::record_store::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxState {
    /// RunPodSandbox is setting it up. Never shown to clients; a record still in this state when
    /// the daemon starts belongs to a creation a crash cut short, and is torn down.
    Creating,
    Ready,
    NotReady,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxMetadata {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
}

impl SandboxMetadata {
    /// The name a pod is known by while it exists: one sandbox per name, as kubelet expects.
    pub fn reserved_name(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.name, self.namespace, self.uid, self.attempt
        )
    }
}

/// Which of the host's namespaces the pod shares; a shared one is not pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostNamespaces {
    pub network: bool,
    pub ipc: bool,
    pub pid: bool,
}

/// How the pod's containers share a PID namespace, as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PidMode {
    /// One PID namespace for the whole pod (the proto's zero value).
    Pod,
    /// One per container (kubelet's default).
    Container,
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// 64 lowercase hex digits.
    pub id: String,
    pub metadata: SandboxMetadata,
    pub state: SandboxState,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub runtime_handler: String,
    pub log_directory: String,
    pub hostname: String,
    pub host_namespaces: HostNamespaces,
    pub pid_mode: PidMode,
    /// The pod's directory under the state dir.
    pub dir: PathBuf,
    pub namespaces: Option<PinnedNamespaces>,
    /// The cgroupfs path of the cgroup kubelet asked for (a systemd slice name expanded), and
    /// whether crius created it (and so removes it).
    pub cgroup_parent: String,
    pub cgroup_created: bool,
    /// The pod's addresses, first the primary.
    pub ips: Vec<String>,
    /// What was asked of the network (the server's own form), needed again for CNI DEL.
    pub network_request: serde_json::Value,
    /// The CNI result of ADD, handed to DEL as prevResult.
    pub cni_result: Option<serde_json::Value>,
    /// A hash of the request, so that a retry of the same request gets the same pod.
    pub request_digest: String,
}

impl Record for SandboxRecord {
    const KIND: &'static str = "pod";

    fn id(&self) -> &str {
        &self.id
    }

    fn reserved_name(&self) -> String {
        self.metadata.reserved_name()
    }
}
