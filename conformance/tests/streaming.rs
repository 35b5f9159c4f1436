//! Exec, Attach and PortForward through the streaming server, as crictl, kubectl and kubelet use
//! them: the RPC returns a URL with a single-use token; the client speaks remotecommand over a
//! WebSocket's channels or over SPDY streams, and port-forward over SPDY (directly or tunnelled
//! through a WebSocket) or over kubelet's WebSocket channels.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::time::Duration;

use crius_conformance::containers::ContainerFixture;
use crius_conformance::portforward::ForwardedConnection;
use crius_conformance::remotecommand::{Output, RemoteCommand};
use crius_conformance::require_root;
use crius_conformance::spdy_portforward::SpdyPortForward;
use crius_conformance::spdy_remotecommand::{self as spdy, SpdyRemoteCommand, Streams};
use crius_conformance::spdy_upgrade::UpgradeRefused;
use crius_conformance::streaming::{
    ECHO_PORT, HTTP_PORT, Transport, V5, attach_url, blob, exec_streams, exec_url, open_fds,
    port_forward_url, serving_pod, sleeper, wait_for_processes, with_deadline,
};
use crius_conformance::websocket_portforward::{self as ws_portforward, WebSocketPortForward};
use k8s_cri::v1 as cri;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Error;

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

#[tokio::test]
async fn exec_streams_stdout_and_stderr_and_tells_the_exit_code() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    for protocols in [V5, &["v4.base64.channel.k8s.io"][..]] {
        let url = exec_url(&mut fx, &id, sh("echo out; echo err >&2; exit 3"), false).await;
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let session = RemoteCommand::connect(&url, protocols).await.unwrap();
        assert_eq!(session.protocol, protocols[0]);
        let output: Output = with_deadline("exec", session.collect()).await;
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        assert_eq!(output.exit_code(), Some(3), "{:?}", output.error);
        assert_eq!(output.status().unwrap()["reason"], "NonZeroExitCode");
    }
    let url = exec_url(&mut fx, &id, vec!["true".into()], false).await;
    let output = with_deadline(
        "exec true",
        RemoteCommand::connect(&url, V5).await.unwrap().collect(),
    )
    .await;
    assert_eq!(output.status().unwrap()["status"], "Success");
}

#[tokio::test]
async fn exec_passes_stdin_until_the_client_closes_it() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    for transport in Transport::ALL {
        let url = exec_url(&mut fx, &id, vec!["cat".into()], true).await;
        let mut session = transport.connect(&url, exec_streams(true)).await;
        session.stdin(b"hello ").await;
        session.stdin(b"world\n").await;
        session.close_stdin().await;
        let output = session.collect().await;
        assert_eq!(output.stdout, b"hello world\n", "{transport:?}");
        assert_eq!(
            output.exit_code(),
            Some(0),
            "{transport:?}: {:?}",
            output.error
        );
    }
}

