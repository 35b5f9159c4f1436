//! The terminal system calls that need `unsafe`: opening a pseudo-terminal pair, receiving a pty
//! master over a unix socket (how runc hands one over) and setting a terminal's window size.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::libc;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::stat::Mode;

/// The pseudo-terminal multiplexer: each open makes a new pty master.
pub(crate) const PTMX: &str = "/dev/ptmx";

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_pty_lock, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_write_int_bad!(open_pty_peer, libc::TIOCGPTPEER);

/// Opens a new pseudo-terminal: `(master, slave)`, both close-on-exec, the slave nobody's
/// controlling terminal and in raw mode (`cfmakeraw`: no echo, no line editing, no output
/// processing). The slave is opened through the master (`TIOCGPTPEER`), never by its
/// `/dev/pts` name, so it is the master's own peer whatever is mounted there.
pub(crate) fn open_pty() -> Result<(OwnedFd, OwnedFd), Errno> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = open(PTMX, flags, Mode::empty())?;
    let unlocked: libc::c_int = 0;
    // SAFETY: `master` is an open pty master for the duration of the call and `unlocked` a valid
    // int the kernel only reads.
    unsafe { set_pty_lock(master.as_raw_fd(), &unlocked) }?;
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new fd or fails; `master`
    // is an open pty master for the duration of the call.
    let slave = unsafe { open_pty_peer(master.as_raw_fd(), flags.bits()) }?;
    // SAFETY: the kernel just installed `slave` in this process; nothing else refers to it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: `slave` is an open terminal for the duration of the call and `termios` room for
    // one termios, which the kernel fills in on success.
    Errno::result(unsafe { libc::tcgetattr(slave.as_raw_fd(), termios.as_mut_ptr()) })?;
    // SAFETY: tcgetattr succeeded, so `termios` is initialised.
    let mut termios = unsafe { termios.assume_init() };
    // SAFETY: cfmakeraw only changes the flags of the termios it is given.
    unsafe { libc::cfmakeraw(&mut termios) };
    // SAFETY: `slave` is an open terminal and `termios` a valid termios the kernel only reads.
    Errno::result(unsafe { libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &termios) })?;
    Ok((master, slave))
}

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
