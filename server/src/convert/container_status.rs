//! CRI messages describing containers (ListContainers, ContainerStatus, the statistics) from
//! their records.

use std::collections::HashMap;

use crius_runtime::container::record::{ContainerRecord, ContainerState};
use crius_runtime::container::stats::CgroupUsage;
use crius_runtime::spec::request::{Propagation, Resources};
use k8s_cri::v1 as cri;

pub fn state(state: ContainerState) -> cri::ContainerState {
    match state {
        ContainerState::Creating | ContainerState::Created => cri::ContainerState::ContainerCreated,
        ContainerState::Running => cri::ContainerState::ContainerRunning,
        ContainerState::Exited => cri::ContainerState::ContainerExited,
    }
}

fn propagation(propagation: Propagation) -> cri::MountPropagation {
    match propagation {
        Propagation::Private => cri::MountPropagation::PropagationPrivate,
        Propagation::HostToContainer => cri::MountPropagation::PropagationHostToContainer,
        Propagation::Bidirectional => cri::MountPropagation::PropagationBidirectional,
    }
}

/// The resources as the CRI reports them (the unset ones as zero).
fn linux_resources(resources: &Resources) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: resources
            .cpu_period
            .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        cpu_quota: resources.cpu_quota.unwrap_or(0),
        cpu_shares: resources
            .cpu_shares
            .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        memory_limit_in_bytes: resources
            .memory_limit_in_bytes
            .map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX)),
        oom_score_adj: resources.oom_score_adj,
        cpuset_cpus: resources.cpuset_cpus.clone(),
        cpuset_mems: resources.cpuset_mems.clone(),
        hugepage_limits: resources
            .hugepage_limits
            .iter()
            .map(|h| cri::HugepageLimit {
                page_size: h.page_size.clone(),
                limit: h.limit,
            })
            .collect(),
        unified: resources
            .unified
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        memory_swap_limit_in_bytes: resources.memory_swap_limit_in_bytes.unwrap_or(0),
    }
}

fn metadata(record: &ContainerRecord) -> cri::ContainerMetadata {
    cri::ContainerMetadata {
        name: record.metadata.name.clone(),
        attempt: record.metadata.attempt,
    }
}

fn image_spec(record: &ContainerRecord) -> cri::ImageSpec {
    cri::ImageSpec {
        image: record.image.clone(),
        user_specified_image: record.image.clone(),
        ..Default::default()
    }
}

fn map(map: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The ListContainers entry.
pub fn container(record: &ContainerRecord) -> cri::Container {
    cri::Container {
        id: record.id.clone(),
        pod_sandbox_id: record.pod_id.clone(),
        metadata: Some(metadata(record)),
        image: Some(image_spec(record)),
        image_ref: record.image_ref.clone(),
        state: state(record.state).into(),
        created_at: record.created_at,
        labels: map(&record.labels),
        annotations: map(&record.annotations),
        image_id: record.image_id.clone(),
    }
}

/// The ContainerStatus answer.
pub fn status(record: &ContainerRecord) -> cri::ContainerStatus {
    let exit = record.exit.as_ref();
    cri::ContainerStatus {
        id: record.id.clone(),
        metadata: Some(metadata(record)),
        state: state(record.state).into(),
        created_at: record.created_at,
        started_at: record.started_at,
        finished_at: exit.map_or(0, |e| e.finished_at),
        exit_code: exit.map_or(0, |e| e.exit_code),
        image: Some(image_spec(record)),
        image_ref: record.image_ref.clone(),
        reason: exit.map(|e| e.reason.clone()).unwrap_or_default(),
        message: exit.map(|e| e.message.clone()).unwrap_or_default(),
        labels: map(&record.labels),
        annotations: map(&record.annotations),
        mounts: record
            .mounts
            .iter()
            .map(|m| cri::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                selinux_relabel: m.selinux_relabel,
                propagation: propagation(m.propagation).into(),
                recursive_read_only: m.recursive_read_only,
                ..Default::default()
            })
            .collect(),
        log_path: record.log_path.to_string_lossy().into_owned(),
        resources: Some(cri::ContainerResources {
            linux: Some(linux_resources(&record.resources)),
            windows: None,
        }),
        image_id: record.image_id.clone(),
        user: Some(cri::ContainerUser {
            linux: Some(cri::LinuxContainerUser {
                uid: i64::from(record.user.uid),
                gid: i64::from(record.user.gid),
                supplemental_groups: std::iter::once(record.user.gid)
                    .chain(record.user.additional_gids.iter().copied())
                    .map(i64::from)
                    .collect(),
            }),
        }),
    }
}

/// A container's statistics at `timestamp` (nanoseconds). `nano_cores` is the CPU rate since
/// the previous sample, when there is one.
pub fn stats(
    record: &ContainerRecord,
    timestamp: i64,
    usage: &CgroupUsage,
    nano_cores: Option<u64>,
    writable: (String, u64, u64),
) -> cri::ContainerStats {
    let value = |v: Option<u64>| v.map(|value| cri::UInt64Value { value });
    let (mountpoint, used_bytes, inodes_used) = writable;
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: record.id.clone(),
            metadata: Some(metadata(record)),
            labels: map(&record.labels),
            annotations: map(&record.annotations),
        }),
        cpu: Some(cri::CpuUsage {
            timestamp,
            usage_core_nano_seconds: value(usage.cpu_nanos),
            usage_nano_cores: value(nano_cores),
        }),
        memory: Some(cri::MemoryUsage {
            timestamp,
            working_set_bytes: value(usage.memory_working_set_bytes),
            available_bytes: value(
                usage
                    .memory_limit_bytes
                    .zip(usage.memory_working_set_bytes)
                    .map(|(limit, used)| limit.saturating_sub(used)),
            ),
            usage_bytes: value(usage.memory_usage_bytes),
            rss_bytes: value(usage.memory_rss_bytes),
            page_faults: value(usage.page_faults),
            major_page_faults: value(usage.major_page_faults),
        }),
        writable_layer: Some(cri::FilesystemUsage {
            timestamp,
            fs_id: Some(cri::FilesystemIdentifier { mountpoint }),
            used_bytes: value(Some(used_bytes)),
            inodes_used: value(Some(inodes_used)),
        }),
        swap: None,
    }
}