#[tokio::test]
async fn a_token_is_single_use_and_an_unknown_one_is_not_found() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = exec_url(&mut fx, &id, vec!["true".into()], false).await;
    let first = RemoteCommand::connect(&url, V5).await.unwrap();
    with_deadline("exec true", first.collect()).await;
    for url in [
        url.clone(),
        format!("{}0", url.trim_end_matches(char::is_alphanumeric)),
    ] {
        match RemoteCommand::connect(&url, V5).await {
            Err(Error::Http(response)) => assert_eq!(response.status(), 404, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    let refused = fx
        .client()
        .runtime
        .exec(cri::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            tty: true,
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let refused = fx
        .client()
        .runtime
        .exec(cri::ExecRequest {
            container_id: "no-such-container".into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
}

/// Opens `url`, an exec of `sleep <seconds>` in container `id`, and goes away once the sleep
/// runs: the sleep must end, the container keep running.
async fn disconnecting_ends_the_exec(
    fx: &mut ContainerFixture,
    id: &str,
    url: &str,
    seconds: &str,
) {
    let session = RemoteCommand::connect(url, V5).await.unwrap();
    wait_for_processes(&["sleep", seconds], true).await;
    drop(session);
    wait_for_processes(&["sleep", seconds], false).await;
    assert_eq!(
        fx.status(id).await.unwrap().state,
        cri::ContainerState::ContainerRunning as i32
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_exec_ends_the_process() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = exec_url(&mut fx, &id, vec!["sleep".into(), "7919".into()], false).await;
    disconnecting_ends_the_exec(&mut fx, &id, &url, "7919").await;
}

/// A container running `cat` with stdin open, and the URL of an attach to its stdin, stdout
/// and stderr.
async fn cat_attach_url(fx: &mut ContainerFixture) -> (String, String) {
    let pod = fx.pod().await;
    let mut config = fx.config("cat", &["/bin/cat"]);
    // The container's stdin ends with the attach's only when it is for one attach.
    config.stdin = true;
    config.stdin_once = true;
    let id = fx.run(&pod, config).await;
    let url = attach_url(fx, &id, true).await;
    (id, url)
}

#[tokio::test]
async fn attach_passes_stdin_to_the_container_and_its_output_back() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    for transport in Transport::ALL {
        let (id, url) = cat_attach_url(&mut fx).await;
        let mut session = transport.connect(&url, exec_streams(true)).await;
        session.stdin(b"ping\n").await;
        assert_eq!(session.read_stdout(5).await, b"ping\n", "{transport:?}");
        session.close_stdin().await;
        let output = session.collect().await;
        assert_eq!(output.stdout, b"", "{transport:?}");
        assert_eq!(
            output.exit_code(),
            Some(0),
            "{transport:?}: {:?}",
            output.error
        );
        fx.wait_exited(&id).await;
    }
}

#[tokio::test]
async fn spdy_exec_streams_stdout_and_stderr_and_tells_the_exit_code() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let script = sh("echo out; echo err >&2; exit 3");
    let url = exec_url(&mut fx, &id, script.clone(), false).await;
    let session = SpdyRemoteCommand::connect(&url, spdy::PROTOCOLS, exec_streams(false))
        .await
        .unwrap();
    // kubelet answers v4 to client-go's offer; v5 would be the same over SPDY.
    assert!(
        [spdy::V4, spdy::V5].contains(&session.protocol.as_str()),
        "{}",
        session.protocol
    );
    let output = with_deadline("spdy exec", session.collect()).await;
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
    assert_eq!(output.exit_code(), Some(3), "{:?}", output.error);
    assert_eq!(output.status().unwrap()["reason"], "NonZeroExitCode");
    // Before v4 the error stream is plain text, as client-go's v2 decoder reads it.
    for version in [spdy::V3, spdy::V2] {
        let url = exec_url(&mut fx, &id, script.clone(), false).await;
        let session = SpdyRemoteCommand::connect(&url, &[version], exec_streams(false))
            .await
            .unwrap();
        assert_eq!(session.protocol, version);
        let output = with_deadline("spdy exec", session.collect()).await;
        assert_eq!(
            (&output.stdout[..], &output.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
        let error = output.error.as_deref().unwrap_or_default();
        assert!(error.contains("non-zero exit code"), "{version}: {error:?}");
        assert!(output.status().is_none(), "{version}: {error:?}");
    }
    let url = exec_url(&mut fx, &id, vec!["true".into()], false).await;
    let session = SpdyRemoteCommand::connect(&url, spdy::PROTOCOLS, exec_streams(false))
        .await
        .unwrap();
    let output = with_deadline("spdy exec true", session.collect()).await;
    assert_eq!(output.status().unwrap()["status"], "Success");
    let used = SpdyRemoteCommand::connect(&url, spdy::PROTOCOLS, exec_streams(false))
        .await
        .unwrap_err();
    assert_eq!(
        used.downcast_ref::<UpgradeRefused>().unwrap().status,
        404,
        "{used:#}"
    );
}

/// A port nobody in the test pod listens on.
const CLOSED_PORT: u16 = 8089;

/// Whether a transport carries a connection's half-close, each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HalfClose {
    /// SPDY's FIN: client-go half-closes its data stream at the end of its input and waits for
    /// the server to end it once the pod has sent all it will.
    Carried,
    /// kubelet's WebSocket channels: nothing tells a connection's end before the session's.
    Unseen,
}

/// Fetches [`blob`] over `connection` with HTTP/1.0 and checks it arrived whole, and that the
/// server's error stream stayed empty.
async fn fetch_blob(mut connection: ForwardedConnection, half_close: HalfClose) {
    connection
        .write_all(b"GET /blob HTTP/1.0\r\nHost: pod\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = connection.read_u8().await.unwrap_or_else(|e| {
            panic!("{e} after {:?}", String::from_utf8_lossy(&head));
        });
        head.push(byte);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim())
        .unwrap_or_else(|| panic!("no Content-Length in {head}"))
        .parse()
        .unwrap();
    let expected = blob();
    assert_eq!(length, expected.len(), "{head}");
    let mut body = vec![0; length];
    connection.read_exact(&mut body).await.unwrap();
    assert!(body == expected, "the body differs from the file served");
    if half_close == HalfClose::Carried {
        let mut rest = Vec::new();
        connection.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"");
        // A client that ends its side only after the server's end is not reset for it.
        connection.shutdown().await.unwrap();
    }
    assert_eq!(connection.error_message().await.unwrap(), None);
}

/// Sends `size` pseudo-random bytes through the echo server while reading them back; with a
/// half-close, as client-go does: the end of input, then the server's end.
async fn echo(connection: ForwardedConnection, size: usize, half_close: HalfClose) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let payload: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let (mut reader, mut writer) = tokio::io::split(connection);
    let mut echoed = Vec::with_capacity(size);
    let (written, read) = tokio::join!(
        async {
            writer.write_all(&payload).await?;
            match half_close {
                HalfClose::Carried => writer.shutdown().await,
                HalfClose::Unseen => writer.flush().await,
            }
        },
        async {
            match half_close {
                HalfClose::Carried => reader.read_to_end(&mut echoed).await,
                HalfClose::Unseen => {
                    echoed.resize(size, 0);
                    reader.read_exact(&mut echoed).await
                }
            }
        },
    );
    written.unwrap();
    read.unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "the echo differs from what was sent");
    let connection = reader.unsplit(writer);
    assert_eq!(connection.error_message().await.unwrap(), None);
}

