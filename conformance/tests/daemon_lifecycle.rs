//! The daemon as an operator meets it: sockets and modes, configuration errors, several
//! instances, signals, restarts after a crash, and `crius config`.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crius_conformance::daemon::{Crius, CriusPaths, crius_binary};
use k8s_cri::v1 as cri;
use nix::sys::signal::Signal;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

async fn answers_version(crius: &Crius) -> bool {
    let Ok(mut client) = crius.client().await else {
        return false;
    };
    client
        .runtime
        .version(cri::VersionRequest::default())
        .await
        .is_ok_and(|v| v.into_inner().runtime_name == "crius")
}

#[tokio::test]
async fn socket_is_0660_in_a_0700_directory_and_state_dirs_are_private() {
    let crius = Crius::start().await.unwrap();
    let socket = &crius.paths.socket;
    assert_eq!(mode(socket), 0o660);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&crius.paths.root), 0o700);
    assert_eq!(mode(&crius.paths.state_dir), 0o700);
}

#[tokio::test]
async fn malformed_config_is_refused_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let paths = CriusPaths::under(dir.path());
    std::fs::write(
        &paths.config_file,
        "[network]\ncni_conf_dir = \"/etc/cni\"\n",
    )
    .unwrap();
    let mut crius = Crius::spawn(paths.clone(), &[]).unwrap();
    let exit = crius.wait_for_exit().await.unwrap();
    assert_eq!(exit.code(), Some(1));
    let log = crius.log();
    assert!(
        log.contains(&paths.config_file.display().to_string()),
        "{log}"
    );
    assert!(log.contains("unknown field `cni_conf_dir`"), "{log}");
    for path in [&paths.socket, &paths.root, &paths.state_dir] {
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

#[tokio::test]
async fn malformed_drop_in_is_refused_naming_the_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let paths = CriusPaths::under(dir.path());
    std::fs::write(&paths.config_file, "").unwrap();
    let drop_in = dir.path().join("crius.d/50-bad.toml");
    std::fs::create_dir_all(drop_in.parent().unwrap()).unwrap();
    std::fs::write(&drop_in, "[log]\nlevel = \"loud\"\n").unwrap();
    let mut crius = Crius::spawn(paths, &[]).unwrap();
    assert_eq!(crius.wait_for_exit().await.unwrap().code(), Some(1));
    let log = crius.log();
    assert!(log.contains(&drop_in.display().to_string()), "{log}");
    assert!(log.contains("loud"), "{log}");
}

#[tokio::test]
async fn two_daemons_run_side_by_side() {
    let first = Crius::start().await.unwrap();
    let mut second = Crius::start().await.unwrap();
    assert!(answers_version(&first).await);
    assert!(answers_version(&second).await);
    assert!(
        second
            .signal_and_wait(Signal::SIGTERM)
            .await
            .unwrap()
            .success()
    );
    assert!(
        answers_version(&first).await,
        "stopping one leaves the other serving"
    );
}

#[tokio::test]
async fn second_daemon_on_a_served_socket_exits_with_a_clear_error() {
    let first = Crius::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = CriusPaths {
        socket: first.paths.socket.clone(),
        ..CriusPaths::under(dir.path())
    };
    std::fs::write(&paths.config_file, "").unwrap();
    let mut second = Crius::spawn(paths.clone(), &[]).unwrap();
    assert_eq!(second.wait_for_exit().await.unwrap().code(), Some(1));
    let log = second.log();
    assert!(log.contains("another crius is serving"), "{log}");
    assert!(
        !paths.state_dir.exists() && !paths.root.exists(),
        "refused daemon created dirs"
    );
    assert!(
        answers_version(&first).await,
        "the first daemon keeps its socket"
    );
}

async fn exits_cleanly_on(signal: Signal) {
    let mut crius = Crius::start().await.unwrap();
    let client = crius.client().await.unwrap();
    assert!(answers_version(&crius).await);
    let exit = crius.signal_and_wait(signal).await.unwrap();
    assert!(exit.success(), "{signal}: {exit}\n{}", crius.log());
    assert!(!crius.paths.socket.exists(), "socket removed on shutdown");
    assert!(crius.log().contains("shutting down"), "{}", crius.log());
    drop(client);

    let restarted = Crius::start_at(crius.paths.clone(), &[]).await.unwrap();
    assert!(answers_version(&restarted).await);
}

