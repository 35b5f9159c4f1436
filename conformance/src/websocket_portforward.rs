//! A WebSocket client of kubelet's port-forward protocol: the pod ports in the query
//! (`?port=<p>`, once per port), subprotocol `v4.channel.k8s.io` (binary) or
//! `v4.base64.channel.k8s.io` (base64 text); for the i-th port, channel 2i carries the data and
//! channel 2i+1 the server's error text, and the server's first bytes on each channel are the
//! port, 2 bytes little-endian. The protocol has no half-close: the session ends when the server
//! closes the WebSocket, or when the client has shut down (or dropped) every connection.

use anyhow::Context as _;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::portforward::ForwardedConnection;
use crate::websocket_channels;

/// Binary channel messages.
pub const V4_BINARY: &str = "v4.channel.k8s.io";
/// Base64 text channel messages.
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";

/// What each direction of a connection buffers between the caller and the WebSocket.
const BUFFER: usize = 64 * 1024;
/// The most data in one message the client sends.
const MESSAGE_DATA: usize = 32 * 1024;
/// The most error text kept per port.
const MAX_ERROR_TEXT: usize = 64 * 1024;

/// An open port-forward session: one connection per port asked for.
#[derive(Debug)]
pub struct WebSocketPortForward {
    /// The subprotocol the server chose.
    pub protocol: String,
    /// The connections, in the order of the ports asked for.
    pub connections: Vec<ForwardedConnection>,
    /// The tasks that own the WebSocket's two halves.
    socket_tasks: [AbortHandle; 2],
}

impl WebSocketPortForward {
    /// Opens `url` (`http://host:port/portforward/<token>`) for `ports`, offering `protocol`.
    pub async fn connect(url: &str, ports: &[u16], protocol: &str) -> anyhow::Result<Self> {
        let query = ports
            .iter()
            .map(|port| format!("port={port}"))
            .collect::<Vec<_>>()
            .join("&");
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}{query}");
        let (socket, protocol) = websocket_channels::connect(&url, &[protocol])
            .await
            .with_context(|| format!("open {url} as a WebSocket"))?;
        let base64 = websocket_channels::is_base64(&protocol);
        let (outgoing_tx, outgoing_rx) = mpsc::channel(16);
        let mut connections = Vec::with_capacity(ports.len());
        let mut channels = Vec::with_capacity(ports.len());
        for (index, &port) in ports.iter().enumerate() {
            let (caller_end, our_end) = tokio::io::duplex(BUFFER);
            let (from_caller, to_caller) = tokio::io::split(our_end);
            let data_channel = channel_of(index, 0).context("too many ports")?;
            tokio::spawn(send_data(
                from_caller,
                data_channel,
                base64,
                outgoing_tx.clone(),
            ));
            let (error_tx, error_rx) = oneshot::channel();
            channels.push(PortChannels {
                port,
                to_caller,
                error_text: Vec::new(),
                error_tx,
                data_prefix: Vec::new(),
                error_prefix: Vec::new(),
            });
            let error = async move { Ok(error_rx.await.unwrap_or_default()) };
            connections.push(ForwardedConnection::new(port, caller_end, error.boxed()));
        }
        drop(outgoing_tx);
        let (sink, stream) = socket.split();
        let sending = tokio::spawn(send_messages(sink, outgoing_rx));
        let receiving = tokio::spawn(receive_messages(stream, channels));
        Ok(WebSocketPortForward {
            protocol,
            connections,
            socket_tasks: [sending.abort_handle(), receiving.abort_handle()],
        })
    }

    /// Goes away abruptly, as a client whose connection breaks: the TCP connection is closed
    /// without a close message, whatever the connections still have to send or receive.
    pub fn abort(self) {
        for task in self.socket_tasks {
            task.abort();
        }
    }
}

/// The channel number of a port's data (`kind` 0) or error (`kind` 1) channel.
fn channel_of(index: usize, kind: usize) -> Option<u8> {
    u8::try_from(index * 2 + kind).ok()
}

/// The receiving side of one port's two channels.
struct PortChannels {
    port: u16,
    to_caller: WriteHalf<DuplexStream>,
    error_text: Vec<u8>,
    error_tx: oneshot::Sender<Vec<u8>>,
    /// The port prefix read so far on each channel, up to its 2 bytes.
    data_prefix: Vec<u8>,
    error_prefix: Vec<u8>,
}

impl PortChannels {
    /// Takes what is left of the port prefix off `data`; an error if the prefix is not the port.
    fn strip_prefix<'a>(
        prefix: &mut Vec<u8>,
        port: u16,
        channel: u8,
        data: &'a [u8],
    ) -> Result<&'a [u8], String> {
        let wanted = 2usize.saturating_sub(prefix.len()).min(data.len());
        prefix.extend_from_slice(&data[..wanted]);
        if prefix.len() == 2 && prefix[..] != port.to_le_bytes() {
            return Err(format!(
                "channel {channel} began with {prefix:?}, not port {port} in little-endian"
            ));
        }
        Ok(&data[wanted..])
    }
}

