//! Leaving namespaces and setting up the new ones from inside.

use nix::errno::Errno;
use nix::sched::CloneFlags;

pub(crate) trait NamespaceOps {
    /// Moves the calling thread into new namespaces (`unshare(2)`), all in one call.
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno>;
    /// Sets the hostname of the current UTS namespace.
    fn set_hostname(&mut self, name: &str) -> Result<(), Errno>;
    /// Brings the loopback interface `lo` of the current network namespace up.
    fn set_loopback_up(&mut self) -> Result<(), Errno>;
}

pub(crate) struct LinuxNamespaces;

impl NamespaceOps for LinuxNamespaces {
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        nix::sched::unshare(flags)
    }

    fn set_hostname(&mut self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn set_loopback_up(&mut self) -> Result<(), Errno> {
        super::netdev::set_interface_up("lo")
    }
}
