//! The pod's own PID 1: forked by `pin-ns` into a fresh PID namespace, it holds the namespace
//! open for new processes and reaps the orphans the pod's containers leave behind.
#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, setsid};

/// The init's process name (`comm`, the `Name:` of `/proc/<pid>/status`).
pub(crate) const POD_INIT_NAME: &str = "crius-pod-init";

/// What the child reports through the start pipe when its setup went through.
const STARTED: i32 = 0;

/// Forks the pod init and returns its pid as the caller sees it, once the init has set itself up.
///
/// Call it right after `unshare(CLONE_NEWPID)`, from a single-threaded process (the
/// `crius-monitor` binary): the child becomes PID 1 of the new namespace. The child never returns
/// from this function. If its setup fails it exits and this returns that errno (`ECHILD` if it died
/// without a word).
pub(crate) fn fork_pod_init() -> Result<Pid, Errno> {
    let (mut reader, writer) = std::io::pipe().map_err(|err| io_errno(&err))?;
    // SAFETY: `crius-monitor pin-ns` is single-threaded (no tokio, no thread spawned), so no other
    // thread can hold a lock (allocator, stdio) that the child would find taken. The child execs
    // nothing: it sets itself up with plain system calls and runs `init_main`, which never returns
    // into the caller's frames (it ends with `exit`).
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(reader);
            init_main(writer)
        }
        ForkResult::Parent { child } => {
            drop(writer);
            let mut word = [0u8; 4];
            let status = match reader.read_exact(&mut word) {
                Ok(()) => i32::from_ne_bytes(word),
                Err(_) => Errno::ECHILD as i32,
            };
            if status == STARTED {
                return Ok(child);
            }
            let _ = kill_and_reap(child);
            Err(Errno::from_raw(status))
        }
    }
}

/// SIGKILLs a child of the caller and reaps it.
pub(crate) fn kill_and_reap(child: Pid) -> Result<(), Errno> {
    kill(child, Signal::SIGKILL)?;
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => {}
            Ok(_) | Err(Errno::ECHILD) => return Ok(()),
            Err(errno) => return Err(errno),
        }
    }
}

/// The child side of `fork_pod_init`: set up, report through `started`, then reap forever.
fn init_main(started: std::io::PipeWriter) -> ! {
    // Nothing of the helper's stays open (not the pin dir, not the daemon's pipes) by the time the
    // parent hears that the init is up.
    close_all_but(started.as_raw_fd());
    let status = match set_up() {
        Ok(()) => STARTED,
        Err(errno) => errno as i32,
    };
    let mut started = started;
    let _ = started.write_all(&status.to_ne_bytes());
    drop(started);
    if status != STARTED {
        std::process::exit(1);
    }
    reap_forever()
}

/// Closes every fd above 2 except `keep`.
fn close_all_but(keep: RawFd) {
    let max = libc::c_uint::MAX;
    let keep = libc::c_uint::try_from(keep).unwrap_or(max);
    for (first, last) in [(3, keep.saturating_sub(1)), (keep.saturating_add(1), max)] {
        if first > last {
            continue;
        }
        // SAFETY: the child owns no Rust object holding an fd above 2 other than `keep`: the
        // frames above `init_main` are never returned to, so no destructor closes an fd twice.
        if unsafe { libc::close_range(first, last, 0) } != 0 {
            for fd in first..=last.min(4095) {
                // SAFETY: as above; EBADF on fds that are not open is fine.
                unsafe { libc::close(fd as RawFd) };
            }
        }
    }
}

/// Session, cwd, stdio on /dev/null, name, signal dispositions and mask.
fn set_up() -> Result<(), Errno> {
    setsid()?;
    std::env::set_current_dir("/").map_err(|err| io_errno(&err))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|err| io_errno(&err))?;
    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: `null` is an open fd for the duration of the call; replacing the stdio fds is
        // what this process wants, and nothing in it keeps their old files.
        Errno::result(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    drop(null);
    // The name is cosmetic; a kernel refusing it is no reason to fail.
    if let Ok(name) = std::ffi::CString::new(POD_INIT_NAME) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    for (signal, handler) in [
        (Signal::SIGINT, SigHandler::SigIgn),
        (Signal::SIGHUP, SigHandler::SigIgn),
        (Signal::SIGPIPE, SigHandler::SigIgn),
        (Signal::SIGCHLD, SigHandler::SigDfl),
        (Signal::SIGTERM, SigHandler::SigDfl),
    ] {
        // SAFETY: only SIG_IGN and SIG_DFL are installed, no handler code runs.
        unsafe { nix::sys::signal::signal(signal, handler) }?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&waited_signals()), None)?;
    Ok(())
}

/// SIGCHLD and SIGTERM: blocked, and taken with `sigwaitinfo`.
fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGTERM);
    set
}

fn reap_forever() -> ! {
    let set = waited_signals();
    loop {
        reap_all();
        let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
        // SAFETY: `set` is a valid sigset and `info` points to writable memory for one siginfo_t.
        let signal = unsafe { libc::sigwaitinfo(set.as_ref(), info.as_mut_ptr()) };
        if signal != libc::SIGTERM {
            // SIGCHLD, or EINTR: reap again.
            continue;
        }
        // SAFETY: sigwaitinfo returned a signal, so it filled `info` in; SIGTERM from `kill(2)`
        // carries the sender's pid.
        let sender = unsafe { info.assume_init().si_pid() };
        // The sender's pid as this namespace sees it: 0 for a process outside (the node).
        // A SIGTERM from inside the pod (a container's `kill 1`) would take every other container
        // of the pod down with it: ignored.
        if sender == 0 {
            std::process::exit(0);
        }
    }
}

/// Reaps every child that has exited, without blocking.
fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn io_errno(err: &std::io::Error) -> Errno {
    err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}
