//! A SPDY/3.1 session over one connection (any tokio `AsyncRead + AsyncWrite`).
//!
//! [`Session::new`] spawns two tasks: a reader that decodes frames and routes them, and a writer
//! that sends queued control frames, window updates and stream data. Both end, and the transport
//! is shut down and dropped, when the session ends: the transport closes or fails, the peer
//! breaks the protocol (we send GOAWAY with PROTOCOL_ERROR), or the session goes away (GOAWAY
//! sent, received, or the [`Session`] dropped) and its last stream is done.
//!
//! The server accepts streams with their headers ([`Session::accept`], then
//! [`IncomingStream::accept`] replies with SYN_REPLY); the client opens them
//! ([`Session::open`] sends SYN_STREAM and waits for SYN_REPLY). Client stream ids are odd,
//! server ones even, as spdystream numbers them.
//!
//! Flow control: each side starts by sending SETTINGS (its stream limit and initial window)
//! and a session WINDOW_UPDATE, and returns window to the peer as its reader consumes data.
//! The peers this crate exists for, kubelet and crictl through moby/spdystream, send neither
//! SETTINGS nor WINDOW_UPDATE and ignore ours; they rely on the transport's back-pressure. So
//! the peer's windows are enforced on what we send once the peer has shown it keeps them (a
//! SETTINGS with INITIAL_WINDOW_SIZE or any WINDOW_UPDATE); until then data is sent as the
//! transport takes it. In the other direction a stream buffers at most one window: a frame that
//! does not fit waits, and the reader stops reading the transport until the stream's reader
//! makes room (head-of-line blocking, as spdystream itself does, only ever against a peer that
//! ignores our windows).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot, watch};

use crate::SpdyError;
use crate::frame::{
    Frame, FrameDecoder, FrameEncoder, FrameLimits, GoAwayStatus, RstStatus, Setting, SettingId,
};
use crate::header_block::Headers;
use crate::stream::{Reset, Stream, StreamState};

/// The initial window of every stream and of the session, until SETTINGS say otherwise.
const DEFAULT_WINDOW: u32 = 64 * 1024;
/// The largest window the protocol allows.
const MAX_WINDOW: i64 = 0x7fff_ffff;
/// The most data we put in one DATA frame.
const DATA_CHUNK: usize = 32 * 1024;
/// The most data the writer takes from streams in one round, between control frames.
const WRITE_ROUND_BUDGET: usize = 256 * 1024;
/// Control frames the peer makes us queue (ping replies, refusals) beyond this end the session.
const MAX_QUEUED_CONTROL_FRAMES: usize = 1024;
/// How long a closing session may take to flush its last frames and shut the transport down.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens odd-numbered streams (kubelet's and crictl's side).
    Client,
    /// Opens even-numbered streams (the streaming server's side).
    Server,
}

impl Role {
    /// Whether `id` (a stream or ping id) is one this end allocates.
    fn is_local(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Client)
    }
}

/// The bounds of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Streams open at once, both directions together (default 32). A stream counts until it
    /// is finished or reset and its handles are dropped.
    pub max_streams: usize,
    /// Our receive window per stream, which is also the most a stream buffers in either
    /// direction (default 64 KiB; at least 1 KiB, at most 2^31 - 1).
    pub initial_window: u32,
    /// Frame and header block limits of the decoder.
    pub limits: FrameLimits,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_streams: 32,
            initial_window: DEFAULT_WINDOW,
            limits: FrameLimits::default(),
        }
    }
}

/// One SPDY session. Dropping it sends GOAWAY and ends the session once its open streams are
/// done; the streams keep working until then.
#[derive(Debug)]
pub struct Session {
    shared: Arc<Shared>,
}

/// A stream the peer opened, not yet answered. Dropping it refuses it.
#[derive(Debug)]
pub struct IncomingStream {
    shared: Arc<Shared>,
    id: u32,
    headers: Headers,
    answered: bool,
}

