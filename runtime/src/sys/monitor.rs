//! The system calls of the container monitor that need `unsafe`: the detaching fork and marking
//! inherited fds close-on-exec (its terminal calls are in [`super::terminal`]).
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::libc;
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
