//! The streaming server: HTTP/1.1 on `stream.address:stream.port`, serving the URLs that the
//! `Exec`, `Attach` and `PortForward` RPCs return.
//!
//! An RPC validates its request and stores it under a single-use token (see [`tokens`]); the
//! client then opens `http://<address>:<port>/{exec,attach,portforward}/<token>` and upgrades
//! the connection, to a WebSocket or to SPDY/3.1, as client-go does. Exec and attach speak
//! Kubernetes' remotecommand protocol over either (see [`remotecommand`], [`websocket`],
//! [`spdy_remotecommand`], run by [`session`]); port-forward its own (see [`portforward`]). An
//! unknown, used or expired token answers 404; a request that is not an upgrade, 400. Every
//! upgraded connection has an idle timeout (see [`idle`]). With a certificate configured, the
//! server speaks HTTPS (see [`tls`]).

mod idle;
mod portforward;
mod remotecommand;
mod session;
mod spdy_remotecommand;
mod tls;
pub mod tokens;
mod websocket;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use crius_runtime::sandbox::record::SandboxState;
use crius_spdy::tunnel::WebSocketTunnel;
use crius_spdy::{Role as SpdyRole, Session, SessionConfig};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role as WebSocketRole;
use tonic::Status;
use tracing::Instrument as _;

use crate::config::StreamConfig;
use crate::containers::ContainerManager;
use crate::pods::PodManager;
use idle::IdleTimeout;
use portforward::PodTarget;
use spdy_remotecommand::{PROTOCOL_HEADER, SpdyClient};
use tokens::{TOKEN_LIFETIME, TokenCache};
use websocket::{Protocol, WebSocketClient};

/// The upgrade token of SPDY/3.1, as client-go sends it.
const SPDY_UPGRADE: &str = "SPDY/3.1";

/// A validated request waiting for its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRequest {
    Command(CommandRequest),
    PortForward { pod_id: String },
}

/// An Exec or Attach request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandRequest {
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

impl CommandRequest {
    fn streams(&self) -> Streams {
        match self {
            CommandRequest::Exec { streams, .. } | CommandRequest::Attach { streams, .. } => {
                *streams
            }
        }
    }
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
    /// The streams an Exec or Attach request asks for, if they make sense.
    fn requested(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<Self, Status> {
        Streams {
            stdin,
            stdout,
            stderr,
            tty,
        }
        .validate()
    }

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
    /// With TLS configured.
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    idle_timeout: Duration,
    tokens: TokenCache<StreamRequest>,
    containers: Arc<ContainerManager>,
    pods: Arc<PodManager>,
}

impl StreamServer {
    /// Binds the configured address and port (0: a free one).
    pub async fn bind(
        config: &StreamConfig,
        containers: Arc<ContainerManager>,
        pods: Arc<PodManager>,
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
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        let server = Arc::new(StreamServer {
            address,
            tls,
            idle_timeout: config.idle_timeout,
            tokens: TokenCache::new(TOKEN_LIFETIME),
            containers,
            pods,
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
        let streams =
            Streams::requested(request.stdin, request.stdout, request.stderr, request.tty)?;
        let record = self.containers.running(&request.container_id)?;
        let url = self.issue(
            "exec",
            StreamRequest::Command(CommandRequest::Exec {
                container_id: record.id,
                command: request.cmd,
                streams,
            }),
        )?;
        Ok(cri::ExecResponse { url })
    }

    /// Validates an Attach request and returns the URL that runs it.
    pub fn attach(&self, request: &cri::AttachRequest) -> Result<cri::AttachResponse, Status> {
        let streams =
            Streams::requested(request.stdin, request.stdout, request.stderr, request.tty)?;
        let record = self.containers.running(&request.container_id)?;
        let url = self.issue(
            "attach",
            StreamRequest::Command(CommandRequest::Attach {
                container_id: record.id,
                streams,
            }),
        )?;
        Ok(cri::AttachResponse { url })
    }

    /// Validates a PortForward request and returns the URL that serves it. The ports are the
    /// client's to choose per connection (SPDY headers, WebSocket query); the request's are
    /// checked and are the WebSocket default.
    pub fn port_forward(
        &self,
        request: &cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, Status> {
        if let Some(port) = request
            .port
            .iter()
            .find(|port| u16::try_from(**port).map_or(true, |port| port == 0))
        {
            return Err(Status::invalid_argument(format!(
                "port {port} is not a port (1-65535)"
            )));
        }
        let pod = self.ready_pod(&request.pod_sandbox_id)?;
        let url = self.issue(
            "portforward",
            StreamRequest::PortForward { pod_id: pod.pod_id },
        )?;
        Ok(cri::PortForwardResponse { url })
    }

    /// Where pod `id` (or unique id prefix) is reached, if it is ready.
    fn ready_pod(&self, id: &str) -> Result<PodTarget, Status> {
        let record = self
            .pods
            .find(id)
            .ok_or_else(|| Status::not_found(format!("pod sandbox {id} not found")))?;
        if record.state != SandboxState::Ready {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {} is not ready",
                record.id
            )));
        }
        let netns = if record.host_namespaces.network {
            None
        } else {
            let pinned = record.namespaces.as_ref().and_then(|n| n.net.clone());
            Some(pinned.ok_or_else(|| {
                Status::failed_precondition(format!(
                    "pod sandbox {} has no network namespace",
                    record.id
                ))
            })?)
        };
        Ok(PodTarget {
            pod_id: record.id,
            netns,
        })
    }

