//! The cgroup driver: who owns the cgroup tree, the cgroupfs directly or systemd.
//!
//! kubelet asks for it once at start (`RuntimeConfig`) and builds its own hierarchy to match, so the
//! choice is fixed for the daemon's lifetime and checked against the host before serving.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::RuntimeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// cgroups are directories the runtime creates under the cgroupfs mounts.
    #[default]
    Cgroupfs,
    /// cgroups are systemd scopes and slices, created over D-Bus.
    Systemd,
}

impl std::str::FromStr for CgroupDriver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cgroupfs" => Ok(CgroupDriver::Cgroupfs),
            "systemd" => Ok(CgroupDriver::Systemd),
            other => Err(format!(
                "unknown cgroup driver {other:?} (cgroupfs or systemd)"
            )),
        }
    }
}

impl CgroupDriver {
    /// Checks that the host can serve this driver. `run_dir` is the host's `/run` (a parameter so
    /// tests use a temp dir): systemd is the init system exactly when `run/systemd/system` exists,
    /// the test `sd_booted(3)` makes.
    pub fn check_host(self, run_dir: &Path) -> Result<(), RuntimeError> {
        match self {
            CgroupDriver::Cgroupfs => Ok(()),
            CgroupDriver::Systemd => {
                let marker = run_dir.join("systemd/system");
                if marker.is_dir() {
                    Ok(())
                } else {
                    Err(RuntimeError::SystemdNotBooted { marker })
                }
            }
        }
    }
}

/// The cgroup filesystem under `root` (`/sys/fs/cgroup`, a parameter so tests use a temp dir):
/// the v2 unified tree, or the v1 hierarchies, one directory per controller set.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
}

impl CgroupFs {
    pub fn new(root: &Path) -> Self {
        CgroupFs {
            root: root.to_path_buf(),
        }
    }

    /// The directories a cgroup path is created in: the root itself on v2, each v1 hierarchy
    /// (the empty v2 tree of a hybrid host and the aliases `cpu`/`cpuacct` left out) on v1.
    fn hierarchies(&self) -> Result<Vec<PathBuf>, RuntimeError> {
        if self.root.join("cgroup.controllers").exists() {
            return Ok(vec![self.root.clone()]);
        }
        let io = |source| RuntimeError::Io {
            op: "read directory",
            path: self.root.clone(),
            source,
        };
        let mut hierarchies = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io)? {
            let entry = entry.map_err(io)?;
            let file_type = entry.file_type().map_err(io)?;
            if file_type.is_dir() && entry.file_name() != "unified" {
                hierarchies.push(entry.path());
            }
        }
        hierarchies.sort();
        Ok(hierarchies)
    }

    /// Creates the cgroup `path` (absolute, as kubelet's CgroupParent) in every hierarchy.
    /// Returns whether it was new, so that only a cgroup crius created is removed by crius.
    pub fn create(&self, path: &str) -> Result<bool, RuntimeError> {
        validate_cgroup_path(path)?;
        let mut created = false;
        for hierarchy in self.hierarchies()? {
            let dir = hierarchy.join(path.trim_start_matches('/'));
            if !dir.exists() {
                std::fs::create_dir_all(&dir).map_err(|source| RuntimeError::Io {
                    op: "create cgroup",
                    path: dir.clone(),
                    source,
                })?;
                created = true;
            }
        }
        Ok(created)
    }

    /// Removes the leaf of cgroup `path` in every hierarchy (its parents are kubelet's). A
    /// missing one is fine.
    pub fn remove(&self, path: &str) -> Result<(), RuntimeError> {
        validate_cgroup_path(path)?;
        for hierarchy in self.hierarchies()? {
            let dir = hierarchy.join(path.trim_start_matches('/'));
            match std::fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(RuntimeError::Io {
                        op: "remove cgroup",
                        path: dir,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A cgroupfs path: absolute, of components of `[A-Za-z0-9_.:-]` other than `.` and `..`.
pub fn validate_cgroup_path(path: &str) -> Result<(), RuntimeError> {
    let Some(relative) = path.strip_prefix('/') else {
        return Err(RuntimeError::InvalidArgument(format!(
            "cgroup parent {path:?} is not absolute"
        )));
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    };
    if path.len() > 1024 || relative.is_empty() || !relative.split('/').all(component_ok) {
        return Err(RuntimeError::InvalidArgument(format!(
            "cgroup parent {path:?} must be an absolute path of [A-Za-z0-9_.:-] names"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeErrorKind;

    #[test]
    fn cgroupfs_needs_nothing_from_the_host() {
        let run = tempfile::tempdir().unwrap();
        CgroupDriver::Cgroupfs.check_host(run.path()).unwrap();
    }

    #[test]
    fn systemd_driver_is_refused_when_systemd_is_not_init() {
        let run = tempfile::tempdir().unwrap();
        let err = CgroupDriver::Systemd.check_host(run.path()).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::HostUnsupported);
        assert!(err.to_string().contains("systemd/system"), "{err}");
    }

    #[test]
    fn pod_cgroups_are_created_in_every_v1_hierarchy_and_removed() {
        let root = tempfile::tempdir().unwrap();
        for hierarchy in ["memory", "pids", "cpu,cpuacct", "unified"] {
            std::fs::create_dir(root.path().join(hierarchy)).unwrap();
        }
        let fs = CgroupFs::new(root.path());
        assert!(fs.create("/kubepods/besteffort/pod1").unwrap());
        assert!(
            !fs.create("/kubepods/besteffort/pod1").unwrap(),
            "exists already"
        );
        for hierarchy in ["memory", "pids", "cpu,cpuacct"] {
            assert!(
                root.path()
                    .join(hierarchy)
                    .join("kubepods/besteffort/pod1")
                    .is_dir()
            );
        }
        assert!(!root.path().join("unified/kubepods").exists());
        fs.remove("/kubepods/besteffort/pod1").unwrap();
        fs.remove("/kubepods/besteffort/pod1").unwrap();
        assert!(!root.path().join("memory/kubepods/besteffort/pod1").exists());
        assert!(
            root.path().join("memory/kubepods/besteffort").exists(),
            "parents stay"
        );
    }

    #[test]
    fn cgroup_paths_cannot_leave_the_hierarchy() {
        for bad in [
            "",
            "relative",
            "/",
            "/a/../../etc",
            "/a/./b",
            "/a//b",
            "/a b",
            "/a\nb",
        ] {
            assert!(validate_cgroup_path(bad).is_err(), "{bad:?}");
        }
        validate_cgroup_path("/kubepods/burstable/pod0a1b-2c3d").unwrap();
    }

    #[test]
    fn systemd_driver_is_accepted_when_systemd_is_init() {
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("systemd/system")).unwrap();
        CgroupDriver::Systemd.check_host(run.path()).unwrap();
    }
}
