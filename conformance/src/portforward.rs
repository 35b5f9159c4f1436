//! What every port-forward client hands out: one connection to one pod port, a tokio
//! `AsyncRead + AsyncWrite` over the transport's data stream (or channel), and the text the
//! server sent on the matching error stream (or channel) if it could not reach the port.
//!
//! The clients: [`crate::spdy_portforward`] (SPDY, directly or tunnelled through a WebSocket)
//! and [`crate::websocket_portforward`] (kubelet's WebSocket channels).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A byte stream a forwarded connection reads and writes.
pub trait DataStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> DataStream for T {}

/// One connection to a pod port.
pub struct ForwardedConnection {
    port: u16,
    data: Box<dyn DataStream>,
    /// Everything the server sends on the error stream, once it ends it.
    error: BoxFuture<'static, io::Result<Vec<u8>>>,
}

impl std::fmt::Debug for ForwardedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedConnection")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ForwardedConnection {
    /// A connection to `port` over `data`; `error` resolves to the error stream's bytes.
    pub(crate) fn new(
        port: u16,
        data: impl DataStream + 'static,
        error: BoxFuture<'static, io::Result<Vec<u8>>>,
    ) -> Self {
        ForwardedConnection {
            port,
            data: Box::new(data),
            error,
        }
    }

    /// The pod port this connection reaches.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Ends the connection, as client-go does once it is done with the data (SPDY: the data
    /// stream is reset), and waits for the server to end the error stream: its text, `None`
    /// when it sent nothing.
    pub async fn error_message(self) -> anyhow::Result<Option<String>> {
        let ForwardedConnection { data, error, .. } = self;
        drop(data);
        let message = error.await.context("read the error stream")?;
        Ok((!message.is_empty()).then(|| String::from_utf8_lossy(&message).into_owned()))
    }
}

impl AsyncRead for ForwardedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.data).poll_read(cx, buf)
    }
}

impl AsyncWrite for ForwardedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.data).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.data).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.data).poll_shutdown(cx)
    }
}
