//! Port-forward: connections from the client to ports of a pod, each made from inside the pod's
//! network namespace to `127.0.0.1:<port>` (see
//! [`connect_to_pod_port`](crius_runtime::sandbox::port_connect::connect_to_pod_port)).
//!
//! Two protocols, as kubelet serves them:
//! - SPDY, `portforward.k8s.io` (also tunnelled through a WebSocket, crictl's
//!   `--transport websocket`): per forwarded connection the client opens an `error` and a
//!   `data` stream with the same `requestID` and a `port` header. Data is copied both ways; the
//!   client's FIN half-closes the pod connection, the pod's end of output ends the forward (FIN
//!   on the data stream, then on the error stream, which carries a message if it failed).
//! - WebSocket, `v4.channel.k8s.io`: the ports are the URL's `port` query parameters, the i-th
//!   port's data on channel 2i and its errors on 2i+1, each channel's first message the port
//!   (2 bytes, little-endian); one connection per port, made at once.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crius_runtime::sandbox::port_connect::connect_to_pod_port;
use crius_spdy::{Headers, RstStatus, Session, Stream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::websocket::{ChannelMessage, NORMAL_CLOSURE, Protocol};
use crate::blocking::run_blocking;

/// The SPDY subprotocol (`X-Stream-Protocol-Version`, and tunnelled after `SPDY/3.1+`).
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";
/// Streams a SPDY port-forward session may hold at once: two per forwarded connection.
pub const MAX_SPDY_STREAMS: usize = 256;
/// The most ports one WebSocket session forwards (two channels each, numbered in a byte).
pub const MAX_WEBSOCKET_PORTS: usize = 64;
/// How long connecting to a pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client has to open the second stream of a pair, as kubelet allows.
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a finished forward waits for the client to end its side of the data stream.
const FIN_GRACE: Duration = Duration::from_secs(5);
/// The buffer of each direction of a forwarded connection.
const COPY_BUFFER: usize = 64 * 1024;
/// Chunks from a pod's port waiting for the WebSocket, per port.
const WEBSOCKET_QUEUE: usize = 4;

/// The pod whose ports a session reaches.
#[derive(Debug, Clone)]
pub struct PodTarget {
    pub pod_id: String,
    /// The pod's pinned network namespace; None on the host network.
    pub netns: Option<PathBuf>,
}

impl PodTarget {
    /// A connection to `port` of the pod.
    async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let netns = self.netns.clone();
        let stream =
            run_blocking(move || connect_to_pod_port(netns.as_deref(), port, CONNECT_TIMEOUT))
                .await?;
        stream.set_nonblocking(true)?;
        // What the client sends reaches the pod at once, small requests too (Go's dialer,
        // kubelet's and containerd's, does the same).
        stream.set_nodelay(true)?;
        TcpStream::from_std(stream)
    }

    /// What the error stream says when forwarding `port` failed.
    fn failure(&self, port: u16, error: &io::Error) -> String {
        format!(
            "error forwarding port {port} to pod {}: {error}",
            self.pod_id
        )
    }
}