/// A connection to a port nobody listens on ends without data, and the error stream says why.
async fn refused(mut connection: ForwardedConnection) {
    let mut data = Vec::new();
    // Ended or reset: either way no data and no hang.
    let _ = connection.read_to_end(&mut data).await;
    assert_eq!(data, b"");
    let message = connection.error_message().await.unwrap();
    let message = message.expect("no error message for a port nobody listens on");
    assert!(message.contains(&CLOSED_PORT.to_string()), "{message}");
}

/// The URL of a SPDY port-forward to a new [`serving_pod`].
async fn serving_pod_forward_url(fx: &mut ContainerFixture) -> String {
    let pod = serving_pod(fx).await;
    port_forward_url(fx, &pod, &[HTTP_PORT]).await
}

/// One connection on `forward`, then two at once, then one the client resets, then one to a
/// port nobody listens on.
async fn forward_through_one_spdy_session(forward: &SpdyPortForward) {
    with_deadline("one connection", async {
        let web = forward.forward(HTTP_PORT).await.unwrap();
        fetch_blob(web, HalfClose::Carried).await;
    })
    .await;
    with_deadline("two connections at once on one session", async {
        let (web, echoer) = tokio::join!(forward.forward(HTTP_PORT), forward.forward(ECHO_PORT));
        tokio::join!(
            fetch_blob(web.unwrap(), HalfClose::Carried),
            echo(echoer.unwrap(), 1 << 20, HalfClose::Carried)
        );
    })
    .await;
    with_deadline("a connection the client resets", async {
        let mut echoer = forward.forward(ECHO_PORT).await.unwrap();
        echoer.write_all(b"half").await.unwrap();
        let mut echoed = [0; 4];
        echoer.read_exact(&mut echoed).await.unwrap();
        // Reset before the pod's end, as client-go does when its local connection fails: that
        // is no failure to report (client-go closes the whole session on any error text).
        assert_eq!(echoer.error_message().await.unwrap(), None);
        let web = forward.forward(HTTP_PORT).await.unwrap();
        fetch_blob(web, HalfClose::Carried).await;
    })
    .await;
    with_deadline("a refused port", async {
        refused(forward.forward(CLOSED_PORT).await.unwrap()).await;
    })
    .await;
}

#[tokio::test]
async fn spdy_port_forward_reaches_pod_ports_and_tells_a_refused_one() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let url = serving_pod_forward_url(&mut fx).await;
    let forward = SpdyPortForward::connect(&url).await.unwrap();
    forward_through_one_spdy_session(&forward).await;
}

#[tokio::test]
async fn spdy_port_forward_tunnelled_through_a_websocket_reaches_pod_ports_and_tells_a_refused_one()
{
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let url = serving_pod_forward_url(&mut fx).await;
    let forward = SpdyPortForward::connect_tunnelled(&url).await.unwrap();
    forward_through_one_spdy_session(&forward).await;
}

