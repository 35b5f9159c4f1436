#![allow(clippy::unwrap_used)]
//! Sessions over in-memory transports: our client against our server, and a raw frame peer
//! that behaves like moby/spdystream (no SETTINGS, no WINDOW_UPDATE) or like a hostile one.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use crius_spdy::{
    Frame, FrameDecoder, FrameEncoder, FrameLimits, GoAwayStatus, Headers, Role, RstStatus,
    Session, SessionConfig, SpdyError, SpdyErrorKind, Stream,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(20);

fn pair_with(client: SessionConfig, server: SessionConfig, buffer: usize) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(buffer);
    (
        Session::new(a, Role::Client, client),
        Session::new(b, Role::Server, server),
    )
}

fn pair() -> (Session, Session) {
    pair_with(
        SessionConfig::default(),
        SessionConfig::default(),
        64 * 1024,
    )
}

/// Bytes that differ by position, so a lost or reordered chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    timeout(PATIENCE, future).await.expect("timed out")
}

/// Waits for both sessions' tasks to be gone.
async fn both_closed(client: &Session, server: &Session) {
    within(client.closed()).await;
    within(server.closed()).await;
}

/// Opens a stream from `client` and accepts it on `server`: (the client's, the server's).
async fn open_pair(client: &Session, server: &Session) -> (Stream, Stream) {
    let (opened, accepted) = within(async {
        tokio::join!(client.open(Headers::new()), async {
            server.accept().await.unwrap().accept(Headers::new())
        })
    })
    .await;
    (opened.unwrap(), accepted)
}

