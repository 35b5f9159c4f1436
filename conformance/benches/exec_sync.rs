//! ExecSync, as kubelet's exec probes call it: `true` in one running container, 100 times one
//! after another (after 5 untimed), timeout 10 s, on crius and on containerd 1.6 from Debian,
//! with the same image (static busybox, pushed to a loopback registry and pulled by each runtime)
//! in a pod of kubelet's namespaces on the same CNI conflist; and the floor no runtime can beat:
//! `runc exec` of `true` in crius's container, run directly.
//!
//! Both daemons run at once and the calls are interleaved (crius, containerd, floor; the order
//! turns each round), so that what else the machine does weighs on the three alike.
//!
//! Run: `cargo build --release --bins && cargo bench -p crius-conformance --bench exec_sync`
//! (`BENCH_EXECS` sets the number of timed execs, 100 by default).

#![allow(clippy::print_stdout)] // the report on stdout is this program's output

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crius_conformance::bench::{
    RunningContainer, SideBySide, count_from_env, median, remove_pod, report, run_container,
};
use crius_conformance::client::CriClient;
use crius_conformance::kubelet::{CALL_TIMEOUT, bounded};
use k8s_cri::v1 as cri;

const BRIDGE: &str = "criusbench2";
const SUBNET: &str = "10.233.0.0/16";
/// Every cgroup this benchmark makes, in each v1 hierarchy.
const CGROUP_ROOT: &str = "crius-bench/exec-sync";
const RUNC: &str = "/usr/sbin/runc";
const POD_NAME: &str = "exec-sync";
/// What the container runs, and what is exec'd in it.
const COMMAND: [&str; 3] = ["/bin/busybox", "sleep", "3600"];
const EXEC: [&str; 1] = ["true"];
/// ExecSync's timeout, as a probe's `timeoutSeconds`.
const EXEC_TIMEOUT_SECONDS: i64 = 10;
/// Untimed execs first: connections, caches, the runtime's first exec.
const WARM_UP: usize = 5;

/// One ExecSync of [`EXEC`], timed; it must exit 0.
async fn time_exec(client: &mut CriClient, container_id: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer = bounded(
        "ExecSync",
        client.runtime.exec_sync(cri::ExecSyncRequest {
            container_id: container_id.to_string(),
            cmd: EXEC.map(String::from).to_vec(),
            timeout: EXEC_TIMEOUT_SECONDS,
        }),
    )
    .await?;
    let took = started.elapsed();
    if answer.exit_code != 0 {
        bail!(
            "ExecSync {EXEC:?} exited {}: {}",
            answer.exit_code,
            String::from_utf8_lossy(&answer.stderr)
        );
    }
    Ok(took)
}

/// One `runc exec` of [`EXEC`] in container `id` of the runtime state in `state_root`, timed.
async fn time_runc_exec(state_root: &Path, id: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = tokio::process::Command::new(RUNC)
        .arg("--root")
        .arg(state_root)
        .arg("exec")
        .arg(id)
        .args(EXEC)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(CALL_TIMEOUT, output).await {
        Ok(output) => output.with_context(|| format!("run {RUNC}"))?,
        Err(_) => bail!("runc exec: not done within {CALL_TIMEOUT:?}"),
    };
    let took = started.elapsed();
    if !output.status.success() {
        bail!(
            "runc exec {EXEC:?}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(took)
}

/// A runtime under test with its running container.
struct Subject {
    client: CriClient,
    running: RunningContainer,
}

#[derive(Default)]
struct Times {
    crius: Vec<Duration>,
    containerd: Vec<Duration>,
    floor: Vec<Duration>,
}

/// [`WARM_UP`] untimed rounds, then `execs` timed ones: an exec on each runtime and the floor,
/// in an order that turns each round.
async fn interleaved(
    crius: &mut Subject,
    containerd: &mut Subject,
    runc_root: &Path,
    execs: usize,
) -> anyhow::Result<Times> {
    let mut times = Times::default();
    for round in 0..WARM_UP + execs {
        let (mut on_crius, mut on_containerd, mut floor) = (None, None, None);
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => {
                    on_crius =
                        Some(time_exec(&mut crius.client, &crius.running.container_id).await?);
                }
                1 => {
                    on_containerd = Some(
                        time_exec(&mut containerd.client, &containerd.running.container_id).await?,
                    );
                }
                _ => floor = Some(time_runc_exec(runc_root, &crius.running.container_id).await?),
            }
        }
        if round >= WARM_UP {
            times.crius.extend(on_crius);
            times.containerd.extend(on_containerd);
            times.floor.extend(floor);
        }
    }
    Ok(times)
}

async fn subject(
    mut client: CriClient,
    pod: cri::PodSandboxConfig,
    image: &str,
) -> anyhow::Result<Subject> {
    let running = run_container(&mut client, pod, image, &COMMAND).await?;
    Ok(Subject { client, running })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let execs = count_from_env("BENCH_EXECS", 100);
    let both = SideBySide::start(BRIDGE, SUBNET, CGROUP_ROOT).await?;
    let mut on_crius = subject(
        both.crius.client().await?,
        both.pod_config(POD_NAME, "crius")?,
        &both.image,
    )
    .await;
    let mut on_containerd = subject(
        both.containerd.client().await?,
        both.pod_config(POD_NAME, "containerd")?,
        &both.image,
    )
    .await;
    let times = match (&mut on_crius, &mut on_containerd) {
        (Ok(crius), Ok(containerd)) => interleaved(crius, containerd, &both.runc_root, execs).await,
        _ => Err(anyhow::anyhow!("a runtime could not run the container")),
    };
    for subject in [&mut on_crius, &mut on_containerd].into_iter().flatten() {
        remove_pod(&mut subject.client, &subject.running.pod_id).await?;
    }
    both.tear_down();
    on_crius.context("crius")?;
    on_containerd.context("containerd")?;
    let times = times?;
    let (crius_execs, containerd_execs, floor) = (times.crius, times.containerd, times.floor);

    println!(
        "ExecSync {EXEC:?} in a running busybox container, {execs} calls on each, interleaved \
         (after {WARM_UP} untimed), timeout {EXEC_TIMEOUT_SECONDS}s"
    );
    print!(
        "{}",
        report("ExecSync", &crius_execs, "containerd", &containerd_execs)
    );
    println!(
        "  floor (runc exec {EXEC:?} in crius's container, run directly) median {:.1} ms; \
         crius - floor = {:.1} ms",
        median(&floor).as_secs_f64() * 1000.0,
        (median(&crius_execs).as_secs_f64() - median(&floor).as_secs_f64()) * 1000.0
    );
    Ok(())
}