    /// Stores `request` under a new token and returns its URL.
    fn issue(&self, kind: &str, request: StreamRequest) -> Result<String, Status> {
        let token = self
            .tokens
            .insert(request)
            .map_err(|e| Status::internal(format!("make a streaming token: {e}")))?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!(
            "{scheme}://{}/{kind}/{token}",
            url_host(self.address)
        ))
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
            // Frames go out as the session writes them, as kubelet's and containerd's (Go's)
            // connections send: with Nagle's algorithm a small frame (a SYN_REPLY, a FIN)
            // waits behind an unacknowledged one for the client's delayed ACK, up to 40 ms.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "streaming server: TCP_NODELAY");
            }
            let server = Arc::clone(&self);
            tokio::spawn(
                async move {
                    let Some(tls) = server.tls.clone().map(TlsAcceptor::from) else {
                        return server.serve_http(stream).await;
                    };
                    match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => server.serve_http(stream).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
                .instrument(tracing::debug_span!("stream", %peer)),
            );
        }
    }

    /// Serves HTTP/1.1 requests, and the upgrades they ask for, on one connection.
    async fn serve_http<S>(self: Arc<Self>, io: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let service = hyper::service::service_fn(move |request| {
            let server = Arc::clone(&self);
            async move { Ok::<_, Infallible>(server.answer(request)) }
        });
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await
        {
            tracing::debug!(error = %e, "streaming connection ended");
        }
    }

    /// Answers one HTTP request: an upgrade for a valid token starts its session.
    fn answer(self: &Arc<Self>, mut request: Request<Incoming>) -> Response<Full<Bytes>> {
        let mut segments = request.uri().path().trim_start_matches('/').split('/');
        let (Some(kind), Some(token), None) = (segments.next(), segments.next(), segments.next())
        else {
            return plain(StatusCode::NOT_FOUND, "not found".into());
        };
        let Some(stream_request) = self.tokens.take(token) else {
            return plain(StatusCode::NOT_FOUND, "unknown or expired token".into());
        };
        let kind_matches = matches!(
            (kind, &stream_request),
            ("exec", StreamRequest::Command(CommandRequest::Exec { .. }))
                | (
                    "attach",
                    StreamRequest::Command(CommandRequest::Attach { .. })
                )
                | ("portforward", StreamRequest::PortForward { .. })
        );
        if !kind_matches {
            return plain(StatusCode::NOT_FOUND, "unknown or expired token".into());
        }
        let upgrade = hyper::upgrade::on(&mut request);
        let headers = request.headers();
        let result = match upgrade_kind(headers) {
            Some(Upgrade::WebSocket) => self.upgrade_websocket(&request, upgrade, stream_request),
            Some(Upgrade::Spdy) => self.upgrade_spdy(headers, upgrade, stream_request),
            None => Err(Refusal(
                StatusCode::BAD_REQUEST,
                "a streaming request upgrades to SPDY/3.1 or to a WebSocket".into(),
            )),
        };
        result.unwrap_or_else(Refusal::into_response)
    }

    /// Upgrades to a WebSocket: remotecommand channels, kubelet's port-forward channels, or a
    /// SPDY port-forward tunnelled through it.
    fn upgrade_websocket(
        self: &Arc<Self>,
        request: &Request<Incoming>,
        upgrade: OnUpgrade,
        stream_request: StreamRequest,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        let headers = request.headers();
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key".into()))?;
        let accept = derive_accept_key(key.as_bytes());
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let (name, session) = match stream_request {
            StreamRequest::Command(command) => {
                let (name, protocol) = websocket::negotiate(offered.iter().copied())
                    .ok_or_else(|| unsupported_protocols(&offered))?;
                (name, WebSocketSession::Command(protocol, command))
            }
            StreamRequest::PortForward { pod_id } => {
                let target = self.ready_pod(&pod_id).map_err(|s| Refusal::pod_gone(&s))?;
                if offered_names(offered.iter().copied()).any(|name| name == TUNNELLED_PORT_FORWARD)
                {
                    (
                        Some(TUNNELLED_PORT_FORWARD),
                        WebSocketSession::Tunnel(target),
                    )
                } else {
                    let (name, protocol) =
                        websocket::negotiate_port_forward(offered.iter().copied())
                            .ok_or_else(|| unsupported_protocols(&offered))?;
                    let ports = query_ports(request.uri().query().unwrap_or_default())
                        .map_err(|message| Refusal(StatusCode::BAD_REQUEST, message))?;
                    (name, WebSocketSession::PortForward(protocol, ports, target))
                }
            }
        };
        let idle_timeout = self.idle_timeout;
        let containers = Arc::clone(&self.containers);
        tokio::spawn(
            async move {
                let Some(io) = upgraded(upgrade, idle_timeout).await else {
                    return;
                };
                let socket =
                    WebSocketStream::from_raw_socket(io, WebSocketRole::Server, None).await;
                match session {
                    WebSocketSession::Command(protocol, command) => {
                        let client = WebSocketClient::new(socket, protocol);
                        session::run(client, command, &containers).await;
                    }
                    WebSocketSession::PortForward(protocol, ports, target) => {
                        portforward::serve_websocket(socket, protocol, ports, target).await;
                    }
                    WebSocketSession::Tunnel(target) => {
                        let session = spdy_session(WebSocketTunnel::new(socket), true);
                        portforward::serve_spdy(session, target).await;
                    }
                }
            }
            .in_current_span(),
        );
        let mut response = switching_protocols("websocket");
        let response_headers = response.headers_mut();
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            response_headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(name) = name {
            response_headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(name),
            );
        }
        Ok(response)
    }

    /// Upgrades to SPDY/3.1: remotecommand streams or port-forward stream pairs.
    fn upgrade_spdy(
        self: &Arc<Self>,
        headers: &HeaderMap,
        upgrade: OnUpgrade,
        stream_request: StreamRequest,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        let offered: Vec<&str> = headers
            .get_all(PROTOCOL_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let idle_timeout = self.idle_timeout;
        let name = match stream_request {
            StreamRequest::Command(command) => {
                let (name, version) = spdy_remotecommand::negotiate(offered.iter().copied())
                    .ok_or_else(|| unsupported_protocols(&offered))?;
                let containers = Arc::clone(&self.containers);
                tokio::spawn(
                    async move {
                        let Some(io) = upgraded(upgrade, idle_timeout).await else {
                            return;
                        };
                        let session = spdy_session(io, false);
                        match SpdyClient::accept(session, version, command.streams()).await {
                            Ok(client) => session::run(client, command, &containers).await,
                            Err(message) => tracing::debug!(message, "SPDY streams"),
                        }
                    }
                    .in_current_span(),
                );
                name
            }
            StreamRequest::PortForward { pod_id } => {
                if !offered_names(offered.iter().copied())
                    .any(|name| name == portforward::SPDY_PROTOCOL)
                {
                    return Err(unsupported_protocols(&offered));
                }
                let target = self.ready_pod(&pod_id).map_err(|s| Refusal::pod_gone(&s))?;
                tokio::spawn(
                    async move {
                        let Some(io) = upgraded(upgrade, idle_timeout).await else {
                            return;
                        };
                        portforward::serve_spdy(spdy_session(io, true), target).await;
                    }
                    .in_current_span(),
                );
                Some(portforward::SPDY_PROTOCOL)
            }
        };
        let mut response = switching_protocols(SPDY_UPGRADE);
        if let Some(name) = name {
            response
                .headers_mut()
                .insert(PROTOCOL_HEADER, HeaderValue::from_static(name));
        }
        Ok(response)
    }
}

