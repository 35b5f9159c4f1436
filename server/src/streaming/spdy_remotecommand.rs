//! Kubernetes' remotecommand protocol over SPDY/3.1, the server side, as kubelet's streaming
//! server speaks it to client-go (`crictl exec`, `kubectl exec` through the API server).
//!
//! The client offers versions in `X-Stream-Protocol-Version` headers; the server answers with
//! the one it prefers ([`negotiate`]) and upgrades the connection to SPDY. The client then opens
//! one stream per standard stream it wants, named by a `streamType` header: `error` always,
//! `stdin`, `stdout`, `stderr` as the Exec or Attach request said, and `resize` for a terminal
//! from v3 on. Once all are there ([`SpdyClient::accept`]) the session runs: stdin data and its
//! half-close, resize messages (JSON objects, one per line), output on the output streams, and
//! at the end the status on the error stream (plain text before v4) and FIN on every stream.

use std::time::Duration;

use crius_spdy::{Headers, RecvStream, SendStream, Session};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::Streams;
use super::remotecommand::{Ending, STDERR, STDOUT, Version};
use super::session::{FromClient, RemoteClient};

/// The header carrying the offered and the chosen protocol version.
pub const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";

/// The versions served, in the server's order of preference.
const PROTOCOLS: [(&str, Version); 4] = [
    ("v4.channel.k8s.io", Version::V4),
    ("v3.channel.k8s.io", Version::V3),
    ("v2.channel.k8s.io", Version::V1),
    ("channel.k8s.io", Version::V1),
];

/// How long the client has to open its streams, as kubelet allows.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest resize message kept (a terminal size is some 30 bytes).
const MAX_RESIZE_MESSAGE: usize = 4096;
/// The size of each read from the client's stdin stream.
const READ_CHUNK: usize = 32 * 1024;

/// The version to speak, given the client's offer (the header's values, each possibly a comma
/// separated list): the first served in the server's order that the client offers. A client
/// that offers nothing speaks the first version; one that offers only others gets None.
pub fn negotiate<'a>(
    offered: impl IntoIterator<Item = &'a str>,
) -> Option<(Option<&'static str>, Version)> {
    let offered: Vec<&str> = super::offered_names(offered).collect();
    if offered.is_empty() {
        return Some((None, Version::V1));
    }
    PROTOCOLS
        .iter()
        .find(|(name, _)| offered.contains(name))
        .map(|(name, version)| (Some(*name), *version))
}

/// The client's end of a remotecommand session over SPDY.
pub struct SpdyClient {
    session: Session,
    version: Version,
    error: Option<SendStream>,
    stdin: Option<RecvStream>,
    stdout: Option<SendStream>,
    stderr: Option<SendStream>,
    resize: Option<ResizeReader>,
    /// Our half of the stdin stream, left open until the end: client-go takes its closing for
    /// the end of the session's stdin.
    stdin_reply: Option<SendStream>,
    /// Where stdin data is read into.
    stdin_buf: Box<[u8]>,
}

/// The streams opened so far.
#[derive(Default)]
struct Opened {
    error: Option<SendStream>,
    stdin: Option<(RecvStream, SendStream)>,
    stdout: Option<SendStream>,
    stderr: Option<SendStream>,
    resize: Option<RecvStream>,
}

impl SpdyClient {
    /// Accepts the streams `streams` calls for on `session`; an error tells why the session
    /// cannot go on (the caller drops the session, which closes the connection).
    pub async fn accept(
        session: Session,
        version: Version,
        streams: Streams,
    ) -> Result<SpdyClient, String> {
        let wants_resize = streams.tty && version.resizes();
        let expected = 1
            + usize::from(streams.stdin)
            + usize::from(streams.stdout)
            + usize::from(streams.stderr)
            + usize::from(wants_resize);
        let mut opened = Opened::default();
        let mut count = 0;
        let accepting = async {
            while count < expected {
                let Some(incoming) = session.accept().await else {
                    return Err("the client went away before opening its streams".to_owned());
                };
                let kind = incoming.headers().get("streamtype").unwrap_or_default();
                let slot_free = match kind {
                    "error" => opened.error.is_none(),
                    "stdin" => streams.stdin && opened.stdin.is_none(),
                    "stdout" => streams.stdout && opened.stdout.is_none(),
                    "stderr" => streams.stderr && opened.stderr.is_none(),
                    "resize" => wants_resize && opened.resize.is_none(),
                    _ => false,
                };
                if !slot_free {
                    let message = format!("unexpected stream of type {kind:?}");
                    incoming.refuse();
                    return Err(message);
                }
                let kind = kind.to_owned();
                let (recv, send) = incoming.accept(Headers::new()).into_split();
                match kind.as_str() {
                    "error" => opened.error = Some(send),
                    "stdin" => opened.stdin = Some((recv, send)),
                    "stdout" => opened.stdout = Some(send),
                    "stderr" => opened.stderr = Some(send),
                    _ => opened.resize = Some(recv),
                }
                count += 1;
            }
            Ok(())
        };
        match tokio::time::timeout(STREAM_CREATION_TIMEOUT, accepting).await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(message),
            Err(_) => {
                return Err(format!(
                    "the client opened {count} of {expected} streams in {STREAM_CREATION_TIMEOUT:?}"
                ));
            }
        }
        let (stdin, stdin_reply) = opened.stdin.unzip();
        Ok(SpdyClient {
            session,
            version,
            error: opened.error,
            stdin,
            stdin_reply,
            stdout: opened.stdout,
            stderr: opened.stderr,
            resize: opened.resize.map(ResizeReader::new),
            stdin_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        })
    }
}

