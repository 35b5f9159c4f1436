//! Small helpers for the benchmarks: medians, percentiles and a report with the baseline's ratio;
//! the counts they take from the environment, their network and containerd's pause image.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cni::{bridge_conflist_with_ipam_dir, write_config};
use crate::image::{OciImage, RunConfig, STATIC_BUSYBOX, busybox_layer};
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