/// The subprotocol of a SPDY port-forward tunnelled through a WebSocket.
const TUNNELLED_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";

/// What runs over an upgraded WebSocket.
enum WebSocketSession {
    Command(Protocol, CommandRequest),
    PortForward(Protocol, Vec<u16>, PodTarget),
    Tunnel(PodTarget),
}

/// An upgraded connection, under its idle timeout.
type Upgraded = IdleTimeout<TokioIo<hyper::upgrade::Upgraded>>;

/// The connection once the 101 answer is out; None if the client went away before.
async fn upgraded(upgrade: OnUpgrade, idle_timeout: Duration) -> Option<Upgraded> {
    match upgrade.await {
        Ok(upgraded) => Some(IdleTimeout::new(TokioIo::new(upgraded), idle_timeout)),
        Err(e) => {
            tracing::debug!(error = %e, "the upgrade failed");
            None
        }
    }
}

/// A server SPDY session over `io`; a port-forward one may hold more streams.
fn spdy_session<T>(io: T, port_forward: bool) -> Session
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut config = SessionConfig::default();
    if port_forward {
        config.max_streams = portforward::MAX_SPDY_STREAMS;
    }
    Session::new(io, SpdyRole::Server, config)
}

/// Which upgrade the client asks for.
enum Upgrade {
    WebSocket,
    Spdy,
}