#[tokio::test]
async fn sigterm_stops_serving_and_exits_zero() {
    exits_cleanly_on(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_stops_serving_and_exits_zero() {
    exits_cleanly_on(Signal::SIGINT).await;
}

#[tokio::test]
async fn idle_client_connections_do_not_hold_up_shutdown() {
    // With a grace period far above the harness's patience, an exit at all proves that an idle
    // kubelet-style connection is closed instead of waited for.
    let mut crius = Crius::start_configured("shutdown_timeout = \"10m\"\n", &[])
        .await
        .unwrap();
    let mut client = crius.client().await.unwrap();
    client
        .runtime
        .version(cri::VersionRequest::default())
        .await
        .unwrap();
    assert!(
        crius
            .signal_and_wait(Signal::SIGTERM)
            .await
            .unwrap()
            .success()
    );
}

/// A client whose runtime is frozen after one call: its connection stays open and it never answers
/// the server's HTTP/2 shutdown handshake, like a hung kubelet. Dropping the guard unfreezes it.
fn stalled_client(socket: std::path::PathBuf) -> std::sync::mpsc::Sender<()> {
    let (connected_tx, connected_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut client = crius_conformance::client::CriClient::connect(&socket)
                .await
                .unwrap();
            client
                .runtime
                .version(cri::VersionRequest::default())
                .await
                .unwrap();
            connected_tx.send(()).unwrap();
            // Blocks the runtime's only thread: the connection task cannot run.
            release_rx.recv().ok();
        });
    });
    connected_rx.recv().unwrap();
    release_tx
}

#[tokio::test]
async fn a_stalled_client_holds_up_shutdown_no_longer_than_shutdown_timeout() {
    let mut crius = Crius::start_configured("shutdown_timeout = \"1s\"\n", &[])
        .await
        .unwrap();
    let _release = stalled_client(crius.paths.socket.clone());
    assert!(
        crius
            .signal_and_wait(Signal::SIGTERM)
            .await
            .unwrap()
            .success()
    );
    assert!(
        crius.log().contains("did not finish in time"),
        "{}",
        crius.log()
    );
    assert!(!crius.paths.socket.exists());
}

#[tokio::test]
async fn socket_left_by_a_killed_daemon_is_replaced_on_restart() {
    let mut crius = Crius::start().await.unwrap();
    crius.signal_and_wait(Signal::SIGKILL).await.unwrap();
    assert!(
        crius.paths.socket.exists(),
        "SIGKILL leaves the socket file"
    );
    let restarted = Crius::start_at(crius.paths.clone(), &[]).await.unwrap();
    assert!(answers_version(&restarted).await);
    assert!(
        restarted.log().contains("replacing a stale CRI socket"),
        "{}",
        restarted.log()
    );
}

#[test]
fn crius_config_prints_files_drop_ins_and_flags_merged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crius.toml");
    std::fs::write(&file, "root = \"/srv/crius\"\n[log]\nlevel = \"warn\"\n").unwrap();
    std::fs::create_dir(dir.path().join("crius.d")).unwrap();
    std::fs::write(
        dir.path().join("crius.d/10-net.toml"),
        "[network]\ncni_config_dir = \"/x\"\n",
    )
    .unwrap();
    let output = Command::new(crius_binary().unwrap())
        .arg("config")
        .arg(format!("--config={}", file.display()))
        .args([
            "--cni-plugin-dir=/p1",
            "--cni-plugin-dir=/p2",
            "--listen=/run/other.sock",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: toml::Table = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(printed["root"].as_str(), Some("/srv/crius"));
    assert_eq!(printed["listen"].as_str(), Some("/run/other.sock"));
    assert_eq!(
        printed["state_dir"].as_str(),
        Some("/run/crius"),
        "defaults are printed too"
    );
    assert_eq!(printed["log"]["level"].as_str(), Some("warn"));
    assert_eq!(printed["network"]["cni_config_dir"].as_str(), Some("/x"));
    let plugin_dirs: Vec<_> = printed["network"]["cni_plugin_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(plugin_dirs, ["/p1", "/p2"]);
}

#[test]
fn crius_version_flag_prints_the_crate_version() {
    let output = Command::new(crius_binary().unwrap())
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        format!("crius {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn each_rpc_is_logged_in_its_own_span_as_text_or_json() {
    let text = Crius::start().await.unwrap();
    assert!(answers_version(&text).await);
    let log = text.log();
    assert!(
        log.contains(r#"rpc{method="/runtime.v1.RuntimeService/Version"}"#),
        "{log}"
    );

    let json = Crius::start_configured("[log]\nformat = \"json\"\n", &[])
        .await
        .unwrap();
    assert!(answers_version(&json).await);
    let lines: Vec<serde_json::Value> = json
        .log()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line["span"]["method"] == "/runtime.v1.RuntimeService/Version"),
        "{lines:?}"
    );
}
