//! A SPDY client of Kubernetes' port-forward protocol (`portforward.k8s.io`), as client-go's
//! port forwarder (crictl's and kubectl's) speaks it: per connection to a pod port, an error
//! stream and then a data stream, both with headers `streamType` (`error`, `data`), `port` and
//! a `requestID` shared by the pair; the client half-closes the error stream at once, and the
//! server writes there why it could not reach the port.
//!
//! The session runs over the HTTP/1.1 upgrade to SPDY/3.1 ([`SpdyPortForward::connect`]), or
//! tunnelled through a WebSocket whose binary messages carry the SPDY bytes, subprotocol
//! `SPDY/3.1+portforward.k8s.io` ([`SpdyPortForward::connect_tunnelled`], crictl's
//! `--transport websocket`).

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use crius_spdy::tunnel::{TUNNEL_PROTOCOL_PREFIX, WebSocketTunnel};
use crius_spdy::{Headers, Role, Session, SessionConfig};
use futures_util::FutureExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::portforward::ForwardedConnection;
use crate::{spdy_upgrade, websocket_channels};

/// The port-forward protocol's name.
pub const PROTOCOL: &str = "portforward.k8s.io";

/// An open port-forward session: any number of connections, to any pod ports.
#[derive(Debug)]
pub struct SpdyPortForward {
    session: Session,
    next_request_id: AtomicU64,
}

impl SpdyPortForward {
    /// Opens `url` (`http://host:port/portforward/<token>`) with the HTTP upgrade to SPDY/3.1.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let connection = spdy_upgrade::connect(url, &[PROTOCOL]).await?;
        if connection.protocol != PROTOCOL {
            bail!(
                "the server chose protocol {:?}, not {PROTOCOL}",
                connection.protocol
            );
        }
        Ok(Self::over(connection.session))
    }

    /// Opens `url` as a WebSocket offering `SPDY/3.1+portforward.k8s.io` and runs the SPDY
    /// session through it.
    pub async fn connect_tunnelled(url: &str) -> anyhow::Result<Self> {
        let offered = format!("{TUNNEL_PROTOCOL_PREFIX}{PROTOCOL}");
        let (socket, protocol) = websocket_channels::connect(url, &[&offered])
            .await
            .with_context(|| format!("open {url} as a WebSocket"))?;
        if protocol != offered {
            bail!("the server chose subprotocol {protocol:?}, not {offered}");
        }
        let tunnel = WebSocketTunnel::new(socket);
        Ok(Self::over(Session::new(
            tunnel,
            Role::Client,
            SessionConfig::default(),
        )))
    }

    fn over(session: Session) -> Self {
        SpdyPortForward {
            session,
            next_request_id: AtomicU64::new(0),
        }
    }

    /// Opens a connection to pod port `port`: the error stream (half-closed at once), then the
    /// data stream, each once the server replied.
    pub async fn forward(&self, port: u16) -> anyhow::Result<ForwardedConnection> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let headers = |stream_type: &str| {
            Headers::new()
                .with("streamType", stream_type)
                .with("port", &port.to_string())
                .with("requestID", &request_id.to_string())
        };
        let mut error = self
            .session
            .open(headers("error"))
            .await
            .with_context(|| format!("open the error stream for port {port}"))?;
        error
            .shutdown()
            .await
            .with_context(|| format!("half-close the error stream for port {port}"))?;
        let data = self
            .session
            .open(headers("data"))
            .await
            .with_context(|| format!("open the data stream for port {port}"))?;
        let error_text = async move {
            let mut text = Vec::new();
            error.read_to_end(&mut text).await.map(|_| text)
        };
        Ok(ForwardedConnection::new(port, data, error_text.boxed()))
    }
}
