//! Small helpers for the benchmarks: medians, percentiles and reports with the baseline's ratio;
//! the counts they take from the environment, their network, containerd's pause image, both
//! daemons started pulling from the test registry, and a pod with one running container.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use k8s_cri::v1 as cri;

use crate::client::CriClient;
use crate::cni::{bridge_conflist_with_ipam_dir, write_config};
use crate::containerd::Containerd;
use crate::daemon::{Crius, CriusPaths};
use crate::image::{OciImage, RunConfig, STATIC_BUSYBOX, busybox_image, busybox_layer};
use crate::kubelet::{self, bounded};
use crate::registry::TestRegistry;

/// The count the environment variable `name` sets, else `default`.
pub fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A CNI config dir under `dir` holding a bridge network `crius-bench` (its IPAM leases under
/// `dir` too), for both runtimes of a benchmark.
pub fn bridge_network(dir: &Path, bridge: &str, subnet: &str) -> anyhow::Result<PathBuf> {
    let cni_dir = dir.join("net.d");
    write_config(
        &cni_dir,
        "10-bench.conflist",
        &bridge_conflist_with_ipam_dir("crius-bench", bridge, subnet, Some(&dir.join("ipam"))),
    )?;
    Ok(cni_dir)
}

/// Removes the cgroup tree `relative` (e.g. `crius-bench/exec-sync`) in every hierarchy, deepest
/// first, and each parent below the hierarchy that is left empty (another benchmark's stay).
pub fn remove_cgroup_tree(relative: &str) {
    fn remove_tree(dir: &Path) {
        for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&child.path());
            }
        }
        std::fs::remove_dir(dir).ok();
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let hierarchy = hierarchy.path();
        let root = hierarchy.join(relative);
        remove_tree(&root);
        for parent in root.ancestors().skip(1).take_while(|p| *p != hierarchy) {
            std::fs::remove_dir(parent).ok();
        }
    }
}

/// Pushes `pause:3.10`, the sandbox image containerd's pods need (a sleeping busybox).
pub async fn push_pause_image(registry: &TestRegistry) -> anyhow::Result<()> {
    let pause = OciImage::build(
        vec![busybox_layer(Path::new(STATIC_BUSYBOX))?],
        &RunConfig {
            entrypoint: vec!["/bin/sleep".into(), "2147483647".into()],
            ..RunConfig::default()
        },
    )?;
    registry.push("pause", "3.10", &pause).await?;
    Ok(())
}

/// crius and containerd side by side, as the benchmarks compare them: a bridge network of the
/// benchmark's own, a test registry holding the busybox image and containerd's pause image, and
/// both daemons pulling from it. [`SideBySide::tear_down`] ends it.
#[derive(Debug)]
pub struct SideBySide {
    pub crius: Crius,
    /// crius's runc state dir.
    pub runc_root: PathBuf,
    pub containerd: Containerd,
    /// The busybox image in the registry.
    pub image: String,
    registry: TestRegistry,
    bridge: &'static str,
    cgroup_root: &'static str,
    dir: tempfile::TempDir,
}

impl SideBySide {
    /// Makes bridge `bridge` on `subnet`, starts the registry and both daemons; the pods'
    /// cgroups go under `cgroup_root` (e.g. `crius-bench/exec-sync`) in each hierarchy.
    pub async fn start(
        bridge: &'static str,
        subnet: &str,
        cgroup_root: &'static str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cni_dir = bridge_network(dir.path(), bridge, subnet)?;
        let registry = TestRegistry::start().await?;
        registry
            .push("busybox", "1", &busybox_image()?)
            .await
            .context("push busybox")?;
        push_pause_image(&registry).await?;
        let image = format!("{}/busybox:1", registry.host());
        let (crius, runc_root) = start_crius(dir.path(), &cni_dir, &registry.host()).await?;
        let containerd = start_containerd(&cni_dir, &registry.host()).await?;
        Ok(SideBySide {
            crius,
            runc_root,
            containerd,
            image,
            registry,
            bridge,
            cgroup_root,
            dir,
        })
    }

