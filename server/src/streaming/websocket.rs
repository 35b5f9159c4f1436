//! Kubernetes' remotecommand protocol over WebSocket, the server side: the subprotocols, the
//! channel byte prefixed to every message, and the status sent on the error channel.
//!
//! Each message carries one channel's data: `[channel][data]` in a binary message, or with a
//! `base64.` subprotocol a text message `<channel digit><base64 of data>`. Channels:
//! [`STDIN`], [`STDOUT`], [`STDERR`], [`ERROR`] (a metav1.Status in JSON from v4 on, plain text
//! before), [`RESIZE`] (`{"Width":..,"Height":..}`), and with v5 [`CLOSE`]: `[255, channel]`
//! closes that stream (the client's stdin).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::remotecommand::{CLOSE, ERROR, Ending, RESIZE, STDIN, Version};
use super::session::{FromClient, RemoteClient};

/// How a session that ended closes its WebSocket: client-go takes any other close code, or none,
/// for a broken connection.
pub const NORMAL_CLOSURE: CloseFrame = CloseFrame {
    code: CloseCode::Normal,
    reason: Utf8Bytes::from_static(""),
};

/// The subprotocols served, as client-go names them.
const PROTOCOLS: [(&str, Protocol); 5] = [
    (
        "v5.channel.k8s.io",
        Protocol {
            version: Version::V5,
            base64: false,
        },
    ),
    (
        "v4.channel.k8s.io",
        Protocol {
            version: Version::V4,
            base64: false,
        },
    ),
    (
        "v4.base64.channel.k8s.io",
        Protocol {
            version: Version::V4,
            base64: true,
        },
    ),
    (
        "channel.k8s.io",
        Protocol {
            version: Version::V1,
            base64: false,
        },
    ),
    (
        "base64.channel.k8s.io",
        Protocol {
            version: Version::V1,
            base64: true,
        },
    ),
];

/// A negotiated subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    pub version: Version,
    /// Text messages with base64 data instead of binary ones.
    pub base64: bool,
}

/// Picks the first of the client's subprotocols (the `Sec-WebSocket-Protocol` values, comma
/// separated) that is served, with its name; None if the client offered only others. A client
/// that offers none gets `channel.k8s.io` (no name to answer with).
pub fn negotiate<'a>(
    offered: impl IntoIterator<Item = &'a str>,
) -> Option<(Option<&'static str>, Protocol)> {
    pick(offered, &PROTOCOLS, PROTOCOLS[3].1)
}

/// The first of the offered names in `served`, or `default` when none is offered at all.
fn pick<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    served: &[(&'static str, Protocol)],
    default: Protocol,
) -> Option<(Option<&'static str>, Protocol)> {
    let mut any = false;
    for name in super::offered_names(offered) {
        any = true;
        if let Some((name, protocol)) = served.iter().find(|(served, _)| *served == name) {
            return Some((Some(name), *protocol));
        }
    }
    (!any).then_some((None, default))
}

/// The subprotocols of kubelet's WebSocket port-forward, as [`negotiate`] picks them: binary
/// channels, or base64 text; none offered means binary.
pub fn negotiate_port_forward<'a>(
    offered: impl IntoIterator<Item = &'a str>,
) -> Option<(Option<&'static str>, Protocol)> {
    // `v4.channel.k8s.io` and `v4.base64.channel.k8s.io`.
    let port_forward = &PROTOCOLS[1..3];
    pick(offered, port_forward, port_forward[0].1)
}

/// A message the client sent, decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct ChannelMessage {
    pub channel: u8,
    pub data: Vec<u8>,
}

