//! Signals to a whole process group through the pidfd of its leader
//! (`pidfd_send_signal(PIDFD_SIGNAL_PROCESS_GROUP)`, Linux 6.9), which rustix does not wrap.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::Signal;

/// `PIDFD_SIGNAL_PROCESS_GROUP` of `<linux/pidfd.h>`.
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;

/// Sends `signal` to every member of the process group whose id is the pid `leader` refers to.
/// The group is named by the pidfd, not by a number, so a recycled pid is never signalled;
/// `ESRCH` when the group has no member left, `EINVAL` on kernels before 6.9.
pub(crate) fn signal_process_group(leader: BorrowedFd<'_>, signal: Signal) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal takes a file descriptor, a signal number, a pointer to a
    // siginfo (null: the kernel fills in one as kill() would) and flags; `leader` is an open
    // descriptor for the duration of the call and no memory is shared with the kernel.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            leader.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            PIDFD_SIGNAL_PROCESS_GROUP,
        )
    };
    Errno::result(result).map(drop)
}
