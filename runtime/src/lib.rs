//! crius-runtime: everything that runs pods and containers on the node.
//!
//! This crate is a leaf: it knows nothing of gRPC or of the CRI types. It takes and returns plain
//! Rust values and the server crate converts them.

pub mod cgroup;
pub mod container;
mod error;
pub mod monitor;
pub mod pinning;
pub mod record_store;
pub mod sandbox;
pub mod spec;
mod sys;
pub mod sysctl;
pub mod terminal;

pub use error::{RuntimeError, RuntimeErrorKind};