/// Serves port-forward streams on `session` until the client closes it; then waits for the
/// forwards under way to end.
pub async fn serve_spdy(session: Session, target: PodTarget) {
    let mut waiting: HashMap<String, HalfPair> = HashMap::new();
    let mut forwards = JoinSet::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            incoming = session.accept() => {
                let Some(incoming) = incoming else { break };
                let id = incoming.id();
                let headers = incoming.headers().clone();
                let stream = incoming.accept(Headers::new());
                let Some((request_id, kind)) = pair_slot(&headers, id) else {
                    tracing::debug!(stream = id, "a port-forward stream of no known type");
                    stream.reset(RstStatus::PROTOCOL_ERROR);
                    continue;
                };
                let pair = waiting.entry(request_id.clone()).or_insert_with(HalfPair::new);
                let slot = match kind {
                    PairStream::Data => &mut pair.data,
                    PairStream::Error => &mut pair.error,
                };
                if slot.is_some() {
                    tracing::debug!(stream = id, request_id, "a second stream of one kind");
                    stream.reset(RstStatus::PROTOCOL_ERROR);
                    continue;
                }
                *slot = Some(stream);
                if let Some((data, error)) = pair.complete() {
                    waiting.remove(&request_id);
                    forwards.spawn(forward(data, error, target.clone()));
                }
            }
            _ = sweep.tick() => {
                let expired: Vec<String> = waiting
                    .iter()
                    .filter(|(_, pair)| pair.since.elapsed() >= PAIR_TIMEOUT)
                    .map(|(request_id, _)| request_id.clone())
                    .collect();
                for request_id in expired {
                    if let Some(pair) = waiting.remove(&request_id) {
                        forwards.spawn(pair.time_out(request_id));
                    }
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
    while forwards.join_next().await.is_some() {}
}

/// Which stream of a pair a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairStream {
    Data,
    Error,
}

/// The request a stream belongs to and its kind, from its headers; None for another kind.
///
/// A client older than the `requestID` header opens a pair's error stream and then its data
/// stream, ids two apart; kubelet pairs them by id, and so does this.
fn pair_slot(headers: &Headers, stream_id: u32) -> Option<(String, PairStream)> {
    let kind = match headers.get("streamtype")? {
        "data" => PairStream::Data,
        "error" => PairStream::Error,
        _ => return None,
    };
    let request_id = match headers.get("requestid").filter(|id| !id.is_empty()) {
        Some(id) => id.to_owned(),
        None if kind == PairStream::Data => stream_id.saturating_sub(2).to_string(),
        None => stream_id.to_string(),
    };
    Some((request_id, kind))
}

/// A pair waiting for its second stream.
struct HalfPair {
    data: Option<Stream>,
    error: Option<Stream>,
    since: Instant,
}

impl HalfPair {
    fn new() -> Self {
        HalfPair {
            data: None,
            error: None,
            since: Instant::now(),
        }
    }

    /// Both streams, once they are there.
    fn complete(&mut self) -> Option<(Stream, Stream)> {
        if self.data.is_some() && self.error.is_some() {
            return self.data.take().zip(self.error.take());
        }
        None
    }

    /// Ends a pair whose second stream never came.
    async fn time_out(self, request_id: String) {
        if let Some(mut error) = self.error {
            let message = format!(
                "timed out waiting for the data stream of request {request_id} after {PAIR_TIMEOUT:?}"
            );
            error.write_all(message.as_bytes()).await.ok();
            error.shutdown().await.ok();
        }
        if let Some(data) = self.data {
            data.reset(RstStatus::CANCEL);
        }
    }
}

/// Forwards one connection: the data stream's `port` of the pod.
async fn forward(mut data: Stream, mut error: Stream, target: PodTarget) {
    let port = data
        .headers()
        .get("port")
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|port| *port > 0);
    let failure = match port {
        None => Some(format!(
            "invalid port {:?}: a port is 1-65535",
            data.headers().get("port").unwrap_or_default()
        )),
        Some(port) => match target.connect(port).await {
            Ok(connection) => copy_until_pod_done(&mut data, connection)
                .await
                .err()
                .map(|e| target.failure(port, &e)),
            Err(e) => Some(target.failure(port, &e)),
        },
    };
    if let Some(message) = failure {
        tracing::debug!(pod = target.pod_id, message, "port-forward");
        error.write_all(message.as_bytes()).await.ok();
    }
    error.shutdown().await.ok();
    // The client ends its side once it has read the error stream's end (client-go closes the
    // data stream then); waiting for that FIN, briefly, spares a client that half-closes late
    // the reset that dropping an unfinished stream sends.
    let drained = tokio::time::timeout(FIN_GRACE, async {
        let mut discard = [0u8; 4096];
        while matches!(data.read(&mut discard).await, Ok(read) if read > 0) {}
    });
    drained.await.ok();
}

