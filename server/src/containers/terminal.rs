//! The master of a pseudo-terminal that an exec'd process (through runc) has for its stdio, as
//! a tokio stream: reading it gives the terminal's output, writing it types into the terminal.
//!
//! The master is non-blocking under tokio's [`AsyncFd`]. Once no one holds the slave side any
//! more (the process and runc have ended), reading the master fails with `EIO`: that reads as
//! EOF here.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crius_runtime::monitor::attach_protocol::TerminalSize;
use crius_runtime::terminal::set_window_size;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A pty master, registered with tokio.
#[derive(Debug)]
pub struct Terminal {
    master: AsyncFd<OwnedFd>,
}

impl Terminal {
    /// Takes `master`, made non-blocking, into tokio.
    pub fn new(master: OwnedFd) -> io::Result<Self> {
        let flags = OFlag::from_bits_retain(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(Terminal {
            master: register(master)?,
        })
    }

    /// Another handle on the same terminal (a duplicate of the master's fd), e.g. for a task
    /// that writes its input while this one reads its output.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Terminal {
            master: register(self.master.get_ref().try_clone()?)?,
        })
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, size: TerminalSize) -> Result<(), crius_runtime::RuntimeError> {
        set_window_size(self.master.get_ref(), size)
    }
}

/// Registers `fd` with tokio's reactor.
///
/// `AsyncFd::new` is deprecated in favour of the `unsafe` `AsyncFd::register`, whose contract
/// (the fd stays open and the same until the `AsyncFd` drops) a generic `AsRawFd` cannot promise
/// but an `OwnedFd` does, as long as it is never replaced through `AsyncFd::get_mut` (it is not
/// here). `unsafe` is kept to the runtime crate's `sys` modules, so the safe call stays.
#[allow(deprecated)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

impl AsyncRead for Terminal {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
}

/// Reading through a shared reference, as the master's fd allows: a reader need not be the
/// terminal's only user (resizing it, say).
impl AsyncRead for &Terminal {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut ready = ready!(self.master.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match ready.try_io(|master| Ok(nix::unistd::read(master.get_ref(), unfilled)?)) {
                Ok(Ok(read)) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                // The slave side is closed everywhere: the terminal's output is over.
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => {
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for Terminal {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut ready = ready!(self.master.poll_write_ready(cx))?;
            match ready.try_io(|master| Ok(nix::unistd::write(master.get_ref().as_fd(), data)?)) {
                Ok(written) => return Poll::Ready(written),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Nothing to shut down: a terminal's input has no end but the terminal's (dropping this
    /// handle closes only its fd).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use crius_runtime::terminal::{Pty, open_pty};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn output_reads_until_the_slave_is_gone_and_input_reaches_it() {
        let Pty { master, slave } = open_pty().unwrap();
        let mut terminal = Terminal::new(master).unwrap();
        let mut input = terminal.try_clone().unwrap();
        let mut slave = std::fs::File::from(slave);
        input.write_all(b"typed\n").await.unwrap();
        input.shutdown().await.unwrap();
        let mut line = [0u8; 6];
        slave.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"typed\n");
        slave.write_all(b"shown\n").unwrap();
        drop(slave);
        let mut output = Vec::new();
        terminal.read_to_end(&mut output).await.unwrap();
        assert_eq!(output, b"shown\n");
    }

    #[tokio::test]
    async fn a_resize_sets_the_window_size() {
        let Pty { master, slave } = open_pty().unwrap();
        let terminal = Terminal::new(master).unwrap();
        terminal
            .resize(TerminalSize {
                rows: 40,
                cols: 100,
            })
            .unwrap();
        let stty = tokio::process::Command::new("stty")
            .arg("size")
            .stdin(std::process::Stdio::from(slave))
            .output()
            .await
            .unwrap();
        assert_eq!(stty.stdout, b"40 100\n");
    }
}