/// What the session's tasks and handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Something for the writer to send.
    pub(crate) writer_wake: Notify,
    /// A stream's reader made room the reader task may be waiting for.
    pub(crate) reader_wake: Notify,
    /// A stream to accept, or no more to come.
    accept_wake: Notify,
    /// Set when the tasks must stop at once.
    shutdown: watch::Sender<bool>,
    /// Set when the session has ended: the writer has little time left for its last frames.
    closing: watch::Sender<bool>,
    /// How many of the two tasks are still running.
    tasks_running: watch::Sender<usize>,
}

#[derive(Debug)]
pub(crate) struct State {
    role: Role,
    config: SessionConfig,
    pub(crate) streams: BTreeMap<u32, StreamState>,
    next_stream_id: u32,
    last_peer_stream_id: u32,
    /// Streams the peer opened, waiting for `accept`.
    incoming: VecDeque<(u32, Headers)>,
    control: VecDeque<Frame>,
    session_send_window: i64,
    session_recv_unacked: u64,
    peer_initial_window: i64,
    peer_max_streams: Option<usize>,
    /// The peer has shown it keeps flow control windows; enforce its windows from now on.
    peer_flow_control: bool,
    pings: HashMap<u32, oneshot::Sender<()>>,
    next_ping_id: u32,
    go_away_sent: bool,
    go_away_received: bool,
    session_dropped: bool,
    /// Why the session ended, once it has.
    closed: Option<String>,
    /// Where the writer's next round-robin pass over the streams starts.
    next_to_send: u32,
}

