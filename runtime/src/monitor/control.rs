//! The control socket `<dir>/ctl`: one request line per connection, one reply line.
//!
//! Requests: `reopen` (reopen the log file at its path). Replies: `ok` or `error <message>`, each
//! ending in `\n`; an unknown request gets `error unknown command`. A request line longer than
//! [`MAX_REQUEST_LINE`] bytes ends the connection without a reply.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

/// The longest request line, its `\n` included.
pub(crate) const MAX_REQUEST_LINE: usize = 256;

/// The request of the daemon's `reopen_log`.
pub(crate) const REOPEN: &str = "reopen";

/// A request to the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Reopen the log file (kubelet rotated it).
    ReopenLog,
    Unknown,
}

impl Command {
    fn parse(line: &[u8]) -> Command {
        match line {
            line if line == REOPEN.as_bytes() => Command::ReopenLog,
            _ => Command::Unknown,
        }
    }
}

/// The reply line to a request: `ok\n`, or `error <message>\n` with the message on one line.
pub(crate) fn reply_line(result: &Result<(), String>) -> String {
    match result {
        Ok(()) => "ok\n".to_string(),
        Err(message) => format!("error {}\n", message.replace(['\n', '\r'], " ")),
    }
}

/// One control connection, reading its request line into a fixed buffer.
pub(crate) struct ControlClient {
    stream: UnixStream,
    line: [u8; MAX_REQUEST_LINE],
    len: usize,
    /// The connection is over; drop it.
    pub(crate) closed: bool,
}

impl ControlClient {
    /// Takes an accepted connection, made non-blocking.
    pub(crate) fn new(stream: UnixStream) -> std::io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(ControlClient {
            stream,
            line: [0; MAX_REQUEST_LINE],
            len: 0,
            closed: false,
        })
    }

    pub(crate) fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Reads what the socket has; returns the request once its line is complete. EOF before the
    /// newline, an error or a line over the bound closes the connection.
    pub(crate) fn read_command(&mut self) -> Option<Command> {
        if self.closed {
            return None;
        }
        match self.stream.read(&mut self.line[self.len..]) {
            Ok(0) => {
                self.closed = true;
                None
            }
            Ok(n) => {
                let start = self.len;
                self.len += n;
                let newline = self.line[start..self.len].iter().position(|&b| b == b'\n');
                match newline {
                    Some(at) => Some(Command::parse(&self.line[..start + at])),
                    None => {
                        if self.len == MAX_REQUEST_LINE {
                            self.closed = true;
                        }
                        None
                    }
                }
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                None
            }
            Err(_) => {
                self.closed = true;
                None
            }
        }
    }

    /// Sends the reply line (a few bytes, which an empty socket buffer takes at once) and ends
    /// the connection.
    pub(crate) fn reply(&mut self, result: &Result<(), String>) {
        let _ = self.stream.write_all(reply_line(result).as_bytes());
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (ControlClient, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (ControlClient::new(ours).unwrap(), theirs)
    }

    #[test]
    fn a_request_line_split_across_writes_is_one_command() {
        let (mut client, mut peer) = pair();
        peer.write_all(b"reo").unwrap();
        assert_eq!(client.read_command(), None);
        assert_eq!(client.read_command(), None);
        peer.write_all(b"pen\n").unwrap();
        assert_eq!(client.read_command(), Some(Command::ReopenLog));
        client.reply(&Ok(()));
        assert!(client.closed);
        drop(client);
        let mut reply = String::new();
        peer.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "ok\n");
    }

    #[test]
    fn unknown_requests_are_unknown() {
        let (mut client, mut peer) = pair();
        peer.write_all(b"reopen now\n").unwrap();
        assert_eq!(client.read_command(), Some(Command::Unknown));
    }

    #[test]
    fn a_line_over_the_bound_closes_the_connection() {
        let (mut client, mut peer) = pair();
        peer.write_all(&[b'a'; MAX_REQUEST_LINE + 10]).unwrap();
        assert_eq!(client.read_command(), None);
        assert!(client.closed);
    }

    #[test]
    fn eof_before_the_newline_closes_the_connection() {
        let (mut client, mut peer) = pair();
        peer.write_all(b"reopen").unwrap();
        drop(peer);
        assert_eq!(client.read_command(), None);
        assert!(!client.closed);
        assert_eq!(client.read_command(), None);
        assert!(client.closed);
    }

    #[test]
    fn error_replies_stay_on_one_line() {
        let line = reply_line(&Err("open /x\ny: EACCES".to_string()));
        assert_eq!(line, "error open /x y: EACCES\n");
    }
}
