//! Kubernetes' remotecommand protocol, what both transports share: the stream numbers, the
//! protocol versions, the terminal size messages, and what the error stream says when a session
//! ends.
//!
//! Over WebSocket the streams are channels (the number prefixed to each message, see
//! [`websocket`](super::websocket)); over SPDY they are SPDY streams named by a `streamType`
//! header (see [`spdy_remotecommand`](super::spdy_remotecommand)).

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// WebSocket v5: the client closes one of its streams.
pub const CLOSE: u8 = 255;

/// The remotecommand version a subprotocol speaks, as far as the server's behaviour differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `channel.k8s.io`, `v2.` (SPDY): a plain-text error, no resize.
    V1,
    /// `v3.` (SPDY): v1 and a resize stream.
    V3,
    /// `v4.`: the error stream carries a metav1.Status in JSON.
    V4,
    /// `v5.` (WebSocket): v4 and the close channel.
    V5,
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

impl Version {
    /// Whether the client may send terminal sizes.
    pub fn resizes(self) -> bool {
        self >= Version::V3
    }

    /// What the error stream says when the session ended: nothing more than success (v4+
    /// only), or why it failed. None: send nothing.
    pub fn status(self, ending: &Ending) -> Option<String> {
        if self < Version::V4 {
            return match ending {
                Ending::Exited(0) => None,
                Ending::Exited(code) => Some(format!(
                    "command terminated with non-zero exit code: exit code {code}"
                )),
                Ending::Failed(message) => Some(message.clone()),
            };
        }
        let status = match ending {
            Ending::Exited(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
            Ending::Exited(code) => serde_json::json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: exit code {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Ending::Failed(message) => serde_json::json!({
                "metadata": {},
                "status": "Failure",
                "message": message,
            }),
        };
        Some(status.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_stream_tells_the_exit_code() {
        let success: serde_json::Value =
            serde_json::from_str(&Version::V4.status(&Ending::Exited(0)).unwrap()).unwrap();
        assert_eq!(
            success,
            serde_json::json!({"metadata": {}, "status": "Success"})
        );
        let failure: serde_json::Value =
            serde_json::from_str(&Version::V5.status(&Ending::Exited(3)).unwrap()).unwrap();
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "3");
        assert_eq!(Version::V1.status(&Ending::Exited(0)), None);
        assert_eq!(
            Version::V3.status(&Ending::Exited(2)).unwrap(),
            "command terminated with non-zero exit code: exit code 2"
        );
        assert_eq!(
            Version::V1.status(&Ending::Failed("no such file".into())),
            Some("no such file".into())
        );
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
        assert!(Version::V3.resizes());
        assert!(!Version::V1.resizes());
    }
}
