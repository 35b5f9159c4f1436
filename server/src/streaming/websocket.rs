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
use tokio_tungstenite::tungstenite::Message;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: the client closes one of its streams.
pub const CLOSE: u8 = 255;

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

/// The remotecommand version a subprotocol speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `channel.k8s.io`: a plain-text error, no close.
    V1,
    /// `v4.`: the error channel carries a metav1.Status.
    V4,
    /// `v5.`: v4 and the close channel.
    V5,
}

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
    let mut any = false;
    for name in offered
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        any = true;
        if let Some((served, protocol)) = PROTOCOLS.iter().find(|(served, _)| *served == name) {
            return Some((Some(served), *protocol));
        }
    }
    (!any).then_some((None, PROTOCOLS[3].1))
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
                let channel = digit.checked_sub(b'0').filter(|c| *c <= RESIZE)?;
                Some(ChannelMessage {
                    channel,
                    data: BASE64.decode(data).ok()?,
                })
            }
            _ => None,
        }
    }

    /// What the error channel says when the command or attach session ended: nothing more
    /// than success (v4+ only), or why it failed. None: send nothing.
    pub fn status(self, ending: &Ending) -> Option<String> {
        match (self.version, ending) {
            (Version::V1, Ending::Exited(0)) => None,
            (Version::V1, Ending::Exited(code)) => Some(format!(
                "command terminated with non-zero exit code: exit code {code}"
            )),
            (Version::V1, Ending::Failed(message)) => Some(message.clone()),
            (_, Ending::Exited(0)) => {
                Some(serde_json::json!({"metadata": {}, "status": "Success"}).to_string())
            }
            (_, Ending::Exited(code)) => Some(
                serde_json::json!({
                    "metadata": {},
                    "status": "Failure",
                    "message": format!(
                        "command terminated with non-zero exit code: exit code {code}"
                    ),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
                })
                .to_string(),
            ),
            (_, Ending::Failed(message)) => Some(
                serde_json::json!({
                    "metadata": {},
                    "status": "Failure",
                    "message": message,
                })
                .to_string(),
            ),
        }
    }
}

/// How a stream session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The command (or the attached container) ended with this exit code.
    Exited(i32),
    /// The session could not run or went wrong.
    Failed(String),
}

/// A terminal size from a resize message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Resize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_error_channel_tells_the_exit_code() {
        let v4 = Protocol {
            version: Version::V4,
            base64: false,
        };
        let success: serde_json::Value =
            serde_json::from_str(&v4.status(&Ending::Exited(0)).unwrap()).unwrap();
        assert_eq!(
            success,
            serde_json::json!({"metadata": {}, "status": "Success"})
        );
        let failure: serde_json::Value =
            serde_json::from_str(&v4.status(&Ending::Exited(3)).unwrap()).unwrap();
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "3");
        let v1 = Protocol {
            version: Version::V1,
            base64: false,
        };
        assert_eq!(v1.status(&Ending::Exited(0)), None);
    }

    #[test]
    fn resize_is_kubernetes_json() {
        let size: Resize = serde_json::from_str(r#"{"Width":80,"Height":24}"#).unwrap();
        assert_eq!(
            size,
            Resize {
                width: 80,
                height: 24
            }
        );
    }
}