#[tokio::test]
async fn websocket_port_forward_reaches_pod_ports_and_tells_a_refused_one() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let pod = serving_pod(&mut fx).await;
    for protocol in [ws_portforward::V4_BINARY, ws_portforward::V4_BASE64] {
        let ports = [HTTP_PORT, ECHO_PORT];
        let url = port_forward_url(&mut fx, &pod, &ports).await;
        let forward = WebSocketPortForward::connect(&url, &ports, protocol)
            .await
            .unwrap();
        assert_eq!(forward.protocol, protocol);
        let mut connections = forward.connections.into_iter();
        let (web, echoer) = (connections.next().unwrap(), connections.next().unwrap());
        assert_eq!((web.port(), echoer.port()), (HTTP_PORT, ECHO_PORT));
        with_deadline(protocol, async {
            tokio::join!(
                fetch_blob(web, HalfClose::Unseen),
                echo(echoer, 1 << 20, HalfClose::Unseen)
            );
        })
        .await;
        let url = port_forward_url(&mut fx, &pod, &[CLOSED_PORT]).await;
        let mut forward = WebSocketPortForward::connect(&url, &[CLOSED_PORT], protocol)
            .await
            .unwrap();
        with_deadline("a refused port", refused(forward.connections.remove(0))).await;
    }
}

