//! The system calls of the container monitor that need `unsafe`: the detaching fork, marking
//! inherited fds close-on-exec, receiving a pty master over a unix socket and setting a
//! terminal's window size.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::unistd::{ForkResult, fork};

/// Which side of [`fork_detached`] the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The original process: it should exit at once.
    Parent,
    /// The new process, which goes on.
    Child,
}

/// Forks. Call it only from a single-threaded process (the `crius-monitor` binary).
pub(crate) fn fork_detached() -> Result<Side, Errno> {
    // SAFETY: `crius-monitor container` is single-threaded (no tokio, no thread spawned), so no
    // other thread can hold a lock (allocator, stdio) that the child would find taken. Both sides
    // go on running ordinary Rust code: the parent returns to `main` and exits, the child owns
    // every object the parent had, exactly once.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => Ok(Side::Parent),
        ForkResult::Child => Ok(Side::Child),
    }
}

/// Marks every fd above 2 close-on-exec, so that nothing the process inherited reaches the
/// programs it runs (and through them the container).
pub(crate) fn set_cloexec_above_stdio() -> Result<(), Errno> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing; it only sets a flag on open
    // fds, which no Rust object relies on being clear.
    let result = unsafe {
        libc::close_range(
            3,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        )
    };
    Errno::result(result).map(drop)
}

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Sets the window size of the terminal `fd` (a pty master); the kernel signals SIGWINCH to the
/// terminal's foreground process group.
pub(crate) fn set_window_size(fd: impl AsFd, rows: u16, cols: u16) -> Result<(), Errno> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is an open fd for the duration of the call and `size` a valid winsize the
    // kernel only reads; a non-terminal fd fails with ENOTTY.
    unsafe { set_winsize(fd.as_fd().as_raw_fd(), &size) }.map(drop)
}

/// Receives one fd sent with `SCM_RIGHTS` on the connected unix socket `socket` (how runc hands
/// over a container's pty master through `--console-socket`). The fd arrives close-on-exec.
pub(crate) fn receive_fd(socket: impl AsFd) -> Result<OwnedFd, Errno> {
    // runc sends the pty's name as the data; it is not needed.
    let mut data = [0u8; 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    let mut control = nix::cmsg_space!([RawFd; 4]);
    let message = recvmsg::<()>(
        socket.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut received: Option<OwnedFd> = None;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in this process for this message;
                // nothing else refers to it, so this is its only owner (extra fds are closed
                // when their `OwnedFd` drops).
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(fd);
            }
        }
    }
    received.ok_or(Errno::ENOMSG)
}
