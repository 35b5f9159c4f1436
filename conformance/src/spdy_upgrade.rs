//! The HTTP/1.1 upgrade to SPDY/3.1, as client-go's SPDY round tripper does it (crictl's and
//! kubectl's default transport for exec, attach and port-forward): a `POST` with
//! `Connection: Upgrade`, `Upgrade: SPDY/3.1` and one `X-Stream-Protocol-Version` line per
//! offered protocol; a `101 Switching Protocols` naming the chosen protocol; then a client SPDY
//! session over the same TCP connection.

use std::fmt;

use anyhow::{Context as _, bail};
use crius_spdy::{Role, Session, SessionConfig};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;

/// The header that offers (request) and names (response) the stream protocol.
pub const PROTOCOL_VERSION_HEADER: &str = "X-Stream-Protocol-Version";
/// The most a response head may take before the client gives up on it.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The most of a refusal's body kept for the error.
const MAX_REFUSAL_BODY: u64 = 4096;

/// An upgraded connection: the client SPDY session and the protocol the server chose.
#[derive(Debug)]
pub struct SpdyConnection {
    pub session: Session,
    /// The `X-Stream-Protocol-Version` of the response; empty when the server named none.
    pub protocol: String,
}

/// The server answered the upgrade with something else than 101 (a 404 for an unknown token,
/// say); `anyhow::Error::downcast_ref` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRefused {
    pub status: u16,
    /// The start of the response body.
    pub body: String,
}

impl fmt::Display for UpgradeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server refused the upgrade with {}: {}",
            self.status, self.body
        )
    }
}

impl std::error::Error for UpgradeRefused {}

/// Opens `url` (`http://host:port/path?query`), asks to upgrade to SPDY/3.1 offering
/// `protocols` in order of preference, and starts a client session.
pub async fn connect(url: &str, protocols: &[&str]) -> anyhow::Result<SpdyConnection> {
    connect_with(url, protocols, SessionConfig::default()).await
}

/// [`connect`], the client session configured by `config` (its receive window, say).
pub async fn connect_with(
    url: &str,
    protocols: &[&str],
    config: SessionConfig,
) -> anyhow::Result<SpdyConnection> {
    let uri: Uri = url.parse().with_context(|| format!("parse {url}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("{url}: only http URLs are served");
    }
    let authority = uri
        .authority()
        .with_context(|| format!("{url} has no host"))?
        .as_str();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let tcp = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connect to {authority}"))?;
    // As client-go's (Go's) connections: each frame goes out at once, not held back by Nagle's
    // algorithm until the server acknowledges the last one.
    tcp.set_nodelay(true)
        .with_context(|| format!("set TCP_NODELAY on the connection to {authority}"))?;
    // The session reads on from this buffer, so SPDY frames that arrive with the response head
    // are not lost.
    let mut connection = BufReader::new(tcp);
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\n\
         Upgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
    );
    for protocol in protocols {
        request.push_str(&format!("{PROTOCOL_VERSION_HEADER}: {protocol}\r\n"));
    }
    request.push_str("\r\n");
    connection
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .context("send the upgrade request")?;
    let head = read_response_head(&mut connection).await?;
    if head.status != 101 {
        let mut body = Vec::new();
        let length = head
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(MAX_REFUSAL_BODY);
        // A broken body only shortens the message.
        let _ = (&mut connection)
            .take(length.min(MAX_REFUSAL_BODY))
            .read_to_end(&mut body)
            .await;
        return Err(UpgradeRefused {
            status: head.status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
        .into());
    }
    let names_upgrade = head
        .header("connection")
        .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"));
    let names_spdy = head
        .header("upgrade")
        .is_some_and(|v| v.to_ascii_lowercase().contains("spdy/3.1"));
    if !names_upgrade || !names_spdy {
        bail!(
            "the 101 response does not switch to SPDY/3.1: {:?}",
            head.headers
        );
    }
    let protocol = head
        .header(PROTOCOL_VERSION_HEADER)
        .unwrap_or_default()
        .to_owned();
    let session = Session::new(connection, Role::Client, config);
    Ok(SpdyConnection { session, protocol })
}

/// A response's status and headers.
#[derive(Debug)]
struct ResponseHead {
    status: u16,
    headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of header `name`, matched case-insensitively.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the status line and the headers, up to the empty line.
async fn read_response_head(connection: &mut BufReader<TcpStream>) -> anyhow::Result<ResponseHead> {
    let mut budget = MAX_RESPONSE_HEAD;
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = (&mut *connection)
            .take(budget as u64)
            .read_until(b'\n', &mut line)
            .await
            .context("read the upgrade response")?;
        if n == 0 || !line.ends_with(b"\n") {
            bail!("the upgrade response ended early or its head is over {MAX_RESPONSE_HEAD} bytes");
        }
        budget -= n;
        let line = String::from_utf8(line).context("the upgrade response head is not UTF-8")?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        lines.push(line.to_owned());
    }
    let mut lines = lines.into_iter();
    let status_line = lines.next().context("the upgrade response is empty")?;
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code
            .parse()
            .with_context(|| format!("bad status line {status_line:?}"))?,
        _ => bail!("bad status line {status_line:?}"),
    };
    let headers = lines
        .map(|line| match line.split_once(':') {
            Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
            None => bail!("bad header line {line:?}"),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(ResponseHead { status, headers })
}
