//! The SPDY/3 frame codec.
//!
//! Every frame has an 8-byte header. A control frame: the control bit, a 15-bit version (3), a
//! 16-bit type, 8 bits of flags and a 24-bit payload length. A data frame: a clear control bit,
//! a 31-bit stream id, 8 bits of flags and a 24-bit length. [`FrameDecoder`] refuses a frame whose
//! length is over its [`FrameLimits`] as soon as the header is in, before buffering the payload,
//! and refuses malformed frames; it skips control frames of unknown types, as the spec asks.
//! Both ends keep one header compression context each for the whole connection, so a decoder
//! or an encoder that failed must not be used again: the connection ends.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::SpdyError;
use crate::header_block::{HeaderCompressor, HeaderDecompressor, Headers};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// The largest payload a 24-bit length field can announce.
pub const MAX_PAYLOAD_LEN: usize = 0xff_ffff;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const FLAG_CLEAR_SETTINGS: u8 = 0x01;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// What a [`FrameDecoder`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// The largest payload, in bytes; at most [`MAX_PAYLOAD_LEN`] (the default).
    pub max_frame_len: usize,
    /// The largest inflated header block, in bytes (default 1 MiB).
    pub max_header_block_len: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_frame_len: MAX_PAYLOAD_LEN,
            max_header_block_len: 1 << 20,
        }
    }
}

/// The status code of a RST_STREAM frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: Self = Self(1);
    pub const INVALID_STREAM: Self = Self(2);
    pub const REFUSED_STREAM: Self = Self(3);
    pub const UNSUPPORTED_VERSION: Self = Self(4);
    pub const CANCEL: Self = Self(5);
    pub const INTERNAL_ERROR: Self = Self(6);
    pub const FLOW_CONTROL_ERROR: Self = Self(7);
    pub const STREAM_IN_USE: Self = Self(8);
    pub const STREAM_ALREADY_CLOSED: Self = Self(9);
    pub const INVALID_CREDENTIALS: Self = Self(10);
    pub const FRAME_TOO_LARGE: Self = Self(11);
}

impl std::fmt::Display for RstStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "PROTOCOL_ERROR",
            2 => "INVALID_STREAM",
            3 => "REFUSED_STREAM",
            4 => "UNSUPPORTED_VERSION",
            5 => "CANCEL",
            6 => "INTERNAL_ERROR",
            7 => "FLOW_CONTROL_ERROR",
            8 => "STREAM_IN_USE",
            9 => "STREAM_ALREADY_CLOSED",
            10 => "INVALID_CREDENTIALS",
            11 => "FRAME_TOO_LARGE",
            other => return write!(f, "status {other}"),
        };
        f.write_str(name)
    }
}

/// The status code of a GOAWAY frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: Self = Self(0);
    pub const PROTOCOL_ERROR: Self = Self(1);
    pub const INTERNAL_ERROR: Self = Self(2);
}

/// The id of a SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingId(pub u32);

impl SettingId {
    pub const UPLOAD_BANDWIDTH: Self = Self(1);
    pub const DOWNLOAD_BANDWIDTH: Self = Self(2);
    pub const ROUND_TRIP_TIME: Self = Self(3);
    pub const MAX_CONCURRENT_STREAMS: Self = Self(4);
    pub const CURRENT_CWND: Self = Self(5);
    pub const DOWNLOAD_RETRANS_RATE: Self = Self(6);
    pub const INITIAL_WINDOW_SIZE: Self = Self(7);
    pub const CLIENT_CERTIFICATE_VECTOR_SIZE: Self = Self(8);
}

/// One entry of a SETTINGS frame: 8 bits of flags, a 24-bit id, a 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub id: SettingId,
    pub flags: u8,
    pub value: u32,
}

/// A frame, its header block (if any) uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_stream_id: u32,
        /// 0 (highest) to 7.
        priority: u8,
        fin: bool,
        /// The recipient sends no data on this stream.
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear: bool,
        settings: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Stream id 0 is the session's window (SPDY/3.1).
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
}

/// Writes frames, compressing header blocks with this direction's context.
pub struct FrameEncoder {
    compressor: HeaderCompressor,
}

impl FrameEncoder {
    /// A fresh encoder for one connection.
    pub fn new() -> Result<Self, SpdyError> {
        Ok(Self {
            compressor: HeaderCompressor::new()?,
        })
    }