    /// A pod `name` as kubelet configures it, for `runtime` (`crius` or `containerd`): its logs
    /// and its cgroup in a place of that runtime's.
    pub fn pod_config(&self, name: &str, runtime: &str) -> anyhow::Result<cri::PodSandboxConfig> {
        kubelet::pod_config(
            name,
            &self.dir.path().join("logs").join(runtime),
            format!("/{}/{runtime}", self.cgroup_root),
        )
    }

    /// Stops both daemons and the registry, removes the bridge and the cgroups.
    pub fn tear_down(self) {
        let SideBySide {
            crius,
            containerd,
            registry,
            bridge,
            cgroup_root,
            dir,
            ..
        } = self;
        drop((crius, containerd, registry));
        std::process::Command::new("ip")
            .args(["link", "del", bridge])
            .status()
            .ok();
        remove_cgroup_tree(cgroup_root);
        drop(dir);
    }
}

/// Starts crius under `dir/crius` on the network of `cni_dir`, pulling from `registry_host` over
/// plain HTTP and logging at `info`; returns it and its runc state dir.
async fn start_crius(
    dir: &Path,
    cni_dir: &Path,
    registry_host: &str,
) -> anyhow::Result<(Crius, PathBuf)> {
    let paths = CriusPaths {
        cni_config_dir: cni_dir.to_path_buf(),
        log_level: "info",
        ..CriusPaths::under(&dir.join("crius"))
    };
    let config_dir = paths.config_file.parent().context("config dir")?;
    std::fs::create_dir_all(config_dir)?;
    let registries_conf = config_dir.join("registries.conf");
    std::fs::write(
        &registries_conf,
        format!("[[registry]]\nlocation = \"{registry_host}\"\ninsecure = true\n"),
    )?;
    std::fs::write(
        &paths.config_file,
        format!(
            "[image]\nregistries_conf = \"{}\"\n",
            registries_conf.display()
        ),
    )?;
    let runc_root = paths.state_dir.join("runtimes/runc");
    Ok((Crius::start_at(paths, &[]).await?, runc_root))
}

/// Starts containerd on the network of `cni_dir`, pulling from `registry_host`, with its pause
/// image pulled.
async fn start_containerd(cni_dir: &Path, registry_host: &str) -> anyhow::Result<Containerd> {
    let containerd = Containerd::start(registry_host, Some(cni_dir)).await?;
    bounded(
        "PullImage (containerd's pause image)",
        containerd
            .client()
            .await?
            .image
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: format!("{registry_host}/pause:3.10"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
    )
    .await?;
    Ok(containerd)
}

/// A pod and its running container.
#[derive(Debug, Clone)]
pub struct RunningContainer {
    pub pod_id: String,
    pub container_id: String,
}

/// Pulls `image` and runs `command` in a container of it, in a new pod of config `pod`, as
/// kubelet asks.
pub async fn run_container(
    client: &mut CriClient,
    pod: cri::PodSandboxConfig,
    image: &str,
    command: &[&str],
) -> anyhow::Result<RunningContainer> {
    let image_ref = kubelet::pull(client, image).await?;
    let pod_id = run_pod(client, pod.clone()).await?;
    let config = kubelet::container_config(&image_ref, command, None);
    let container_id = create_container(client, &pod_id, &pod, config).await?;
    start_container(client, &container_id).await?;
    Ok(RunningContainer {
        pod_id,
        container_id,
    })
}

/// RunPodSandbox of `config`: the pod's id.
pub async fn run_pod(
    client: &mut CriClient,
    config: cri::PodSandboxConfig,
) -> anyhow::Result<String> {
    let ran = bounded(
        "RunPodSandbox",
        client.runtime.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        }),
    )
    .await?;
    Ok(ran.pod_sandbox_id)
}

/// CreateContainer of `config` in pod `pod_id` (of config `pod`): the container's id.
pub async fn create_container(
    client: &mut CriClient,
    pod_id: &str,
    pod: &cri::PodSandboxConfig,
    config: cri::ContainerConfig,
) -> anyhow::Result<String> {
    let created = bounded(
        "CreateContainer",
        client
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.to_string(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            }),
    )
    .await?;
    Ok(created.container_id)
}

