//! cgroup resources (`linux.resources` but the device rules) and the OOM score of a container.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::request::Resources;
use crate::RuntimeError;

/// What the cgroup hierarchy of the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupFeatures {
    /// A unified (v2) hierarchy at the cgroup root.
    pub v2: bool,
    /// Swap accounting (`memory.memsw.*` on v1); always there on v2.
    pub swap: bool,
}

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

fn signed(what: &str, value: u64) -> Result<i64, RuntimeError> {
    i64::try_from(value).map_err(|_| invalid(format!("{what} {value} is out of range")))
}

/// A HugeTLB page size as the cgroup names it (`2MB`, `1GB`): it becomes part of a cgroup file
/// name (`hugetlb.2MB.limit_in_bytes`), so nothing else is accepted.
fn check_page_size(page_size: &str) -> Result<(), RuntimeError> {
    let digits = page_size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &page_size[digits.len()..];
    let ok = !digits.is_empty()
        && digits.len() <= 8
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB" | "TB" | "PB");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "hugepage size {page_size:?} is not <number>KB, MB, GB, TB or PB"
        )))
    }
}

/// A cgroup v2 file name (`memory.high`, `io.weight`): a controller and a file of lowercase
/// words, no path separators.
fn check_unified_key(key: &str) -> Result<(), RuntimeError> {
    let well_formed = key.split_once('.').is_some_and(|(controller, file)| {
        !controller.is_empty()
            && !file.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    });
    if well_formed {
        Ok(())
    } else {
        Err(invalid(format!(
            "unified cgroup key {key:?} is not a <controller>.<file> name"
        )))
    }
}

/// The resources of the spec. Swap is limited to the memory limit unless the request says
/// otherwise (no swapping by default, as kubelet expects), when the host accounts swap; the
/// `unified` map applies only to cgroup v2 hosts.
pub fn resources(
    asked: &Resources,
    cgroups: CgroupFeatures,
) -> Result<LinuxResources, RuntimeError> {
    let mut resources = LinuxResources::default();

    let mut cpu = LinuxCpu::default();
    cpu.set_shares(asked.cpu_shares.filter(|s| *s > 0))
        .set_quota(asked.cpu_quota.filter(|q| *q != 0))
        .set_period(asked.cpu_period.filter(|p| *p > 0))
        .set_cpus(Some(asked.cpuset_cpus.clone()).filter(|c| !c.is_empty()))
        .set_mems(Some(asked.cpuset_mems.clone()).filter(|m| !m.is_empty()));
    if cpu != LinuxCpu::default() {
        resources.set_cpu(Some(cpu));
    }

    let limit = asked
        .memory_limit_in_bytes
        .filter(|l| *l > 0)
        .map(|l| signed("memory limit", l))
        .transpose()?;
    let swap = asked
        .memory_swap_limit_in_bytes
        .filter(|s| *s != 0)
        .or(limit);
    let swap = match swap {
        Some(swap) if !cgroups.swap => {
            tracing::debug!(
                swap,
                "no swap accounting on this host: swap limit not applied"
            );
            None
        }
        swap => swap,
    };
    if limit.is_some() || swap.is_some() {
        let mut memory = LinuxMemory::default();
        memory.set_limit(limit).set_swap(swap);
        resources.set_memory(Some(memory));
    }

    if !asked.hugepage_limits.is_empty() {
        let mut limits = Vec::with_capacity(asked.hugepage_limits.len());
        for asked in &asked.hugepage_limits {
            check_page_size(&asked.page_size)?;
            let mut limit = LinuxHugepageLimit::default();
            limit
                .set_page_size(asked.page_size.clone())
                .set_limit(signed("hugepage limit", asked.limit)?);
            limits.push(limit);
        }
        resources.set_hugepage_limits(Some(limits));
    }

    if !asked.unified.is_empty() {
        for (key, value) in &asked.unified {
            check_unified_key(key)?;
            if value.contains('\0') {
                return Err(invalid(format!(
                    "unified cgroup value of {key} holds a NUL byte"
                )));
            }
        }
        if cgroups.v2 {
            let unified: HashMap<String, String> = asked
                .unified
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            resources.set_unified(Some(unified));
        } else {
            tracing::debug!(
                keys = ?asked.unified.keys().collect::<Vec<_>>(),
                "cgroup v1 host: unified resources not applied"
            );
        }
    }
    Ok(resources)
}