impl Session {
    /// Starts a session over `io`: spawns its reader and writer tasks on the current tokio
    /// runtime and queues our SETTINGS.
    pub fn new<T>(io: T, role: Role, config: SessionConfig) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let mut config = config;
        config.initial_window = config.initial_window.clamp(1024, 0x7fff_ffff);
        config.max_streams = config.max_streams.max(1);
        let mut control = VecDeque::new();
        control.push_back(Frame::Settings {
            clear: false,
            settings: vec![
                Setting {
                    id: SettingId::MAX_CONCURRENT_STREAMS,
                    flags: 0,
                    value: u32::try_from(config.max_streams).unwrap_or(u32::MAX),
                },
                Setting {
                    id: SettingId::INITIAL_WINDOW_SIZE,
                    flags: 0,
                    value: config.initial_window,
                },
            ],
        });
        // The session window starts at 64 KiB (SPDY/3.1); make room for every stream's window.
        let session_window =
            u64::from(config.initial_window).saturating_mul(config.max_streams as u64);
        let extra = session_window
            .saturating_sub(u64::from(DEFAULT_WINDOW))
            .min(MAX_WINDOW as u64);
        if extra > 0 {
            control.push_back(Frame::WindowUpdate {
                stream_id: 0,
                delta: u32::try_from(extra).unwrap_or(0x7fff_ffff),
            });
        }
        let state = State {
            role,
            config,
            streams: BTreeMap::new(),
            next_stream_id: if role == Role::Client { 1 } else { 2 },
            last_peer_stream_id: 0,
            incoming: VecDeque::new(),
            control,
            session_send_window: i64::from(DEFAULT_WINDOW),
            session_recv_unacked: 0,
            peer_initial_window: i64::from(DEFAULT_WINDOW),
            peer_max_streams: None,
            peer_flow_control: false,
            pings: HashMap::new(),
            next_ping_id: if role == Role::Client { 1 } else { 2 },
            go_away_sent: false,
            go_away_received: false,
            session_dropped: false,
            closed: None,
            next_to_send: 0,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            writer_wake: Notify::new(),
            reader_wake: Notify::new(),
            accept_wake: Notify::new(),
            shutdown: watch::Sender::new(false),
            closing: watch::Sender::new(false),
            tasks_running: watch::Sender::new(2),
        });
        let (reader, writer) = tokio::io::split(io);
        tokio::spawn(read_loop(
            shared.clone(),
            reader,
            FrameDecoder::new(config.limits),
        ));
        tokio::spawn(write_loop(shared.clone(), writer));
        Session { shared }
    }

    /// The next stream the peer opened, with its headers; `None` once the session is closed or
    /// going away and every stream opened before is handed out.
    pub async fn accept(&self) -> Option<IncomingStream> {
        loop {
            let notified = self.shared.accept_wake.notified();
            {
                let mut state = self.shared.lock();
                if let Some((id, headers)) = state.incoming.pop_front() {
                    return Some(IncomingStream {
                        shared: self.shared.clone(),
                        id,
                        headers,
                        answered: false,
                    });
                }
                if state.closed.is_some() || state.go_away_sent || state.go_away_received {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Opens a stream with `headers` (SYN_STREAM) and waits for the peer's SYN_REPLY, whose
    /// headers the stream then holds.
    pub async fn open(&self, headers: Headers) -> Result<Stream, SpdyError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let id = {
            let mut state = self.shared.lock();
            if let Some(error) = state.closed_error() {
                return Err(error);
            }
            if state.go_away_sent || state.go_away_received {
                return Err(SpdyError::GoingAway);
            }
            let max = state
                .peer_max_streams
                .map_or(state.config.max_streams, |peer| {
                    peer.min(state.config.max_streams)
                });
            if state.streams.len() >= max {
                return Err(SpdyError::TooManyStreams { max });
            }
            let id = state.next_stream_id;
            if id > 0x7fff_ffff {
                return Err(SpdyError::GoingAway);
            }
            state.next_stream_id += 2;
            let mut stream = StreamState::new(state.peer_initial_window);
            stream.reply = Some(reply_tx);
            state.streams.insert(id, stream);
            state.control.push_back(Frame::SynStream {
                stream_id: id,
                associated_stream_id: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers,
            });
            id
        };
        self.shared.writer_wake.notify_one();
        // The handle first: if this future is dropped while waiting, it cleans the stream up.
        let stream = Stream::new(self.shared.clone(), id, Headers::new());
        let reply = reply_rx
            .await
            .map_err(|_| self.shared.lock().closed_or_gone())??;
        Ok(stream.with_headers(reply))
    }

    /// Sends a PING and waits for the peer to echo it; the round trip time.
    pub async fn ping(&self) -> Result<Duration, SpdyError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.shared.lock();
            if let Some(error) = state.closed_error() {
                return Err(error);
            }
            let id = state.next_ping_id;
            state.next_ping_id = if id >= 0x7fff_fffd {
                id % 2 + 2
            } else {
                id + 2
            };
            state.pings.insert(id, tx);
            state.control.push_back(Frame::Ping { id });
            id
        };
        self.shared.writer_wake.notify_one();
        let started = Instant::now();
        let outstanding = PendingPing {
            shared: &self.shared,
            id,
        };
        let result = rx.await;
        drop(outstanding);
        result.map_err(|_| self.shared.lock().closed_or_gone())?;
        Ok(started.elapsed())
    }

    /// Sends GOAWAY: the peer may open no more streams, we open none; the session ends when
    /// its open streams are done.
    pub fn go_away(&self) {
        let mut state = self.shared.lock();
        state.send_go_away();
        drop(state);
        self.shared.accept_wake.notify_waiters();
        self.shared.writer_wake.notify_one();
    }

    /// Ends the session now, for an idle timeout say: no GOAWAY, the transport is shut down
    /// and dropped, every stream fails from now on.
    pub fn abort(&self) {
        self.shared
            .close("the session was aborted".to_owned(), None);
    }

    /// Waits until the session has ended and both its tasks are gone.
    pub async fn closed(&self) {
        let mut running = self.shared.tasks_running.subscribe();
        // The sender lives in `shared`, which we hold: this cannot fail.
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.session_dropped = true;
        state.send_go_away();
        // Nobody can accept these any more.
        while let Some((id, _)) = state.incoming.pop_front() {
            state.refuse(id);
        }
        drop(state);
        self.shared.writer_wake.notify_one();
    }
}