    /// Appends `frame` to `dst`. Refuses stream ids out of range and payloads over
    /// [`MAX_PAYLOAD_LEN`]; nothing is appended then.
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), SpdyError> {
        let start = dst.len();
        let result = self.encode_unchecked(frame, dst);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn encode_unchecked(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), SpdyError> {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let stream_id = stream_id_to_send("DATA", *stream_id)?;
                if data.len() > MAX_PAYLOAD_LEN {
                    return Err(SpdyError::FrameTooLarge {
                        length: data.len(),
                        max: MAX_PAYLOAD_LEN,
                    });
                }
                dst.put_u32(stream_id);
                put_flags_len(dst, flag(*fin, FLAG_FIN), data.len());
                dst.extend_from_slice(data);
                Ok(())
            }
            Frame::SynStream {
                stream_id,
                associated_stream_id,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let stream_id = stream_id_to_send("SYN_STREAM", *stream_id)?;
                if *associated_stream_id > STREAM_ID_MASK {
                    return Err(invalid("SYN_STREAM", "associated stream id over 31 bits"));
                }
                let flags = flag(*fin, FLAG_FIN) | flag(*unidirectional, FLAG_UNIDIRECTIONAL);
                self.control(dst, TYPE_SYN_STREAM, flags, |enc, dst| {
                    dst.put_u32(stream_id);
                    dst.put_u32(*associated_stream_id);
                    dst.put_u8((priority & 0x07) << 5);
                    dst.put_u8(0); // credential slot
                    enc.compressor.compress(headers, dst)
                })
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                let stream_id = stream_id_to_send("SYN_REPLY", *stream_id)?;
                self.control(dst, TYPE_SYN_REPLY, flag(*fin, FLAG_FIN), |enc, dst| {
                    dst.put_u32(stream_id);
                    enc.compressor.compress(headers, dst)
                })
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let stream_id = stream_id_to_send("HEADERS", *stream_id)?;
                self.control(dst, TYPE_HEADERS, flag(*fin, FLAG_FIN), |enc, dst| {
                    dst.put_u32(stream_id);
                    enc.compressor.compress(headers, dst)
                })
            }
            Frame::RstStream { stream_id, status } => {
                let stream_id = stream_id_to_send("RST_STREAM", *stream_id)?;
                if status.0 == 0 {
                    return Err(invalid("RST_STREAM", "status 0"));
                }
                self.control(dst, TYPE_RST_STREAM, 0, |_, dst| {
                    dst.put_u32(stream_id);
                    dst.put_u32(status.0);
                    Ok(())
                })
            }
            Frame::Settings { clear, settings } => {
                if settings.iter().any(|s| s.id.0 > 0xff_ffff) {
                    return Err(invalid("SETTINGS", "id over 24 bits"));
                }
                let flags = flag(*clear, FLAG_CLEAR_SETTINGS);
                self.control(dst, TYPE_SETTINGS, flags, |_, dst| {
                    let count = u32::try_from(settings.len())
                        .map_err(|_| invalid("SETTINGS", "too many entries"))?;
                    dst.put_u32(count);
                    for setting in settings {
                        dst.put_u32(u32::from(setting.flags) << 24 | setting.id.0);
                        dst.put_u32(setting.value);
                    }
                    Ok(())
                })
            }
            Frame::Ping { id } => self.control(dst, TYPE_PING, 0, |_, dst| {
                dst.put_u32(*id);
                Ok(())
            }),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                if *last_good_stream_id > STREAM_ID_MASK {
                    return Err(invalid("GOAWAY", "stream id over 31 bits"));
                }
                self.control(dst, TYPE_GOAWAY, 0, |_, dst| {
                    dst.put_u32(*last_good_stream_id);
                    dst.put_u32(status.0);
                    Ok(())
                })
            }
            Frame::WindowUpdate { stream_id, delta } => {
                if *stream_id > STREAM_ID_MASK {
                    return Err(invalid("WINDOW_UPDATE", "stream id over 31 bits"));
                }
                if *delta == 0 || *delta > STREAM_ID_MASK {
                    return Err(invalid("WINDOW_UPDATE", "delta not in 1..2^31"));
                }
                self.control(dst, TYPE_WINDOW_UPDATE, 0, |_, dst| {
                    dst.put_u32(*stream_id);
                    dst.put_u32(*delta);
                    Ok(())
                })
            }
        }
    }

    /// Writes a control frame header, the body `write_body` appends, then patches the length.
    fn control(
        &mut self,
        dst: &mut BytesMut,
        frame_type: u16,
        flags: u8,
        write_body: impl FnOnce(&mut Self, &mut BytesMut) -> Result<(), SpdyError>,
    ) -> Result<(), SpdyError> {
        let start = dst.len();
        dst.put_u16(0x8000 | VERSION);
        dst.put_u16(frame_type);
        dst.put_u32(0);
        write_body(self, dst)?;
        let len = dst.len() - start - 8;
        if len > MAX_PAYLOAD_LEN {
            return Err(SpdyError::FrameTooLarge {
                length: len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let mut header = BytesMut::with_capacity(4);
        put_flags_len(&mut header, flags, len);
        dst[start + 4..start + 8].copy_from_slice(&header);
        Ok(())
    }
}

fn flag(set: bool, bit: u8) -> u8 {
    if set { bit } else { 0 }
}

/// Flags in the top byte, the length (at most 24 bits, checked by the callers) below.
fn put_flags_len(dst: &mut BytesMut, flags: u8, len: usize) {
    let len = u32::try_from(len & MAX_PAYLOAD_LEN).unwrap_or_default();
    dst.put_u32(u32::from(flags) << 24 | len);
}

fn stream_id_to_send(frame: &'static str, stream_id: u32) -> Result<u32, SpdyError> {
    if stream_id == 0 || stream_id > STREAM_ID_MASK {
        return Err(invalid(frame, "stream id not in 1..2^31"));
    }
    Ok(stream_id)
}

fn invalid(frame: &'static str, reason: &'static str) -> SpdyError {
    SpdyError::InvalidFrame { frame, reason }
}

/// Reads frames, inflating header blocks with this direction's context, within limits.
pub struct FrameDecoder {
    decompressor: HeaderDecompressor,
    limits: FrameLimits,
}

impl FrameDecoder {
    /// A fresh decoder for one connection.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            decompressor: HeaderDecompressor::new(limits.max_header_block_len),
            limits,
        }
    }

    /// The next whole frame at the front of `src`, removed from it; `None` when `src` holds
    /// only part of a frame (read more and call again). An error ends the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        loop {
            let Some(header) = src.first_chunk::<8>() else {
                return Ok(None);
            };
            let word = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let flags = header[4];
            let len =
                usize::from(header[5]) << 16 | usize::from(header[6]) << 8 | usize::from(header[7]);
            let max = self.limits.max_frame_len.min(MAX_PAYLOAD_LEN);
            if len > max {
                return Err(SpdyError::FrameTooLarge { length: len, max });
            }
            if word & 0x8000_0000 != 0 {
                let version = u16::try_from(word >> 16 & 0x7fff).unwrap_or_default();
                if version != VERSION {
                    return Err(SpdyError::UnsupportedVersion(version));
                }
            }
            if src.len() < 8 + len {
                return Ok(None);
            }
            src.advance(8);
            let payload = src.split_to(len).freeze();
            if word & 0x8000_0000 == 0 {
                let stream_id = word & STREAM_ID_MASK;
                if stream_id == 0 {
                    return Err(invalid("DATA", "stream id 0"));
                }
                return Ok(Some(Frame::Data {
                    stream_id,
                    fin: flags & FLAG_FIN != 0,
                    data: payload,
                }));
            }
            let frame_type = u16::try_from(word & 0xffff).unwrap_or_default();
            if let Some(frame) = self.control(frame_type, flags, payload)? {
                return Ok(Some(frame));
            }
        }
    }

    /// A control frame of `frame_type`; `None` for types this version does not know.
    fn control(
        &mut self,
        frame_type: u16,
        flags: u8,
        mut payload: Bytes,
    ) -> Result<Option<Frame>, SpdyError> {
        let fin = flags & FLAG_FIN != 0;
        let frame = match frame_type {
            TYPE_SYN_STREAM => {
                need_at_least("SYN_STREAM", &payload, 10)?;
                let stream_id = stream_id_received("SYN_STREAM", payload.get_u32())?;
                let associated_stream_id = payload.get_u32() & STREAM_ID_MASK;
                let priority = payload.get_u8() >> 5;
                payload.advance(1); // credential slot
                Frame::SynStream {
                    stream_id,
                    associated_stream_id,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.decompressor.decompress(&payload)?,
                }
            }
            TYPE_SYN_REPLY => {
                need_at_least("SYN_REPLY", &payload, 4)?;
                let stream_id = stream_id_received("SYN_REPLY", payload.get_u32())?;
                Frame::SynReply {
                    stream_id,
                    fin,
                    headers: self.decompressor.decompress(&payload)?,
                }
            }
            TYPE_HEADERS => {
                need_at_least("HEADERS", &payload, 4)?;
                let stream_id = stream_id_received("HEADERS", payload.get_u32())?;
                Frame::Headers {
                    stream_id,
                    fin,
                    headers: self.decompressor.decompress(&payload)?,
                }
            }
            TYPE_RST_STREAM => {
                need_exactly("RST_STREAM", &payload, 8)?;
                let stream_id = stream_id_received("RST_STREAM", payload.get_u32())?;
                let status = RstStatus(payload.get_u32());
                if status.0 == 0 {
                    return Err(invalid("RST_STREAM", "status 0"));
                }
                Frame::RstStream { stream_id, status }
            }
            TYPE_SETTINGS => {
                need_at_least("SETTINGS", &payload, 4)?;
                let count = usize::try_from(payload.get_u32()).unwrap_or(usize::MAX);
                if count.checked_mul(8) != Some(payload.len()) {
                    return Err(invalid("SETTINGS", "entry count does not match the length"));
                }
                let settings = (0..count)
                    .map(|_| {
                        let flags_id = payload.get_u32();
                        Setting {
                            flags: u8::try_from(flags_id >> 24).unwrap_or_default(),
                            id: SettingId(flags_id & 0xff_ffff),
                            value: payload.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings {
                    clear: flags & FLAG_CLEAR_SETTINGS != 0,
                    settings,
                }
            }
            TYPE_PING => {
                need_exactly("PING", &payload, 4)?;
                Frame::Ping {
                    id: payload.get_u32(),
                }
            }
            TYPE_GOAWAY => {
                need_exactly("GOAWAY", &payload, 8)?;
                Frame::GoAway {
                    last_good_stream_id: payload.get_u32() & STREAM_ID_MASK,
                    status: GoAwayStatus(payload.get_u32()),
                }
            }
            TYPE_WINDOW_UPDATE => {
                need_exactly("WINDOW_UPDATE", &payload, 8)?;
                let stream_id = payload.get_u32() & STREAM_ID_MASK;
                let delta = payload.get_u32() & STREAM_ID_MASK;
                if delta == 0 {
                    return Err(invalid("WINDOW_UPDATE", "delta 0"));
                }
                Frame::WindowUpdate { stream_id, delta }
            }
            _ => return Ok(None),
        };
        Ok(Some(frame))
    }
}

fn need_at_least(frame: &'static str, payload: &Bytes, len: usize) -> Result<(), SpdyError> {
    if payload.len() < len {
        return Err(invalid(frame, "too short"));
    }
    Ok(())
}

fn need_exactly(frame: &'static str, payload: &Bytes, len: usize) -> Result<(), SpdyError> {
    if payload.len() != len {
        return Err(invalid(frame, "wrong length"));
    }
    Ok(())
}

fn stream_id_received(frame: &'static str, word: u32) -> Result<u32, SpdyError> {
    match word & STREAM_ID_MASK {
        0 => Err(invalid(frame, "stream id 0")),
        stream_id => Ok(stream_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_stream_id: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: Headers::new().with("streamtype", "error"),
            },
            Frame::SynStream {
                stream_id: 0x7fff_ffff,
                associated_stream_id: 3,
                priority: 7,
                fin: true,
                unidirectional: true,
                headers: Headers::new()
                    .with("streamtype", "data")
                    .with("port", "8080")
                    .with("requestid", "1"),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Headers::new(),
            },
            Frame::SynReply {
                stream_id: 5,
                fin: true,
                headers: Headers::new().with("status", "200"),
            },
            Frame::RstStream {
                stream_id: 3,
                status: RstStatus::CANCEL,
            },
            Frame::Settings {
                clear: true,
                settings: vec![
                    Setting {
                        id: SettingId::INITIAL_WINDOW_SIZE,
                        flags: 1,
                        value: 65536,
                    },
                    Setting {
                        id: SettingId::MAX_CONCURRENT_STREAMS,
                        flags: 0,
                        value: 32,
                    },
                ],
            },
            Frame::Settings {
                clear: false,
                settings: vec![],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good_stream_id: 7,
                status: GoAwayStatus::PROTOCOL_ERROR,
            },
            Frame::Headers {
                stream_id: 9,
                fin: true,
                headers: Headers::new().with("x", "y"),
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 0x7fff_ffff,
            },
            Frame::WindowUpdate {
                stream_id: 11,
                delta: 1,
            },
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new(),
            },
        ]
    }

    fn encode(frames: &[Frame]) -> BytesMut {
        let mut encoder = FrameEncoder::new().unwrap();
        let mut wire = BytesMut::new();
        for frame in frames {
            encoder.encode(frame, &mut wire).unwrap();
        }
        wire
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, SpdyError> {
        FrameDecoder::new(FrameLimits::default()).decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = all_frames();
        let mut wire = encode(&frames);
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        for frame in &frames {
            assert_eq!(decoder.decode(&mut wire).unwrap().as_ref(), Some(frame));
        }
        assert!(decoder.decode(&mut wire).unwrap().is_none());
        assert!(wire.is_empty());
    }

    #[test]
    fn frames_decode_byte_by_byte() {
        let frames = all_frames();
        let wire = encode(&frames);
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        let mut src = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire {
            src.extend_from_slice(&[byte]);
            while let Some(frame) = decoder.decode(&mut src).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn fixed_frames_have_the_wire_layout_of_the_spec() {
        let wire = encode(&[
            Frame::Ping { id: 1 },
            Frame::RstStream {
                stream_id: 3,
                status: RstStatus::REFUSED_STREAM,
            },
            Frame::WindowUpdate {
                stream_id: 5,
                delta: 0x1000,
            },
            Frame::GoAway {
                last_good_stream_id: 1,
                status: GoAwayStatus::OK,
            },
            Frame::Data {
                stream_id: 5,
                fin: true,
                data: Bytes::from_static(b"ab"),
            },
        ]);
        let expected: &[u8] = &[
            0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, // PING
            0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
            0x00, 0x03, // RST_STREAM
            0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00,
            0x10, 0x00, // WINDOW_UPDATE
            0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00, // GOAWAY
            0x00, 0x00, 0x00, 0x05, 0x01, 0x00, 0x00, 0x02, b'a', b'b', // DATA, FIN
        ];
        assert_eq!(&wire[..], expected);
    }

    #[test]
    fn syn_stream_flags_and_priority_sit_where_go_puts_them() {
        let wire = encode(&[Frame::SynStream {
            stream_id: 1,
            associated_stream_id: 0,
            priority: 5,
            fin: true,
            unidirectional: true,
            headers: Headers::new(),
        }]);
        assert_eq!(&wire[..4], &[0x80, 0x03, 0x00, 0x01]);
        assert_eq!(wire[4], 0x03, "FIN | UNIDIRECTIONAL");
        let len = u32::from_be_bytes([0, wire[5], wire[6], wire[7]]) as usize;
        assert_eq!(len, wire.len() - 8);
        assert_eq!(&wire[8..16], &[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(wire[16], 5 << 5);
        assert_eq!(wire[17], 0, "credential slot");
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header_alone() {
        let limits = FrameLimits {
            max_frame_len: 1024,
            ..FrameLimits::default()
        };
        let mut decoder = FrameDecoder::new(limits);
        // A DATA frame announcing 1025 bytes, of which none has arrived.
        let mut src = BytesMut::from(&[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x01][..]);
        let error = decoder.decode(&mut src).unwrap_err();
        assert!(matches!(
            error,
            SpdyError::FrameTooLarge {
                length: 1025,
                max: 1024
            }
        ));
        assert_eq!(error.kind(), crate::SpdyErrorKind::Limit);
        // 1024 is fine, and waits for its payload.
        let mut src = BytesMut::from(&[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x00][..]);
        assert!(decoder.decode(&mut src).unwrap().is_none());
    }

    #[test]
    fn the_encoder_refuses_what_the_wire_cannot_carry() {
        let mut encoder = FrameEncoder::new().unwrap();
        let mut wire = BytesMut::from(&b"kept"[..]);
        let too_big = Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::from(vec![0; MAX_PAYLOAD_LEN + 1]),
        };
        assert!(matches!(
            encoder.encode(&too_big, &mut wire),
            Err(SpdyError::FrameTooLarge { .. })
        ));
        for bad in [
            Frame::Data {
                stream_id: 0,
                fin: false,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 1,
                status: RstStatus(0),
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 0,
            },
            Frame::SynReply {
                stream_id: 0x8000_0000,
                fin: false,
                headers: Headers::new(),
            },
        ] {
            assert!(encoder.encode(&bad, &mut wire).is_err(), "{bad:?}");
        }
        assert_eq!(
            &wire[..],
            b"kept",
            "nothing of a refused frame is left behind"
        );
    }

    #[test]
    fn a_wrong_version_is_refused() {
        let mut wire = encode(&[Frame::Ping { id: 1 }]);
        wire[1] = 2;
        assert!(matches!(
            decode_one(&wire),
            Err(SpdyError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn malformed_control_frames_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            // PING with 3 bytes
            (vec![0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 1], "PING"),
            // RST_STREAM for stream 0
            (
                vec![0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5],
                "RST_STREAM",
            ),
            // RST_STREAM with status 0
            (
                vec![0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
                "RST_STREAM",
            ),
            // WINDOW_UPDATE with delta 0
            (
                vec![0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
                "WINDOW_UPDATE",
            ),
            // GOAWAY of 4 bytes (SPDY/2 layout)
            (vec![0x80, 3, 0, 7, 0, 0, 0, 4, 0, 0, 0, 1], "GOAWAY"),
            // SETTINGS claiming 2 entries, carrying 1
            (
                vec![
                    0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0, 7, 0, 1, 0, 0,
                ],
                "SETTINGS",
            ),
            // SYN_STREAM shorter than its fixed fields
            (vec![0x80, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1], "SYN_STREAM"),
            // SYN_REPLY for stream 0
            (vec![0x80, 3, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0], "SYN_REPLY"),
            // DATA for stream 0
            (vec![0, 0, 0, 0, 0, 0, 0, 1, 9], "DATA"),
        ];
        for (bytes, expected) in cases {
            match decode_one(&bytes) {
                Err(SpdyError::InvalidFrame { frame, .. }) => assert_eq!(frame, expected),
                other => panic!("{bytes:?}: expected an invalid {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_truncated_frame_waits_for_more() {
        let wire = encode(&all_frames()[..2]);
        for cut in 0..wire.len() {
            let mut decoder = FrameDecoder::new(FrameLimits::default());
            let mut src = BytesMut::from(&wire[..cut]);
            let first = decoder.decode(&mut src).unwrap();
            if let Some(frame) = first {
                assert_eq!(frame, all_frames()[0]);
                assert!(decoder.decode(&mut src).unwrap().is_none());
            }
        }
    }

    #[test]
    fn a_header_block_cut_short_inside_its_frame_is_refused() {
        let mut encoder = FrameEncoder::new().unwrap();
        let mut wire = BytesMut::new();
        encoder
            .encode(
                &Frame::SynReply {
                    stream_id: 1,
                    fin: false,
                    headers: Headers::new().with("streamtype", "stdout"),
                },
                &mut wire,
            )
            .unwrap();
        // Keep the frame whole but drop the block's tail: lower the length and truncate.
        let len = wire.len() - 8 - 6;
        wire.truncate(8 + len);
        wire[7] = len as u8;
        assert!(decode_one(&wire).is_err());
    }

    #[test]
    fn a_header_bomb_inside_a_frame_is_refused() {
        let mut encoder = FrameEncoder::new().unwrap();
        let mut wire = BytesMut::new();
        let value = "z".repeat(2 << 20);
        encoder
            .encode(
                &Frame::Headers {
                    stream_id: 1,
                    fin: false,
                    headers: Headers::new().with("bomb", &value),
                },
                &mut wire,
            )
            .unwrap();
        assert!(wire.len() < 16 * 1024, "{}", wire.len());
        let error = decode_one(&wire).unwrap_err();
        assert!(
            matches!(error, SpdyError::HeaderBlockTooLarge { .. }),
            "{error}"
        );
    }

    #[test]
    fn unknown_control_frames_are_skipped() {
        // A CREDENTIAL frame (type 10, gone in SPDY/3.1), then a PING.
        let mut wire = BytesMut::from(&[0x80, 3, 0, 10, 0, 0, 0, 2, 0xaa, 0xbb][..]);
        wire.extend_from_slice(&encode(&[Frame::Ping { id: 3 }]));
        let mut decoder = FrameDecoder::new(FrameLimits::default());
        assert_eq!(
            decoder.decode(&mut wire).unwrap(),
            Some(Frame::Ping { id: 3 })
        );
    }

    #[test]
    fn status_codes_print_their_names() {
        assert_eq!(RstStatus::REFUSED_STREAM.to_string(), "REFUSED_STREAM");
        assert_eq!(RstStatus(99).to_string(), "status 99");
    }
}
