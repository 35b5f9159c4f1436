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

#[tokio::test]
async fn a_client_that_disconnects_mid_exec_ends_the_process() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx).await;
    let url = exec_url(&mut fx, &id, vec!["sleep".into(), "7919".into()], false).await;
    let session = RemoteCommand::connect(&url, V5).await.unwrap();
    let cmdline = b"sleep\x007919\x00";
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes(cmdline).is_empty() {
        assert!(Instant::now() < deadline, "the exec'd sleep never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(session);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes(cmdline).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the exec'd sleep lives on after its client went away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fx.status(&id).await.unwrap().state,
        cri::ContainerState::ContainerRunning as i32
    );
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
