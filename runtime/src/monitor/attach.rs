//! The monitor's side of one attach connection: output frames queued out to the client, request
//! frames read from it. Non-blocking: a client that does not keep up is dropped, never waited for.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use super::attach_protocol::{
    FrameDecoder, FrameError, FrameKind, HEADER_LEN, MAX_PAYLOAD, TerminalSize, encode,
};

/// The most output queued for one client; past it the client is dropped, so a slow reader costs
/// neither the container nor the log anything.
pub(crate) const MAX_QUEUED_OUTPUT: usize = 1024 * 1024;

/// The queue capacity an idle client keeps: one largest frame.
const KEPT_QUEUE_CAPACITY: usize = HEADER_LEN + MAX_PAYLOAD;

/// What a client asks of the container.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    Stdin(&'a [u8]),
    Resize(TerminalSize),
    CloseStdin,
}

/// One connected attach client.
pub(crate) struct AttachClient {
    stream: UnixStream,
    decoder: FrameDecoder,
    /// Encoded frames not yet written; `queue[sent..]` is still to go.
    queue: Vec<u8>,
    sent: usize,
    /// The client wrote to stdin (for `--stdin-once`).
    pub(crate) wrote_stdin: bool,
    /// The connection is over (EOF, error, protocol violation or too slow); drop the client.
    pub(crate) closed: bool,
}

impl AttachClient {
    /// Takes an accepted connection, made non-blocking.
    pub(crate) fn new(stream: UnixStream) -> std::io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(AttachClient {
            stream,
            decoder: FrameDecoder::new(),
            queue: Vec::new(),
            sent: 0,
            wrote_stdin: false,
            closed: false,
        })
    }

    pub(crate) fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Whether output is queued, waiting for the socket to take it.
    pub(crate) fn has_queued_output(&self) -> bool {
        self.sent < self.queue.len()
    }

    /// Queues `data` (at most one frame's payload) as a frame of `kind` and sends what the
    /// socket takes now. Drops the client if its queue would pass [`MAX_QUEUED_OUTPUT`].
    pub(crate) fn send_output(&mut self, kind: FrameKind, data: &[u8]) {
        if self.closed {
            return;
        }
        if self.queue.len() - self.sent + data.len() > MAX_QUEUED_OUTPUT {
            self.closed = true;
            return;
        }
        if self.sent > 0 && self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
        }
        if encode(kind, data, &mut self.queue).is_err() {
            self.closed = true;
            return;
        }
        self.flush();
    }

    /// Writes as much queued output as the socket takes without blocking.
    pub(crate) fn flush(&mut self) {
        while self.has_queued_output() && !self.closed {
            match self.stream.write(&self.queue[self.sent..]) {
                Ok(0) => self.closed = true,
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(_) => self.closed = true,
            }
        }
        if self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
            // A burst for a slow client leaves no lasting footprint.
            self.queue.shrink_to(KEPT_QUEUE_CAPACITY);
        } else if self.sent > MAX_QUEUED_OUTPUT / 2 {
            // Keep the buffer from creeping forward: move the unsent rest to its start.
            self.queue.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Reads what the socket has (once) and hands each complete frame to `handle`. EOF, an error
    /// or a malformed frame closes the client.
    pub(crate) fn read_requests(&mut self, mut handle: impl FnMut(Request<'_>)) {
        if self.closed {
            return;
        }
        match self.stream.read(self.decoder.unfilled()) {
            Ok(0) => {
                self.closed = true;
                return;
            }
            Ok(n) => self.decoder.filled(n),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return;
            }
            Err(_) => {
                self.closed = true;
                return;
            }
        }
        loop {
            let request = match self.decoder.next_frame() {
                Ok(None) => return,
                Ok(Some(frame)) => match frame.kind {
                    FrameKind::Stdin => Ok(Request::Stdin(frame.payload)),
                    FrameKind::Resize => TerminalSize::decode(frame.payload).map(Request::Resize),
                    FrameKind::CloseStdin => Ok(Request::CloseStdin),
                    // Output flows the other way only.
                    FrameKind::Stdout | FrameKind::Stderr => {
                        Err(FrameError::UnknownKind(frame.kind.byte()))
                    }
                },
                Err(err) => Err(err),
            };
            match request {
                Ok(request) => {
                    if matches!(request, Request::Stdin(_)) {
                        self.wrote_stdin = true;
                    }
                    handle(request);
                }
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::attach_protocol::write_frames;

    fn pair() -> (AttachClient, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (AttachClient::new(ours).unwrap(), theirs)
    }

    #[test]
    fn output_arrives_as_frames() {
        let (mut client, mut peer) = pair();
        client.send_output(FrameKind::Stdout, b"out");
        client.send_output(FrameKind::Stderr, b"err");
        drop(client);
        let mut wire = Vec::new();
        peer.read_to_end(&mut wire).unwrap();
        assert_eq!(wire, b"\x01\0\0\0\x03out\x02\0\0\0\x03err");
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_past_the_bound() {
        let (mut client, _peer) = pair();
        let chunk = vec![b'x'; MAX_PAYLOAD];
        let mut frames = 0;
        while !client.closed {
            client.send_output(FrameKind::Stdout, &chunk);
            frames += 1;
            assert!(frames < 1000, "never dropped");
        }
        // The socket buffer took some, the queue the bound's worth.
        assert!(frames * MAX_PAYLOAD > MAX_QUEUED_OUTPUT);
        assert!(client.queue.len() - client.sent <= MAX_QUEUED_OUTPUT + 5 * frames);
    }

    #[test]
    fn requests_are_decoded_and_stdin_is_noted() {
        let (mut client, mut peer) = pair();
        write_frames(&mut peer, FrameKind::Stdin, b"hi\n").unwrap();
        write_frames(&mut peer, FrameKind::Resize, &[0, 40, 0, 120]).unwrap();
        write_frames(&mut peer, FrameKind::CloseStdin, b"").unwrap();
        let mut seen = Vec::new();
        client.read_requests(|request| seen.push(format!("{request:?}")));
        assert_eq!(
            seen,
            [
                "Stdin([104, 105, 10])",
                "Resize(TerminalSize { rows: 40, cols: 120 })",
                "CloseStdin"
            ]
        );
        assert!(client.wrote_stdin);
        assert!(!client.closed);
        drop(peer);
        client.read_requests(|_| panic!("no request after EOF"));
        assert!(client.closed);
    }

    #[test]
    fn an_output_frame_from_the_client_closes_it() {
        let (mut client, mut peer) = pair();
        write_frames(&mut peer, FrameKind::Stdout, b"no").unwrap();
        client.read_requests(|_| panic!("not a request"));
        assert!(client.closed);
    }
}
