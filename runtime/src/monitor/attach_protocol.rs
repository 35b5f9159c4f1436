//! The framing of the monitor's attach socket (`<dir>/attach`), both ways.
//!
//! A frame is `[kind: u8][len: u32 big endian][payload: len bytes]`, with `len` at most
//! [`MAX_PAYLOAD`]. The monitor sends [`FrameKind::Stdout`] and [`FrameKind::Stderr`] (with a
//! terminal, all output is `Stdout`), then EOF when the container has exited and its output is
//! sent. A client sends [`FrameKind::Stdin`] data, [`FrameKind::Resize`] (payload: rows and
//! columns, each a `u16` big endian; terminal only) and [`FrameKind::CloseStdin`] (empty
//! payload). A malformed frame ends the connection.
//!
//! Closing stdin closes the container's stdin pipe, so the container reads EOF. With a terminal
//! there is no pipe to close: the monitor only stops passing stdin on (containerd does the same).

use std::io::{self, Write};

/// The largest payload of one frame.
pub const MAX_PAYLOAD: usize = 32 * 1024;

/// The bytes before the payload: kind and length.
pub const HEADER_LEN: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Client → monitor: data for the container's stdin.
    Stdin,
    /// Monitor → client: the container's stdout (or its terminal output).
    Stdout,
    /// Monitor → client: the container's stderr.
    Stderr,
    /// Client → monitor: the terminal's new size, see [`TerminalSize`].
    Resize,
    /// Client → monitor: close the container's stdin.
    CloseStdin,
}

impl FrameKind {
    /// The kind's byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            FrameKind::Stdin => 0,
            FrameKind::Stdout => 1,
            FrameKind::Stderr => 2,
            FrameKind::Resize => 3,
            FrameKind::CloseStdin => 4,
        }
    }

    /// The kind of a wire byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            0 => Some(FrameKind::Stdin),
            1 => Some(FrameKind::Stdout),
            2 => Some(FrameKind::Stderr),
            3 => Some(FrameKind::Resize),
            4 => Some(FrameKind::CloseStdin),
            _ => None,
        }
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown attach frame kind {0}")]
    UnknownKind(u8),
    #[error("attach frame payload of {0} bytes is over the {MAX_PAYLOAD} byte limit")]
    TooLong(usize),
    #[error("resize frame payload must be 4 bytes, not {0}")]
    BadResize(usize),
}

impl From<FrameError> for io::Error {
    fn from(err: FrameError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

/// The header of a frame of `kind` with a payload of `len` bytes.
pub fn encode_header(kind: FrameKind, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong(len));
    }
    let mut header = [0u8; HEADER_LEN];
    header[0] = kind.byte();
    // MAX_PAYLOAD fits in a u32.
    header[1..].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(header)
}

/// Appends one frame to `out`.
pub fn encode(kind: FrameKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    out.extend_from_slice(&encode_header(kind, payload.len())?);
    out.extend_from_slice(payload);
    Ok(())
}

/// Writes `data` as frames of `kind` to a blocking writer, split at [`MAX_PAYLOAD`]; an empty
/// `data` is one empty frame.
pub fn write_frames(out: &mut impl Write, kind: FrameKind, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return out.write_all(&encode_header(kind, 0)?);
    }
    for chunk in data.chunks(MAX_PAYLOAD) {
        out.write_all(&encode_header(kind, chunk.len())?)?;
        out.write_all(chunk)?;
    }
    Ok(())
}

/// The payload of a [`FrameKind::Resize`] frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

impl TerminalSize {
    pub fn encode(self) -> [u8; 4] {
        let [r0, r1] = self.rows.to_be_bytes();
        let [c0, c1] = self.cols.to_be_bytes();
        [r0, r1, c0, c1]
    }

    pub fn decode(payload: &[u8]) -> Result<TerminalSize, FrameError> {
        match payload {
            [r0, r1, c0, c1] => Ok(TerminalSize {
                rows: u16::from_be_bytes([*r0, *r1]),
                cols: u16::from_be_bytes([*c0, *c1]),
            }),
            _ => Err(FrameError::BadResize(payload.len())),
        }
    }
}

/// One decoded frame, borrowed from the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    pub payload: &'a [u8],
}

