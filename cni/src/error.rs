//! The error type of the CNI crate.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong, in terms the server maps to a gRPC code or a readiness condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniErrorKind {
    /// No usable network configuration: the node is not network-ready.
    NotConfigured,
    /// The host failed an I/O operation.
    Io,
    /// The request to attach or detach a pod is malformed.
    InvalidArgument,
    /// A plugin reported an error, or answered with something that is not a valid result.
    PluginFailed,
    /// A plugin did not finish in time and was killed.
    Timeout,
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
    /// A pod attachment field that cannot be passed to plugins.
    #[error("invalid {field}: {reason}")]
    InvalidAttachment { field: &'static str, reason: String },
    /// A plugin exited non-zero; `message` is its CNI error (`msg: details`) or its stderr.
    #[error("CNI plugin {plugin} {command} failed{}: {message}", describe_code(*code))]
    PluginFailed {
        plugin: String,
        command: &'static str,
        code: Option<u64>,
        message: String,
    },
    /// A plugin exited zero but its output is not a result crius can use.
    #[error("CNI plugin {plugin} {command} returned an invalid result: {reason}")]
    InvalidResult {
        plugin: String,
        command: &'static str,
        reason: String,
    },
    #[error("CNI plugin {plugin} {command} timed out after {timeout:?} and was killed")]
    Timeout {
        plugin: String,
        command: &'static str,
        timeout: Duration,
    },
}

impl CniError {
    pub fn kind(&self) -> CniErrorKind {
        match self {
            CniError::NoValidConfig { .. } => CniErrorKind::NotConfigured,
            CniError::Io { .. } => CniErrorKind::Io,
            CniError::InvalidAttachment { .. } => CniErrorKind::InvalidArgument,
            CniError::PluginFailed { .. } | CniError::InvalidResult { .. } => {
                CniErrorKind::PluginFailed
            }
            CniError::Timeout { .. } => CniErrorKind::Timeout,
        }
    }
}

fn describe_rejections(rejected: &[(PathBuf, String)]) -> String {
    rejected
        .iter()
        .map(|(path, why)| format!("; {}: {why}", path.display()))
        .collect()
}

fn describe_code(code: Option<u64>) -> String {
    code.map(|c| format!(" (code {c})")).unwrap_or_default()
}
