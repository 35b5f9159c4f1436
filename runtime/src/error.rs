//! The error type of the runtime crate.

use std::path::PathBuf;

/// What went wrong, in terms the server maps to a gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeErrorKind {
    /// The host lacks something the configuration asks for.
    HostUnsupported,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cgroup driver systemd needs systemd as the init system, but {marker} does not exist; \
         use cgroup_driver = \"cgroupfs\""
    )]
    SystemdNotBooted { marker: PathBuf },
}

impl RuntimeError {
    pub fn kind(&self) -> RuntimeErrorKind {
        match self {
            RuntimeError::SystemdNotBooted { .. } => RuntimeErrorKind::HostUnsupported,
        }
    }
}
