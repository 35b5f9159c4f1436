//! The error type of the SPDY crate.

use crate::frame::RstStatus;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpdyErrorKind {
    /// The peer broke the protocol: malformed frames, bad header blocks, bad stream ids.
    Protocol,
    /// Something exceeded a configured bound: frame length, header block size, stream count.
    Limit,
    /// The peer refused or reset a stream.
    Reset,
    /// The session has ended or is going away; no new streams.
    Closed,
    /// The transport or the compressor failed.
    Io,
}

/// An error of the codec or of a session.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("frame of {length} bytes is over the limit of {max}")]
    FrameTooLarge { length: usize, max: usize },
    #[error("unsupported spdy version {0}")]
    UnsupportedVersion(u16),
    #[error("invalid {frame} frame: {reason}")]
    InvalidFrame {
        frame: &'static str,
        reason: &'static str,
    },
    #[error("invalid header block: {0}")]
    InvalidHeaderBlock(&'static str),
    #[error("header block inflates past the limit of {max} bytes")]
    HeaderBlockTooLarge { max: usize },
    #[error("header compression failed: {0}")]
    Compression(String),
    #[error("peer broke the protocol: {0}")]
    Protocol(&'static str),
    #[error("too many streams: the limit is {max}")]
    TooManyStreams { max: usize },
    #[error("stream {stream_id} refused by the peer")]
    StreamRefused { stream_id: u32 },
    #[error("stream {stream_id} reset: {status}")]
    StreamReset { stream_id: u32, status: RstStatus },
    #[error("the session is going away: no new streams")]
    GoingAway,
    #[error("the session is closed: {reason}")]
    SessionClosed { reason: String },
}

impl SpdyError {
    /// For `map_err`: an I/O failure of `op`.
    pub fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| SpdyError::Io { op, source }
    }

    /// The class of this error.
    pub fn kind(&self) -> SpdyErrorKind {
        match self {
            SpdyError::Io { .. } | SpdyError::Compression(_) => SpdyErrorKind::Io,
            SpdyError::UnsupportedVersion(_)
            | SpdyError::InvalidFrame { .. }
            | SpdyError::InvalidHeaderBlock(_)
            | SpdyError::Protocol(_) => SpdyErrorKind::Protocol,
            SpdyError::FrameTooLarge { .. }
            | SpdyError::HeaderBlockTooLarge { .. }
            | SpdyError::TooManyStreams { .. } => SpdyErrorKind::Limit,
            SpdyError::StreamRefused { .. } | SpdyError::StreamReset { .. } => SpdyErrorKind::Reset,
            SpdyError::GoingAway | SpdyError::SessionClosed { .. } => SpdyErrorKind::Closed,
        }
    }

    /// This error as an `std::io::Error` for the `AsyncRead`/`AsyncWrite` stream handles; the
    /// original stays reachable with `get_ref`/`downcast`.
    pub(crate) fn into_io(self) -> std::io::Error {
        let kind = match self.kind() {
            SpdyErrorKind::Reset => std::io::ErrorKind::ConnectionReset,
            SpdyErrorKind::Closed => std::io::ErrorKind::ConnectionAborted,
            SpdyErrorKind::Limit | SpdyErrorKind::Protocol | SpdyErrorKind::Io => {
                std::io::ErrorKind::Other
            }
        };
        std::io::Error::new(kind, self)
    }
}