fn upgrade_kind(headers: &HeaderMap) -> Option<Upgrade> {
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?.trim();
    if upgrade.eq_ignore_ascii_case("websocket") {
        Some(Upgrade::WebSocket)
    } else if upgrade.eq_ignore_ascii_case(SPDY_UPGRADE) {
        Some(Upgrade::Spdy)
    } else {
        None
    }
}

/// The protocol names offered in header values that may each be a comma-separated list.
fn offered_names<'a>(values: impl IntoIterator<Item = &'a str>) -> impl Iterator<Item = &'a str> {
    values
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
}

/// The ports of a WebSocket port-forward, from the URL's `port` query parameters.
fn query_ports(query: &str) -> Result<Vec<u16>, String> {
    let ports = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| *name == "port")
        .map(|(_, value)| {
            value
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| format!("port {value:?} is not a port (1-65535)"))
        })
        .collect::<Result<Vec<u16>, String>>()?;
    if ports.is_empty() {
        return Err("the query parameter \"port\" is required".into());
    }
    if ports.len() > portforward::MAX_WEBSOCKET_PORTS {
        return Err(format!(
            "at most {} ports per connection",
            portforward::MAX_WEBSOCKET_PORTS
        ));
    }
    Ok(ports)
}

/// The host of the URLs handed out: the address served, or loopback when it is a wildcard
/// (kubelet, on this node, is the client).
fn url_host(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

/// The 101 answer upgrading to `protocol`.
fn switching_protocols(protocol: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static(protocol));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    response
}

/// The answer to a client that offered only protocols not served, as kubelet answers it.
fn unsupported_protocols(offered: &[&str]) -> Refusal {
    Refusal(
        StatusCode::FORBIDDEN,
        format!("unable to upgrade: none of the offered protocols {offered:?} is served"),
    )
}

/// A request that is not upgraded: the status and why.
#[derive(Debug)]
struct Refusal(StatusCode, String);

impl Refusal {
    /// The pod of a port-forward is gone (or no longer ready) since its URL was issued.
    fn pod_gone(status: &Status) -> Self {
        Refusal(StatusCode::NOT_FOUND, status.message().to_owned())
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        plain(self.0, self.1)
    }
}

/// A plain-text answer.
fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
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

    #[test]
    fn the_tunnelled_protocol_is_client_gos_name() {
        assert_eq!(
            TUNNELLED_PORT_FORWARD,
            format!(
                "{}{}",
                crius_spdy::tunnel::TUNNEL_PROTOCOL_PREFIX,
                portforward::SPDY_PROTOCOL
            )
        );
    }

    #[test]
    fn websocket_port_forward_takes_its_ports_from_the_query() {
        assert_eq!(query_ports("port=80&port=8080"), Ok(vec![80, 8080]));
        assert!(query_ports("").unwrap_err().contains("required"));
        assert!(query_ports("port=0").is_err());
        assert!(query_ports("port=70000").is_err());
    }

    #[test]
    fn urls_name_loopback_for_a_wildcard_address() {
        let any: SocketAddr = "0.0.0.0:10010".parse().unwrap();
        assert_eq!(url_host(any).to_string(), "127.0.0.1:10010");
        let any6: SocketAddr = "[::]:10010".parse().unwrap();
        assert_eq!(url_host(any6).to_string(), "[::1]:10010");
        let node: SocketAddr = "10.0.0.5:10010".parse().unwrap();
        assert_eq!(url_host(node), node);
    }
}