/// Sends what the caller writes to one port as messages on `channel`, until the caller shuts
/// down its writing or the session ends.
async fn send_data(
    mut from_caller: ReadHalf<DuplexStream>,
    channel: u8,
    base64: bool,
    outgoing: mpsc::Sender<Message>,
) {
    let mut buf = vec![0; MESSAGE_DATA];
    loop {
        let n = match from_caller.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let message = websocket_channels::encode(base64, channel, &buf[..n]);
        if outgoing.send(message).await.is_err() {
            return;
        }
    }
}

/// Writes the ports' messages to the WebSocket; closes it once every port's sender is done.
async fn send_messages(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>,
    mut outgoing: mpsc::Receiver<Message>,
) {
    while let Some(message) = outgoing.recv().await {
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// Hands each port's data to its caller and keeps its error text, until the server closes;
/// then ends every caller's reading and delivers the error texts. A caller that does not read
/// holds up every port of the session (the WebSocket is read no further meanwhile). Data that does not start with
/// the port ends the session with a protocol error as that port's error text.
async fn receive_messages(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<TcpStream>>,
    mut channels: Vec<PortChannels>,
) {
    let mut violation: Option<(usize, String)> = None;
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Close(_) = message {
            break;
        }
        let Some((channel, data)) = websocket_channels::decode(&message) else {
            continue;
        };
        let index = usize::from(channel / 2);
        let Some(port) = channels.get_mut(index) else {
            continue;
        };
        let is_data = channel % 2 == 0;
        let prefix = if is_data {
            &mut port.data_prefix
        } else {
            &mut port.error_prefix
        };
        let payload = match PortChannels::strip_prefix(prefix, port.port, channel, &data) {
            Ok(payload) => payload,
            Err(message) => {
                violation = Some((index, message));
                break;
            }
        };
        if is_data {
            // A caller that went away only loses its data.
            let _ = port.to_caller.write_all(payload).await;
        } else {
            let room = MAX_ERROR_TEXT.saturating_sub(port.error_text.len());
            port.error_text
                .extend_from_slice(&payload[..payload.len().min(room)]);
        }
    }
    for (index, mut port) in channels.into_iter().enumerate() {
        let _ = port.to_caller.shutdown().await;
        let text = match violation.take_if(|(broken, _)| *broken == index) {
            Some((_, message)) => message.into_bytes(),
            None => port.error_text,
        };
        let _ = port.error_tx.send(text);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    #[tokio::test]
    async fn ports_map_to_channel_pairs_after_their_port_prefix() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/portforward/token",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // The handshake's callback type, as tungstenite fixes it.
            #[allow(clippy::result_large_err)]
            let check = |request: &Request, mut response: Response| {
                assert_eq!(
                    request.uri().query(),
                    Some("port=8080&port=9000"),
                    "{:?}",
                    request.uri()
                );
                assert_eq!(
                    request.headers()["Sec-WebSocket-Protocol"],
                    V4_BASE64,
                    "{:?}",
                    request.headers()
                );
                response.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_static(V4_BASE64),
                );
                Ok(response)
            };
            let mut socket = tokio_tungstenite::accept_hdr_async(tcp, check)
                .await
                .unwrap();
            for (channel, port) in [(0, 8080u16), (1, 8080), (2, 9000), (3, 9000)] {
                let prefix = websocket_channels::encode(true, channel, &port.to_le_bytes());
                socket.send(prefix).await.unwrap();
            }
            let message = socket.next().await.unwrap().unwrap();
            assert_eq!(
                websocket_channels::decode(&message),
                Some((2, b"ping".to_vec()))
            );
            for (channel, data) in [(2, &b"pong"[..]), (1, b"refused")] {
                let message = websocket_channels::encode(true, channel, data);
                socket.send(message).await.unwrap();
            }
            socket.close(None).await.unwrap();
        });
        let forward = WebSocketPortForward::connect(&url, &[8080, 9000], V4_BASE64)
            .await
            .unwrap();
        assert_eq!(forward.protocol, V4_BASE64);
        let mut connections = forward.connections.into_iter();
        let (mut first, mut second) = (connections.next().unwrap(), connections.next().unwrap());
        second.write_all(b"ping").await.unwrap();
        let mut reply = Vec::new();
        second.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"pong");
        let mut nothing = Vec::new();
        first.read_to_end(&mut nothing).await.unwrap();
        assert!(nothing.is_empty());
        assert_eq!(
            first.error_message().await.unwrap().as_deref(),
            Some("refused")
        );
        assert_eq!(second.error_message().await.unwrap(), None);
        server.await.unwrap();
    }
}
