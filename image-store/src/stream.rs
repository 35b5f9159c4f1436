//! Readers of the layer pipeline, which runs on a blocking thread: the bytes the async download
//! task hands over, teed into the content store, decompressed, and hashed into the diff ID.

use std::io::{self, Read, Write};

use bytes::Bytes;

use crate::content::BlobWriter;
use crate::digest::Hasher;
use crate::manifest::Compression;

/// Reads the chunks sent by the download task. The task sends `Err` to abort the reader (a
/// stall, a broken connection); a closed channel is the end of the blob.
pub struct ChannelReader {
    chunks: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(chunks: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Writes every byte read through it to the content store's blob writer, which hashes it and
/// refuses more bytes than the descriptor announced.
pub struct TeeReader<R> {
    inner: R,
    blob: BlobWriter,
}

impl<R: Read> TeeReader<R> {
    pub fn new(inner: R, blob: BlobWriter) -> Self {
        TeeReader { inner, blob }
    }

    /// Reads what is left of the blob (past the end of the compressed stream) and hands back the
    /// writer, complete.
    pub fn finish(mut self) -> io::Result<BlobWriter> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.blob)
    }
}

impl<R: Read> Read for TeeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.blob.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// The decompressor a layer's media type calls for.
pub enum Decoder<R: Read> {
    Plain(R),
    Gzip(Box<flate2::read::MultiGzDecoder<R>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, io::BufReader<R>>>),
}

impl<R: Read> Decoder<R> {
    pub fn new(inner: R, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Decoder::Plain(inner),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(inner))),
            Compression::Zstd => Decoder::Zstd(Box::new(zstd::stream::read::Decoder::new(inner)?)),
        })
    }

    /// The compressed stream, for reading what the decoder left.
    pub fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// Hashes what is read (the uncompressed tar, for its diff ID) and refuses more than `limit`
/// bytes, so a decompression bomb stops at the limit.
pub struct DiffReader<R> {
    inner: R,
    hasher: Hasher,
    limit: u64,
}

impl<R: Read> DiffReader<R> {
    pub fn new(inner: R, hasher: Hasher, limit: u64) -> Self {
        DiffReader {
            inner,
            hasher,
            limit,
        }
    }

    /// Reads the rest of the tar (the end-of-archive blocks count in the diff ID) and returns
    /// the hasher and the inner reader.
    pub fn finish(mut self) -> io::Result<(Hasher, R)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher, self.inner))
    }
}

impl<R: Read> Read for DiffReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hasher.len() + n as u64 > self.limit {
            return Err(io::Error::other(format!(
                "uncompressed layer is larger than the limit of {} bytes",
                self.limit
            )));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
