//! The OCI runtime spec of a container, from the image config and what the request asks.
//!
//! [`build`] composes the spec from one module per concern: [`process`] (arguments, environment,
//! working directory), [`user`], [`security`] (capabilities, seccomp, AppArmor, SELinux, masked
//! paths), [`mounts`], [`namespaces`], [`devices`], [`resources`] and [`signal`]. Everything the
//! host decides (cgroup version, AppArmor, SELinux, our own OOM score, `/dev`) is read from the
//! files named in [`HostPaths`], so tests can fake the host.

pub mod devices;
pub mod image_config;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod request;
pub mod resources;
pub mod seccomp;
pub mod security;
pub mod signal;
pub mod user;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, Linux, Process, Root, Spec, User};

use self::image_config::ImageConfig;
use self::request::ContainerRequest;
use crate::RuntimeError;

/// What a container needs to know of its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContext {
    pub pod_id: String,
    /// Pinned namespace files of the pod; None when the pod shares the host's.
    pub net_ns: Option<PathBuf>,
    pub ipc_ns: Option<PathBuf>,
    pub uts_ns: Option<PathBuf>,
    /// The pod-wide PID namespace (pod asked NamespaceMode POD), if any.
    pub pid_ns: Option<PathBuf>,
    pub host_network: bool,
    pub host_ipc: bool,
    pub host_pid: bool,
    pub hostname: String,
    /// Bind-mounted at `/etc/hostname`.
    pub hostname_file: PathBuf,
    /// Bind-mounted at `/etc/resolv.conf`; when the file does not exist, nothing is mounted.
    pub resolv_conf: PathBuf,
    /// The pod's `/dev/shm` mount dir; None: the host's `/dev/shm` (host IPC).
    pub shm: Option<PathBuf>,
}

/// Everything [`build`] needs.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    pub id: &'a str,
    pub request: &'a ContainerRequest,
    pub image: &'a ImageConfig,
    /// The container's mounted root filesystem (overlay merged dir). /etc/passwd etc. are read
    /// from it (in-root, by [`user::resolve`]), and it is `root.path` in the spec.
    pub rootfs: &'a Path,
    pub pod: &'a PodContext,
    /// OCI `linux.cgroupsPath`, computed by the caller (cgroupfs: "/<parent>/crius-<id>").
    pub cgroups_path: String,
    /// `/proc/<pid>/ns/pid` of the target container when pid_mode is Target.
    pub target_pid_ns: Option<PathBuf>,
}

/// A container's spec and what was decided on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltSpec {
    pub spec: Spec,
    pub user: user::ResolvedUser,
    /// Numeric signal to stop the container with (image StopSignal, else SIGTERM).
    pub stop_signal: i32,
}

/// Where [`build`] reads what it needs to know of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The cgroup mount root: v2 when it holds `cgroup.controllers`; swap is accounted on v1
    /// when it holds `memory/memory.memsw.limit_in_bytes`.
    pub cgroup_root: PathBuf,
    /// `Y` when AppArmor is enabled.
    pub apparmor_enabled: PathBuf,
    /// The loaded AppArmor profiles.
    pub apparmor_profiles: PathBuf,
    /// Exists when SELinux is enabled.
    pub selinux_enforce: PathBuf,
    /// The daemon's own OOM score adjustment, the lowest a container may get.
    pub own_oom_score_adj: PathBuf,
    /// The daemon's own status, whose bounding set holds every capability a container may get.
    pub own_status: PathBuf,
    /// The host's `/dev`, whose devices a privileged container gets.
    pub dev: PathBuf,
    /// The host's `/dev/shm`, for pods sharing the host IPC namespace.
    pub shm: PathBuf,
    /// The daemon's mount table, to check the propagation of host paths.
    pub mountinfo: PathBuf,
}

