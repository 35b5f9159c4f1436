//! What a CRI `ContainerConfig` asks for, as plain Rust values: the server converts and checks
//! the proto message into a [`ContainerRequest`], and [`super::build`] turns it into an OCI spec.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::user::UserRequest;

/// One container as CreateContainer asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRequest {
    /// `metadata.name`, the container's name in the pod.
    pub name: String,
    /// `metadata.attempt`.
    pub attempt: u32,
    /// The image as the request names it (`image.image`: an image id, a digest or a reference).
    pub image: String,
    /// Replaces the image's entrypoint when non-empty (Kubernetes `command`).
    pub command: Vec<String>,
    /// Replaces the image's cmd when non-empty (Kubernetes `args`).
    pub args: Vec<String>,
    /// Empty: the image's working dir.
    pub working_dir: String,
    /// Environment variables in the order given; later ones win.
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<MountRequest>,
    pub devices: Vec<DeviceRequest>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The log file, relative to the pod's log directory, exactly as asked (empty: no log).
    pub log_path: String,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub resources: Resources,
    pub security: SecurityRequest,
}

/// A host path bind-mounted into the container; the fields of the CRI `Mount` message, which
/// `ContainerStatus.mounts` reports back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRequest {
    /// Absolute path in the container.
    pub container_path: String,
    /// Absolute path on the host, as asked (symlinks are resolved when the spec is built).
    pub host_path: String,
    pub readonly: bool,
    /// Read-only all the way down, submounts included; needs `readonly` and private propagation.
    pub recursive_read_only: bool,
    pub selinux_relabel: bool,
    pub propagation: Propagation,
}

/// Mount propagation between the host and the container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    /// `rprivate`: nothing propagates.
    #[default]
    Private,
    /// `rslave`: mounts made on the host appear in the container.
    HostToContainer,
    /// `rshared`: mounts propagate both ways.
    Bidirectional,
}

/// A host device node (or a directory of them) made available in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub container_path: String,
    pub host_path: String,
    /// The device cgroup access, a subset of `rwm` (empty: `rwm`).
    pub permissions: String,
}

/// `LinuxContainerResources`; `None` is "not specified".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period; `-1` is "no limit".
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub memory_limit_in_bytes: Option<u64>,
    /// Memory plus swap (cgroup v1 `memory.memsw.limit_in_bytes` semantics); `-1` is unlimited.
    pub memory_swap_limit_in_bytes: Option<i64>,
    /// As asked; clamped when the spec is built to what the daemon may set.
    pub oom_score_adj: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub hugepage_limits: Vec<HugepageLimit>,
    /// cgroup v2 files and values (`memory.high`), applied only on cgroup v2 hosts.
    pub unified: BTreeMap<String, String>,
}

/// A HugeTLB limit for one page size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugepageLimit {
    /// `<size><unit>B`, e.g. `2MB`, `1GB`.
    pub page_size: String,
    pub limit: u64,
}

/// `LinuxContainerSecurityContext`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityRequest {
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub capabilities: CapabilitiesRequest,
    pub no_new_privs: bool,
    /// Paths to mask; empty means the runtime's defaults.
    pub masked_paths: Vec<String>,
    /// Paths to make read-only; empty means the runtime's defaults.
    pub readonly_paths: Vec<String>,
    pub seccomp: SeccompRequest,
    pub apparmor: AppArmorRequest,
    pub selinux: Option<SelinuxOptions>,
    pub user: UserRequest,
    pub pid_mode: ContainerPidMode,
}

/// Capability names as the CRI sends them: with or without `CAP_`, any case, or `ALL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitiesRequest {
    pub add: Vec<String>,
    pub drop: Vec<String>,
    pub add_ambient: Vec<String>,
}

/// The seccomp profile asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompRequest {
    /// No filter: what an unset profile means in the CRI.
    #[default]
    Unconfined,
    /// The runtime's default profile.
    RuntimeDefault,
    /// A profile file on the node (absolute path).
    Localhost(PathBuf),
}

/// The AppArmor profile asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AppArmorRequest {
    /// The runtime's default profile: what an unset profile means in the CRI.
    #[default]
    RuntimeDefault,
    Unconfined,
    /// A profile loaded on the node, by name.
    Localhost(String),
}

/// `SELinuxOption`: the parts of an SELinux label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelinuxOptions {
    pub user: String,
    pub role: String,
    pub type_: String,
    pub level: String,
}

impl SelinuxOptions {
    /// Whether no part of the label is set.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
            && self.role.is_empty()
            && self.type_.is_empty()
            && self.level.is_empty()
    }
}

/// Which PID namespace the container runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ContainerPidMode {
    /// A new one of its own (what kubelet asks unless the pod shares its process namespace).
    #[default]
    Container,
    /// The pod's.
    Pod,
    /// The host's.
    Host,
    /// The one of another container of the pod, by id.
    Target(String),
}
