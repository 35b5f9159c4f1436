//! Pod sandbox lifecycle: RunPodSandbox, then StopPodSandbox plus RemovePodSandbox, for 50 pods
//! one after another, on crius and on containerd 1.6 from Debian (its pause image served by a
//! loopback registry), with the same CNI conflist (bridge + portmap, Debian's plugins); and the
//! floor no runtime can beat: `ip netns add` plus the plugins' own ADD (loopback, bridge,
//! portmap), and their DEL plus `ip netns del`, for the same conflist, in the same run.
//!
//! Run: `cargo build --release --bins && cargo bench -p crius-conformance --bench pod_lifecycle`
//! (`BENCH_PODS` sets the number of pods, 50 by default).

#![allow(clippy::print_stdout)] // the report on stdout is this program's output

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crius_cni::exec::Attachment;
use crius_conformance::bench::{
    bridge_network, count_from_env, median, push_pause_image, remove_cgroup_tree, report,
};
use crius_conformance::client::CriClient;
use crius_conformance::cni::{DEBIAN_PLUGIN_DIR, write_config};
use crius_conformance::containerd::Containerd;
use crius_conformance::daemon::{Crius, CriusPaths};
use crius_conformance::registry::TestRegistry;
use k8s_cri::v1 as cri;

const BRIDGE: &str = "criusbench0";
const SUBNET: &str = "10.231.0.0/16";

fn pod_config(n: usize) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("bench-{n}"),
            uid: format!("bench-uid-{n}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("/crius-bench/pod{n}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Times RunPodSandbox for each pod, then Stop+Remove for each.
async fn lifecycle(
    client: &mut CriClient,
    pods: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut ids = Vec::new();
    let mut runs = Vec::new();
    for n in 0..pods {
        let started = Instant::now();
        let id = client
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod_config(n)),
                runtime_handler: String::new(),
            })
            .await
            .context("RunPodSandbox")?
            .into_inner()
            .pod_sandbox_id;
        runs.push(started.elapsed());
        ids.push(id);
    }
    let mut removals = Vec::new();
    for id in ids {
        let started = Instant::now();
        client
            .runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .context("StopPodSandbox")?;
        client
            .runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
            .await
            .context("RemovePodSandbox")?;
        removals.push(started.elapsed());
    }
    Ok((runs, removals))
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ip").args(args).status().context("run ip")?;
    if !status.success() {
        bail!("ip {args:?}: {status}");
    }
    Ok(())
}

/// `ip netns add` plus the plugins' ADD, then their DEL plus `ip netns del`, per pod.
async fn floor(cni_dir: &Path, pods: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let plugin_dirs = [PathBuf::from(DEBIAN_PLUGIN_DIR)];
    let network = crius_cni::load_default_network(cni_dir, &plugin_dirs)?;
    let loopback_dir = tempfile::tempdir()?;
    write_config(
        loopback_dir.path(),
        "lo.conf",
        r#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#,
    )?;
    let loopback = crius_cni::load_default_network(loopback_dir.path(), &plugin_dirs)?;
    let timeout = Duration::from_secs(60);
    let mut adds = Vec::new();
    let mut dels = Vec::new();
    for n in 0..pods {
        let name = format!("crius-floor-{n}");
        let attachment = |ifname: &str| Attachment {
            container_id: format!("{:064x}", n + 1),
            netns: PathBuf::from(format!("/var/run/netns/{name}")),
            ifname: ifname.into(),
            pod_name: format!("bench-{n}"),
            pod_namespace: "bench".into(),
            pod_uid: format!("bench-uid-{n}"),
            port_mappings: Vec::new(),
            bandwidth: None,
            dns: None,
        };
        let started = Instant::now();
        ip(&["netns", "add", &name])?;
        loopback
            .add(&attachment("lo"), &plugin_dirs, timeout)
            .await?;
        let result = network
            .add(&attachment("eth0"), &plugin_dirs, timeout)
            .await?;
        adds.push(started.elapsed());
        let started = Instant::now();
        network
            .del(
                &attachment("eth0"),
                Some(&result.result),
                &plugin_dirs,
                timeout,
            )
            .await?;
        loopback
            .del(&attachment("lo"), None, &plugin_dirs, timeout)
            .await?;
        ip(&["netns", "del", &name])?;
        dels.push(started.elapsed());
    }
    Ok((adds, dels))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pods = count_from_env("BENCH_PODS", 50);
    let dir = tempfile::tempdir()?;
    let cni_dir = bridge_network(dir.path(), BRIDGE, SUBNET)?;

    let paths = CriusPaths {
        cni_config_dir: cni_dir.clone(),
        ..CriusPaths::under(&dir.path().join("crius"))
    };
    std::fs::create_dir_all(paths.config_file.parent().context("config dir")?)?;
    std::fs::write(&paths.config_file, "[log]\nlevel = \"warn\"\n")?;
    let crius = Crius::start_at(paths, &[]).await?;
    let (crius_runs, crius_removals) = lifecycle(&mut crius.client().await?, pods).await?;
    drop(crius);

    let registry = TestRegistry::start().await?;
    push_pause_image(&registry).await?;
    let containerd = Containerd::start(&registry.host(), Some(&cni_dir)).await?;
    let mut client = containerd.client().await?;
    client
        .image
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: format!("{}/pause:3.10", registry.host()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("pre-pull containerd's pause image")?;
    let (containerd_runs, containerd_removals) = lifecycle(&mut client, pods).await?;
    drop(containerd);

    let (floor_adds, floor_dels) = floor(&cni_dir, pods).await?;
    Command::new("ip")
        .args(["link", "del", BRIDGE])
        .status()
        .ok();
    remove_cgroup_tree("crius-bench");

    println!("{pods} pods, one after another; conflist: bridge + portmap");
    print!(
        "{}",
        report("RunPodSandbox", &crius_runs, "containerd", &containerd_runs)
    );
    println!(
        "  floor (netns add + loopback, bridge, portmap ADD) median {:.3}s; crius - floor = {:.1} ms",
        median(&floor_adds).as_secs_f64(),
        (median(&crius_runs).as_secs_f64() - median(&floor_adds).as_secs_f64()) * 1000.0
    );
    print!(
        "{}",
        report(
            "StopPodSandbox + RemovePodSandbox",
            &crius_removals,
            "containerd",
            &containerd_removals
        )
    );
    println!(
        "  floor (portmap, bridge, loopback DEL + netns del) median {:.3}s",
        median(&floor_dels).as_secs_f64()
    );
    Ok(())
}
