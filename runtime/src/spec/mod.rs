//! The OCI runtime spec of a container, from the image config and what the request asks.

pub mod seccomp;
pub mod user;