/// Forgets a ping whose waiter went away.
struct PendingPing<'a> {
    shared: &'a Shared,
    id: u32,
}

impl Drop for PendingPing<'_> {
    fn drop(&mut self) {
        self.shared.lock().pings.remove(&self.id);
    }
}

impl IncomingStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers of the peer's SYN_STREAM (`streamtype`, `port`, `requestid`, …).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Replies with SYN_REPLY carrying `reply_headers`; the stream is open both ways.
    pub fn accept(mut self, reply_headers: Headers) -> Stream {
        self.answered = true;
        let mut state = self.shared.lock();
        let reset = state
            .streams
            .get(&self.id)
            .is_none_or(|s| s.reset.is_some());
        if !reset && state.closed.is_none() {
            state.control.push_back(Frame::SynReply {
                stream_id: self.id,
                fin: false,
                headers: reply_headers,
            });
        }
        drop(state);
        self.shared.writer_wake.notify_one();
        Stream::new(
            self.shared.clone(),
            self.id,
            std::mem::take(&mut self.headers),
        )
    }

    /// Refuses the stream (RST_STREAM with REFUSED_STREAM).
    pub fn refuse(self) {
        // Drop does it.
    }
}

impl Drop for IncomingStream {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.shared.lock().refuse(self.id);
        self.shared.writer_wake.notify_one();
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets stream `id` from this end.
    pub(crate) fn reset_stream(&self, id: u32, status: RstStatus) {
        self.lock().reset_local(id, status);
        self.writer_wake.notify_one();
    }

    /// Ends the session for `reason`; with `go_away` the writer still sends a GOAWAY with that
    /// status before it stops, otherwise both tasks stop at once.
    fn close(&self, reason: String, go_away: Option<GoAwayStatus>) {
        let mut state = self.lock();
        if let Some(status) = go_away
            && state.closed.is_none()
            && !state.go_away_sent
        {
            state.go_away_sent = true;
            let last_good_stream_id = state.last_peer_stream_id;
            state.control.push_back(Frame::GoAway {
                last_good_stream_id,
                status,
            });
        }
        state.close(reason);
        drop(state);
        self.closing.send_replace(true);
        if go_away.is_none() {
            self.shutdown.send_replace(true);
        }
        self.accept_wake.notify_waiters();
        self.writer_wake.notify_one();
        self.reader_wake.notify_one();
    }
}

/// Marks one of the two tasks finished when dropped, however the task ends.
struct TaskRunning(Arc<Shared>);

