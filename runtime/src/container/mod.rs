//! Containers: their records, kept on disk across daemon restarts, their root filesystems and
//! the calls to the OCI runtime that start, signal, update and delete them, and exec in them.

pub mod exec;
pub mod exit_watcher;
pub mod oci_runtime;
pub mod process;
pub mod record;
pub mod rootfs;
pub mod stats;