/// Cuts a byte stream into frames, in a fixed buffer of one largest frame.
///
/// Read into [`FrameDecoder::unfilled`], report the count with [`FrameDecoder::filled`], then
/// take frames with [`FrameDecoder::next_frame`] until it returns `None`.
pub struct FrameDecoder {
    buf: Box<[u8]>,
    /// Start of the bytes not yet returned as frames.
    start: usize,
    /// End of the bytes read.
    end: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub fn new() -> Self {
        FrameDecoder {
            buf: vec![0u8; HEADER_LEN + MAX_PAYLOAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Free space to read into; never empty once the frames read so far have been taken.
    pub fn unfilled(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `count` bytes were read into [`FrameDecoder::unfilled`].
    pub fn filled(&mut self, count: usize) {
        self.end = (self.end + count).min(self.buf.len());
    }

    /// The next complete frame, `None` if more bytes are needed, or why the stream is invalid.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        let available = &self.buf[self.start..self.end];
        let Some(header) = available.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let kind = FrameKind::from_byte(header[0]).ok_or(FrameError::UnknownKind(header[0]))?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLong(len));
        }
        if available.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload_start = self.start + HEADER_LEN;
        self.start = payload_start + len;
        Ok(Some(Frame {
            kind,
            payload: &self.buf[payload_start..self.start],
        }))
    }

    /// Whether bytes of an unfinished frame are buffered.
    pub fn has_partial_frame(&self) -> bool {
        self.start < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in as large reads as fit, taking the frames as they complete.
    fn feed(decoder: &mut FrameDecoder, mut bytes: &[u8]) -> Vec<(FrameKind, Vec<u8>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let space = decoder.unfilled();
            assert!(!space.is_empty(), "no room although every frame was taken");
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            decoder.filled(n);
            bytes = &bytes[n..];
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push((frame.kind, frame.payload.to_vec()));
            }
        }
        frames
    }

    #[test]
    fn kinds_round_trip_through_their_bytes() {
        for byte in 0..=4 {
            assert_eq!(FrameKind::from_byte(byte).unwrap().byte(), byte);
        }
        assert_eq!(FrameKind::from_byte(5), None);
        assert_eq!(FrameKind::Stdout.byte(), 1);
        assert_eq!(FrameKind::Stderr.byte(), 2);
    }

    #[test]
    fn encode_writes_kind_big_endian_length_and_payload() {
        let mut out = Vec::new();
        encode(FrameKind::Stderr, b"hi", &mut out).unwrap();
        assert_eq!(out, [2, 0, 0, 0, 2, b'h', b'i']);
        let too_long = vec![0; MAX_PAYLOAD + 1];
        assert_eq!(
            encode(FrameKind::Stdout, &too_long, &mut out),
            Err(FrameError::TooLong(MAX_PAYLOAD + 1))
        );
    }

    #[test]
    fn decoder_returns_frames_split_across_reads() {
        let mut wire = Vec::new();
        encode(FrameKind::Stdin, b"echo hi\n", &mut wire).unwrap();
        encode(FrameKind::CloseStdin, b"", &mut wire).unwrap();
        let size = TerminalSize { rows: 24, cols: 80 };
        encode(FrameKind::Resize, &size.encode(), &mut wire).unwrap();
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in &wire {
            frames.extend(feed(&mut decoder, std::slice::from_ref(byte)));
        }
        assert!(!decoder.has_partial_frame());
        assert_eq!(
            frames,
            [
                (FrameKind::Stdin, b"echo hi\n".to_vec()),
                (FrameKind::CloseStdin, vec![]),
                (FrameKind::Resize, vec![0, 24, 0, 80]),
            ]
        );
        assert_eq!(TerminalSize::decode(&frames[2].1).unwrap(), size);
    }

    #[test]
    fn decoder_holds_largest_frames_back_to_back() {
        let mut wire = Vec::new();
        let big = vec![7u8; MAX_PAYLOAD];
        write_frames(
            &mut wire,
            FrameKind::Stdout,
            &[big.clone(), big.clone()].concat(),
        )
        .unwrap();
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        for chunk in wire.chunks(10_000) {
            frames.extend(feed(&mut decoder, chunk));
        }
        assert_eq!(frames.len(), 2);
        assert!(
            frames
                .iter()
                .all(|(kind, p)| *kind == FrameKind::Stdout && *p == big)
        );
    }

    #[test]
    fn decoder_refuses_unknown_kinds_and_long_frames() {
        let mut decoder = FrameDecoder::new();
        decoder.unfilled()[..5].copy_from_slice(&[9, 0, 0, 0, 0]);
        decoder.filled(5);
        assert_eq!(decoder.next_frame(), Err(FrameError::UnknownKind(9)));
        let mut decoder = FrameDecoder::new();
        decoder.unfilled()[..5].copy_from_slice(&[0, 0, 0x80, 0, 1]);
        decoder.filled(5);
        assert_eq!(decoder.next_frame(), Err(FrameError::TooLong(0x0080_0001)));
    }

    #[test]
    fn resize_payload_must_be_four_bytes() {
        assert_eq!(
            TerminalSize::decode(&[0, 1, 2]),
            Err(FrameError::BadResize(3))
        );
    }

    #[test]
    fn write_frames_sends_empty_data_as_one_empty_frame() {
        let mut wire = Vec::new();
        write_frames(&mut wire, FrameKind::CloseStdin, b"").unwrap();
        assert_eq!(wire, [4, 0, 0, 0, 0]);
    }
}
