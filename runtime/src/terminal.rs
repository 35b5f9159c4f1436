//! Pseudo-terminals for the processes crius runs with a terminal: a new pty pair, whose slave
//! becomes the process's (or its runtime's) stdio while crius keeps the master, and the window
//! size of a terminal.

use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};

use crate::RuntimeError;
use crate::monitor::attach_protocol::TerminalSize;
use crate::sys::terminal::PTMX;

/// A new pseudo-terminal: what is written to the master is the slave's input, what is written
/// to the slave comes out of the master. Reading the master fails with `EIO` once no slave fd is
/// open any more.
///
/// The slave starts in raw mode: such a pty carries bytes to and from a terminal that has the
/// line discipline that counts (runc relays it to an exec'd process's own, setting the modes it
/// relays with), so input typed before the relay takes over must not be echoed here too.
#[derive(Debug)]
pub struct Pty {
    /// crius's side. Close-on-exec.
    pub master: OwnedFd,
    /// The process's side, nobody's controlling terminal. Close-on-exec.
    pub slave: OwnedFd,
}

/// Opens a new pseudo-terminal.
pub fn open_pty() -> Result<Pty, RuntimeError> {
    let (master, slave) = crate::sys::terminal::open_pty()
        .map_err(|errno| RuntimeError::io("open a pseudo-terminal from", PTMX)(errno.into()))?;
    Ok(Pty { master, slave })
}

/// Sets the window size of `terminal` (either side of a pty); the kernel signals SIGWINCH to
/// the terminal's foreground process group, if it is someone's controlling terminal.
pub fn set_window_size(terminal: impl AsFd, size: TerminalSize) -> Result<(), RuntimeError> {
    let fd = terminal.as_fd();
    crate::sys::terminal::set_window_size(fd, size.rows, size.cols).map_err(|errno| {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        RuntimeError::io("set the window size of", path)(errno.into())
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn the_slave_reads_what_the_master_writes_and_has_its_size() {
        let Pty { master, slave } = open_pty().unwrap();
        set_window_size(
            &master,
            TerminalSize {
                rows: 40,
                cols: 100,
            },
        )
        .unwrap();
        let stty = Command::new("stty")
            .arg("size")
            .stdin(Stdio::from(slave))
            .output()
            .unwrap();
        assert!(stty.status.success(), "{stty:?}");
        assert_eq!(stty.stdout, b"40 100\n");

        let Pty { master, slave } = open_pty().unwrap();
        let mut master = std::fs::File::from(master);
        master.write_all(b"ping\n").unwrap();
        let mut line = [0u8; 5];
        let mut slave = std::fs::File::from(slave);
        slave.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ping\n");
        // Raw: no echo of the input, no \r added to the output.
        slave.write_all(b"pong\n").unwrap();
        let mut output = [0u8; 5];
        master.read_exact(&mut output).unwrap();
        assert_eq!(&output, b"pong\n");
    }

    #[test]
    fn the_master_reads_eio_once_the_slave_is_closed() {
        let Pty { master, slave } = open_pty().unwrap();
        std::fs::File::from(slave).write_all(b"bye").unwrap();
        let mut master = std::fs::File::from(master);
        let mut read = [0u8; 16];
        let n = master.read(&mut read).unwrap();
        assert_eq!(&read[..n], b"bye");
        let err = master.read(&mut read).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EIO));
    }

    #[test]
    fn only_a_terminal_has_a_window_size() {
        let file = tempfile::tempfile().unwrap();
        let err = set_window_size(&file, TerminalSize { rows: 1, cols: 1 }).unwrap_err();
        assert!(err.to_string().contains("window size"), "{err}");
    }
}