impl Default for HostPaths {
    /// The real host.
    fn default() -> Self {
        HostPaths {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            apparmor_enabled: PathBuf::from("/sys/module/apparmor/parameters/enabled"),
            apparmor_profiles: PathBuf::from("/sys/kernel/security/apparmor/profiles"),
            selinux_enforce: PathBuf::from("/sys/fs/selinux/enforce"),
            own_oom_score_adj: PathBuf::from("/proc/self/oom_score_adj"),
            own_status: PathBuf::from("/proc/self/status"),
            dev: PathBuf::from("/dev"),
            shm: PathBuf::from("/dev/shm"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
        }
    }
}

impl HostPaths {
    fn cgroup_features(&self) -> resources::CgroupFeatures {
        let v2 = self.cgroup_root.join("cgroup.controllers").exists();
        resources::CgroupFeatures {
            v2,
            swap: v2
                || self
                    .cgroup_root
                    .join("memory/memory.memsw.limit_in_bytes")
                    .exists(),
        }
    }

    fn own_oom_score_adj(&self) -> Result<i32, RuntimeError> {
        let path = &self.own_oom_score_adj;
        let text = std::fs::read_to_string(path).map_err(RuntimeError::io("read", path))?;
        text.trim()
            .parse()
            .map_err(|_| unreadable(path, format!("{:?} is not a number", text.trim())))
    }

