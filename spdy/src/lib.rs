//! crius-spdy: SPDY/3.1 as kubelet and crictl speak it for exec, attach and port-forward.
//!
//! The peers are Go programs built on `github.com/moby/spdystream` (through
//! `k8s.io/apimachinery/pkg/util/httpstream/spdy`). This crate serves both ends: the daemon's
//! streaming server accepts streams, the conformance suite's client opens them.
//!
//! - [`frame`]: the frame codec ([`FrameEncoder`], [`FrameDecoder`]), sync and `bytes`-based;
//! - [`header_block`]: name/value blocks, zlib-compressed with the SPDY/3 dictionary;
//! - [`session`]: a connection over any tokio `AsyncRead + AsyncWrite` ([`Session`]);
//! - [`stream`]: the per-stream handles ([`Stream`], [`RecvStream`], [`SendStream`]);
//! - [`tunnel`]: a byte stream over WebSocket messages, for SPDY tunnelled through a WebSocket.
//!
//! Everything a peer can make us hold is bounded: frame length, inflated header blocks, streams
//! per session, bytes buffered per stream, queued control frames.

mod error;
pub mod frame;
pub mod header_block;
pub mod session;
pub mod stream;
pub mod tunnel;

pub use error::{SpdyError, SpdyErrorKind};
pub use frame::{
    Frame, FrameDecoder, FrameEncoder, FrameLimits, GoAwayStatus, RstStatus, Setting, SettingId,
};
pub use header_block::Headers;
pub use session::{IncomingStream, Role, Session, SessionConfig};
pub use stream::{RecvStream, SendStream, Stream};
