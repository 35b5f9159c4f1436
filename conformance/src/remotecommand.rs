//! A WebSocket client of Kubernetes' remotecommand protocol, as client-go's (and so crictl's and
//! kubectl's) speaks it: connect to a streaming URL from Exec or Attach, send stdin, resize and
//! close-stdin messages, and collect stdout, stderr and the error channel's status.

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::websocket_channels;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// An open remotecommand connection.
#[derive(Debug)]
pub struct RemoteCommand {
    socket: WebSocketStream<TcpStream>,
    /// The subprotocol the server chose.
    pub protocol: String,
}

/// What a session sent until the server closed it; the SPDY client
/// ([`crate::spdy_remotecommand`]) collects the same.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The error channel's message (a metav1.Status in JSON from v4 on).
    pub error: Option<String>,
}

impl Output {
    /// The error channel's status, parsed.
    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.error.as_deref()?).ok()
    }

    /// The exit code the status tells: 0 for success.
    pub fn exit_code(&self) -> Option<i32> {
        let status = self.status()?;
        if status["status"] == "Success" {
            return Some(0);
        }
        status["details"]["causes"]
            .as_array()?
            .iter()
            .find(|cause| cause["reason"] == "ExitCode")?["message"]
            .as_str()?
            .parse()
            .ok()
    }
}

impl RemoteCommand {
    /// Opens `url` (`http://host:port/...`) offering `protocols` in order of preference.
    /// A refused upgrade is `Error::Http` with the server's response.
    pub async fn connect(url: &str, protocols: &[&str]) -> Result<Self, Error> {
        let (socket, protocol) = websocket_channels::connect(url, protocols).await?;
        Ok(RemoteCommand { socket, protocol })
    }

    /// Sends `data` on `channel`.
    pub async fn send(&mut self, channel: u8, data: &[u8]) -> Result<(), Error> {
        let base64 = websocket_channels::is_base64(&self.protocol);
        self.socket
            .send(websocket_channels::encode(base64, channel, data))
            .await
    }

    /// Sends stdin data.
    pub async fn stdin(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(STDIN, data).await
    }

    /// Closes stdin (v5).
    pub async fn close_stdin(&mut self) -> Result<(), Error> {
        let message = Message::binary(vec![CLOSE, STDIN]);
        self.socket.send(message).await
    }

    /// Tells the terminal's new size.
    pub async fn resize(&mut self, width: u16, height: u16) -> Result<(), Error> {
        let json = serde_json::json!({"Width": width, "Height": height}).to_string();
        self.send(RESIZE, json.as_bytes()).await
    }

    /// The next data message: its channel and data; None once the server closed.
    pub async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let message = self.socket.next().await?.ok()?;
            match message {
                Message::Binary(_) | Message::Text(_) => {
                    return websocket_channels::decode(&message);
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until the server closes, collecting what each channel said.
    pub async fn collect(mut self) -> Output {
        let mut output = Output::default();
        while let Some((channel, data)) = self.next().await {
            match channel {
                STDOUT => output.stdout.extend_from_slice(&data),
                STDERR => output.stderr.extend_from_slice(&data),
                ERROR => {
                    output
                        .error
                        .get_or_insert_with(String::new)
                        .push_str(&String::from_utf8_lossy(&data));
                }
                _ => {}
            }
        }
        output
    }
}
