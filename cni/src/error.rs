//! The error type of the CNI crate.

use std::path::PathBuf;

/// What went wrong, in terms the server maps to a gRPC code or a readiness condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniErrorKind {
    /// No usable network configuration: the node is not network-ready.
    NotConfigured,
    /// The host failed an I/O operation.
    Io,
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// Every candidate file was rejected (or there were none); each rejection says why.
    #[error("no valid CNI network config in {}{}", dir.display(), describe_rejections(rejected))]
    NoValidConfig {
        dir: PathBuf,
        rejected: Vec<(PathBuf, String)>,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CniError {
    pub fn kind(&self) -> CniErrorKind {
        match self {
            CniError::NoValidConfig { .. } => CniErrorKind::NotConfigured,
            CniError::Io { .. } => CniErrorKind::Io,
        }
    }
}

fn describe_rejections(rejected: &[(PathBuf, String)]) -> String {
    rejected
        .iter()
        .map(|(path, why)| format!("; {}: {why}", path.display()))
        .collect()
}
