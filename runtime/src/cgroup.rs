//! The cgroup driver: who owns the cgroup tree, the cgroupfs directly or systemd.
//!
//! kubelet asks for it once at start (`RuntimeConfig`) and builds its own hierarchy to match, so the
//! choice is fixed for the daemon's lifetime and checked against the host before serving.

use std::path::Path;

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
    fn systemd_driver_is_accepted_when_systemd_is_init() {
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("systemd/system")).unwrap();
        CgroupDriver::Systemd.check_host(run.path()).unwrap();
    }
}
