//! A container's resource usage, read from its cgroup (v1 controllers or the v2 tree), as the CRI
//! statistics want it.

use std::path::Path;

use crate::cgroup::CgroupFs;

/// Usage counters of one cgroup at one moment; a counter the kernel does not offer is None.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupUsage {
    /// Total CPU time, nanoseconds.
    pub cpu_nanos: Option<u64>,
    /// Memory in use, and what of it cannot be reclaimed easily (usage minus inactive file
    /// pages): kubelet's working set.
    pub memory_usage_bytes: Option<u64>,
    pub memory_working_set_bytes: Option<u64>,
    pub memory_rss_bytes: Option<u64>,
    /// The limit, when there is one.
    pub memory_limit_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// A limit this large means "no limit" (v1 reports the largest page-aligned i64).
const UNLIMITED: u64 = 1 << 62;

/// Reads the usage of the cgroup `path` (cgroupfs form, absolute).
pub fn read_usage(cgroups: &CgroupFs, path: &str) -> CgroupUsage {
    if cgroups.is_unified() {
        read_v2(&cgroups.controller_dir("memory", path))
    } else {
        read_v1(
            &cgroups.controller_dir("memory", path),
            &cgroups.controller_dir("cpuacct", path),
        )
    }
}

fn read_v1(memory: &Path, cpuacct: &Path) -> CgroupUsage {
    let stat = read_keyed(&memory.join("memory.stat"));
    let usage = read_number(&memory.join("memory.usage_in_bytes"));
    CgroupUsage {
        cpu_nanos: read_number(&cpuacct.join("cpuacct.usage")),
        memory_usage_bytes: usage,
        memory_working_set_bytes: usage
            .map(|usage| usage.saturating_sub(stat_value(&stat, "total_inactive_file"))),
        memory_rss_bytes: stat_lookup(&stat, "total_rss"),
        memory_limit_bytes: read_number(&memory.join("memory.limit_in_bytes"))
            .filter(|&limit| limit < UNLIMITED),
        page_faults: stat_lookup(&stat, "total_pgfault"),
        major_page_faults: stat_lookup(&stat, "total_pgmajfault"),
    }
}

fn read_v2(dir: &Path) -> CgroupUsage {
    let stat = read_keyed(&dir.join("memory.stat"));
    let cpu = read_keyed(&dir.join("cpu.stat"));
    let usage = read_number(&dir.join("memory.current"));
    CgroupUsage {
        cpu_nanos: stat_lookup(&cpu, "usage_usec").map(|usec| usec * 1000),
        memory_usage_bytes: usage,
        memory_working_set_bytes: usage
            .map(|usage| usage.saturating_sub(stat_value(&stat, "inactive_file"))),
        memory_rss_bytes: stat_lookup(&stat, "anon"),
        // "max" does not parse: no limit.
        memory_limit_bytes: read_number(&dir.join("memory.max")),
        page_faults: stat_lookup(&stat, "pgfault"),
        major_page_faults: stat_lookup(&stat, "pgmajfault"),
    }
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The `key value` lines of a cgroup stat file.
fn read_keyed(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

fn stat_lookup(stat: &[(String, u64)], key: &str) -> Option<u64> {
    stat.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn stat_value(stat: &[(String, u64)], key: &str) -> u64 {
    stat_lookup(stat, key).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn v1_usage_comes_from_the_cpuacct_and_memory_hierarchies() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("cpuacct/pod/c/cpuacct.usage"), "12345\n");
        write(&r.join("memory/pod/c/memory.usage_in_bytes"), "1000\n");
        write(
            &r.join("memory/pod/c/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(
            &r.join("memory/pod/c/memory.stat"),
            "cache 5\ntotal_inactive_file 300\ntotal_rss 600\ntotal_pgfault 7\ntotal_pgmajfault 1\n",
        );
        let usage = read_usage(&CgroupFs::new(r), "/pod/c");
        assert_eq!(
            usage,
            CgroupUsage {
                cpu_nanos: Some(12345),
                memory_usage_bytes: Some(1000),
                memory_working_set_bytes: Some(700),
                memory_rss_bytes: Some(600),
                memory_limit_bytes: None,
                page_faults: Some(7),
                major_page_faults: Some(1),
            }
        );
    }

    #[test]
    fn v2_usage_comes_from_the_unified_tree() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(&r.join("cgroup.controllers"), "cpu memory\n");
        write(&r.join("pod/c/cpu.stat"), "usage_usec 5\nuser_usec 3\n");
        write(&r.join("pod/c/memory.current"), "4096\n");
        write(&r.join("pod/c/memory.max"), "16777216\n");
        write(
            &r.join("pod/c/memory.stat"),
            "anon 1024\ninactive_file 96\n",
        );
        let usage = read_usage(&CgroupFs::new(r), "/pod/c");
        assert_eq!(usage.cpu_nanos, Some(5000));
        assert_eq!(usage.memory_working_set_bytes, Some(4000));
        assert_eq!(usage.memory_limit_bytes, Some(16 << 20));
        assert_eq!(usage.memory_rss_bytes, Some(1024));
    }

    #[test]
    fn a_missing_cgroup_has_no_counters() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            read_usage(&CgroupFs::new(root.path()), "/gone"),
            CgroupUsage::default()
        );
    }
}