#[tokio::test]
async fn open_and_accept_exchange_headers_and_data_with_fin() {
    let (client, server) = pair();
    let server_side = tokio::spawn(async move {
        let incoming = server.accept().await.unwrap();
        assert_eq!(incoming.id(), 1);
        assert_eq!(incoming.headers().get("streamtype"), Some("stdin"));
        let mut stream = incoming.accept(Headers::new().with("x-reply", "yes"));
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"from the client");
        stream.write_all(b"from the server").await.unwrap();
        stream.shutdown().await.unwrap();
        server
    });
    let mut stream = within(client.open(Headers::new().with("streamType", "stdin")))
        .await
        .unwrap();
    assert_eq!(stream.id(), 1);
    assert_eq!(stream.headers().get("x-reply"), Some("yes"));
    stream.write_all(b"from the client").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut got = Vec::new();
    within(stream.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, b"from the server");
    let server = within(server_side).await.unwrap();
    drop(stream);
    drop(client);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_streams_carry_data_at_once() {
    let (client, server) = pair();
    let server_side = tokio::spawn(async move {
        let mut echoes = Vec::new();
        for _ in 0..8 {
            let incoming = server.accept().await.unwrap();
            let kind = incoming.headers().get("streamtype").unwrap().to_owned();
            let stream = incoming.accept(Headers::new());
            echoes.push(tokio::spawn(async move {
                let (mut recv, mut send) = stream.into_split();
                send.write_all(kind.as_bytes()).await.unwrap();
                tokio::io::copy(&mut recv, &mut send).await.unwrap();
                send.shutdown().await.unwrap();
            }));
        }
        for echo in echoes {
            echo.await.unwrap();
        }
        server
    });
    let mut clients = Vec::new();
    for i in 0..8u8 {
        let stream = within(client.open(Headers::new().with("streamtype", &format!("s{i}"))))
            .await
            .unwrap();
        clients.push(tokio::spawn(async move {
            let (mut recv, mut send) = stream.into_split();
            let data = pattern(200 * 1024, i);
            let expected = [format!("s{i}").into_bytes(), data.clone()].concat();
            let writer = tokio::spawn(async move {
                send.write_all(&data).await.unwrap();
                send.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            recv.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            assert_eq!(got, expected);
        }));
    }
    for client_stream in clients {
        within(client_stream).await.unwrap();
    }
    let server = within(server_side).await.unwrap();
    drop(client);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_each_way_pass_through_flow_control() {
    // A small transport buffer: the windows, not the pipe, do the pacing.
    let (client, server) = pair_with(SessionConfig::default(), SessionConfig::default(), 8192);
    const LEN: usize = 10 * 1024 * 1024;
    let server_side = tokio::spawn(async move {
        let stream = server.accept().await.unwrap().accept(Headers::new());
        let (mut recv, mut send) = stream.into_split();
        let writer = tokio::spawn(async move {
            send.write_all(&pattern(LEN, 0x55)).await.unwrap();
            send.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        recv.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(
            got == pattern(LEN, 0xaa),
            "server got {} bytes, not the client's",
            got.len()
        );
        server
    });
    let stream = within(client.open(Headers::new())).await.unwrap();
    let (mut recv, mut send) = stream.into_split();
    let writer = tokio::spawn(async move {
        send.write_all(&pattern(LEN, 0xaa)).await.unwrap();
        send.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    within(recv.read_to_end(&mut got)).await.unwrap();
    within(writer).await.unwrap();
    assert!(
        got == pattern(LEN, 0x55),
        "client got {} bytes, not the server's",
        got.len()
    );
    let server = within(server_side).await.unwrap();
    drop(recv);
    drop(client);
    drop(server);
}

#[tokio::test]
async fn a_receiver_that_does_not_read_holds_the_sender_to_its_window() {
    let (client, server) = pair();
    let (mut opened, mut accepted) = open_pair(&client, &server).await;
    let chunk = vec![7u8; 4096];
    let mut written = 0;
    // Write until the writes block: the peer's 64 KiB window plus our 64 KiB send buffer.
    while let Ok(result) = timeout(Duration::from_millis(300), opened.write(&chunk)).await {
        written += result.unwrap();
        assert!(
            written <= 200 * 1024,
            "wrote {written} bytes past every window"
        );
    }
    assert!(written >= 64 * 1024, "only {written} bytes went out");
    assert!(
        written <= 128 * 1024 + 4096,
        "{written} bytes: the window was not kept"
    );
    // Reading returns window: the rest goes through.
    let reader = tokio::spawn(async move {
        let mut total = 0;
        let mut buf = vec![0; 8192];
        loop {
            let n = accepted.read(&mut buf).await.unwrap();
            if n == 0 {
                break total;
            }
            total += n;
        }
    });
    let more = vec![8u8; 512 * 1024];
    within(opened.write_all(&more)).await.unwrap();
    within(opened.shutdown()).await.unwrap();
    let total = within(reader).await.unwrap();
    assert_eq!(total, written + more.len());
    drop(opened);
    drop(client);
    drop(server);
}

#[tokio::test]
async fn a_reset_fails_the_peer_reads_and_writes() {
    let (client, server) = pair();
    let (opened, mut accepted) = open_pair(&client, &server).await;
    opened.reset(RstStatus::CANCEL);
    let mut buf = [0u8; 16];
    let error = within(accepted.read(&mut buf)).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    let spdy = error
        .get_ref()
        .unwrap()
        .downcast_ref::<SpdyError>()
        .unwrap();
    assert!(matches!(
        spdy,
        SpdyError::StreamReset {
            stream_id: 1,
            status: RstStatus::CANCEL
        }
    ));
    let error = accepted.write_all(b"late").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    // Our own side of the reset stream fails too.
    let mut opened = opened;
    assert!(opened.write_all(b"x").await.is_err());
    // The session goes on.
    let (_, accepted) = open_pair(&client, &server).await;
    assert_eq!(accepted.id(), 3);
}

#[tokio::test]
async fn a_refused_stream_fails_open() {
    let (client, server) = pair();
    let opening = tokio::spawn(async move {
        let result = client
            .open(Headers::new().with("streamtype", "bogus"))
            .await;
        (client, result)
    });
    let incoming = within(server.accept()).await.unwrap();
    incoming.refuse();
    let (client, result) = within(opening).await.unwrap();
    let error = result.unwrap_err();
    assert!(
        matches!(error, SpdyError::StreamRefused { stream_id: 1 }),
        "{error}"
    );
    assert_eq!(error.kind(), SpdyErrorKind::Reset);
    drop(client);
}

#[tokio::test]
async fn pings_are_answered_both_ways() {
    let (client, server) = pair();
    within(client.ping()).await.unwrap();
    within(server.ping()).await.unwrap();
    let (a, b) = tokio::join!(client.ping(), client.ping());
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn go_away_lets_open_streams_finish_then_ends_the_session() {
    let (client, server) = pair();
    let (mut opened, mut accepted) = open_pair(&client, &server).await;

    server.go_away();
    assert!(within(server.accept()).await.is_none());
    // The client learns of it; it may open no more streams.
    let refused = within(async {
        loop {
            match client.open(Headers::new()).await {
                Err(SpdyError::GoingAway) => break,
                Ok(stream) => drop(stream),
                Err(other) => panic!("{other}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    refused.await;
    assert!(within(client.accept()).await.is_none());

    // The stream that was open still works both ways.
    opened.write_all(b"still here").await.unwrap();
    opened.shutdown().await.unwrap();
    let mut got = Vec::new();
    within(accepted.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, b"still here");
    accepted.write_all(b"me too").await.unwrap();
    accepted.shutdown().await.unwrap();
    let mut got = Vec::new();
    within(opened.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, b"me too");

    // Once it is done and its handles gone, both sessions end.
    drop(opened);
    drop(accepted);
    both_closed(&client, &server).await;
    assert!(server.close_reason().is_some());
    assert!(matches!(
        client.open(Headers::new()).await,
        Err(SpdyError::SessionClosed { .. })
    ));
}

#[tokio::test]
async fn dropping_a_session_ends_it_once_its_streams_are_done() {
    let (client, server) = pair();
    let (mut opened, mut accepted) = open_pair(&client, &server).await;
    drop(server);
    // The stream outlives its session handle.
    accepted.write_all(b"bye").await.unwrap();
    accepted.shutdown().await.unwrap();
    let mut got = Vec::new();
    within(opened.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, b"bye");
    drop(accepted);
    drop(opened);
    within(client.closed()).await;
}

/// Copies between two transports until told to stop, then drops both: a connection that dies.
async fn cuttable_link<A, B>(a: A, b: B, cut: tokio::sync::oneshot::Receiver<()>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut a = a;
    let mut b = b;
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
        _ = cut => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_dropped_mid_stream_ends_both_sessions_and_every_stream() {
    let (client_io, link_a) = tokio::io::duplex(16 * 1024);
    let (link_b, server_io) = tokio::io::duplex(16 * 1024);
    let (cut, cut_rx) = tokio::sync::oneshot::channel();
    let link = tokio::spawn(cuttable_link(link_a, link_b, cut_rx));
    let client = Session::new(client_io, Role::Client, SessionConfig::default());
    let server = Session::new(server_io, Role::Server, SessionConfig::default());

    let (opened, accepted) = open_pair(&client, &server).await;
    let (mut client_recv, mut client_send) = opened.into_split();
    let (mut server_recv, mut server_send) = accepted.into_split();

    // Traffic both ways, endless until the link goes.
    let client_writer = tokio::spawn(async move {
        let chunk = vec![1u8; 16 * 1024];
        loop {
            if client_send.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let server_writer = tokio::spawn(async move {
        let chunk = vec![2u8; 16 * 1024];
        loop {
            if server_send.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0;
    while seen < 1024 * 1024 {
        seen += within(client_recv.read(&mut buf)).await.unwrap();
    }
    cut.send(()).unwrap();
    within(link).await.unwrap();

    // Both ends read to an error (not a clean end of file: nobody sent FIN).
    let client_error = within(async {
        loop {
            match client_recv.read(&mut buf).await {
                Ok(0) => panic!("end of file without FIN"),
                Ok(_) => continue,
                Err(error) => break error,
            }
        }
    })
    .await;
    assert_eq!(client_error.kind(), std::io::ErrorKind::ConnectionAborted);
    let server_error = within(async {
        loop {
            match server_recv.read(&mut buf).await {
                Ok(0) => panic!("end of file without FIN"),
                Ok(_) => continue,
                Err(error) => break error,
            }
        }
    })
    .await;
    assert_eq!(server_error.kind(), std::io::ErrorKind::ConnectionAborted);
    within(client_writer).await.unwrap();
    within(server_writer).await.unwrap();
    // The tasks of both sessions are gone, with the stream handles still alive.
    both_closed(&client, &server).await;
    assert!(within(server.accept()).await.is_none());
    assert!(within(client.ping()).await.is_err());
}

#[tokio::test]
async fn a_peer_stream_limit_is_kept_when_opening() {
    let server_config = SessionConfig {
        max_streams: 2,
        ..SessionConfig::default()
    };
    let (client, server) = pair_with(SessionConfig::default(), server_config, 64 * 1024);
    let mut streams = Vec::new();
    for _ in 0..2 {
        streams.push(open_pair(&client, &server).await);
    }
    let error = within(client.open(Headers::new())).await.unwrap_err();
    assert!(
        matches!(error, SpdyError::TooManyStreams { max: 2 }),
        "{error}"
    );
    assert_eq!(error.kind(), SpdyErrorKind::Limit);
}

#[tokio::test]
async fn data_for_a_dropped_reader_does_not_stall_the_session() {
    let (client, server) = pair();
    let (mut opened, accepted) = open_pair(&client, &server).await;
    let (recv, _send) = accepted.into_split();
    drop(recv);
    // Far more than every window: discarded data must still return session window.
    within(opened.write_all(&vec![0u8; 4 * 1024 * 1024]))
        .await
        .unwrap();
    // Another stream still flows.
    let (mut other, mut second) = open_pair(&client, &server).await;
    other.write_all(b"through").await.unwrap();
    other.shutdown().await.unwrap();
    let mut got = Vec::new();
    within(second.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, b"through");
}

/// A peer made of the codec alone: it sends only what a test tells it to.
struct RawPeer {
    io: DuplexStream,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl RawPeer {
    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            encoder: FrameEncoder::new().unwrap(),
            decoder: FrameDecoder::new(FrameLimits::default()),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut wire = BytesMut::new();
        self.encoder.encode(&frame, &mut wire).unwrap();
        self.io.write_all(&wire).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next frame, `None` at end of file.
    async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            if within(self.io.read_buf(&mut self.buf)).await.unwrap() == 0 {
                return None;
            }
        }
    }

    /// The next frame that is not SETTINGS or WINDOW_UPDATE (which spdystream ignores).
    async fn recv_significant(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await? {
                Frame::Settings { .. } | Frame::WindowUpdate { .. } => continue,
                frame => return Some(frame),
            }
        }
    }
}

fn raw_server(config: SessionConfig) -> (RawPeer, Session) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    (RawPeer::new(a), Session::new(b, Role::Server, config))
}

fn syn_stream(stream_id: u32, headers: Headers) -> Frame {
    Frame::SynStream {
        stream_id,
        associated_stream_id: 0,
        priority: 0,
        fin: false,
        unidirectional: false,
        headers,
    }
}

#[tokio::test]
async fn a_spdystream_like_peer_without_flow_control_gets_and_sends_past_the_window() {
    let (mut peer, server) = raw_server(SessionConfig::default());
    peer.send(syn_stream(
        1,
        Headers::new()
            .with("streamtype", "data")
            .with("port", "80")
            .with("requestid", "0"),
    ))
    .await;
    let incoming = within(server.accept()).await.unwrap();
    assert_eq!(incoming.headers().get("port"), Some("80"));
    assert_eq!(incoming.headers().get("requestid"), Some("0"));
    let mut stream = incoming.accept(Headers::new());
    match peer.recv_significant().await.unwrap() {
        Frame::SynReply { stream_id: 1, .. } => {}
        other => panic!("{other:?}"),
    }
    // Our side sends a megabyte though the peer never returns window.
    const LEN: usize = 1024 * 1024;
    let writer = tokio::spawn(async move {
        stream.write_all(&pattern(LEN, 3)).await.unwrap();
        stream.shutdown().await.unwrap();
        stream
    });
    let mut got = Vec::new();
    loop {
        match peer.recv_significant().await.unwrap() {
            Frame::Data {
                stream_id: 1,
                fin,
                data,
            } => {
                got.extend_from_slice(&data);
                if fin {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(got == pattern(LEN, 3));
    let mut stream = within(writer).await.unwrap();
    // The peer sends a megabyte in frames of 32 KiB without waiting for window; our reader,
    // slower, holds the transport back instead of buffering it all.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        got
    });
    for chunk in pattern(LEN, 9).chunks(32 * 1024) {
        peer.send(Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::copy_from_slice(chunk),
        })
        .await;
    }
    peer.send(Frame::Data {
        stream_id: 1,
        fin: true,
        data: Bytes::new(),
    })
    .await;
    assert!(within(reader).await.unwrap() == pattern(LEN, 9));
    // spdystream's ping ids from a client are odd; we echo them.
    peer.send(Frame::Ping { id: 5 }).await;
    assert_eq!(peer.recv_significant().await, Some(Frame::Ping { id: 5 }));
    // Its Close: GOAWAY, then the connection goes.
    peer.send(Frame::GoAway {
        last_good_stream_id: 0,
        status: GoAwayStatus::OK,
    })
    .await;
    drop(peer);
    within(server.closed()).await;
}

#[tokio::test]
async fn streams_past_the_limit_are_refused() {
    let config = SessionConfig {
        max_streams: 2,
        ..SessionConfig::default()
    };
    let (mut peer, server) = raw_server(config);
    for id in [1, 3, 5] {
        peer.send(syn_stream(id, Headers::new())).await;
    }
    assert_eq!(
        peer.recv_significant().await,
        Some(Frame::RstStream {
            stream_id: 5,
            status: RstStatus::REFUSED_STREAM
        })
    );
    assert_eq!(within(server.accept()).await.unwrap().id(), 1);
    assert_eq!(within(server.accept()).await.unwrap().id(), 3);
}

#[tokio::test]
async fn an_oversized_frame_ends_the_session_with_a_protocol_error() {
    let config = SessionConfig {
        limits: FrameLimits {
            max_frame_len: 4096,
            ..FrameLimits::default()
        },
        ..SessionConfig::default()
    };
    let (mut peer, server) = raw_server(config);
    // A DATA header announcing 1 MiB.
    peer.send_raw(&[0, 0, 0, 1, 0, 0x10, 0, 0]).await;
    assert_eq!(
        peer.recv_significant().await,
        Some(Frame::GoAway {
            last_good_stream_id: 0,
            status: GoAwayStatus::PROTOCOL_ERROR
        })
    );
    assert_eq!(peer.recv().await, None);
    within(server.closed()).await;
    assert!(server.close_reason().unwrap().contains("over the limit"));
}

#[tokio::test]
async fn a_header_bomb_ends_the_session_with_a_protocol_error() {
    let (mut peer, server) = raw_server(SessionConfig::default());
    peer.send(syn_stream(
        1,
        Headers::new().with("bomb", &"x".repeat(8 << 20)),
    ))
    .await;
    assert!(matches!(
        peer.recv_significant().await,
        Some(Frame::GoAway {
            status: GoAwayStatus::PROTOCOL_ERROR,
            ..
        })
    ));
    within(server.closed()).await;
    assert!(within(server.accept()).await.is_none());
}

#[tokio::test]
async fn stream_ids_out_of_order_end_the_session() {
    let (mut peer, server) = raw_server(SessionConfig::default());
    peer.send(syn_stream(3, Headers::new())).await;
    peer.send(syn_stream(1, Headers::new())).await;
    assert!(matches!(
        peer.recv_significant().await,
        Some(Frame::GoAway {
            last_good_stream_id: 3,
            status: GoAwayStatus::PROTOCOL_ERROR,
        })
    ));
    within(server.closed()).await;
}

#[tokio::test]
async fn a_ping_flood_the_peer_does_not_read_ends_the_session() {
    let (a, b) = tokio::io::duplex(1024);
    let server = Session::new(b, Role::Server, SessionConfig::default());
    let mut peer = RawPeer::new(a);
    // Never read: our replies pile up until the bound.
    let flood = async {
        for id in (1..).step_by(2).take(100_000) {
            let mut wire = BytesMut::new();
            peer.encoder.encode(&Frame::Ping { id }, &mut wire).unwrap();
            if peer.io.write_all(&wire).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = flood => {}
        _ = server.closed() => {}
    }
    within(server.closed()).await;
    assert!(server.close_reason().unwrap().contains("control frames"));
}

#[tokio::test]
async fn abort_ends_the_session_at_once_and_fails_its_streams() {
    let (client, server) = pair();
    let (mut opened, mut accepted) = open_pair(&client, &server).await;
    opened.write_all(b"unread").await.unwrap();
    server.abort();
    within(server.closed()).await;
    // Our streams fail, the peer sees the connection go.
    let mut buf = [0u8; 64];
    loop {
        match within(accepted.read(&mut buf)).await {
            Ok(0) => panic!("end of file without FIN"),
            Ok(_) => continue,
            Err(error) => {
                assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
                break;
            }
        }
    }
    assert!(accepted.write_all(b"x").await.is_err());
    within(client.closed()).await;
    assert!(within(opened.read(&mut buf)).await.is_err());
}
