//! The streaming server: HTTP/1.1 on `stream.address:stream.port`, serving the URLs that the
//! `Exec` and `Attach` RPCs return.
//!
//! An RPC validates its request and stores it under a single-use token (see [`tokens`]); the
//! client then opens `http://<address>:<port>/exec/<token>` (or `/attach/<token>`) as a
//! WebSocket speaking Kubernetes' remotecommand channels (see [`websocket`]), and the session
//! runs (see [`session`]). An unknown, used or expired token answers 404.

mod session;
pub mod tokens;
pub mod websocket;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tonic::Status;
use tracing::Instrument as _;

use crate::config::StreamConfig;
use crate::containers::ContainerManager;
use tokens::{TOKEN_LIFETIME, TokenCache};

/// A validated request waiting for its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    Exec {
        container_id: String,
        command: Vec<String>,
        streams: Streams,
    },
    Attach {
        container_id: String,
        streams: Streams,
    },
}

/// The streams a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Streams {
    /// At least one stream, and not stderr with a terminal (a terminal has one output).
    fn validate(self) -> Result<Self, Status> {
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(Status::invalid_argument(
                "one of stdin, stdout and stderr must be requested",
            ));
        }
        if self.tty && self.stderr {
            return Err(Status::invalid_argument(
                "tty and stderr cannot both be requested",
            ));
        }
        Ok(self)
    }
}

/// The streaming server's state: where it listens and the tokens it has issued.
#[derive(Debug)]
pub struct StreamServer {
    address: SocketAddr,
    tokens: TokenCache<StreamRequest>,
    containers: Arc<ContainerManager>,
}

impl StreamServer {
    /// Binds the configured address and port (0: a free one).
    pub async fn bind(
        config: &StreamConfig,
        containers: Arc<ContainerManager>,
    ) -> anyhow::Result<(Arc<Self>, TcpListener)> {
        let listener = TcpListener::bind((config.address, config.port))
            .await
            .with_context(|| {
                format!(
                    "bind the streaming server to {}:{}",
                    config.address, config.port
                )
            })?;
        let address = listener
            .local_addr()
            .context("the streaming server's address")?;
        let server = Arc::new(StreamServer {
            address,
            tokens: TokenCache::new(TOKEN_LIFETIME),
            containers,
        });
        Ok((server, listener))
    }

    /// The address served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Validates an Exec request and returns the URL that runs it.
    pub fn exec(&self, request: cri::ExecRequest) -> Result<cri::ExecResponse, Status> {
        if request.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd must not be empty"));
        }
        let streams = Streams {
            stdin: request.stdin,
            stdout: request.stdout,
            stderr: request.stderr,
            tty: request.tty,
        }
        .validate()?;
        let record = self.containers.running(&request.container_id)?;
        let url = self.issue(
            "exec",
            StreamRequest::Exec {
                container_id: record.id,
                command: request.cmd,
                streams,
            },
        )?;
        Ok(cri::ExecResponse { url })
    }

    /// Validates an Attach request and returns the URL that runs it.
    pub fn attach(&self, request: &cri::AttachRequest) -> Result<cri::AttachResponse, Status> {
        let streams = Streams {
            stdin: request.stdin,
            stdout: request.stdout,
            stderr: request.stderr,
            tty: request.tty,
        }
        .validate()?;
        let record = self.containers.running(&request.container_id)?;
        let url = self.issue(
            "attach",
            StreamRequest::Attach {
                container_id: record.id,
                streams,
            },
        )?;
        Ok(cri::AttachResponse { url })
    }

    /// Stores `request` under a new token and returns its URL.
    fn issue(&self, kind: &str, request: StreamRequest) -> Result<String, Status> {
        let token = self
            .tokens
            .insert(request)
            .map_err(|e| Status::internal(format!("make a streaming token: {e}")))?;
        Ok(format!("http://{}/{kind}/{token}", self.address))
    }

    /// Serves connections from `listener` until `shutdown` completes; sessions under way go on.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "streaming server: accept");
                    continue;
                }
            };
            let server = Arc::clone(&self);
            let service = hyper::service::service_fn(move |request| {
                let server = Arc::clone(&server);
                async move { Ok::<_, Infallible>(server.answer(request)) }
            });
            tokio::spawn(
                async move {
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                    {
                        tracing::debug!(error = %e, "streaming connection ended");
                    }
                }
                .instrument(tracing::debug_span!("stream", %peer)),
            );
        }
    }

    /// Answers one HTTP request: a WebSocket upgrade for a valid token starts its session.
    fn answer(&self, mut request: Request<Incoming>) -> Response<Full<Bytes>> {
        let mut segments = request.uri().path().trim_start_matches('/').split('/');
        let (Some(kind), Some(token), None) = (segments.next(), segments.next(), segments.next())
        else {
            return plain(StatusCode::NOT_FOUND, "not found");
        };
        let Some(stream_request) = self.tokens.take(token) else {
            return plain(StatusCode::NOT_FOUND, "unknown or expired token");
        };
        let kind_matches = matches!(
            (kind, &stream_request),
            ("exec", StreamRequest::Exec { .. }) | ("attach", StreamRequest::Attach { .. })
        );
        if !kind_matches {
            return plain(StatusCode::NOT_FOUND, "unknown or expired token");
        }
        let headers = request.headers();
        let upgrade_to_websocket = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return plain(
                StatusCode::BAD_REQUEST,
                "only WebSocket streaming is served",
            );
        };
        if !upgrade_to_websocket {
            return plain(
                StatusCode::BAD_REQUEST,
                "only WebSocket streaming is served",
            );
        }
        let accept = derive_accept_key(key.as_bytes());
        let offered = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some((name, protocol)) = websocket::negotiate(offered) else {
            return plain(
                StatusCode::BAD_REQUEST,
                "none of the requested subprotocols is served",
            );
        };
        let upgrade = hyper::upgrade::on(&mut request);
        let containers = Arc::clone(&self.containers);
        tokio::spawn(
            async move {
                let upgraded = match upgrade.await {
                    Ok(upgraded) => upgraded,
                    Err(e) => {
                        tracing::debug!(error = %e, "websocket upgrade failed");
                        return;
                    }
                };
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session::run(socket, protocol, stream_request, &containers).await;
            }
            .in_current_span(),
        );
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(name) = name {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(name),
            );
        }
        response
    }
}

/// A plain-text answer.
fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_need_one_and_no_stderr_with_a_terminal() {
        let none = Streams {
            stdin: false,
            stdout: false,
            stderr: false,
            tty: false,
        };
        assert!(none.validate().is_err());
        let tty_stderr = Streams {
            stdout: true,
            stderr: true,
            tty: true,
            ..none
        };
        assert!(tty_stderr.validate().is_err());
        let tty_stdout = Streams {
            stdin: true,
            stdout: true,
            tty: true,
            ..none
        };
        assert_eq!(tty_stdout.validate().unwrap(), tty_stdout);
    }
}