impl Drop for TaskRunning {
    fn drop(&mut self) {
        self.0
            .tasks_running
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn read_loop<R>(shared: Arc<Shared>, mut reader: R, mut decoder: FrameDecoder)
where
    R: AsyncRead + Unpin,
{
    let _running = TaskRunning(shared.clone());
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                if let Err(error) = handle_frame(&shared, frame, &mut shutdown).await {
                    tracing::debug!(%error, "spdy peer broke the protocol");
                    shared.close(error.to_string(), Some(GoAwayStatus::PROTOCOL_ERROR));
                    return;
                }
                if *shutdown.borrow() {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(%error, "undecodable spdy frame");
                shared.close(error.to_string(), Some(GoAwayStatus::PROTOCOL_ERROR));
                return;
            }
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => {
                    shared.close("the peer closed the connection".to_owned(), None);
                    return;
                }
                Ok(_) => {}
                Err(error) => {
                    shared.close(format!("reading the connection: {error}"), None);
                    return;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Routes one frame; an error is the peer's protocol error and ends the session.
async fn handle_frame(
    shared: &Shared,
    frame: Frame,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SpdyError> {
    if let Frame::Data {
        stream_id,
        fin,
        data,
    } = frame
    {
        return deliver_data(shared, stream_id, fin, data, shutdown).await;
    }
    let result = shared.lock().handle_control(frame);
    shared.accept_wake.notify_waiters();
    shared.writer_wake.notify_one();
    result
}

/// Hands a DATA frame to its stream, waiting while the stream already buffers a window.
async fn deliver_data(
    shared: &Shared,
    id: u32,
    fin: bool,
    data: bytes::Bytes,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SpdyError> {
    loop {
        {
            let mut state = shared.lock();
            let window = state.config.initial_window as usize;
            let Some(stream) = state.streams.get_mut(&id) else {
                // A stream already gone (reset, say): keep the session window flowing.
                state.credit(None, data.len());
                drop(state);
                shared.writer_wake.notify_one();
                return Ok(());
            };
            if stream.recv_dropped || stream.recv_fin || stream.reset.is_some() {
                stream.recv_fin |= fin;
                state.credit(Some(id), data.len());
                state.release(id);
                drop(state);
                shared.writer_wake.notify_one();
                return Ok(());
            }
            if stream.recv_buffered == 0 || stream.recv_buffered + data.len() <= window {
                if !data.is_empty() {
                    stream.recv_buffered += data.len();
                    stream.recv_buf.push_back(data);
                }
                stream.recv_fin = fin;
                stream.wake_recv();
                if fin {
                    state.release(id);
                    drop(state);
                    shared.writer_wake.notify_one();
                }
                return Ok(());
            }
        }
        tokio::select! {
            _ = shared.reader_wake.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}

impl State {
    /// The error for operations on a closed session, if it is closed.
    pub(crate) fn closed_error(&self) -> Option<SpdyError> {
        self.closed.as_ref().map(|reason| SpdyError::SessionClosed {
            reason: reason.clone(),
        })
    }

    fn closed_or_gone(&self) -> SpdyError {
        self.closed_error().unwrap_or(SpdyError::GoingAway)
    }

    /// How many outgoing bytes a stream may buffer.
    pub(crate) fn send_buffer_capacity(&self) -> usize {
        self.config.initial_window as usize
    }

    /// Counts `n` received bytes as consumed, for the session and for stream `id`. True when
    /// a WINDOW_UPDATE is due: wake the writer.
    pub(crate) fn credit(&mut self, id: Option<u32>, n: usize) -> bool {
        let n = n as u64;
        let threshold = self.window_update_threshold();
        self.session_recv_unacked += n;
        let mut due = self.session_recv_unacked >= threshold;
        if let Some(stream) = id.and_then(|id| self.streams.get_mut(&id)) {
            stream.recv_unacked += n;
            due |= stream.recv_unacked >= threshold;
        }
        due
    }

    /// Consumed bytes are returned to the peer once they make half a window.
    fn window_update_threshold(&self) -> u64 {
        u64::from(self.config.initial_window / 2)
    }

    /// Forgets stream `id` if nothing refers to it any more: both handles dropped and the
    /// stream reset or finished both ways (or the session closed).
    pub(crate) fn release(&mut self, id: u32) {
        let Some(stream) = self.streams.get(&id) else {
            return;
        };
        if stream.recv_dropped
            && stream.send_dropped
            && (stream.reset.is_some()
                || (stream.send_fin_sent && stream.recv_fin)
                || self.closed.is_some())
        {
            self.streams.remove(&id);
        }
    }

    fn refuse(&mut self, id: u32) {
        self.reset_local(id, RstStatus::REFUSED_STREAM);
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.recv_dropped = true;
            stream.send_dropped = true;
        }
        self.release(id);
    }

    fn reset_local(&mut self, id: u32, status: RstStatus) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.reset.is_some() {
            return;
        }
        stream.reset = Some(Reset::Local(status));
        stream.send_buf.clear();
        stream.recv_buf.clear();
        let discarded = std::mem::take(&mut stream.recv_buffered);
        stream.wake_both();
        self.credit(Some(id), discarded);
        if self.closed.is_none() {
            self.control.push_back(Frame::RstStream {
                stream_id: id,
                status,
            });
        }
        self.release(id);
    }

    fn send_go_away(&mut self) {
        if self.go_away_sent || self.closed.is_some() {
            return;
        }
        self.go_away_sent = true;
        self.control.push_back(Frame::GoAway {
            last_good_stream_id: self.last_peer_stream_id,
            status: GoAwayStatus::OK,
        });
    }

    /// Queues a control frame the peer made us send; too many queued is a flood.
    fn queue_reply(&mut self, frame: Frame) -> Result<(), SpdyError> {
        if self.control.len() >= MAX_QUEUED_CONTROL_FRAMES {
            return Err(SpdyError::Protocol(
                "control frames faster than the connection drains them",
            ));
        }
        self.control.push_back(frame);
        Ok(())
    }

    /// Marks the session ended: every waiter wakes to an error or end of file.
    fn close(&mut self, reason: String) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        while let Some((id, _)) = self.incoming.pop_front() {
            self.streams.remove(&id);
        }
        self.pings.clear();
        let error = self.closed_or_gone();
        for stream in self.streams.values_mut() {
            if let Some(reply) = stream.reply.take() {
                let _ = reply.send(Err(SpdyError::SessionClosed {
                    reason: error.to_string(),
                }));
            }
            stream.wake_both();
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.release(id);
        }
    }

    fn handle_control(&mut self, frame: Frame) -> Result<(), SpdyError> {
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                unidirectional,
                headers,
                ..
            } => self.on_syn_stream(stream_id, fin, unidirectional, headers),
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                if let Some(stream) = self.streams.get_mut(&stream_id) {
                    if let Some(reply) = stream.reply.take() {
                        let _ = reply.send(Ok(headers));
                    }
                    if fin {
                        stream.recv_fin = true;
                        stream.wake_recv();
                        self.release(stream_id);
                    }
                }
                Ok(())
            }
            Frame::Headers { stream_id, fin, .. } => {
                if fin && let Some(stream) = self.streams.get_mut(&stream_id) {
                    stream.recv_fin = true;
                    stream.wake_recv();
                    self.release(stream_id);
                }
                Ok(())
            }
            Frame::RstStream { stream_id, status } => {
                if let Some(stream) = self.streams.get_mut(&stream_id) {
                    stream.reset = Some(Reset::Remote(status));
                    stream.send_buf.clear();
                    if let Some(reply) = stream.reply.take() {
                        let _ = reply.send(Err(if status == RstStatus::REFUSED_STREAM {
                            SpdyError::StreamRefused { stream_id }
                        } else {
                            SpdyError::StreamReset { stream_id, status }
                        }));
                    }
                    stream.wake_both();
                    self.release(stream_id);
                }
                Ok(())
            }
            Frame::Settings { settings, .. } => self.on_settings(&settings),
            Frame::Ping { id } => {
                if self.role.is_local(id) {
                    if let Some(waiter) = self.pings.remove(&id) {
                        let _ = waiter.send(());
                    }
                    Ok(())
                } else {
                    self.queue_reply(Frame::Ping { id })
                }
            }
            Frame::GoAway {
                last_good_stream_id,
                ..
            } => {
                self.go_away_received = true;
                // Streams we opened after the peer's last good one were never processed.
                for (&id, stream) in self.streams.range_mut(last_good_stream_id + 1..) {
                    if self.role.is_local(id) && stream.reset.is_none() {
                        stream.reset = Some(Reset::Remote(RstStatus::REFUSED_STREAM));
                        if let Some(reply) = stream.reply.take() {
                            let _ = reply.send(Err(SpdyError::GoingAway));
                        }
                        stream.wake_both();
                    }
                }
                Ok(())
            }
            Frame::WindowUpdate { stream_id, delta } => {
                self.peer_flow_control = true;
                let delta = i64::from(delta);
                if stream_id == 0 {
                    self.session_send_window += delta;
                    if self.session_send_window > MAX_WINDOW {
                        return Err(SpdyError::Protocol("session window over 2^31 - 1"));
                    }
                } else if let Some(stream) = self.streams.get_mut(&stream_id) {
                    stream.send_window += delta;
                    if stream.send_window > MAX_WINDOW {
                        self.reset_local(stream_id, RstStatus::FLOW_CONTROL_ERROR);
                    }
                }
                Ok(())
            }
            Frame::Data { .. } => Ok(()),
        }
    }

    fn on_syn_stream(
        &mut self,
        id: u32,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    ) -> Result<(), SpdyError> {
        if self.role.is_local(id) || id <= self.last_peer_stream_id {
            return Err(SpdyError::Protocol(
                "SYN_STREAM with a stream id out of order or of our parity",
            ));
        }
        self.last_peer_stream_id = id;
        if self.go_away_sent
            || self.go_away_received
            || self.session_dropped
            || self.streams.len() >= self.config.max_streams
        {
            return self.queue_reply(Frame::RstStream {
                stream_id: id,
                status: RstStatus::REFUSED_STREAM,
            });
        }
        let mut stream = StreamState::new(self.peer_initial_window);
        stream.recv_fin = fin;
        if unidirectional {
            stream.send_fin_queued = true;
            stream.send_fin_sent = true;
        }
        self.streams.insert(id, stream);
        self.incoming.push_back((id, headers));
        Ok(())
    }

    fn on_settings(&mut self, settings: &[Setting]) -> Result<(), SpdyError> {
        for setting in settings {
            match setting.id {
                SettingId::INITIAL_WINDOW_SIZE => {
                    let window = i64::from(setting.value);
                    if window > MAX_WINDOW {
                        return Err(SpdyError::Protocol("initial window over 2^31 - 1"));
                    }
                    let delta = window - self.peer_initial_window;
                    for stream in self.streams.values_mut() {
                        stream.send_window += delta;
                    }
                    self.peer_initial_window = window;
                    self.peer_flow_control = true;
                }
                SettingId::MAX_CONCURRENT_STREAMS => {
                    self.peer_max_streams = Some(setting.value as usize);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What the writer sends next, in order: control frames, window updates, stream data
    /// (round robin, within the peer's windows when it keeps them). Also forgets streams whose
    /// handles are gone once their FIN is out. True when the session is over after these.
    fn next_frames(&mut self, frames: &mut Vec<Frame>) -> bool {
        frames.extend(self.control.drain(..));
        if self.closed.is_some() {
            return true;
        }
        let threshold = self.window_update_threshold();
        if self.session_recv_unacked >= threshold {
            let delta = self.session_recv_unacked.min(MAX_WINDOW as u64);
            self.session_recv_unacked -= delta;
            frames.push(Frame::WindowUpdate {
                stream_id: 0,
                delta: u32::try_from(delta).unwrap_or(0x7fff_ffff),
            });
        }
        for (&id, stream) in &mut self.streams {
            if stream.recv_unacked >= threshold && !stream.recv_fin && stream.reset.is_none() {
                let delta = stream.recv_unacked.min(MAX_WINDOW as u64);
                stream.recv_unacked -= delta;
                frames.push(Frame::WindowUpdate {
                    stream_id: id,
                    delta: u32::try_from(delta).unwrap_or(0x7fff_ffff),
                });
            }
        }
        self.next_data_frames(frames);
        self.cancel_abandoned(frames);
        let going_away = self.session_dropped || self.go_away_sent || self.go_away_received;
        if going_away && self.streams.is_empty() {
            if !self.go_away_sent {
                self.go_away_sent = true;
                frames.push(Frame::GoAway {
                    last_good_stream_id: self.last_peer_stream_id,
                    status: GoAwayStatus::OK,
                });
            }
            return true;
        }
        false
    }

    fn next_data_frames(&mut self, frames: &mut Vec<Frame>) {
        let mut budget = WRITE_ROUND_BUDGET;
        let order: Vec<u32> = self
            .streams
            .range(self.next_to_send..)
            .chain(self.streams.range(..self.next_to_send))
            .map(|(&id, _)| id)
            .collect();
        for id in order {
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if stream.reset.is_some() || stream.send_fin_sent || stream.reply.is_some() {
                continue;
            }
            if stream.send_buf.is_empty() {
                if stream.send_fin_queued {
                    stream.send_fin_sent = true;
                    stream.wake_send();
                    frames.push(Frame::Data {
                        stream_id: id,
                        fin: true,
                        data: bytes::Bytes::new(),
                    });
                }
                continue;
            }
            let mut n = stream.send_buf.len().min(DATA_CHUNK).min(budget);
            if self.peer_flow_control {
                let window = stream.send_window.min(self.session_send_window).max(0);
                n = n.min(usize::try_from(window).unwrap_or(0));
            }
            if n == 0 {
                continue;
            }
            let data = stream.send_buf.split_to(n).freeze();
            let fin = stream.send_buf.is_empty() && stream.send_fin_queued;
            stream.send_fin_sent = fin;
            stream.send_window -= n as i64;
            self.session_send_window -= n as i64;
            budget -= n;
            stream.wake_send();
            frames.push(Frame::Data {
                stream_id: id,
                fin,
                data,
            });
            self.next_to_send = id + 1;
            if budget == 0 {
                break;
            }
        }
    }

    /// Streams whose handles are gone and whose FIN is out: reset with CANCEL if the peer is
    /// still sending, then forgotten.
    fn cancel_abandoned(&mut self, frames: &mut Vec<Frame>) {
        let abandoned: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.recv_dropped && s.send_dropped && s.send_fin_sent)
            .map(|(&id, _)| id)
            .collect();
        for id in abandoned {
            if let Some(stream) = self.streams.remove(&id)
                && !stream.recv_fin
                && stream.reset.is_none()
            {
                frames.push(Frame::RstStream {
                    stream_id: id,
                    status: RstStatus::CANCEL,
                });
            }
        }
    }
}

async fn write_loop<W>(shared: Arc<Shared>, mut writer: W)
where
    W: AsyncWrite + Unpin,
{
    let _running = TaskRunning(shared.clone());
    let mut shutdown = shared.shutdown.subscribe();
    let mut closing = shared.closing.subscribe();
    let mut encoder = match FrameEncoder::new() {
        Ok(encoder) => encoder,
        Err(error) => {
            shared.close(error.to_string(), None);
            return;
        }
    };
    let mut frames = Vec::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let finished = shared.lock().next_frames(&mut frames);
        let encoded: Result<(), SpdyError> = frames
            .drain(..)
            .try_for_each(|frame| encoder.encode(&frame, &mut buf));
        if let Err(error) = encoded {
            // One of our own frames: a header we cannot send, say. The context is spoiled.
            tracing::warn!(%error, "cannot encode a spdy frame");
            shared.close(error.to_string(), None);
            break;
        }
        let wrote = !buf.is_empty();
        if wrote {
            let write = async {
                writer.write_all(&buf).await?;
                writer.flush().await
            };
            tokio::pin!(write);
            // A peer that stops reading must not hold a closing session forever.
            let last_chance = async {
                if !finished {
                    let _ = closing.wait_for(|closing| *closing).await;
                }
                tokio::time::sleep(CLOSE_FLUSH_TIMEOUT).await;
            };
            let written = tokio::select! {
                written = &mut write => written,
                _ = last_chance => Err(std::io::ErrorKind::TimedOut.into()),
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            buf.clear();
            if let Err(error) = written {
                shared.close(format!("writing the connection: {error}"), None);
                break;
            }
        }
        if finished || *shutdown.borrow() {
            break;
        }
        if !wrote {
            tokio::select! {
                _ = shared.writer_wake.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer.shutdown()).await;
    shared.close("the session ended".to_owned(), None);
}