/// The OOM score adjustment to set: the asked one within what this process may set. Lowering a
/// score below one's own needs CAP_SYS_RESOURCE in the initial user namespace, which the daemon
/// may lack, so scores are clamped to at least the daemon's own (containerd's
/// `restrict_oom_score_adj`), and to at most 1000.
pub fn oom_score_adj(asked: i64, own: i32) -> i32 {
    let clamped = asked.clamp(i64::from(own.clamp(-1000, 1000)), 1000);
    // Within -1000..=1000.
    i32::try_from(clamped).unwrap_or(1000)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::request::HugepageLimit;
    use super::*;

    const V1_WITH_SWAP: CgroupFeatures = CgroupFeatures {
        v2: false,
        swap: true,
    };

    #[test]
    fn unset_resources_are_empty() {
        let resources = resources(&Resources::default(), V1_WITH_SWAP).unwrap();
        assert_eq!(resources, LinuxResources::default());
    }

    #[test]
    fn cpu_and_memory_map_and_swap_follows_the_limit() {
        let asked = Resources {
            cpu_period: Some(100_000),
            cpu_quota: Some(50_000),
            cpu_shares: Some(512),
            memory_limit_in_bytes: Some(256 << 20),
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            ..Resources::default()
        };
        let resources = resources(&asked, V1_WITH_SWAP).unwrap();
        let cpu = resources.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
        let memory = resources.memory().unwrap();
        assert_eq!(memory.limit(), Some(256 << 20));
        assert_eq!(memory.swap(), Some(256 << 20));
    }

    #[test]
    fn an_explicit_swap_limit_wins_and_no_swap_accounting_drops_it() {
        let asked = Resources {
            memory_limit_in_bytes: Some(100),
            memory_swap_limit_in_bytes: Some(300),
            ..Resources::default()
        };
        let with_swap = resources(&asked, V1_WITH_SWAP).unwrap();
        assert_eq!(with_swap.memory().unwrap().swap(), Some(300));
        let no_swap = resources(
            &asked,
            CgroupFeatures {
                v2: false,
                swap: false,
            },
        )
        .unwrap();
        assert_eq!(no_swap.memory().unwrap().limit(), Some(100));
        assert_eq!(no_swap.memory().unwrap().swap(), None);
    }

    #[test]
    fn hugepages_map_and_bad_page_sizes_are_refused() {
        let mut asked = Resources {
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 21,
            }],
            ..Resources::default()
        };
        let resources = resources(&asked, V1_WITH_SWAP).unwrap();
        let limits = resources.hugepage_limits().as_ref().unwrap();
        assert_eq!(limits[0].page_size(), "2MB");
        assert_eq!(limits[0].limit(), 4 << 21);
        for bad in ["2mb", "MB", "../1GB", "2 MB", "2MiB", ""] {
            asked.hugepage_limits[0].page_size = bad.into();
            assert!(super::resources(&asked, V1_WITH_SWAP).is_err(), "{bad}");
        }
    }

    #[test]
    fn unified_applies_only_on_cgroup_v2_and_keys_are_checked() {
        let asked = Resources {
            unified: BTreeMap::from([("memory.high".to_string(), "1000000".to_string())]),
            ..Resources::default()
        };
        let v1 = resources(&asked, V1_WITH_SWAP).unwrap();
        assert_eq!(v1.unified(), &None);
        let v2 = resources(
            &asked,
            CgroupFeatures {
                v2: true,
                swap: true,
            },
        )
        .unwrap();
        assert_eq!(
            v2.unified()
                .as_ref()
                .unwrap()
                .get("memory.high")
                .map(String::as_str),
            Some("1000000")
        );
        for bad in [
            "memory",
            "../memory.max",
            "memory/max",
            ".max",
            "Memory.max",
        ] {
            let asked = Resources {
                unified: BTreeMap::from([(bad.to_string(), "1".to_string())]),
                ..Resources::default()
            };
            assert!(
                resources(
                    &asked,
                    CgroupFeatures {
                        v2: true,
                        swap: true
                    }
                )
                .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn out_of_range_limits_are_refused() {
        let asked = Resources {
            memory_limit_in_bytes: Some(u64::MAX),
            ..Resources::default()
        };
        assert!(resources(&asked, V1_WITH_SWAP).is_err());
    }

    #[test]
    fn oom_score_adj_is_clamped_to_what_the_daemon_may_set() {
        assert_eq!(oom_score_adj(-997, 0), 0);
        assert_eq!(oom_score_adj(-997, -999), -997);
        assert_eq!(oom_score_adj(500, 0), 500);
        assert_eq!(oom_score_adj(5000, 0), 1000);
        assert_eq!(oom_score_adj(1000, 0), 1000);
        assert_eq!(oom_score_adj(-5000, -1000), -1000);
        assert_eq!(oom_score_adj(0, 300), 300);
    }
}
