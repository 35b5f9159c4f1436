//! ContainerStats and ListContainerStats: each container's cgroup counters, the CPU rate since
//! the previous sample, and what its writable layer holds.

use crius_runtime::container::record::ContainerRecord;
use crius_runtime::container::{rootfs, stats};
use k8s_cri::v1 as cri;

use super::{ContainerManager, lock};
use crate::blocking::run_blocking;
use crate::convert::container_status;
use crate::creations::now_nanos;

/// One CPU sample: when, and the total CPU time then.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuSample {
    at: i64,
    cpu_nanos: u64,
}

impl ContainerManager {
    /// The statistics of `records`, read off the async workers.
    pub async fn stats(&self, records: Vec<ContainerRecord>) -> Vec<cri::ContainerStats> {
        let mountpoint = self.config.root.join("container-layers");
        let cgroups = self.cgroups.clone();
        let samples = run_blocking(move || {
            records
                .into_iter()
                .map(|record| {
                    let at = now_nanos();
                    let usage = stats::read_usage(&cgroups, &record.cgroups_path);
                    let (bytes, inodes) = rootfs::writable_usage(&record.layer_dir);
                    (record, at, usage, bytes, inodes)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let mut previous = lock(&self.cpu_samples);
        samples
            .into_iter()
            .map(|(record, at, usage, bytes, inodes)| {
                let nano_cores = usage.cpu_nanos.and_then(|cpu_nanos| {
                    let sample = CpuSample { at, cpu_nanos };
                    let before = previous.insert(record.id.clone(), sample)?;
                    let elapsed = u64::try_from(at - before.at).ok().filter(|&e| e > 0)?;
                    let used = cpu_nanos.checked_sub(before.cpu_nanos)?;
                    Some((u128::from(used) * 1_000_000_000 / u128::from(elapsed)) as u64)
                });
                container_status::stats(
                    &record,
                    at,
                    &usage,
                    nano_cores,
                    (mountpoint.to_string_lossy().into_owned(), bytes, inodes),
                )
            })
            .collect()
    }
}
