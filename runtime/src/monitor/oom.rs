//! The OOM kill counter of a memory cgroup, read before and after the container runs.

use std::io::Read;
use std::path::Path;

/// The files holding an `oom_kill <count>` line: cgroup v1, then v2.
const COUNTER_FILES: [&str; 2] = ["memory.oom_control", "memory.events"];

/// Both files are a few lines.
const MAX_COUNTER_FILE_BYTES: u64 = 4096;

/// How many processes the OOM killer killed in the memory cgroup `cgroup` so far; `None` if the
/// cgroup has no such counter (or is gone).
pub(crate) fn oom_kill_count(cgroup: &Path) -> Option<u64> {
    COUNTER_FILES.iter().find_map(|name| {
        let mut text = String::new();
        std::fs::File::open(cgroup.join(name))
            .ok()?
            .take(MAX_COUNTER_FILE_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        parse_oom_kill(&text)
    })
}

/// The value of the `oom_kill` line of `memory.oom_control` or `memory.events`.
fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|count| count.trim().parse().ok())
}

/// Whether the counter went up between the two readings. A counter that could not be read
/// before counts from zero (the cgroup was new); one that cannot be read after says nothing.
pub(crate) fn oom_killed(before: Option<u64>, after: Option<u64>) -> bool {
    after.is_some_and(|after| after > before.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_comes_from_v1_oom_control() {
        let cgroup = tempfile::tempdir().unwrap();
        std::fs::write(
            cgroup.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(oom_kill_count(cgroup.path()), Some(2));
    }

    #[test]
    fn counter_comes_from_v2_memory_events() {
        let cgroup = tempfile::tempdir().unwrap();
        std::fs::write(
            cgroup.path().join("memory.events"),
            "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kill_count(cgroup.path()), Some(1));
    }

    #[test]
    fn no_counter_is_none() {
        let cgroup = tempfile::tempdir().unwrap();
        assert_eq!(oom_kill_count(cgroup.path()), None);
        assert_eq!(oom_kill_count(&cgroup.path().join("gone")), None);
        assert_eq!(parse_oom_kill("oom_kill_disable 0\n"), None);
    }

    #[test]
    fn only_an_increase_is_an_oom_kill() {
        assert!(oom_killed(Some(1), Some(2)));
        assert!(oom_killed(None, Some(1)));
        assert!(!oom_killed(Some(2), Some(2)));
        assert!(!oom_killed(None, Some(0)));
        assert!(!oom_killed(Some(1), None));
    }
}