#[tokio::test]
async fn spdy_attach_with_a_terminal_passes_its_size() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let script = "while read line; do /bin/busybox stty size; done";
    let mut config = fx.config("terminal", &["/bin/sh", "-c", script]);
    config.stdin = true;
    config.tty = true;
    let id = fx.run(&pod, config).await;
    let url = fx
        .client()
        .runtime
        .attach(cri::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            tty: true,
            stdout: true,
            stderr: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    let streams = Streams {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut session = SpdyRemoteCommand::connect(&url, spdy::PROTOCOLS, streams)
        .await
        .unwrap();
    session.resize(100, 40).await.unwrap();
    let mut stdout = Vec::new();
    with_deadline("the terminal's size", async {
        let mut buf = [0; 256];
        // A size may reach the terminal after the line that asks for it: ask until it shows.
        while !String::from_utf8_lossy(&stdout).contains("40 100") {
            session.stdin(b"\n").await.unwrap();
            let n = session.read_stdout(&mut buf).await.unwrap();
            assert_ne!(n, 0, "stdout ended after {stdout:?}");
            stdout.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    session.close_stdin().await.unwrap();
    drop(session);
    fx.stop(&id, 0).await.unwrap();
}

async fn tty_exec_url(fx: &mut ContainerFixture, id: &str, cmd: Vec<String>) -> String {
    fx.client()
        .runtime
        .exec(cri::ExecRequest {
            container_id: id.into(),
            cmd,
            tty: true,
            stdin: true,
            stdout: true,
            stderr: false,
        })
        .await
        .unwrap()
        .into_inner()
        .url
}

#[tokio::test]
async fn exec_with_a_terminal_takes_its_size_and_input_and_tells_the_exit_code() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = tty_exec_url(&mut fx, &id, vec!["/bin/sh".into()]).await;
    let mut session = RemoteCommand::connect(&url, V5).await.unwrap();
    session.resize(100, 40).await.unwrap();
    session
        .stdin(b"stty size; tty; echo hi; exit 4\n")
        .await
        .unwrap();
    let output = with_deadline("the shell on a terminal", session.collect()).await;
    let shown = String::from_utf8_lossy(&output.stdout);
    // A terminal: output lines end in \r\n (or \r\r\n, the same on a screen: runc clears ONLCR
    // on the process's terminal once the process may have written), the typed line is echoed
    // before it.
    let lines = shown.replace('\r', "");
    assert!(lines.contains("\n40 100\n"), "{shown:?}");
    assert!(lines.contains("\n/dev/pts/"), "{shown:?}");
    assert!(lines.contains("\nhi\n"), "{shown:?}");
    assert!(shown.contains("hi\r"), "{shown:?}");
    // Echoed by the terminal: once, or twice when the line arrives before the shell has turned
    // the terminal's own echo off for its line editing (typeahead, as on any terminal).
    assert!(
        (1..=2).contains(&lines.matches("stty size; tty; echo hi; exit 4").count()),
        "{shown:?}"
    );
    assert!(output.stderr.is_empty(), "{output:?}");
    assert_eq!(output.exit_code(), Some(4), "{:?}", output.error);
}

#[tokio::test]
async fn exec_with_a_terminal_follows_a_resize_while_it_runs() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = tty_exec_url(&mut fx, &id, vec!["/bin/sh".into()]).await;
    let mut session = RemoteCommand::connect(&url, V5).await.unwrap();
    session.stdin(b"echo started\n").await.unwrap();
    let mut stdout = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(20), async {
        while !String::from_utf8_lossy(&stdout)
            .replace('\r', "")
            .contains("\nstarted\n")
        {
            let (channel, data) = session.next().await.unwrap();
            assert_eq!(channel, 1, "{:?}", String::from_utf8_lossy(&data));
            stdout.extend_from_slice(&data);
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "the shell did not answer: {:?}",
        String::from_utf8_lossy(&stdout)
    );
    session.resize(120, 50).await.unwrap();
    // runc passes the size on to the process's terminal when signalled, a moment later: ask
    // until the new size shows.
    with_deadline("the new size", async {
        while !String::from_utf8_lossy(&stdout)
            .replace('\r', "")
            .contains("\n50 120\n")
        {
            session.stdin(b"stty size\n").await.unwrap();
            let asked = tokio::time::Instant::now();
            let answer = Duration::from_millis(200);
            while let Ok(next) = tokio::time::timeout_at(asked + answer, session.next()).await {
                let (channel, data) = next.unwrap();
                assert_eq!(channel, 1, "{:?}", String::from_utf8_lossy(&data));
                stdout.extend_from_slice(&data);
            }
        }
    })
    .await;
    session.stdin(b"exit\n").await.unwrap();
    let output = with_deadline("the shell's end", session.collect()).await;
    assert_eq!(output.exit_code(), Some(0), "{:?}", output.error);
}

#[tokio::test]
async fn exec_with_a_terminal_of_a_missing_binary_fails_with_runcs_reason() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = tty_exec_url(&mut fx, &id, vec!["/no/such/binary".into()]).await;
    let session = RemoteCommand::connect(&url, V5).await.unwrap();
    let output = with_deadline("the failed exec", session.collect()).await;
    let status = output.status().unwrap();
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(output.exit_code(), None, "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("/no/such/binary") && message.contains(&id),
        "{message}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_terminal_exec_ends_the_process() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = tty_exec_url(&mut fx, &id, vec!["sleep".into(), "7921".into()]).await;
    disconnecting_ends_the_exec(&mut fx, &id, &url, "7921").await;
}

#[tokio::test]
async fn terminal_execs_leave_no_fds_in_the_daemon() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let daemon = fx.pods.crius.pid().unwrap();
    let run_true = async |fx: &mut ContainerFixture| {
        let url = tty_exec_url(fx, &id, vec!["true".into()]).await;
        let session = RemoteCommand::connect(&url, V5).await.unwrap();
        let output = with_deadline("exec true", session.collect()).await;
        assert_eq!(output.exit_code(), Some(0), "{:?}", output.error);
    };
    for _ in 0..3 {
        run_true(&mut fx).await;
    }
    let before = open_fds(daemon);
    for _ in 0..20 {
        run_true(&mut fx).await;
    }
    // The client sees the close a moment before the server has dropped the last session's
    // connection and pty.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_fds(daemon) > before + 2 {
        let after = open_fds(daemon);
        assert!(
            std::time::Instant::now() < deadline,
            "crius holds {after} fds after 20 terminal execs, {before} before"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, made by openssl in `dir`.
fn loopback_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("stream.crt");
    let key = dir.join("stream.key");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=crius-stream"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // An end-entity certificate (openssl makes a CA by default, which TLS clients refuse
        // as a server's certificate).
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req: {status}");
    (cert, key)
}

#[tokio::test]
async fn with_a_certificate_the_streaming_server_speaks_https() {
    require_root!("streaming sessions");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = loopback_certificate(dir.path());
    let config = format!(
        "[stream]\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let mut fx = ContainerFixture::with(&config).await;
    let id = sleeper(&mut fx).await;
    let url = exec_url(&mut fx, &id, sh("true"), false).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // Plain HTTP is not served on the TLS port.
    let plain_url = url.replacen("https://", "http://", 1);
    let plain = reqwest::Client::new().get(&plain_url).send().await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "{plain:?}"
    );
    // A client that trusts the certificate reaches the server, which answers a request that is
    // no upgrade as it does without TLS.
    let trusted = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let answer = with_deadline("an HTTPS request", trusted.get(&url).send())
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("upgrades to SPDY/3.1 or to a WebSocket"),
        "{text}"
    );
}
