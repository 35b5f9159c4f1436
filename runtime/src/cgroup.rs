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
    /// The cgroupfs path of a CgroupParent as kubelet sends it for this driver: a path with
    /// cgroupfs (`/kubepods/besteffort/pod<uid>`), a slice name with systemd
    /// (`kubepods-besteffort-pod<uid>.slice`, which lives at
    /// `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice`). A path is
    /// taken with either driver.
    pub fn cgroupfs_path(self, parent: &str) -> Result<String, RuntimeError> {
        if self == CgroupDriver::Cgroupfs || parent.starts_with('/') {
            validate_cgroup_path(parent)?;
            return Ok(parent.to_string());
        }
        let invalid = || {
            RuntimeError::InvalidArgument(format!(
                "cgroup parent {parent:?} is neither an absolute path nor a systemd slice name"
            ))
        };
        let name = parent.strip_suffix(".slice").ok_or_else(invalid)?;
        let well_formed = !name.is_empty()
            && name.len() <= 200
            && !name.starts_with(['-', '.'])
            && !name.ends_with('-')
            && !name.contains("--")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'));
        if !well_formed {
            return Err(invalid());
        }
        // systemd nests a slice in the slices named by each dash-separated prefix.
        let mut path = String::new();
        let mut prefix = String::new();
        for part in name.split('-') {
            if !prefix.is_empty() {
                prefix.push('-');
            }
            prefix.push_str(part);
            path.push('/');
            path.push_str(&prefix);
            path.push_str(".slice");
        }
        validate_cgroup_path(&path)?;
        Ok(path)
    }

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

    /// Whether the root is the v2 unified tree.
    pub fn is_unified(&self) -> bool {
        self.root.join("cgroup.controllers").exists()
    }

    /// The directory of cgroup `path` (absolute) for `controller` (`memory`, `cpuacct`): its
    /// v1 hierarchy's, or the unified tree's on v2.
    pub fn controller_dir(&self, controller: &str, path: &str) -> PathBuf {
        let relative = path.trim_start_matches('/');
        if self.is_unified() {
            self.root.join(relative)
        } else {
            self.root.join(controller).join(relative)
        }
    }

    /// The directories a cgroup path is created in: the root itself on v2, each v1 hierarchy
    /// (the empty v2 tree of a hybrid host and the aliases `cpu`/`cpuacct` left out) on v1.
    fn hierarchies(&self) -> Result<Vec<PathBuf>, RuntimeError> {
        if self.is_unified() {
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
            let mut dir = hierarchy.clone();
            for component in path.trim_start_matches('/').split('/') {
                let parent = dir.clone();
                dir.push(component);
                // Another daemon or pod may create a shared parent at the same moment.
                match std::fs::create_dir(&dir) {
                    Ok(()) => created = true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(RuntimeError::io("create cgroup", &dir)(e)),
                }
                // Also for existing cgroups along the path: one left empty blocks all below it.
                inherit_cpuset(&parent, &dir)?;
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
                Err(e) => return Err(RuntimeError::io("remove cgroup", dir)(e)),
            }
        }
        Ok(())
    }
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and takes no process until it
/// has some: an empty one gets its parent's, as runc does. Other controllers have no such files.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<(), RuntimeError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let (from, to) = (parent.join(file), dir.join(file));
        let Ok(value) = std::fs::read_to_string(&from) else {
            continue; // not the cpuset hierarchy
        };
        let current = std::fs::read_to_string(&to).unwrap_or_default();
        if current.trim().is_empty() {
            std::fs::write(&to, value.trim()).map_err(RuntimeError::io("write", &to))?;
        }
    }
    Ok(())
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
    fn empty_cpusets_along_the_path_get_their_parents() {
        let root = tempfile::tempdir().unwrap();
        let cpuset = root.path().join("cpuset");
        std::fs::create_dir_all(cpuset.join("kubepods")).unwrap();
        for (dir, value) in [(cpuset.clone(), "0-3"), (cpuset.join("kubepods"), "")] {
            std::fs::write(dir.join("cpuset.cpus"), value).unwrap();
            std::fs::write(
                dir.join("cpuset.mems"),
                if value.is_empty() { "" } else { "0" },
            )
            .unwrap();
        }
        let fs = CgroupFs::new(root.path());
        // A real cpuset cgroup comes with its files; the fake one gets them from the test.
        std::fs::create_dir(cpuset.join("kubepods/pod1")).unwrap();
        for file in ["cpuset.cpus", "cpuset.mems"] {
            std::fs::write(cpuset.join("kubepods/pod1").join(file), "").unwrap();
        }
        fs.create("/kubepods/pod1").unwrap();
        for dir in ["kubepods", "kubepods/pod1"] {
            let cpus = std::fs::read_to_string(cpuset.join(dir).join("cpuset.cpus")).unwrap();
            let mems = std::fs::read_to_string(cpuset.join(dir).join("cpuset.mems")).unwrap();
            assert_eq!((cpus.as_str(), mems.as_str()), ("0-3", "0"), "{dir}");
        }
    }

    #[test]
    fn systemd_slice_names_expand_to_their_nested_path() {
        assert_eq!(
            CgroupDriver::Systemd
                .cgroupfs_path("kubepods-besteffort-pod12_34.slice")
                .unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_34.slice"
        );
        assert_eq!(
            CgroupDriver::Systemd
                .cgroupfs_path("kubepods.slice")
                .unwrap(),
            "/kubepods.slice"
        );
        assert_eq!(
            CgroupDriver::Systemd.cgroupfs_path("/kubepods/x").unwrap(),
            "/kubepods/x"
        );
        for bad in [
            "",
            "kubepods",
            "-.slice",
            "a--b.slice",
            "-a.slice",
            "a/b.slice",
            "a b.slice",
            "..slice",
        ] {
            assert!(CgroupDriver::Systemd.cgroupfs_path(bad).is_err(), "{bad:?}");
        }
        assert!(
            CgroupDriver::Cgroupfs
                .cgroupfs_path("kubepods.slice")
                .is_err()
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
