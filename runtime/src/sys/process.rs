//! Signalling processes that are not our children.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub(crate) trait ProcessOps {
    /// Sends SIGKILL to `pid` (a positive pid, never a group).
    fn kill(&self, pid: u32) -> Result<(), Errno>;
}

pub(crate) struct LinuxProcesses;

impl ProcessOps for LinuxProcesses {
    fn kill(&self, pid: u32) -> Result<(), Errno> {
        let pid = i32::try_from(pid)
            .ok()
            .filter(|pid| *pid > 0)
            .ok_or(Errno::EINVAL)?;
        kill(Pid::from_raw(pid), Signal::SIGKILL)
    }
}
