//! crius-runtime: everything that runs pods and containers on the node.
//!
//! This crate is a leaf: it knows nothing of gRPC or of the CRI types. It takes and returns plain
//! Rust values and the server crate converts them. Today it holds the cgroup driver choice; the
//! pod sandbox, container, OCI spec, runc client and monitor modules build on it.

pub mod cgroup;
mod error;
pub mod pinning;
pub mod sandbox;
mod sys;
pub mod sysctl;

pub use error::{RuntimeError, RuntimeErrorKind};