/// Copies between the client's `stream` and the pod's `connection` until the pod has sent all
/// it will: the client's end of input half-closes the connection; the pod's ends the stream. An
/// error is the pod connection's: a client that resets its stream (client-go does when its local
/// connection fails) just ends the forward, as with kubelet and containerd, since client-go
/// drops the whole session when the error stream says anything.
async fn copy_until_pod_done(
    stream: impl AsyncRead + AsyncWrite,
    connection: TcpStream,
) -> io::Result<()> {
    let (from_client, mut to_client) = tokio::io::split(stream);
    let (from_pod, mut to_pod) = connection.into_split();
    // Ends with whether the client ended its input cleanly (FIN) rather than with a reset.
    let upstream = async {
        let mut from_client = BufReader::with_capacity(COPY_BUFFER, from_client);
        let clean = tokio::io::copy_buf(&mut from_client, &mut to_pod)
            .await
            .is_ok();
        if clean {
            to_pod.shutdown().await.ok();
        }
        clean
    };
    let downstream = async {
        let mut from_pod = BufReader::with_capacity(COPY_BUFFER, from_pod);
        loop {
            let chunk = from_pod.fill_buf().await?;
            if chunk.is_empty() {
                to_client.shutdown().await.ok();
                return Ok(());
            }
            let read = chunk.len();
            if to_client.write_all(chunk).await.is_err() {
                // The client is gone or reset the stream.
                return Ok(());
            }
            from_pod.consume(read);
        }
    };
    tokio::pin!(upstream, downstream);
    let mut upstream_done = false;
    loop {
        tokio::select! {
            result = &mut downstream => return result,
            clean = &mut upstream, if !upstream_done => {
                if !clean {
                    return Ok(());
                }
                upstream_done = true;
            }
        }
    }
}

/// What a port's tasks tell the WebSocket session.
enum FromPod {
    Data(usize, Vec<u8>),
    /// The port's connection ended (or failed, with why).
    Done(usize, Option<String>),
}