impl RemoteClient for SpdyClient {
    async fn next(&mut self) -> FromClient {
        loop {
            tokio::select! {
                read = read_some(&mut self.stdin, &mut self.stdin_buf), if self.stdin.is_some() => {
                    match read {
                        Ok(read) if read > 0 => {
                            return FromClient::Stdin(self.stdin_buf[..read].to_vec());
                        }
                        // FIN (or a reset): the client has no more input.
                        _ => {
                            self.stdin = None;
                            return FromClient::CloseStdin;
                        }
                    }
                }
                message = next_resize(&mut self.resize), if self.resize.is_some() => {
                    match message {
                        Some(json) => return FromClient::resize(&json),
                        None => self.resize = None,
                    }
                }
                () = self.session.closed() => return FromClient::Gone,
            }
        }
    }

    async fn send(&mut self, channel: u8, data: &[u8]) -> bool {
        let stream = match channel {
            STDOUT => &mut self.stdout,
            STDERR => &mut self.stderr,
            _ => return true,
        };
        match stream {
            Some(stream) => stream.write_all(data).await.is_ok(),
            // Not asked for: dropped.
            None => true,
        }
    }

    async fn finish(mut self, ending: &Ending) {
        if let (Some(status), Some(error)) = (self.version.status(ending), &mut self.error)
            && let Err(e) = error.write_all(status.as_bytes()).await
        {
            tracing::debug!(error = %e, "writing the status to the error stream");
        }
        for stream in [
            &mut self.stdout,
            &mut self.stderr,
            &mut self.error,
            &mut self.stdin_reply,
        ]
        .into_iter()
        .flatten()
        {
            stream.shutdown().await.ok();
        }
        // Dropping the session sends GOAWAY; it ends once the client has read what is queued.
    }
}

/// Reads what `stream` has; 0 at its end.
async fn read_some(stream: &mut Option<RecvStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    match stream {
        Some(stream) => stream.read(buf).await,
        None => Ok(0),
    }
}

/// The resize stream: JSON objects, each on a line of its own.
struct ResizeReader {
    stream: RecvStream,
    buffered: Vec<u8>,
}

impl ResizeReader {
    fn new(stream: RecvStream) -> Self {
        ResizeReader {
            stream,
            buffered: Vec::new(),
        }
    }

    /// The next message; None at the stream's end, or when a line is longer than any resize
    /// message (the stream is then ignored).
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.buffered.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                return Some(line);
            }
            if self.buffered.len() > MAX_RESIZE_MESSAGE {
                return None;
            }
            let mut chunk = [0u8; 512];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => self.buffered.extend_from_slice(&chunk[..read]),
            }
        }
    }
}

/// The next resize message, if the stream is there.
async fn next_resize(reader: &mut Option<ResizeReader>) -> Option<Vec<u8>> {
    match reader {
        Some(reader) => reader.next().await,
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_preferred_version_among_the_offered_is_chosen() {
        assert_eq!(
            negotiate(["channel.k8s.io", "v3.channel.k8s.io, v4.channel.k8s.io"]),
            Some((Some("v4.channel.k8s.io"), Version::V4))
        );
        assert_eq!(
            negotiate(["v2.channel.k8s.io"]),
            Some((Some("v2.channel.k8s.io"), Version::V1))
        );
        assert_eq!(negotiate(["v9.channel.k8s.io"]), None);
        assert_eq!(negotiate([]), Some((None, Version::V1)));
    }
}
