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
        Self::connect_with(url, SessionConfig::default()).await
    }

    /// [`SpdyPortForward::connect`], the session configured by `config`: a receive window
    /// larger than the default, say, for a client that reads as fast as client-go's (whose
    /// spdystream keeps no window, bounded by TCP alone).
    pub async fn connect_with(url: &str, config: SessionConfig) -> anyhow::Result<Self> {
        let connection = spdy_upgrade::connect_with(url, &[PROTOCOL], config).await?;
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

    /// Goes away abruptly, as a client whose connection breaks: the transport is closed without
    /// a GOAWAY or a stream's reset (tunnelled, the WebSocket still sends its close message).
    pub fn abort(self) {
        self.session.abort();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crius_spdy::IncomingStream;
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    use tokio::net::TcpListener;

    /// A server that checks the upgrade request and answers 101; its session and the request
    /// lines.
    async fn upgraded_server(listener: TcpListener) -> (Session, Vec<String>) {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = BufReader::new(tcp);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            connection.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        connection
            .get_mut()
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                  Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n",
            )
            .await
            .unwrap();
        let session = Session::new(connection, Role::Server, SessionConfig::default());
        (session, lines)
    }

    fn headers_of(stream: &IncomingStream) -> Vec<(String, String)> {
        stream
            .headers()
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[tokio::test]
    async fn streams_carry_client_go_headers_and_the_error_stream_its_text() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/portforward/token",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(async move {
            let (session, lines) = upgraded_server(listener).await;
            assert_eq!(lines[0], "POST /portforward/token HTTP/1.1");
            for header in [
                "Connection: Upgrade",
                "Upgrade: SPDY/3.1",
                "X-Stream-Protocol-Version: portforward.k8s.io",
            ] {
                assert!(lines.contains(&header.to_owned()), "{lines:?}");
            }
            for request_id in ["0", "1"] {
                let error = session.accept().await.unwrap();
                assert_eq!(
                    headers_of(&error),
                    [
                        pair("streamtype", "error"),
                        pair("port", "8080"),
                        pair("requestid", request_id)
                    ]
                );
                let mut error = error.accept(Headers::new());
                let data = session.accept().await.unwrap();
                assert_eq!(
                    headers_of(&data),
                    [
                        pair("streamtype", "data"),
                        pair("port", "8080"),
                        pair("requestid", request_id)
                    ]
                );
                let mut data = data.accept(Headers::new());
                // The client half-closed the error stream at once.
                let mut nothing = Vec::new();
                error.read_to_end(&mut nothing).await.unwrap();
                assert!(nothing.is_empty());
                let mut request = [0; 4];
                data.read_exact(&mut request).await.unwrap();
                assert_eq!(&request, b"ping");
                data.write_all(b"pong").await.unwrap();
                data.shutdown().await.unwrap();
                if request_id == "1" {
                    error.write_all(b"no such port").await.unwrap();
                }
                error.shutdown().await.unwrap();
            }
            session.closed().await;
        });
        let forward = SpdyPortForward::connect(&url).await.unwrap();
        for expected_error in [None, Some("no such port".to_owned())] {
            let mut connection = forward.forward(8080).await.unwrap();
            connection.write_all(b"ping").await.unwrap();
            let mut reply = Vec::new();
            connection.read_to_end(&mut reply).await.unwrap();
            assert_eq!(reply, b"pong");
            assert_eq!(connection.error_message().await.unwrap(), expected_error);
        }
        drop(forward);
        server.await.unwrap();
    }
}
