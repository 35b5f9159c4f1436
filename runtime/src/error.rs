//! The error type of the runtime crate.

use std::path::PathBuf;

/// What went wrong, in terms the server maps to a gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeErrorKind {
    /// The host lacks something the configuration asks for.
    HostUnsupported,
    /// The request asks for something malformed or not allowed.
    InvalidArgument,
    /// The container the request is for is not running any more.
    NotRunning,
    /// A local failure: a system call, the disk.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cgroup driver systemd needs systemd as the init system, but {marker} does not exist; \
         use cgroup_driver = \"cgroupfs\""
    )]
    SystemdNotBooted { marker: PathBuf },
    #[error(transparent)]
    Sysctl(#[from] crate::sysctl::SysctlError),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pinning namespaces in {} failed ({status}): {stderr}", dir.display())]
    PinNamespaces {
        dir: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("pod init {pid} still running {waited:?} after SIGKILL")]
    PodInitStillRunning {
        pid: u32,
        waited: std::time::Duration,
    },
    #[error("{op} of container {id} failed: {message}")]
    OciRuntime {
        op: &'static str,
        id: String,
        message: String,
    },
    /// The OCI runtime (or the monitor around it) could not create the container.
    #[error("creating container {id} failed: {message}")]
    ContainerCreate { id: String, message: String },
    /// The monitor of a container ended without the report it owes.
    #[error("monitor of container {id} failed: {message}")]
    MonitorFailed { id: String, message: String },
    /// The monitor of a container run dir is not there any more: the container has exited.
    #[error("the monitor in {} is gone: the container is not running", dir.display())]
    MonitorGone { dir: PathBuf },
    /// The monitor answered a control request with an error.
    #[error("monitor in {} refused {request}: {message}", dir.display())]
    MonitorRequest {
        dir: PathBuf,
        request: &'static str,
        message: String,
    },
}

impl RuntimeError {
    /// For `map_err`: an I/O failure of `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RuntimeError::Io { op, path, source }
    }

    pub fn kind(&self) -> RuntimeErrorKind {
        match self {
            RuntimeError::SystemdNotBooted { .. } => RuntimeErrorKind::HostUnsupported,
            RuntimeError::Sysctl(_) | RuntimeError::InvalidArgument(_) => {
                RuntimeErrorKind::InvalidArgument
            }
            RuntimeError::Io { .. }
            | RuntimeError::PinNamespaces { .. }
            | RuntimeError::PodInitStillRunning { .. }
            | RuntimeError::OciRuntime { .. }
            | RuntimeError::ContainerCreate { .. }
            | RuntimeError::MonitorFailed { .. }
            | RuntimeError::MonitorRequest { .. } => RuntimeErrorKind::Internal,
            RuntimeError::MonitorGone { .. } => RuntimeErrorKind::NotRunning,
        }
    }
}
