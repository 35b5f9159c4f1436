//! Stream handles: [`Stream`] and its halves [`RecvStream`] (`AsyncRead`) and [`SendStream`]
//! (`AsyncWrite`).
//!
//! Reading returns the peer's data, then end of file at its FIN; consuming data returns window
//! to the peer (WINDOW_UPDATE). Writing buffers at most one window of bytes per stream (the
//! session's writer sends them as the peer's windows allow); `shutdown` sends FIN. A reset stream
//! or a closed session fails reads (once buffered data is read) and writes with an `io::Error`
//! of kind `ConnectionReset` (reset) or `ConnectionAborted` (session closed) wrapping the
//! [`SpdyError`].
//!
//! Dropping a [`SendStream`] that was not shut down sends FIN after its buffered bytes. Dropping
//! a [`RecvStream`] discards what arrives later. When both halves are gone and the peer has not
//! finished, the stream is reset with CANCEL.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::SpdyError;
use crate::frame::RstStatus;
use crate::header_block::Headers;
use crate::session::Shared;

/// Who reset a stream, and why.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reset {
    Local(RstStatus),
    Remote(RstStatus),
}

/// The session's record of one stream; the handles reach it through the session lock.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) recv_buf: VecDeque<Bytes>,
    pub(crate) recv_buffered: usize,
    /// The peer sent FIN.
    pub(crate) recv_fin: bool,
    /// Bytes consumed (or discarded) and not yet returned to the peer's window.
    pub(crate) recv_unacked: u64,
    pub(crate) recv_waker: Option<Waker>,
    pub(crate) recv_dropped: bool,
    pub(crate) send_buf: BytesMut,
    pub(crate) send_fin_queued: bool,
    pub(crate) send_fin_sent: bool,
    /// The peer's window for this stream; negative after it shrank the initial window.
    pub(crate) send_window: i64,
    pub(crate) send_waker: Option<Waker>,
    pub(crate) send_dropped: bool,
    pub(crate) reset: Option<Reset>,
    /// For a stream we opened: where its SYN_REPLY (or its refusal) goes.
    pub(crate) reply: Option<tokio::sync::oneshot::Sender<Result<Headers, SpdyError>>>,
}

impl StreamState {
    pub(crate) fn new(send_window: i64) -> Self {
        Self {
            recv_buf: VecDeque::new(),
            recv_buffered: 0,
            recv_fin: false,
            recv_unacked: 0,
            recv_waker: None,
            recv_dropped: false,
            send_buf: BytesMut::new(),
            send_fin_queued: false,
            send_fin_sent: false,
            send_window,
            send_waker: None,
            send_dropped: false,
            reset: None,
            reply: None,
        }
    }

    pub(crate) fn wake_recv(&mut self) {
        if let Some(waker) = self.recv_waker.take() {
            waker.wake();
        }
    }

    pub(crate) fn wake_send(&mut self) {
        if let Some(waker) = self.send_waker.take() {
            waker.wake();
        }
    }

    pub(crate) fn wake_both(&mut self) {
        self.wake_recv();
        self.wake_send();
    }

    fn reset_error(&self, stream_id: u32) -> Option<SpdyError> {
        self.reset.map(|reset| match reset {
            Reset::Remote(RstStatus::REFUSED_STREAM) => SpdyError::StreamRefused { stream_id },
            Reset::Local(status) | Reset::Remote(status) => {
                SpdyError::StreamReset { stream_id, status }
            }
        })
    }
}

/// A stream: the headers the peer sent (its SYN_STREAM for an accepted stream, its SYN_REPLY
/// for an opened one), reading and writing.
#[derive(Debug)]
pub struct Stream {
    headers: Headers,
    recv: RecvStream,
    send: SendStream,
}

/// The receiving half of a stream.
#[derive(Debug)]
pub struct RecvStream {
    shared: Arc<Shared>,
    id: u32,
}

/// The sending half of a stream.
#[derive(Debug)]
pub struct SendStream {
    shared: Arc<Shared>,
    id: u32,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, id: u32, headers: Headers) -> Self {
        Self {
            headers,
            recv: RecvStream {
                shared: shared.clone(),
                id,
            },
            send: SendStream { shared, id },
        }
    }

    /// `self` holding `headers`: the SYN_REPLY's, once it came.
    pub(crate) fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// The stream id: odd when the client opened it, even when the server did.
    pub fn id(&self) -> u32 {
        self.recv.id
    }

    /// The headers the peer sent for this stream.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Resets the stream with `status` (RST_STREAM): buffered outgoing bytes are dropped, both
    /// directions fail from now on.
    pub fn reset(&self, status: RstStatus) {
        self.recv.shared.reset_stream(self.id(), status);
    }

    /// The two halves, to read and write from different tasks.
    pub fn into_split(self) -> (RecvStream, SendStream) {
        (self.recv, self.send)
    }
}

