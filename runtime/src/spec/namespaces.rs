//! The container's namespaces: a mount namespace of its own always; the pod's network, IPC and
//! UTS namespaces (or the host's); the PID namespace its mode asks for; a cgroup namespace on
//! cgroup v2 hosts; never a user namespace.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::PodContext;
use super::request::ContainerPidMode;
use crate::RuntimeError;

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut namespace = LinuxNamespace::default();
    namespace.set_typ(typ).set_path(path.map(PathBuf::from));
    namespace
}

/// The namespaces of the spec. A namespace left out of the list is the host's: the pod's
/// pinned paths are joined, and a pod without one (`None`) shares the host's.
pub fn namespaces(
    pod: &PodContext,
    pid_mode: &ContainerPidMode,
    target_pid_ns: Option<&Path>,
    cgroup_v2: bool,
) -> Result<Vec<LinuxNamespace>, RuntimeError> {
    let mut namespaces = Vec::with_capacity(6);
    match pid_mode {
        ContainerPidMode::Container => {
            namespaces.push(namespace(LinuxNamespaceType::Pid, None));
        }
        ContainerPidMode::Pod => match &pod.pid_ns {
            Some(path) => namespaces.push(namespace(LinuxNamespaceType::Pid, Some(path))),
            // The pod itself shares the host's.
            None if pod.host_pid => {}
            None => {
                return Err(RuntimeError::InvalidArgument(format!(
                    "the container asks for the PID namespace of pod {}, which has none \
                     (the pod was created with a PID namespace per container)",
                    pod.pod_id
                )));
            }
        },
        ContainerPidMode::Host => {}
        ContainerPidMode::Target(target) => {
            let path = target_pid_ns.ok_or_else(|| {
                RuntimeError::InvalidArgument(format!(
                    "the PID namespace of target container {target} is not known"
                ))
            })?;
            namespaces.push(namespace(LinuxNamespaceType::Pid, Some(path)));
        }
    }
    for (typ, path) in [
        (LinuxNamespaceType::Network, &pod.net_ns),
        (LinuxNamespaceType::Ipc, &pod.ipc_ns),
        (LinuxNamespaceType::Uts, &pod.uts_ns),
    ] {
        if let Some(path) = path {
            namespaces.push(namespace(typ, Some(path)));
        }
    }
    namespaces.push(namespace(LinuxNamespaceType::Mount, None));
    if cgroup_v2 {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None));
    }
    Ok(namespaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodContext {
        PodContext {
            pod_id: "pod1".into(),
            net_ns: Some("/run/crius/pods/pod1/ns/net".into()),
            ipc_ns: Some("/run/crius/pods/pod1/ns/ipc".into()),
            uts_ns: Some("/run/crius/pods/pod1/ns/uts".into()),
            pid_ns: Some("/run/crius/pods/pod1/ns/pid".into()),
            host_network: false,
            host_ipc: false,
            host_pid: false,
            hostname: "pod1".into(),
            hostname_file: PathBuf::new(),
            resolv_conf: PathBuf::new(),
            shm: None,
        }
    }

    fn summary(namespaces: &[LinuxNamespace]) -> Vec<(String, Option<String>)> {
        namespaces
            .iter()
            .map(|n| {
                (
                    n.typ().to_string(),
                    n.path().as_ref().map(|p| p.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    fn own(typ: &str) -> (String, Option<String>) {
        (typ.to_string(), None)
    }

    fn joined(typ: &str, path: &str) -> (String, Option<String>) {
        (typ.to_string(), Some(path.to_string()))
    }

    #[test]
    fn container_pid_mode_gets_a_new_pid_namespace_and_joins_the_pods() {
        let namespaces = namespaces(&pod(), &ContainerPidMode::Container, None, false).unwrap();
        assert_eq!(
            summary(&namespaces),
            [
                own("pid"),
                joined("net", "/run/crius/pods/pod1/ns/net"),
                joined("ipc", "/run/crius/pods/pod1/ns/ipc"),
                joined("uts", "/run/crius/pods/pod1/ns/uts"),
                own("mnt"),
            ]
        );
    }

    #[test]
    fn pod_pid_mode_joins_the_pod_pid_namespace() {
        let namespaces = namespaces(&pod(), &ContainerPidMode::Pod, None, false).unwrap();
        assert_eq!(
            summary(&namespaces)[0],
            joined("pid", "/run/crius/pods/pod1/ns/pid")
        );
    }

    #[test]
    fn pod_pid_mode_without_a_pod_pid_namespace_is_refused_unless_the_pod_is_host_pid() {
        let mut pod = pod();
        pod.pid_ns = None;
        let err = namespaces(&pod, &ContainerPidMode::Pod, None, false).unwrap_err();
        assert_eq!(err.kind(), crate::RuntimeErrorKind::InvalidArgument);
        pod.host_pid = true;
        let namespaces = namespaces(&pod, &ContainerPidMode::Pod, None, false).unwrap();
        assert!(!summary(&namespaces).iter().any(|(t, _)| t == "pid"));
    }

    #[test]
    fn host_modes_leave_namespaces_out() {
        let mut pod = pod();
        pod.net_ns = None;
        pod.ipc_ns = None;
        pod.uts_ns = None;
        pod.host_network = true;
        pod.host_ipc = true;
        let namespaces = namespaces(&pod, &ContainerPidMode::Host, None, false).unwrap();
        assert_eq!(summary(&namespaces), [own("mnt")]);
    }

    #[test]
    fn target_mode_joins_the_target_and_needs_its_path() {
        let target = ContainerPidMode::Target("abc".into());
        let namespaces =
            namespaces(&pod(), &target, Some(Path::new("/proc/42/ns/pid")), false).unwrap();
        assert_eq!(summary(&namespaces)[0], joined("pid", "/proc/42/ns/pid"));
        assert!(super::namespaces(&pod(), &target, None, false).is_err());
    }

    #[test]
    fn cgroup_namespace_only_on_cgroup_v2() {
        let namespaces = namespaces(&pod(), &ContainerPidMode::Container, None, true).unwrap();
        assert_eq!(summary(&namespaces).last(), Some(&own("cgroup")));
    }
}
