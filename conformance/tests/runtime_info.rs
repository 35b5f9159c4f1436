//! Version, Status, RuntimeConfig and the RPCs not built yet, over the socket as crictl calls them.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::collections::HashMap;
use std::path::Path;

use crius_conformance::cni::{DEBIAN_PLUGIN_DIR, bridge_conflist, write_config};
use crius_conformance::daemon::{Crius, CriusPaths};
use k8s_cri::v1 as cri;
use tonic::Code;

fn condition<'a>(status: &'a cri::StatusResponse, kind: &str) -> &'a cri::RuntimeCondition {
    status
        .status
        .as_ref()
        .expect("status present")
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {status:?}"))
}

async fn status(crius: &Crius, verbose: bool) -> cri::StatusResponse {
    let mut client = crius.client().await.unwrap();
    client
        .runtime
        .status(cri::StatusRequest { verbose })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn version_names_crius_and_cri_v1() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.client().await.unwrap();
    let version = client
        .runtime
        .version(cri::VersionRequest {
            version: "0.1.0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.version, "0.1.0");
    assert_eq!(version.runtime_name, "crius");
    assert_eq!(version.runtime_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(version.runtime_api_version, "v1");
}

#[tokio::test]
async fn network_is_not_ready_without_a_cni_config() {
    let crius = Crius::start().await.unwrap();
    let status = status(&crius, false).await;
    assert!(condition(&status, "RuntimeReady").status);
    let network = condition(&status, "NetworkReady");
    assert!(!network.status);
    assert_eq!(network.reason, "NetworkPluginNotReady");
    let dir = crius.paths.cni_config_dir.display().to_string();
    assert!(network.message.contains(&dir), "{}", network.message);
    assert!(status.info.is_empty(), "info only when verbose");
}

#[tokio::test]
async fn network_readiness_follows_the_cni_config_dir_without_a_restart() {
    let crius = Crius::start().await.unwrap();
    let dir = &crius.paths.cni_config_dir;
    assert!(!condition(&status(&crius, false).await, "NetworkReady").status);

    write_config(
        dir,
        "10-crius.conflist",
        &bridge_conflist("crius", "crius0", "10.88.0.0/16"),
    )
    .unwrap();
    let ready = status(&crius, true).await;
    let network = condition(&ready, "NetworkReady");
    assert!(network.status, "{network:?}");
    assert!(
        network.reason.is_empty() && network.message.is_empty(),
        "{network:?}"
    );
    let info: serde_json::Value = serde_json::from_str(&ready.info["network"]).unwrap();
    assert_eq!(info["name"], "crius");
    assert_eq!(info["plugins"], serde_json::json!(["bridge", "portmap"]));

    let missing_plugin =
        r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}"#;
    write_config(dir, "10-crius.conflist", missing_plugin).unwrap();
    let status = status(&crius, false).await;
    let network = condition(&status, "NetworkReady");
    assert!(!network.status);
    assert!(
        network.message.contains("10-crius.conflist"),
        "{}",
        network.message
    );
    assert!(
        network.message.contains("\"no-such-plugin\" not found"),
        "{}",
        network.message
    );
}

#[tokio::test]
async fn verbose_status_carries_the_effective_config_and_the_sandbox_image() {
    // A port free a moment ago, rather than a fixed one something on the host may hold.
    let stream_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let crius = Crius::start_configured(
        "[image]\nsandbox_image = \"registry.example/pause:9\"\n",
        &[&format!("--stream-port={stream_port}")],
    )
    .await
    .unwrap();
    let status = status(&crius, true).await;
    let config: serde_json::Value = serde_json::from_str(&status.info["config"]).unwrap();
    assert_eq!(
        config["sandboxImage"], "registry.example/pause:9",
        "kubeadm reads this key"
    );
    assert_eq!(config["listen"], crius.paths.socket.display().to_string());
    assert_eq!(
        config["stateDir"],
        crius.paths.state_dir.display().to_string()
    );
    assert_eq!(config["stream"]["port"], stream_port);
    assert_eq!(config["network"]["cniPluginDirs"][0], DEBIAN_PLUGIN_DIR);
    assert_eq!(config["runtime"]["cgroupDriver"], "cgroupfs");
}

#[tokio::test]
async fn runtime_config_reports_cgroupfs_by_default() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.client().await.unwrap();
    let config = client
        .runtime
        .runtime_config(cri::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let linux = config.linux.expect("linux runtime config");
    assert_eq!(linux.cgroup_driver(), cri::CgroupDriver::Cgroupfs);
}

#[tokio::test]
async fn systemd_cgroup_driver_is_reported_where_systemd_runs_and_refused_elsewhere() {
    if Path::new("/run/systemd/system").is_dir() {
        let crius = Crius::start_configured("[runtime]\ncgroup_driver = \"systemd\"\n", &[])
            .await
            .unwrap();
        let mut client = crius.client().await.unwrap();
        let config = client
            .runtime
            .runtime_config(cri::RuntimeConfigRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            config.linux.unwrap().cgroup_driver(),
            cri::CgroupDriver::Systemd
        );
    } else {
        let dir = tempfile::tempdir().unwrap();
        let paths = CriusPaths::under(dir.path());
        std::fs::write(
            &paths.config_file,
            "[runtime]\ncgroup_driver = \"systemd\"\n",
        )
        .unwrap();
        let mut crius = Crius::spawn(paths, &[]).unwrap();
        let exit = crius.wait_for_exit().await.unwrap();
        assert_eq!(exit.code(), Some(1));
        let log = crius.log();
        assert!(log.contains("cgroup driver systemd needs systemd"), "{log}");
        assert!(!crius.paths.socket.exists());
    }
}

#[tokio::test]
async fn rpcs_not_built_yet_answer_unimplemented_naming_the_rpc() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.client().await.unwrap();
    let mut answers: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "GetContainerEvents",
            client
                .runtime
                .get_container_events(cri::GetEventsRequest::default())
                .await
                .map(drop),
        ),
        (
            "UpdateRuntimeConfig",
            client
                .runtime
                .update_runtime_config(cri::UpdateRuntimeConfigRequest::default())
                .await
                .map(drop),
        ),
    ];
    for (rpc, answer) in answers.drain(..) {
        let status = answer.expect_err(rpc);
        assert_eq!(status.code(), Code::Unimplemented, "{rpc}: {status:?}");
        assert!(
            status.message().contains(rpc),
            "{rpc}: {}",
            status.message()
        );
    }
}

