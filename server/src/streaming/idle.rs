//! An idle timeout on a streaming connection: once nothing has been read or written for the
//! configured time, a read, write, flush or shutdown that is waiting fails with `TimedOut`, which
//! ends the session as a client that went away would (an exec'd process is killed, port
//! connections are closed).
//!
//! Every session keeps a read pending on its connection (for stdin, resize or new streams),
//! except while it waits to write to a client that does not read: then the write's own wait is
//! what times out. The reads and the writes may be polled by different tasks (a split
//! connection), and a timer wakes only the last task that polled it, so each direction has a
//! timer of its own.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A connection whose waiting operations fail once it has been idle for `timeout`.
#[derive(Debug)]
pub struct IdleTimeout<T> {
    io: T,
    timeout: Duration,
    /// When something was last read or written.
    last_active: Instant,
    /// Wakes a waiting read when the connection may have become idle.
    read_timer: Pin<Box<Sleep>>,
    /// Wakes a waiting write, flush or shutdown when the connection may have become idle.
    write_timer: Pin<Box<Sleep>>,
}

impl<T> IdleTimeout<T> {
    /// Watches `io`, idle from now.
    pub fn new(io: T, timeout: Duration) -> Self {
        let last_active = Instant::now();
        IdleTimeout {
            io,
            timeout,
            last_active,
            read_timer: Box::pin(tokio::time::sleep_until(last_active + timeout)),
            write_timer: Box::pin(tokio::time::sleep_until(last_active + timeout)),
        }
    }

    /// Something passed: the connection is not idle.
    fn active(&mut self) {
        self.last_active = Instant::now();
    }

    /// What an operation that cannot go on yet returns: `TimedOut` once the connection has been
    /// idle for the timeout; otherwise pending, with `timer` set to wake the caller then.
    fn wait<R>(
        timer: &mut Pin<Box<Sleep>>,
        last_active: Instant,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        let idle_at = last_active + timeout;
        if timer.deadline() != idle_at {
            timer.as_mut().reset(idle_at);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the connection was idle for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wait_to_read<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        Self::wait(&mut self.read_timer, self.last_active, self.timeout, cx)
    }

    fn wait_to_write<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        Self::wait(&mut self.write_timer, self.last_active, self.timeout, cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.wait_to_read(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(written) => {
                if written.as_ref().is_ok_and(|n| *n > 0) {
                    self.active();
                }
                Poll::Ready(written)
            }
            Poll::Pending => self.wait_to_write(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(flushed) => Poll::Ready(flushed),
            Poll::Pending => self.wait_to_write(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Ready(shut) => Poll::Ready(shut),
            Poll::Pending => self.wait_to_write(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn reads_fail_once_idle_and_traffic_keeps_it_alive() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut watched = IdleTimeout::new(near, Duration::from_secs(10));
        let mut byte = [0u8; 1];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            far.write_all(b"x").await.unwrap();
            watched.read_exact(&mut byte).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        watched.write_all(b"y").await.unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let started = Instant::now();
        let error = watched.read(&mut byte).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_to_a_peer_that_does_not_read_fails_once_idle() {
        let (near, _far) = tokio::io::duplex(64);
        let mut watched = IdleTimeout::new(near, Duration::from_secs(10));
        let started = Instant::now();
        let error = watched.write_all(&[0; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn both_halves_of_a_split_connection_fail_once_idle() {
        let (near, mut far) = tokio::io::duplex(64);
        let (mut reader, mut writer) =
            tokio::io::split(IdleTimeout::new(near, Duration::from_secs(10)));
        let started = Instant::now();
        // The reader waits first, then the writer waits too (the peer does not read), then the
        // peer reads a little: the writer goes on, and waits again.
        let reading = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            reader.read(&mut byte).await.unwrap_err().kind()
        });
        let writing =
            tokio::spawn(async move { writer.write_all(&[0; 1024]).await.unwrap_err().kind() });
        tokio::time::sleep(Duration::from_secs(4)).await;
        let mut some = [0u8; 32];
        far.read_exact(&mut some).await.unwrap();
        // A timer that woke only one of them would leave the other waiting for ever.
        let patience = Duration::from_secs(60);
        let read = tokio::time::timeout(patience, reading).await;
        assert_eq!(read.unwrap().unwrap(), io::ErrorKind::TimedOut);
        let written = tokio::time::timeout(patience, writing).await;
        assert_eq!(written.unwrap().unwrap(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(14));
    }
}
