//! A byte stream carried in WebSocket binary messages, as client-go tunnels SPDY through a
//! WebSocket (`crictl port-forward --transport websocket`, subprotocol
//! `SPDY/3.1+portforward.k8s.io`): each write is one binary message, reads return the messages'
//! bytes in order. A SPDY [`Session`](crate::Session) runs over it as over a TCP stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};

/// The subprotocol prefix client-go puts before the tunnelled protocol's name.
pub const TUNNEL_PROTOCOL_PREFIX: &str = "SPDY/3.1+";

/// A WebSocket connection as a byte stream, in either role.
#[derive(Debug)]
pub struct WebSocketTunnel<S> {
    socket: WebSocketStream<S>,
    /// What is left of the message being read.
    reading: Bytes,
}

impl<S> WebSocketTunnel<S> {
    /// Carries bytes over `socket` (handshake done).
    pub fn new(socket: WebSocketStream<S>) -> Self {
        WebSocketTunnel {
            socket,
            reading: Bytes::new(),
        }
    }
}

/// A WebSocket error as an I/O error.
fn io_error(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WebSocketTunnel<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.reading.is_empty() {
            match ready!(Pin::new(&mut self.socket).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(data))) => self.reading = data,
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text message in a binary tunnel",
                    )));
                }
                Some(Err(tungstenite::Error::ConnectionClosed)) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
        let taken = self.reading.len().min(buf.remaining());
        buf.put_slice(&self.reading[..taken]);
        self.reading.advance(taken);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WebSocketTunnel<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut socket = Pin::new(&mut self.socket);
        ready!(socket.as_mut().poll_ready(cx)).map_err(io_error)?;
        socket
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.socket).poll_close(cx)) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn bytes_cross_in_both_directions_and_close_reads_as_eof() {
        let (a, b) = tokio::io::duplex(1024);
        let mut client =
            WebSocketTunnel::new(WebSocketStream::from_raw_socket(a, Role::Client, None).await);
        let mut server =
            WebSocketTunnel::new(WebSocketStream::from_raw_socket(b, Role::Server, None).await);
        client.write_all(b"hello ").await.unwrap();
        client.write_all(b"tunnel").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 12];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello tunnel");
        server.write_all(b"back").await.unwrap();
        server.flush().await.unwrap();
        let mut small = [0u8; 3];
        client.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"bac");
        client.read_exact(&mut small[..1]).await.unwrap();
        assert_eq!(&small[..1], b"k");
        let closing = tokio::spawn(async move {
            client.shutdown().await.unwrap();
            client
        });
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(server);
        closing.await.unwrap();
    }
}