#[tokio::test]
async fn requests_up_to_kubelets_16_mib_limit_are_accepted() {
    let crius = Crius::start().await.unwrap();
    let mut client = crius.client().await.unwrap();
    let big = "a".repeat(15 * 1024 * 1024);
    let request = cri::RunPodSandboxRequest {
        config: Some(cri::PodSandboxConfig {
            annotations: HashMap::from([("big".to_string(), big)]),
            ..Default::default()
        }),
        runtime_handler: String::new(),
    };
    let status = client.runtime.run_pod_sandbox(request).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "decoded, then refused for its missing metadata: {status:?}"
    );
}

#[tokio::test]
async fn a_configured_network_name_picks_that_network_over_the_first_file() {
    let crius = Crius::start_configured("[network]\nnetwork_name = \"second\"\n", &[])
        .await
        .unwrap();
    let dir = &crius.paths.cni_config_dir;
    write_config(
        dir,
        "10-first.conflist",
        &bridge_conflist("first", "crius1", "10.88.0.0/16"),
    )
    .unwrap();
    let missing = status(&crius, false).await;
    let network = condition(&missing, "NetworkReady");
    assert!(!network.status);
    assert!(
        network.message.contains("is not the configured \"second\""),
        "{}",
        network.message
    );

    write_config(
        dir,
        "20-second.conflist",
        &bridge_conflist("second", "crius2", "10.89.0.0/16"),
    )
    .unwrap();
    let ready = status(&crius, true).await;
    assert!(condition(&ready, "NetworkReady").status);
    let info: serde_json::Value = serde_json::from_str(&ready.info["network"]).unwrap();
    assert_eq!(info["name"], "second");
}
