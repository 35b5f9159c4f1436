//! `RuntimeConfig`: the cgroup driver kubelet must build its hierarchy for.

use crius_runtime::cgroup::CgroupDriver;
use k8s_cri::v1 as cri;

use crate::config::Config;

pub fn runtime_config(config: &Config) -> cri::RuntimeConfigResponse {
    let cgroup_driver = match config.runtime.cgroup_driver {
        CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
        CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
    };
    cri::RuntimeConfigResponse {
        linux: Some(cri::LinuxRuntimeConfiguration {
            cgroup_driver: cgroup_driver.into(),
        }),
    }
}
