//! A WebSocket client of Kubernetes' remotecommand protocol, as client-go's (and so crictl's and
//! kubectl's) speaks it: connect to a streaming URL from Exec or Attach, send stdin, resize and
//! close-stdin messages, and collect stdout, stderr and the error channel's status.

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};

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

/// What a session sent until the server closed it.
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
        let ws_url = url.replacen("http://", "ws://", 1);
        let mut request = ws_url.as_str().into_client_request()?;
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        if !protocols.is_empty() {
            let offered = HeaderValue::from_str(&protocols.join(", "))
                .map_err(|e| Error::HttpFormat(e.into()))?;
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", offered);
        }
        let tcp = TcpStream::connect(authority).await?;
        let (socket, response) = tokio_tungstenite::client_async(request, tcp).await?;
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(RemoteCommand { socket, protocol })
    }

    fn base64(&self) -> bool {
        self.protocol.contains("base64")
    }

    /// Sends `data` on `channel`.
    pub async fn send(&mut self, channel: u8, data: &[u8]) -> Result<(), Error> {
        let message = if self.base64() {
            let mut text = String::from(char::from(b'0' + channel));
            base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
            Message::text(text)
        } else {
            let mut bytes = vec![channel];
            bytes.extend_from_slice(data);
            Message::binary(bytes)
        };
        self.socket.send(message).await
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
                Message::Binary(bytes) => {
                    let (&channel, data) = bytes.split_first()?;
                    return Some((channel, data.to_vec()));
                }
                Message::Text(text) => {
                    let (&digit, data) = text.as_bytes().split_first()?;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .ok()?;
                    return Some((digit - b'0', data));
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