impl RecvStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Resets the stream with `status`, as [`Stream::reset`].
    pub fn reset(&self, status: RstStatus) {
        self.shared.reset_stream(self.id, status);
    }
}

impl SendStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Resets the stream with `status`, as [`Stream::reset`].
    pub fn reset(&self, status: RstStatus) {
        self.shared.reset_stream(self.id, status);
    }
}

impl AsyncRead for RecvStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut state = self.shared.lock();
        let closed = state.closed_error();
        let Some(stream) = state.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed.unwrap_or(SpdyError::GoingAway).into_io()));
        };
        if stream.recv_buffered > 0 {
            let mut copied = 0;
            while buf.remaining() > 0 {
                let Some(chunk) = stream.recv_buf.front_mut() else {
                    break;
                };
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk.split_to(n));
                copied += n;
                if chunk.is_empty() {
                    stream.recv_buf.pop_front();
                }
            }
            stream.recv_buffered -= copied;
            let window_update_due = state.credit(Some(id), copied);
            drop(state);
            if window_update_due {
                self.shared.writer_wake.notify_one();
            }
            // The reader task may be holding back a frame for want of room in this stream.
            self.shared.reader_wake.notify_one();
            return Poll::Ready(Ok(()));
        }
        if stream.recv_fin {
            return Poll::Ready(Ok(()));
        }
        if let Some(error) = stream.reset_error(id).or(closed) {
            return Poll::Ready(Err(error.into_io()));
        }
        stream.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        let mut state = self.shared.lock();
        let capacity = state.send_buffer_capacity();
        let closed = state.closed_error();
        let Some(stream) = state.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed.unwrap_or(SpdyError::GoingAway).into_io()));
        };
        if let Some(error) = stream.reset_error(id).or(closed) {
            return Poll::Ready(Err(error.into_io()));
        }
        if stream.send_fin_queued {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("stream {id} is shut down for writing"),
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = capacity.saturating_sub(stream.send_buf.len());
        if room == 0 {
            stream.send_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        stream.send_buf.extend_from_slice(&buf[..n]);
        drop(state);
        self.shared.writer_wake.notify_one();
        Poll::Ready(Ok(n))
    }

    /// Ready once the session's writer has taken every buffered byte.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut state = self.shared.lock();
        let closed = state.closed_error();
        let Some(stream) = state.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed.unwrap_or(SpdyError::GoingAway).into_io()));
        };
        if stream.send_buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if let Some(error) = stream.reset_error(id).or(closed) {
            return Poll::Ready(Err(error.into_io()));
        }
        stream.send_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Sends FIN after the buffered bytes; ready once it is on its way.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut state = self.shared.lock();
        let closed = state.closed_error();
        let Some(stream) = state.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed.unwrap_or(SpdyError::GoingAway).into_io()));
        };
        if stream.send_fin_sent {
            return Poll::Ready(Ok(()));
        }
        if let Some(error) = stream.reset_error(id).or(closed) {
            return Poll::Ready(Err(error.into_io()));
        }
        stream.send_waker = Some(cx.waker().clone());
        if !stream.send_fin_queued {
            stream.send_fin_queued = true;
            drop(state);
            self.shared.writer_wake.notify_one();
        }
        Poll::Pending
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.send).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.send).poll_shutdown(cx)
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let discarded = match state.streams.get_mut(&self.id) {
            Some(stream) => {
                stream.recv_dropped = true;
                stream.recv_buf.clear();
                std::mem::take(&mut stream.recv_buffered)
            }
            None => 0,
        };
        state.credit(Some(self.id), discarded);
        state.release(self.id);
        drop(state);
        self.shared.reader_wake.notify_one();
        self.shared.writer_wake.notify_one();
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(stream) = state.streams.get_mut(&self.id) {
            stream.send_dropped = true;
            stream.send_fin_queued = true;
        }
        state.release(self.id);
        drop(state);
        self.shared.writer_wake.notify_one();
    }
}