pub async fn start_container(client: &mut CriClient, id: &str) -> anyhow::Result<()> {
    bounded(
        "StartContainer",
        client.runtime.start_container(cri::StartContainerRequest {
            container_id: id.to_string(),
        }),
    )
    .await?;
    Ok(())
}

/// Stops and removes pod `pod_id`, its containers with it.
pub async fn remove_pod(client: &mut CriClient, pod_id: &str) -> anyhow::Result<()> {
    bounded(
        "StopPodSandbox",
        client.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        }),
    )
    .await?;
    bounded(
        "RemovePodSandbox",
        client
            .runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod_id.to_string(),
            }),
    )
    .await?;
    Ok(())
}

pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// The nearest-rank `percent`th percentile (`percent` in 1..=100): the smallest sample that at
/// least `percent`% of the samples do not exceed.
pub fn percentile(samples: &[Duration], percent: u32) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * percent.clamp(1, 100) as usize).div_ceil(100);
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or(Duration::ZERO)
}

/// Each runtime's samples and median, and crius's median as a ratio of the baseline's.
#[must_use]
pub fn report(
    what: &str,
    crius: &[Duration],
    baseline_name: &str,
    baseline: &[Duration],
) -> String {
    let show = |samples: &[Duration]| {
        samples
            .iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (ours, theirs) = (median(crius), median(baseline));
    format!(
        "{what}\n  crius      median {:.3}s  runs [{}]\n  {baseline_name:<10} median {:.3}s  runs [{}]\n  \
         ratio crius/{baseline_name} = {:.2}\n",
        ours.as_secs_f64(),
        show(crius),
        theirs.as_secs_f64(),
        show(baseline),
        ours.as_secs_f64() / theirs.as_secs_f64()
    )
}

/// Each runtime's rates (`amount` per sample's duration, in `unit`s per second) and median, and
/// crius's median as a ratio of the baseline's: above 1, crius is the faster. The median rate is
/// `amount` over the median duration.
#[must_use]
pub fn report_rates(
    what: &str,
    amount: f64,
    unit: &str,
    crius: &[Duration],
    baseline_name: &str,
    baseline: &[Duration],
) -> String {
    let rate = |took: Duration| amount / took.as_secs_f64();
    let show = |samples: &[Duration]| {
        samples
            .iter()
            .map(|d| format!("{:.1}", rate(*d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (ours, theirs) = (rate(median(crius)), rate(median(baseline)));
    format!(
        "{what}\n  crius      median {ours:.1} {unit}/s  runs [{}]\n  \
         {baseline_name:<10} median {theirs:.1} {unit}/s  runs [{}]\n  \
         ratio crius/{baseline_name} = {:.2}\n",
        show(crius),
        show(baseline),
        ours / theirs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median(&ms(&[3, 1, 2])), Duration::from_millis(2));
        assert_eq!(
            median(&ms(&[4, 1, 2, 3])),
            Duration::from_millis(2500) / 1000
        );
    }

    #[test]
    fn rates_are_the_amount_over_each_duration_and_the_ratio_crius_over_the_baseline() {
        let secs = |v: &[f64]| {
            v.iter()
                .map(|s| Duration::from_secs_f64(*s))
                .collect::<Vec<_>>()
        };
        let text = report_rates(
            "fetch",
            64.0,
            "MiB",
            &secs(&[0.5, 0.25, 1.0]),
            "containerd",
            &secs(&[1.0]),
        );
        assert!(
            text.contains("crius      median 128.0 MiB/s  runs [128.0 256.0 64.0]"),
            "{text}"
        );
        assert!(text.contains("containerd median 64.0 MiB/s"), "{text}");
        assert!(text.contains("ratio crius/containerd = 2.00"), "{text}");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<_> = (1..=50).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 90), Duration::from_millis(45));
        assert_eq!(percentile(&samples, 100), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 1), Duration::from_millis(1));
        let few: Vec<_> = [30, 10, 20].map(Duration::from_millis).to_vec();
        assert_eq!(percentile(&few, 90), Duration::from_millis(30));
        assert_eq!(percentile(&[], 90), Duration::ZERO);
    }
}