    fn own_capabilities(&self) -> Result<HashSet<Capability>, RuntimeError> {
        let path = &self.own_status;
        let text = std::fs::read_to_string(path).map_err(RuntimeError::io("read", path))?;
        security::bounding_set(&text).ok_or_else(|| unreadable(path, "no CapBnd line".to_string()))
    }
}

/// A kernel file that does not say what it should.
fn unreadable(path: &Path, what: String) -> RuntimeError {
    RuntimeError::Io {
        op: "parse",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    }
}

/// Annotation prefixes OCI runtimes and their helpers act on: a request may not set them.
const RESERVED_ANNOTATION_PREFIXES: [&str; 4] = [
    "run.oci.",
    "io.crius.",
    "org.systemd.property.",
    "io.kubernetes.cri.",
];

/// The request's annotations without the reserved ones, and the CRI container annotations.
fn annotations(request: &ContainerRequest, pod_id: &str) -> HashMap<String, String> {
    let mut annotations: HashMap<String, String> = request
        .annotations
        .iter()
        .filter(|(key, _)| {
            !RESERVED_ANNOTATION_PREFIXES
                .iter()
                .any(|prefix| key.starts_with(prefix))
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    for (key, value) in [
        ("io.kubernetes.cri.container-type", "container"),
        ("io.kubernetes.cri.sandbox-id", pod_id),
        ("io.kubernetes.cri.container-name", &request.name),
    ] {
        annotations.insert(key.to_string(), value.to_string());
    }
    annotations
}

/// The resources of a container on this host, alone: for an update of a running container.
pub fn linux_resources(
    asked: &request::Resources,
) -> Result<oci_spec::runtime::LinuxResources, RuntimeError> {
    resources::resources(asked, HostPaths::default().cgroup_features())
}

/// The spec of a container on this host.
pub fn build(inputs: &SpecInputs<'_>) -> Result<BuiltSpec, RuntimeError> {
    build_on(inputs, &HostPaths::default())
}

/// [`build`] on the host `host` describes.
pub fn build_on(inputs: &SpecInputs<'_>, host: &HostPaths) -> Result<BuiltSpec, RuntimeError> {
    let request = inputs.request;
    let security = &request.security;
    let pod = inputs.pod;
    let privileged = security.privileged;
    let cgroups = host.cgroup_features();

    security::check_selinux(security.selinux.as_ref(), privileged, &host.selinux_enforce)?;
    let capabilities = security::capabilities(
        &security.capabilities,
        privileged,
        &host.own_capabilities()?,
    )?;
    let seccomp = security::seccomp_filter(&security.seccomp, privileged, &capabilities.effective)?;
    let apparmor_profile = security::apparmor_profile(
        &security.apparmor,
        privileged,
        security::AppArmorHost {
            enabled: &host.apparmor_enabled,
            profiles: &host.apparmor_profiles,
        },
    )?;
    let (masked_paths, readonly_paths) = security::masked_and_readonly_paths(
        &security.masked_paths,
        &security.readonly_paths,
        privileged,
    )?;
    let stop_signal = signal::stop_signal(inputs.image.stop_signal.as_deref())?;

    let resolved_user = user::resolve(inputs.rootfs, &inputs.image.user, &security.user)?;
    let mut user = User::default();
    user.set_uid(resolved_user.uid)
        .set_gid(resolved_user.gid)
        .set_additional_gids(
            Some(resolved_user.additional_gids.clone()).filter(|gids| !gids.is_empty()),
        );
    let mut process = Process::default();
    process
        .set_terminal(Some(request.tty))
        .set_user(user)
        .set_args(Some(process::args(request, inputs.image)?))
        .set_env(Some(process::env(
            request,
            inputs.image,
            &pod.hostname,
            resolved_user.home.as_deref(),
        )?))
        .set_cwd(process::cwd(request, inputs.image)?)
        .set_capabilities(Some(capabilities.to_oci()))
        .set_rlimits(None)
        .set_no_new_privileges(Some(security.no_new_privs))
        .set_apparmor_profile(apparmor_profile)
        .set_oom_score_adj(Some(resources::oom_score_adj(
            request.resources.oom_score_adj,
            host.own_oom_score_adj()?,
        )));

    let mut root = Root::default();
    root.set_path(inputs.rootfs.to_path_buf())
        .set_readonly(Some(security.readonly_rootfs));

    let devices = devices::devices(&request.devices, privileged, &host.dev)?;
    let mut resources = resources::resources(&request.resources, cgroups)?;
    resources.set_devices(Some(devices.cgroup_rules));

    let namespaces = namespaces::namespaces(
        pod,
        &security.pid_mode,
        inputs.target_pid_ns.as_deref(),
        cgroups.v2,
    )?;
    // Last of the checks: it creates missing host paths.
    let shm = pod.shm.as_deref().unwrap_or(&host.shm);
    let mounts = mounts::mounts(
        &request.mounts,
        &mounts::MountContext {
            pod_files: mounts::PodFiles {
                shm,
                hostname: &pod.hostname_file,
                resolv_conf: &pod.resolv_conf,
            },
            privileged,
            readonly_rootfs: security.readonly_rootfs,
            selinux_enabled: host.selinux_enforce.exists(),
            mountinfo: &host.mountinfo,
        },
    )?;

    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces))
        .set_devices(Some(devices.nodes))
        .set_resources(Some(resources))
        .set_cgroups_path(Some(PathBuf::from(&inputs.cgroups_path)))
        .set_masked_paths(Some(masked_paths))
        .set_readonly_paths(Some(readonly_paths))
        .set_seccomp(seccomp)
        .set_rootfs_propagation(mounts.rootfs_propagation);

    let mut spec = Spec::default();
    spec.set_version(oci_spec::runtime::VERSION.to_string())
        .set_root(Some(root))
        .set_process(Some(process))
        .set_hostname(pod.uts_ns.as_ref().map(|_| pod.hostname.clone()))
        .set_mounts(Some(mounts.mounts))
        .set_annotations(Some(annotations(request, &pod.pod_id)))
        .set_linux(Some(linux));

    tracing::debug!(
        container_id = inputs.id,
        pod_id = %pod.pod_id,
        uid = resolved_user.uid,
        privileged,
        "container spec built"
    );
    Ok(BuiltSpec {
        spec,
        user: resolved_user,
        stop_signal,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use oci_spec::runtime::LinuxNamespaceType;

    use super::request::{ContainerPidMode, MountRequest, SeccompRequest};
    use super::*;

    /// A fake host and a rootfs with account files, in one temp dir.
    struct Fixture {
        dir: tempfile::TempDir,
        host: HostPaths,
        pod: PodContext,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let path = |name: &str| dir.path().join(name);
            std::fs::create_dir_all(path("rootfs/etc")).unwrap();
            std::fs::write(
                path("rootfs/etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n",
            )
            .unwrap();
            std::fs::write(
                path("rootfs/etc/group"),
                "root:x:0:\nwww:x:33:\nextra:x:50:www\n",
            )
            .unwrap();
            std::fs::create_dir_all(path("host/cgroup/memory")).unwrap();
            std::fs::write(path("host/cgroup/memory/memory.memsw.limit_in_bytes"), "").unwrap();
            std::fs::write(path("host/oom_score_adj"), "-500\n").unwrap();
            std::fs::write(
                path("host/status"),
                "Name:\tcrius\nCapBnd:\t000001ffffffffff\n",
            )
            .unwrap();
            std::fs::write(
                path("host/mountinfo"),
                "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
            )
            .unwrap();
            std::fs::create_dir_all(path("host/dev/shm")).unwrap();
            std::fs::create_dir_all(path("pod/shm")).unwrap();
            std::fs::write(path("pod/hostname"), "web-0\n").unwrap();
            std::fs::write(path("pod/resolv.conf"), "nameserver 10.0.0.10\n").unwrap();
            let host = HostPaths {
                cgroup_root: path("host/cgroup"),
                apparmor_enabled: path("host/apparmor/enabled"),
                apparmor_profiles: path("host/apparmor/profiles"),
                selinux_enforce: path("host/selinux/enforce"),
                own_oom_score_adj: path("host/oom_score_adj"),
                own_status: path("host/status"),
                dev: path("host/dev"),
                shm: path("host/dev/shm"),
                mountinfo: path("host/mountinfo"),
            };
            let pod = PodContext {
                pod_id: "pod-1234".into(),
                net_ns: Some(path("pod/ns/net")),
                ipc_ns: Some(path("pod/ns/ipc")),
                uts_ns: Some(path("pod/ns/uts")),
                pid_ns: None,
                host_network: false,
                host_ipc: false,
                host_pid: false,
                hostname: "web-0".into(),
                hostname_file: path("pod/hostname"),
                resolv_conf: path("pod/resolv.conf"),
                shm: Some(path("pod/shm")),
            };
            Fixture { dir, host, pod }
        }

        fn rootfs(&self) -> PathBuf {
            self.dir.path().join("rootfs")
        }

        fn build(
            &self,
            request: &ContainerRequest,
            image: &ImageConfig,
        ) -> Result<BuiltSpec, RuntimeError> {
            let rootfs = self.rootfs();
            build_on(
                &SpecInputs {
                    id: "c1",
                    request,
                    image,
                    rootfs: &rootfs,
                    pod: &self.pod,
                    cgroups_path: "/kubepods/crius-c1".into(),
                    target_pid_ns: None,
                },
                &self.host,
            )
        }
    }

    fn image() -> ImageConfig {
        ImageConfig::parse(
            br#"{"config": {"Entrypoint": ["/bin/server"], "Cmd": ["--port", "80"],
                 "Env": ["PATH=/usr/bin:/bin", "MODE=image"], "WorkingDir": "/srv",
                 "User": "www", "StopSignal": "SIGQUIT"}}"#,
        )
        .unwrap()
    }

    fn request() -> ContainerRequest {
        ContainerRequest {
            name: "server".into(),
            image: "registry.example/server:1".into(),
            envs: vec![("MODE".into(), "request".into())],
            annotations: BTreeMap::from([
                ("team".to_string(), "web".to_string()),
                ("run.oci.keep_original_groups".to_string(), "1".to_string()),
                (
                    "io.kubernetes.cri.container-type".to_string(),
                    "sandbox".to_string(),
                ),
                (
                    "org.systemd.property.Delegate".to_string(),
                    "yes".to_string(),
                ),
            ]),
            ..ContainerRequest::default()
        }
    }

    fn namespace_types(spec: &Spec) -> Vec<(LinuxNamespaceType, bool)> {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.typ(), n.path().is_some()))
            .collect()
    }

    #[test]
    fn a_plain_container_spec() {
        let fixture = Fixture::new();
        let mut request = request();
        request.resources.oom_score_adj = -997;
        request.resources.memory_limit_in_bytes = Some(64 << 20);
        let built = fixture.build(&request, &image()).unwrap();
        assert_eq!(built.stop_signal, 3);
        assert_eq!((built.user.uid, built.user.gid), (33, 33));
        let spec = &built.spec;

        let process = spec.process().as_ref().unwrap();
        assert_eq!(
            process.args().as_deref().unwrap(),
            ["/bin/server", "--port", "80"]
        );
        assert_eq!(
            process.env().as_deref().unwrap(),
            [
                "PATH=/usr/bin:/bin",
                "MODE=request",
                "HOSTNAME=web-0",
                "HOME=/var/www"
            ]
        );
        assert_eq!(process.cwd(), Path::new("/srv"));
        assert_eq!(process.terminal(), Some(false));
        assert_eq!((process.user().uid(), process.user().gid()), (33, 33));
        assert_eq!(process.user().additional_gids().as_deref(), Some(&[50][..]));
        assert_eq!(process.oom_score_adj(), Some(-500));
        assert_eq!(process.no_new_privileges(), Some(false));
        assert_eq!(process.rlimits(), &None);
        assert_eq!(process.apparmor_profile(), &None);
        let capabilities = process.capabilities().as_ref().unwrap();
        assert_eq!(
            capabilities.effective().as_ref().unwrap(),
            &security::DEFAULT_CAPABILITIES
                .into_iter()
                .collect::<HashSet<_>>()
        );

        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), &fixture.rootfs());
        assert_eq!(root.readonly(), Some(false));
        assert_eq!(spec.hostname().as_deref(), Some("web-0"));

        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            namespace_types(spec),
            [
                (LinuxNamespaceType::Pid, false),
                (LinuxNamespaceType::Network, true),
                (LinuxNamespaceType::Ipc, true),
                (LinuxNamespaceType::Uts, true),
                (LinuxNamespaceType::Mount, false),
            ]
        );
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/kubepods/crius-c1"))
        );
        // Pod sysctls were set in the pod's namespaces when they were pinned.
        assert_eq!(linux.sysctl(), &None);
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
        assert_eq!(linux.seccomp(), &None);
        assert_eq!(linux.rootfs_propagation(), &None);
        let resources = linux.resources().as_ref().unwrap();
        assert_eq!(resources.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(resources.memory().unwrap().swap(), Some(64 << 20));
        let rules = resources.devices().as_ref().unwrap();
        assert!(!rules[0].allow());
        assert_eq!(linux.devices().as_ref().unwrap().len(), 6);

        let annotations = spec.annotations().as_ref().unwrap();
        assert_eq!(annotations.get("team").map(String::as_str), Some("web"));
        assert_eq!(
            annotations
                .get("io.kubernetes.cri.container-type")
                .map(String::as_str),
            Some("container")
        );
        assert_eq!(
            annotations
                .get("io.kubernetes.cri.sandbox-id")
                .map(String::as_str),
            Some("pod-1234")
        );
        assert_eq!(
            annotations
                .get("io.kubernetes.cri.container-name")
                .map(String::as_str),
            Some("server")
        );
        assert!(!annotations.contains_key("run.oci.keep_original_groups"));
        assert!(!annotations.contains_key("org.systemd.property.Delegate"));

        let shm = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap();
        assert_eq!(
            shm.source().as_deref(),
            Some(fixture.dir.path().join("pod/shm").as_path())
        );
    }

    #[test]
    fn the_spec_round_trips_through_json() {
        let fixture = Fixture::new();
        let mut request = request();
        request.tty = true;
        request.security.seccomp = SeccompRequest::RuntimeDefault;
        request.security.capabilities.add = vec!["NET_ADMIN".into()];
        let built = fixture.build(&request, &image()).unwrap();
        let json = serde_json::to_string(&built.spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, built.spec);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "annotations",
                "hostname",
                "linux",
                "mounts",
                "ociVersion",
                "process",
                "root"
            ]
        );
        assert_eq!(value["process"]["terminal"], true);
        assert_eq!(value["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(
            value["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("CAP_NET_ADMIN"))
        );
        assert_eq!(value["linux"]["namespaces"][4]["type"], "mount");
    }

    #[test]
    fn privileged_containers_are_unconfined() {
        let fixture = Fixture::new();
        let mut request = request();
        request.security.privileged = true;
        request.security.seccomp = SeccompRequest::RuntimeDefault;
        request.security.masked_paths = vec!["/proc/kcore".into()];
        let built = fixture.build(&request, &image()).unwrap();
        let process = built.spec.process().as_ref().unwrap();
        let bounding = process
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert!(bounding.contains(&Capability::SysAdmin));
        let linux = built.spec.linux().as_ref().unwrap();
        assert_eq!(linux.seccomp(), &None);
        assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
        assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow());
    }

    #[test]
    fn host_namespaces_drop_the_hostname_and_use_the_hosts_shm() {
        let mut fixture = Fixture::new();
        fixture.pod.net_ns = None;
        fixture.pod.ipc_ns = None;
        fixture.pod.uts_ns = None;
        fixture.pod.host_network = true;
        fixture.pod.host_ipc = true;
        fixture.pod.shm = None;
        let mut request = request();
        request.security.pid_mode = ContainerPidMode::Host;
        let built = fixture.build(&request, &image()).unwrap();
        assert_eq!(built.spec.hostname(), &None);
        assert_eq!(
            namespace_types(&built.spec),
            [(LinuxNamespaceType::Mount, false)]
        );
        assert_eq!(built.spec.linux().as_ref().unwrap().sysctl(), &None);
        let shm = built
            .spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap()
            .clone();
        assert_eq!(shm.source().as_deref(), Some(fixture.host.shm.as_path()));
    }

    #[test]
    fn cgroup_v2_hosts_get_a_cgroup_namespace() {
        let fixture = Fixture::new();
        std::fs::write(
            fixture.host.cgroup_root.join("cgroup.controllers"),
            "memory\n",
        )
        .unwrap();
        let built = fixture.build(&request(), &image()).unwrap();
        assert_eq!(
            namespace_types(&built.spec).last(),
            Some(&(LinuxNamespaceType::Cgroup, false))
        );
    }

    #[test]
    fn request_mounts_reach_the_spec_with_their_propagation() {
        let fixture = Fixture::new();
        let data = fixture.dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut request = request();
        request.security.readonly_rootfs = true;
        request.mounts = vec![MountRequest {
            container_path: "/data".into(),
            host_path: data.to_string_lossy().into_owned(),
            readonly: true,
            ..MountRequest::default()
        }];
        let built = fixture.build(&request, &image()).unwrap();
        let mounts = built.spec.mounts().as_ref().unwrap();
        let data_mount = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"))
            .unwrap();
        assert_eq!(
            data_mount.options().as_deref().unwrap(),
            ["rbind", "rprivate", "ro"]
        );
        assert_eq!(built.spec.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn refusals_from_every_part_reach_the_caller() {
        let fixture = Fixture::new();
        let mut bad_cwd = request();
        bad_cwd.working_dir = "/proc/self/fd/3".into();
        let mut bad_cap = request();
        bad_cap.security.capabilities.add = vec!["CAP_WHATEVER".into()];
        let mut bad_user = request();
        bad_user.security.user.run_as_username = Some("nobody-here".into());
        let mut bad_selinux = request();
        bad_selinux.security.selinux = Some(request::SelinuxOptions {
            level: "s0:c1,c2".into(),
            ..request::SelinuxOptions::default()
        });
        let mut bad_pid = request();
        bad_pid.security.pid_mode = ContainerPidMode::Pod;
        for (what, request) in [
            ("cwd", bad_cwd),
            ("capability", bad_cap),
            ("user", bad_user),
            ("selinux", bad_selinux),
            ("pid", bad_pid),
        ] {
            let err = fixture.build(&request, &image()).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{what}: {err}"
            );
        }
        let mut bad_signal = image();
        bad_signal.stop_signal = Some("SIGNOPE".into());
        assert!(fixture.build(&request(), &bad_signal).is_err());
        assert!(fixture.build(&request(), &ImageConfig::default()).is_err());
    }
}
