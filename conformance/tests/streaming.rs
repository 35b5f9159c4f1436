//! Exec and Attach through the streaming server over WebSocket, as crictl and kubelet use them:
//! the RPC returns a URL with a single-use token, the client speaks remotecommand's channels.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::time::{Duration, Instant};

use crius_conformance::containers::ContainerFixture;
use crius_conformance::remotecommand::{Output, RemoteCommand};
use crius_conformance::require_root;
use k8s_cri::v1 as cri;
use tokio_tungstenite::tungstenite::Error;

const V5: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

async fn sleeper(fx: &mut ContainerFixture) -> String {
    let pod = fx.pod().await;
    let config = fx.config("sleeper", &["/bin/sleep", "3600"]);
    fx.run(&pod, config).await
}

async fn exec_url(fx: &mut ContainerFixture, id: &str, cmd: Vec<String>, stdin: bool) -> String {
    fx.client()
        .runtime
        .exec(cri::ExecRequest {
            container_id: id.into(),
            cmd,
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url
}

async fn with_deadline<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in time"))
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
    let url = exec_url(&mut fx, &id, vec!["cat".into()], true).await;
    let mut session = RemoteCommand::connect(&url, V5).await.unwrap();
    session.stdin(b"hello ").await.unwrap();
    session.stdin(b"world\n").await.unwrap();
    session.close_stdin().await.unwrap();
    let output = with_deadline("cat", session.collect()).await;
    assert_eq!(output.stdout, b"hello world\n");
    assert_eq!(output.exit_code(), Some(0), "{:?}", output.error);
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

/// Pids whose command line is exactly `cmdline` (NUL-separated).
fn processes(cmdline: &[u8]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline))
        .collect()
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
    let cmdline = format!("sleep\0{seconds}\0");
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes(cmdline.as_bytes()).is_empty() {
        assert!(Instant::now() < deadline, "the exec'd sleep never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(session);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes(cmdline.as_bytes()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the exec'd sleep lives on after its client went away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

#[tokio::test]
async fn attach_passes_stdin_to_the_container_and_its_output_back() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let mut config = fx.config("cat", &["/bin/cat"]);
    config.stdin = true;
    let id = fx.run(&pod, config).await;
    let url = fx
        .client()
        .runtime
        .attach(cri::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.contains("/attach/"), "{url}");
    let mut session = RemoteCommand::connect(&url, V5).await.unwrap();
    session.stdin(b"ping\n").await.unwrap();
    let mut stdout = Vec::new();
    with_deadline("the echoed stdin", async {
        while stdout != b"ping\n" {
            let (channel, data) = session.next().await.unwrap();
            if channel == 1 {
                stdout.extend_from_slice(&data);
            }
        }
    })
    .await;
    session.close_stdin().await.unwrap();
    let output = with_deadline("the container's end", session.collect()).await;
    assert_eq!(output.exit_code(), Some(0), "{:?}", output.error);
    fx.wait_exited(&id).await;
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
    // (once) before it.
    let lines = shown.replace('\r', "");
    assert!(lines.contains("\n40 100\n"), "{shown:?}");
    assert!(lines.contains("\n/dev/pts/"), "{shown:?}");
    assert!(lines.contains("\nhi\n"), "{shown:?}");
    assert!(shown.contains("hi\r"), "{shown:?}");
    assert_eq!(
        lines.matches("stty size; tty; echo hi; exit 4").count(),
        1,
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
    // runc passes the size on when signalled: give it a moment before asking.
    tokio::time::sleep(Duration::from_millis(300)).await;
    session.stdin(b"stty size; exit\n").await.unwrap();
    let output = with_deadline("the shell's end", session.collect()).await;
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.replace('\r', "").contains("\n50 120\n"), "{shown:?}");
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
    let open_fds = || {
        std::fs::read_dir(format!("/proc/{daemon}/fd"))
            .unwrap()
            .count()
    };
    let run_true = async |fx: &mut ContainerFixture| {
        let url = tty_exec_url(fx, &id, vec!["true".into()]).await;
        let session = RemoteCommand::connect(&url, V5).await.unwrap();
        let output = with_deadline("exec true", session.collect()).await;
        assert_eq!(output.exit_code(), Some(0), "{:?}", output.error);
    };
    for _ in 0..3 {
        run_true(&mut fx).await;
    }
    let before = open_fds();
    for _ in 0..20 {
        run_true(&mut fx).await;
    }
    let after = open_fds();
    assert!(
        after <= before + 2,
        "crius holds {after} fds after 20 terminal execs, {before} before"
    );
}