/// Serves kubelet's WebSocket port-forward of `ports` over `socket` until every port's
/// connection has ended or the client goes away.
pub async fn serve_websocket<S>(
    mut socket: WebSocketStream<S>,
    protocol: Protocol,
    ports: Vec<u16>,
    target: PodTarget,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for (index, port) in ports.iter().enumerate() {
        let prefix = port.to_le_bytes();
        for channel in [data_channel(index), data_channel(index) + 1] {
            if socket
                .send(protocol.encode(channel, &prefix))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let (from_pods_tx, mut from_pods) = mpsc::channel::<FromPod>(WEBSOCKET_QUEUE * ports.len());
    let mut to_pods: Vec<Option<mpsc::Sender<Vec<u8>>>> = Vec::with_capacity(ports.len());
    // Dropped with the session: every port's task ends with it.
    let mut tasks = JoinSet::new();
    for (index, port) in ports.iter().copied().enumerate() {
        let (to_pod, from_client) = mpsc::channel::<Vec<u8>>(WEBSOCKET_QUEUE);
        to_pods.push(Some(to_pod));
        tasks.spawn(forward_websocket_port(
            index,
            port,
            target.clone(),
            from_client,
            from_pods_tx.clone(),
        ));
    }
    drop(from_pods_tx);
    let mut open = ports.len();
    while open > 0 {
        tokio::select! {
            message = socket.next() => {
                let message = match message {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(message)) => message,
                };
                let Some(ChannelMessage { channel, data }) = protocol.decode(&message) else {
                    continue;
                };
                let index = usize::from(channel / 2);
                if channel % 2 != 0 || data.is_empty() {
                    continue;
                }
                if let Some(Some(to_pod)) = to_pods.get(index)
                    && to_pod.send(data).await.is_err()
                {
                    to_pods[index] = None;
                }
            }
            from_pod = from_pods.recv() => match from_pod {
                Some(FromPod::Data(index, data)) => {
                    if socket.send(protocol.encode(data_channel(index), &data)).await.is_err() {
                        return;
                    }
                }
                Some(FromPod::Done(index, failure)) => {
                    open -= 1;
                    if let Some(message) = failure
                        && socket
                            .send(protocol.encode(data_channel(index) + 1, message.as_bytes()))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                None => break,
            },
        }
    }
    socket.close(Some(NORMAL_CLOSURE)).await.ok();
}

/// The data channel of the `index`-th port (its error channel is the next).
fn data_channel(index: usize) -> u8 {
    u8::try_from(index * 2).unwrap_or(u8::MAX - 1)
}

/// One port of a WebSocket session: connects, then passes the client's data to the pod and the
/// pod's to the session until the pod's output ends.
async fn forward_websocket_port(
    index: usize,
    port: u16,
    target: PodTarget,
    mut from_client: mpsc::Receiver<Vec<u8>>,
    to_session: mpsc::Sender<FromPod>,
) {
    let connection = match target.connect(port).await {
        Ok(connection) => connection,
        Err(e) => {
            to_session
                .send(FromPod::Done(index, Some(target.failure(port, &e))))
                .await
                .ok();
            return;
        }
    };
    let (mut from_pod, mut to_pod) = connection.into_split();
    let upstream = async {
        while let Some(data) = from_client.recv().await {
            if to_pod.write_all(&data).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            match tokio::io::AsyncReadExt::read(&mut from_pod, &mut buf).await {
                Ok(0) => return None,
                Ok(read) => {
                    if to_session
                        .send(FromPod::Data(index, buf[..read].to_vec()))
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
                Err(e) => return Some(target.failure(port, &e)),
            }
        }
    };
    tokio::pin!(upstream, downstream);
    let mut upstream_done = false;
    let failure = loop {
        tokio::select! {
            failure = &mut downstream => break failure,
            () = &mut upstream, if !upstream_done => upstream_done = true,
        }
    };
    to_session.send(FromPod::Done(index, failure)).await.ok();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn streams_pair_by_request_id_or_by_their_ids() {
        let with_id = Headers::new()
            .with("streamType", "data")
            .with("port", "80")
            .with("requestID", "7");
        assert_eq!(
            pair_slot(&with_id, 9),
            Some(("7".to_owned(), PairStream::Data))
        );
        let old_error = Headers::new().with("streamType", "error");
        let old_data = Headers::new().with("streamType", "data");
        assert_eq!(
            pair_slot(&old_error, 1),
            Some(("1".to_owned(), PairStream::Error))
        );
        assert_eq!(
            pair_slot(&old_data, 3),
            Some(("1".to_owned(), PairStream::Data))
        );
        assert_eq!(
            pair_slot(&Headers::new().with("streamType", "stdin"), 1),
            None
        );
    }

    #[tokio::test]
    async fn the_pods_end_of_output_ends_the_forward_after_the_client_half_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let pod = tokio::spawn(async move {
            let (mut served, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut served, &mut request)
                .await
                .unwrap();
            served.write_all(b"answer to ").await.unwrap();
            served.write_all(&request).await.unwrap();
        });
        let connection = TcpStream::connect(address).await.unwrap();
        let (client, server_side) = tokio::io::duplex(1024);
        let forwarding = tokio::spawn(copy_until_pod_done(server_side, connection));
        let (mut from_server, mut to_server) = tokio::io::split(client);
        to_server.write_all(b"question").await.unwrap();
        to_server.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut from_server, &mut answer)
            .await
            .unwrap();
        assert_eq!(answer, b"answer to question");
        forwarding.await.unwrap().unwrap();
        pod.await.unwrap();
    }
}
