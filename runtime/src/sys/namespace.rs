//! Leaving namespaces and setting up the new ones from inside.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub(crate) trait NamespaceOps {
    /// Moves the calling thread into new namespaces (`unshare(2)`), all in one call.
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno>;
    /// Sets the hostname of the current UTS namespace.
    fn set_hostname(&mut self, name: &str) -> Result<(), Errno>;
    /// Brings the loopback interface `lo` of the current network namespace up.
    fn set_loopback_up(&mut self) -> Result<(), Errno>;
    /// Starts the init of the PID namespace the last `unshare(CLONE_NEWPID)` made (the caller's
    /// next child is its PID 1); returns its pid as the caller sees it. The init outlives the
    /// caller. Only for a single-threaded process.
    fn start_pid_init(&mut self) -> Result<u32, Errno>;
    /// SIGKILLs and reaps an init `start_pid_init` started, when what follows it fails.
    fn stop_pid_init(&mut self, pid: u32) -> Result<(), Errno>;
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

    fn start_pid_init(&mut self) -> Result<u32, Errno> {
        let pid = super::pod_init::fork_pod_init()?;
        u32::try_from(pid.as_raw()).map_err(|_| Errno::EINVAL)
    }

    fn stop_pid_init(&mut self, pid: u32) -> Result<(), Errno> {
        let pid = i32::try_from(pid)
            .ok()
            .filter(|pid| *pid > 0)
            .ok_or(Errno::EINVAL)?;
        super::pod_init::kill_and_reap(Pid::from_raw(pid))
    }
}
