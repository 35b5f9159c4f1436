//! The WebSocket side of Kubernetes' channel protocols, as client-go and kubelet speak them for
//! remotecommand and port-forward: the handshake offering subprotocols, and channel messages
//! (binary: the channel's byte, then the data; `base64.` protocols: text, the channel as an
//! ASCII digit, then the data in base64).

use base64::Engine as _;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};

/// Opens `url` (`http://host:port/...`) as a WebSocket offering `protocols` in order of
/// preference; the socket and the subprotocol the server chose (empty when none).
/// A refused upgrade is `Error::Http` with the server's response.
pub async fn connect(
    url: &str,
    protocols: &[&str],
) -> Result<(WebSocketStream<TcpStream>, String), Error> {
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
    Ok((socket, protocol))
}

/// Whether `protocol` sends its channel messages as base64 text.
pub fn is_base64(protocol: &str) -> bool {
    protocol.contains("base64")
}

/// The message carrying `data` on `channel`.
pub fn encode(base64: bool, channel: u8, data: &[u8]) -> Message {
    if base64 {
        let mut text = String::from(char::from(b'0' + channel));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
        Message::text(text)
    } else {
        let mut bytes = Vec::with_capacity(1 + data.len());
        bytes.push(channel);
        bytes.extend_from_slice(data);
        Message::binary(bytes)
    }
}

/// The channel and data of a binary or text message; `None` for other messages and for
/// malformed ones (empty, bad base64).
pub fn decode(message: &Message) -> Option<(u8, Vec<u8>)> {
    match message {
        Message::Binary(bytes) => {
            let (&channel, data) = bytes.split_first()?;
            Some((channel, data.to_vec()))
        }
        Message::Text(text) => {
            let (&digit, data) = text.as_bytes().split_first()?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()?;
            Some((digit.checked_sub(b'0')?, data))
        }
        _ => None,
    }
}