impl Protocol {
    /// The message carrying `data` on `channel`.
    pub fn encode(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            text.push(char::from(b'0' + channel));
            BASE64.encode_string(data, &mut text);
            Message::text(text)
        } else {
            let mut bytes = Vec::with_capacity(1 + data.len());
            bytes.push(channel);
            bytes.extend_from_slice(data);
            Message::binary(bytes)
        }
    }

    /// The channel and data of a data message from the client; None for an empty message or
    /// one that is not of this protocol's kind.
    pub fn decode(self, message: &Message) -> Option<ChannelMessage> {
        match (message, self.base64) {
            (Message::Binary(bytes), false) => {
                let (&channel, data) = bytes.split_first()?;
                Some(ChannelMessage {
                    channel,
                    data: data.to_vec(),
                })
            }
            (Message::Text(text), true) => {
                let (&digit, data) = text.as_bytes().split_first()?;
                let channel = digit.checked_sub(b'0')?;
                Some(ChannelMessage {
                    channel,
                    data: BASE64.decode(data).ok()?,
                })
            }
            _ => None,
        }
    }
}

/// The client's end of a remotecommand session over WebSocket.
pub struct WebSocketClient<S> {
    socket: WebSocketStream<S>,
    protocol: Protocol,
}

impl<S> WebSocketClient<S> {
    /// A session over `socket`, speaking `protocol`.
    pub fn new(socket: WebSocketStream<S>, protocol: Protocol) -> Self {
        WebSocketClient { socket, protocol }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RemoteClient for WebSocketClient<S> {
    async fn next(&mut self) -> FromClient {
        let message = match self.socket.next().await {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "streaming client connection");
                return FromClient::Gone;
            }
            None => return FromClient::Gone,
        };
        if let Message::Close(_) = message {
            return FromClient::Gone;
        }
        let Some(ChannelMessage { channel, data }) = self.protocol.decode(&message) else {
            return FromClient::Nothing;
        };
        match channel {
            STDIN => FromClient::Stdin(data),
            RESIZE => FromClient::resize(&data),
            CLOSE if self.protocol.version >= Version::V5 && data == [STDIN] => {
                FromClient::CloseStdin
            }
            _ => FromClient::Nothing,
        }
    }

    async fn send(&mut self, channel: u8, data: &[u8]) -> bool {
        self.socket
            .send(self.protocol.encode(channel, data))
            .await
            .is_ok()
    }

    async fn finish(mut self, ending: &Ending) {
        if let Some(status) = self.protocol.version.status(ending) {
            self.send(ERROR, status.as_bytes()).await;
        }
        if let Err(e) = self.socket.close(Some(NORMAL_CLOSURE)).await {
            tracing::debug!(error = %e, "closing the streaming connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streaming::remotecommand::{STDERR, STDOUT};

    #[test]
    fn the_clients_first_served_protocol_is_chosen() {
        let (name, protocol) = negotiate(["v5.channel.k8s.io, v4.channel.k8s.io"]).unwrap();
        assert_eq!(name, Some("v5.channel.k8s.io"));
        assert_eq!(protocol.version, Version::V5);
        let (name, protocol) = negotiate(["nope", "v4.base64.channel.k8s.io"]).unwrap();
        assert_eq!(name, Some("v4.base64.channel.k8s.io"));
        assert!(protocol.base64);
        assert_eq!(negotiate(["spdy/3.1"]), None);
        let (name, protocol) = negotiate([]).unwrap();
        assert_eq!(name, None);
        assert_eq!(protocol.version, Version::V1);
    }

    #[test]
    fn binary_and_base64_messages_round_trip() {
        for base64 in [false, true] {
            let protocol = Protocol {
                version: Version::V4,
                base64,
            };
            let message = protocol.encode(STDERR, b"hi\n");
            assert_eq!(
                protocol.decode(&message),
                Some(ChannelMessage {
                    channel: STDERR,
                    data: b"hi\n".to_vec()
                })
            );
        }
        let binary = Protocol {
            version: Version::V5,
            base64: false,
        };
        assert_eq!(binary.encode(STDOUT, b"x"), Message::binary(vec![1, b'x']));
        assert_eq!(binary.decode(&Message::binary(Vec::new())), None);
    }
}
