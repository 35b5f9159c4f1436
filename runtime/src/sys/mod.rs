//! Privileged kernel operations behind narrow traits: a real Linux implementation each, and
//! hand-written fakes for unit tests. The only place in the crate that may use `unsafe`.

pub(crate) mod monitor;
pub(crate) mod mount;
pub(crate) mod namespace;
mod netdev;
pub(crate) mod pidfd;
pub(crate) mod pod_init;
pub(crate) mod process;
pub(crate) mod terminal;

#[cfg(test)]
pub(crate) mod fake;
