//! A SPDY client of Kubernetes' remotecommand protocol, as client-go's SPDY executor (crictl's
//! and kubectl's default for exec and attach) speaks it: upgrade the streaming URL to SPDY/3.1,
//! open one stream per channel (header `streamType`: `error`, then `stdin`, `stdout`, `stderr`
//! as asked, and `resize` with a terminal from v3 on), each waiting for its reply; send stdin and
//! half-close it; send terminal sizes as JSON; collect stdout, stderr and the error stream until
//! the server ends them. What it collects is the WebSocket client's [`Output`].

use anyhow::Context as _;
use crius_spdy::{Headers, Session, Stream};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::remotecommand::Output;
use crate::spdy_upgrade;

/// remotecommand v5: over SPDY the same as v4 (its close message is the WebSocket's half-close).
pub const V5: &str = "v5.channel.k8s.io";
/// remotecommand v4: the error stream carries a metav1.Status in JSON.
pub const V4: &str = "v4.channel.k8s.io";
/// remotecommand v3: v2 and a resize stream.
pub const V3: &str = "v3.channel.k8s.io";
/// remotecommand v2: a plain-text error stream.
pub const V2: &str = "v2.channel.k8s.io";
/// remotecommand v1.
pub const V1: &str = "channel.k8s.io";
/// What client-go (crictl, kubectl) offers over SPDY, in its order of preference; kubelet
/// serves v4 to v1 over SPDY, so it answers v4.
pub const PROTOCOLS: &[&str] = &[V5, V4, V3, V2, V1];

/// The header naming a stream's channel.
const STREAM_TYPE: &str = "streamType";

/// The streams a session opens; they must match what the Exec or Attach request asked for,
/// as the server waits for exactly those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// A terminal: no stderr stream, and a resize stream from v3 on.
    pub tty: bool,
}

/// An open remotecommand session over SPDY.
#[derive(Debug)]
pub struct SpdyRemoteCommand {
    /// The protocol the server chose (`X-Stream-Protocol-Version`).
    pub protocol: String,
    error: Stream,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
    /// Dropped last: the streams above live on the session.
    session: Session,
}

impl SpdyRemoteCommand {
    /// Opens `url` (`http://host:port/exec/<token>` or `/attach/<token>`), offering
    /// `protocols` in order of preference, and opens `streams` as client-go does.
    pub async fn connect(url: &str, protocols: &[&str], streams: Streams) -> anyhow::Result<Self> {
        let connection = spdy_upgrade::connect(url, protocols).await?;
        let session = connection.session;
        let open = async |stream_type: &str| {
            session
                .open(Headers::new().with(STREAM_TYPE, stream_type))
                .await
                .with_context(|| format!("open the {stream_type} stream"))
        };
        let error = open("error").await?;
        let stdin = if streams.stdin {
            Some(open("stdin").await?)
        } else {
            None
        };
        let stdout = if streams.stdout {
            Some(open("stdout").await?)
        } else {
            None
        };
        let stderr = if streams.stderr && !streams.tty {
            Some(open("stderr").await?)
        } else {
            None
        };
        let resize = if streams.tty && ![V2, V1, ""].contains(&connection.protocol.as_str()) {
            Some(open("resize").await?)
        } else {
            None
        };
        Ok(SpdyRemoteCommand {
            protocol: connection.protocol,
            error,
            stdin,
            stdout,
            stderr,
            resize,
            session,
        })
    }

    /// Sends `data` to stdin.
    pub async fn stdin(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("no stdin stream was opened")?;
        stdin.write_all(data).await.context("write stdin")?;
        stdin.flush().await.context("flush stdin")
    }

    /// Closes stdin: half-closes its stream (FIN), as client-go does at the end of its input.
    pub async fn close_stdin(&mut self) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("no stdin stream was opened")?;
        stdin.shutdown().await.context("half-close stdin")
    }

    /// Tells the terminal's new size: `{"Width":..,"Height":..}` and a newline, as client-go's
    /// JSON encoder writes it.
    pub async fn resize(&mut self, width: u16, height: u16) -> anyhow::Result<()> {
        let resize = self
            .resize
            .as_mut()
            .context("no resize stream was opened (no tty, or a protocol before v3)")?;
        let mut json = serde_json::json!({"Width": width, "Height": height}).to_string();
        json.push('\n');
        resize
            .write_all(json.as_bytes())
            .await
            .context("write the size")?;
        resize.flush().await.context("flush the size")
    }

    /// Goes away abruptly, as a client whose connection breaks: the TCP connection is closed
    /// without a GOAWAY, a stream's end or a reset.
    pub fn abort(self) {
        self.session.abort();
    }

    /// Reads what stdout has now (at least one byte, waiting for it); 0 at its end.
    pub async fn read_stdout(&mut self, buf: &mut [u8]) -> anyhow::Result<usize> {
        let stdout = self
            .stdout
            .as_mut()
            .context("no stdout stream was opened")?;
        stdout.read(buf).await.context("read stdout")
    }

    /// Reads stdout, stderr and the error stream until the server ends each, and returns what
    /// they said. A stream that breaks ends early: the test sees what arrived.
    pub async fn collect(mut self) -> Output {
        let (stdout, stderr, error) = tokio::join!(
            read_to_end(self.stdout.as_mut()),
            read_to_end(self.stderr.as_mut()),
            read_to_end(Some(&mut self.error)),
        );
        Output {
            stdout,
            stderr,
            error: (!error.is_empty()).then(|| String::from_utf8_lossy(&error).into_owned()),
        }
    }
}

/// Everything `stream` delivers until its end or its failure.
async fn read_to_end(stream: Option<&mut Stream>) -> Vec<u8> {
    let mut data = Vec::new();
    if let Some(stream) = stream {
        let _ = stream.read_to_end(&mut data).await;
    }
    data
}
