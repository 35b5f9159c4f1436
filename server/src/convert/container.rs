//! Containers: a CRI `ContainerConfig` checked and turned into a [`ContainerRequest`] before
//! anything is created. What needs the image or the host (users, capabilities, devices, host
//! paths) is checked when the runtime builds the spec; what the message alone can tell is
//! checked here.

use std::path::{Component, Path, PathBuf};

use crius_runtime::spec::process::validate_env;
use crius_runtime::spec::request::{
    AppArmorRequest, CapabilitiesRequest, ContainerPidMode, ContainerRequest, DeviceRequest,
    HugepageLimit, MountRequest, Propagation, Resources, SeccompRequest, SecurityRequest,
    SelinuxOptions,
};
use crius_runtime::spec::user::{SupplementalGroupsPolicy, UserRequest};
use k8s_cri::v1 as cri;
use k8s_cri::v1::security_profile::ProfileType;
use tonic::Status;

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// A container name: 1 to 253 characters of `[A-Za-z0-9.-]`, not `.`-led and without `..`
/// (it becomes part of names and paths).
fn check_name(name: &str) -> Result<(), Status> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "metadata.name {name:?} must be 1 to 253 characters of [A-Za-z0-9.-], not starting \
             with '.' and without '..'"
        )))
    }
}

/// The log path: relative to the pod's log directory, without `..`, NUL or empty components
/// that would name the directory itself.
fn check_log_path(log_path: &str) -> Result<(), Status> {
    if log_path.is_empty() {
        return Ok(());
    }
    let path = Path::new(log_path);
    let ok = !log_path.contains('\0')
        && !log_path.ends_with('/')
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "log_path {log_path:?} must be a relative file path without '..'"
        )))
    }
}

/// The container's log file: `log_path` under the pod's log directory, or `None` when the pod has
/// no log directory. A pod with one needs a `log_path` for each container.
pub fn log_file(pod_log_directory: &str, log_path: &str) -> Result<Option<PathBuf>, Status> {
    if pod_log_directory.is_empty() {
        return Ok(None);
    }
    if log_path.is_empty() {
        return Err(invalid("log_path is required: the pod has a log directory"));
    }
    check_log_path(log_path)?;
    Ok(Some(Path::new(pod_log_directory).join(log_path)))
}

fn mount(mount: &cri::Mount) -> Result<MountRequest, Status> {
    let container_path = &mount.container_path;
    if mount
        .image
        .as_ref()
        .is_some_and(|image| !image.image.is_empty())
    {
        return Err(invalid(format!(
            "mount {container_path}: image volumes are not supported"
        )));
    }
    if !mount.uid_mappings.is_empty() || !mount.gid_mappings.is_empty() {
        return Err(invalid(format!(
            "mount {container_path}: ID-mapped mounts are not supported"
        )));
    }
    if !container_path.starts_with('/') || container_path.contains('\0') {
        return Err(invalid(format!(
            "mount container_path {container_path:?} is not an absolute path"
        )));
    }
    if !mount.host_path.starts_with('/') || mount.host_path.contains('\0') {
        return Err(invalid(format!(
            "mount {container_path}: host_path {:?} is not an absolute path",
            mount.host_path
        )));
    }
    let propagation = match cri::MountPropagation::try_from(mount.propagation) {
        Ok(cri::MountPropagation::PropagationPrivate) => Propagation::Private,
        Ok(cri::MountPropagation::PropagationHostToContainer) => Propagation::HostToContainer,
        Ok(cri::MountPropagation::PropagationBidirectional) => Propagation::Bidirectional,
        Err(_) => {
            return Err(invalid(format!(
                "mount {container_path}: unknown propagation {}",
                mount.propagation
            )));
        }
    };
    if mount.recursive_read_only && (!mount.readonly || propagation != Propagation::Private) {
        return Err(invalid(format!(
            "mount {container_path}: recursive_read_only needs readonly and private propagation"
        )));
    }
    Ok(MountRequest {
        container_path: container_path.clone(),
        host_path: mount.host_path.clone(),
        readonly: mount.readonly,
        recursive_read_only: mount.recursive_read_only,
        selinux_relabel: mount.selinux_relabel,
        propagation,
    })
}

pub fn resources(asked: &cri::LinuxContainerResources) -> Result<Resources, Status> {
    let non_negative = |what: &str, value: i64| {
        u64::try_from(value)
            .map(|v| (v > 0).then_some(v))
            .map_err(|_| invalid(format!("resources.{what} {value} is negative")))
    };
    Ok(Resources {
        cpu_period: non_negative("cpu_period", asked.cpu_period)?,
        cpu_quota: (asked.cpu_quota != 0).then_some(asked.cpu_quota),
        cpu_shares: non_negative("cpu_shares", asked.cpu_shares)?,
        memory_limit_in_bytes: non_negative("memory_limit_in_bytes", asked.memory_limit_in_bytes)?,
        memory_swap_limit_in_bytes: (asked.memory_swap_limit_in_bytes != 0)
            .then_some(asked.memory_swap_limit_in_bytes),
        oom_score_adj: asked.oom_score_adj,
        cpuset_cpus: asked.cpuset_cpus.clone(),
        cpuset_mems: asked.cpuset_mems.clone(),
        hugepage_limits: asked
            .hugepage_limits
            .iter()
            .map(|limit| HugepageLimit {
                page_size: limit.page_size.clone(),
                limit: limit.limit,
            })
            .collect(),
        unified: asked
            .unified
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn profile_type(what: &str, profile: &cri::SecurityProfile) -> Result<ProfileType, Status> {
    ProfileType::try_from(profile.profile_type).map_err(|_| {
        invalid(format!(
            "{what}: unknown profile type {}",
            profile.profile_type
        ))
    })
}

fn seccomp_path(path: &str) -> Result<SeccompRequest, Status> {
    if !path.starts_with('/') || path.contains('\0') {
        return Err(invalid(format!(
            "seccomp profile {path:?} is not an absolute path"
        )));
    }
    Ok(SeccompRequest::Localhost(PathBuf::from(path)))
}

/// The seccomp profile: the `seccomp` field, else the deprecated `seccomp_profile_path`; neither
/// means unconfined, as the CRI says.
// The deprecated field is what kubelets before 1.22 (and some tools) still send.
#[allow(deprecated)]
fn seccomp(context: &cri::LinuxContainerSecurityContext) -> Result<SeccompRequest, Status> {
    if let Some(profile) = &context.seccomp {
        return match profile_type("seccomp", profile)? {
            ProfileType::RuntimeDefault => Ok(SeccompRequest::RuntimeDefault),
            ProfileType::Unconfined => Ok(SeccompRequest::Unconfined),
            ProfileType::Localhost => seccomp_path(&profile.localhost_ref),
        };
    }
    match context.seccomp_profile_path.as_str() {
        "" | "unconfined" => Ok(SeccompRequest::Unconfined),
        "runtime/default" | "docker/default" => Ok(SeccompRequest::RuntimeDefault),
        other => match other.strip_prefix("localhost/") {
            Some(path) => seccomp_path(path),
            None => Err(invalid(format!(
                "seccomp_profile_path {other:?} is not runtime/default, unconfined or \
                 localhost/<path>"
            ))),
        },
    }
}

fn apparmor_name(name: &str) -> Result<AppArmorRequest, Status> {
    let name = name.strip_prefix("localhost/").unwrap_or(name);
    if name.is_empty() || name.contains(['\0', '\n']) {
        return Err(invalid(format!(
            "AppArmor profile name {name:?} is not valid"
        )));
    }
    Ok(AppArmorRequest::Localhost(name.to_string()))
}

/// The AppArmor profile: the `apparmor` field, else the deprecated `apparmor_profile`; neither
/// means the runtime's default.
// The deprecated field is what kubelets before 1.30 (and some tools) still send.
#[allow(deprecated)]
fn apparmor(context: &cri::LinuxContainerSecurityContext) -> Result<AppArmorRequest, Status> {
    if let Some(profile) = &context.apparmor {
        return match profile_type("apparmor", profile)? {
            ProfileType::RuntimeDefault => Ok(AppArmorRequest::RuntimeDefault),
            ProfileType::Unconfined => Ok(AppArmorRequest::Unconfined),
            ProfileType::Localhost => apparmor_name(&profile.localhost_ref),
        };
    }
    match context.apparmor_profile.as_str() {
        "" | "runtime/default" => Ok(AppArmorRequest::RuntimeDefault),
        "unconfined" => Ok(AppArmorRequest::Unconfined),
        other if other.starts_with("localhost/") => apparmor_name(other),
        other => Err(invalid(format!(
            "apparmor_profile {other:?} is not runtime/default, unconfined or localhost/<name>"
        ))),
    }
}

fn pid_mode(options: Option<&cri::NamespaceOption>) -> Result<ContainerPidMode, Status> {
    // The proto's zero value is POD: a request without options asks for the pod's namespace.
    let options = options.cloned().unwrap_or_default();
    match cri::NamespaceMode::try_from(options.pid) {
        Ok(cri::NamespaceMode::Pod) => Ok(ContainerPidMode::Pod),
        Ok(cri::NamespaceMode::Container) => Ok(ContainerPidMode::Container),
        Ok(cri::NamespaceMode::Node) => Ok(ContainerPidMode::Host),
        Ok(cri::NamespaceMode::Target) if options.target_id.is_empty() => Err(invalid(
            "namespace_options: PID mode TARGET needs a target_id",
        )),
        Ok(cri::NamespaceMode::Target) => Ok(ContainerPidMode::Target(options.target_id)),
        Err(_) => Err(invalid(format!(
            "namespace_options: unknown PID mode {}",
            options.pid
        ))),
    }
}

fn security(context: &cri::LinuxContainerSecurityContext) -> Result<SecurityRequest, Status> {
    let capabilities = context.capabilities.clone().unwrap_or_default();
    let policy = match cri::SupplementalGroupsPolicy::try_from(context.supplemental_groups_policy) {
        Ok(cri::SupplementalGroupsPolicy::Merge) => SupplementalGroupsPolicy::Merge,
        Ok(cri::SupplementalGroupsPolicy::Strict) => SupplementalGroupsPolicy::Strict,
        Err(_) => {
            return Err(invalid(format!(
                "unknown supplemental_groups_policy {}",
                context.supplemental_groups_policy
            )));
        }
    };
    Ok(SecurityRequest {
        privileged: context.privileged,
        readonly_rootfs: context.readonly_rootfs,
        capabilities: CapabilitiesRequest {
            add: capabilities.add_capabilities,
            drop: capabilities.drop_capabilities,
            add_ambient: capabilities.add_ambient_capabilities,
        },
        no_new_privs: context.no_new_privs,
        masked_paths: context.masked_paths.clone(),
        readonly_paths: context.readonly_paths.clone(),
        seccomp: seccomp(context)?,
        apparmor: apparmor(context)?,
        selinux: context.selinux_options.as_ref().map(|o| SelinuxOptions {
            user: o.user.clone(),
            role: o.role.clone(),
            type_: o.r#type.clone(),
            level: o.level.clone(),
        }),
        user: UserRequest {
            run_as_user: context.run_as_user.as_ref().map(|v| v.value),
            run_as_username: Some(context.run_as_username.clone()).filter(|n| !n.is_empty()),
            run_as_group: context.run_as_group.as_ref().map(|v| v.value),
            supplemental_groups: context.supplemental_groups.clone(),
            policy,
        },
        pid_mode: pid_mode(context.namespace_options.as_ref())?,
    })
}

/// Validates and converts the CRI ContainerConfig (InvalidArgument with a clear message on bad
/// input).
pub fn container_request(config: &cri::ContainerConfig) -> Result<ContainerRequest, Status> {
    let metadata = config
        .metadata
        .as_ref()
        .ok_or_else(|| invalid("config.metadata is required"))?;
    check_name(&metadata.name)?;
    let image = config
        .image
        .as_ref()
        .map(|image| image.image.clone())
        .filter(|image| !image.is_empty())
        .ok_or_else(|| invalid("config.image is required"))?;
    check_log_path(&config.log_path)?;
    if !config.cdi_devices.is_empty() {
        return Err(invalid("CDI devices are not supported"));
    }
    let mut envs = Vec::with_capacity(config.envs.len());
    for env in &config.envs {
        validate_env(&env.key, &env.value).map_err(|e| invalid(e.to_string()))?;
        envs.push((env.key.clone(), env.value.clone()));
    }
    let mounts = config
        .mounts
        .iter()
        .map(mount)
        .collect::<Result<Vec<_>, _>>()?;
    let devices = config
        .devices
        .iter()
        .map(|device| DeviceRequest {
            container_path: device.container_path.clone(),
            host_path: device.host_path.clone(),
            permissions: device.permissions.clone(),
        })
        .collect();
    let linux = config.linux.clone().unwrap_or_default();
    let resources = resources(&linux.resources.unwrap_or_default())?;
    let security = security(&linux.security_context.unwrap_or_default())?;
    Ok(ContainerRequest {
        name: metadata.name.clone(),
        attempt: metadata.attempt,
        image,
        command: config.command.clone(),
        args: config.args.clone(),
        working_dir: config.working_dir.clone(),
        envs,
        mounts,
        devices,
        labels: config.labels.clone().into_iter().collect(),
        annotations: config.annotations.clone().into_iter().collect(),
        log_path: config.log_path.clone(),
        stdin: config.stdin,
        stdin_once: config.stdin_once,
        tty: config.tty,
        resources,
        security,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn minimal() -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: "app".into(),
                attempt: 2,
            }),
            image: Some(cri::ImageSpec {
                image: "sha256:abc".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_security(
        edit: impl FnOnce(&mut cri::LinuxContainerSecurityContext),
    ) -> cri::ContainerConfig {
        let mut context = cri::LinuxContainerSecurityContext::default();
        edit(&mut context);
        cri::ContainerConfig {
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(context),
                ..Default::default()
            }),
            ..minimal()
        }
    }

    fn refused(config: &cri::ContainerConfig) -> String {
        let status = container_request(config).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status.message().to_string()
    }

    #[test]
    fn a_full_config_converts() {
        let config = cri::ContainerConfig {
            command: vec!["/bin/sh".into()],
            args: vec!["-c".into(), "sleep 1".into()],
            working_dir: "/work".into(),
            envs: vec![cri::KeyValue {
                key: "A".into(),
                value: "multi\nline".into(),
            }],
            mounts: vec![cri::Mount {
                container_path: "/data".into(),
                host_path: "/var/lib/data".into(),
                readonly: true,
                recursive_read_only: true,
                selinux_relabel: true,
                ..Default::default()
            }],
            devices: vec![cri::Device {
                container_path: "/dev/fuse".into(),
                host_path: "/dev/fuse".into(),
                permissions: "rw".into(),
            }],
            labels: HashMap::from([("l".to_string(), "1".to_string())]),
            annotations: HashMap::from([("a".to_string(), "2".to_string())]),
            log_path: "app/2.log".into(),
            stdin: true,
            stdin_once: true,
            tty: true,
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_quota: 20_000,
                    cpu_shares: 204,
                    memory_limit_in_bytes: 1 << 30,
                    oom_score_adj: -997,
                    cpuset_cpus: "0".into(),
                    hugepage_limits: vec![cri::HugepageLimit {
                        page_size: "2MB".into(),
                        limit: 1 << 21,
                    }],
                    unified: HashMap::from([("memory.high".to_string(), "1G".to_string())]),
                    ..Default::default()
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    capabilities: Some(cri::Capability {
                        add_capabilities: vec!["NET_ADMIN".into()],
                        drop_capabilities: vec!["ALL".into()],
                        add_ambient_capabilities: vec![],
                    }),
                    namespace_options: Some(cri::NamespaceOption {
                        pid: cri::NamespaceMode::Container.into(),
                        ..Default::default()
                    }),
                    run_as_user: Some(cri::Int64Value { value: 1000 }),
                    run_as_group: Some(cri::Int64Value { value: 3000 }),
                    supplemental_groups: vec![4000],
                    supplemental_groups_policy: cri::SupplementalGroupsPolicy::Strict.into(),
                    readonly_rootfs: true,
                    no_new_privs: true,
                    masked_paths: vec!["/proc/kcore".into()],
                    seccomp: Some(cri::SecurityProfile {
                        profile_type: ProfileType::RuntimeDefault.into(),
                        localhost_ref: String::new(),
                    }),
                    apparmor: Some(cri::SecurityProfile {
                        profile_type: ProfileType::Localhost.into(),
                        localhost_ref: "localhost/k8s-nginx".into(),
                    }),
                    ..Default::default()
                }),
            }),
            ..minimal()
        };
        let request = container_request(&config).unwrap();
        assert_eq!((request.name.as_str(), request.attempt), ("app", 2));
        assert_eq!(request.image, "sha256:abc");
        assert_eq!(request.command, ["/bin/sh"]);
        assert_eq!(request.args, ["-c", "sleep 1"]);
        assert_eq!(request.envs, [("A".to_string(), "multi\nline".to_string())]);
        assert_eq!(
            request.mounts,
            [MountRequest {
                container_path: "/data".into(),
                host_path: "/var/lib/data".into(),
                readonly: true,
                recursive_read_only: true,
                selinux_relabel: true,
                propagation: Propagation::Private,
            }]
        );
        assert_eq!(request.devices[0].permissions, "rw");
        assert_eq!(
            request.labels,
            BTreeMap::from([("l".to_string(), "1".to_string())])
        );
        assert_eq!(request.log_path, "app/2.log");
        assert!(request.stdin && request.stdin_once && request.tty);
        let resources = &request.resources;
        assert_eq!(resources.cpu_period, Some(100_000));
        assert_eq!(resources.cpu_quota, Some(20_000));
        assert_eq!(resources.cpu_shares, Some(204));
        assert_eq!(resources.memory_limit_in_bytes, Some(1 << 30));
        assert_eq!(resources.memory_swap_limit_in_bytes, None);
        assert_eq!(resources.oom_score_adj, -997);
        assert_eq!(resources.hugepage_limits[0].page_size, "2MB");
        assert_eq!(resources.unified["memory.high"], "1G");
        let security = &request.security;
        assert!(security.readonly_rootfs && security.no_new_privs && !security.privileged);
        assert_eq!(security.capabilities.add, ["NET_ADMIN"]);
        assert_eq!(security.capabilities.drop, ["ALL"]);
        assert_eq!(security.pid_mode, ContainerPidMode::Container);
        assert_eq!(security.seccomp, SeccompRequest::RuntimeDefault);
        assert_eq!(
            security.apparmor,
            AppArmorRequest::Localhost("k8s-nginx".into())
        );
        assert_eq!(security.masked_paths, ["/proc/kcore"]);
        assert_eq!(
            security.user,
            UserRequest {
                run_as_user: Some(1000),
                run_as_username: None,
                run_as_group: Some(3000),
                supplemental_groups: vec![4000],
                policy: SupplementalGroupsPolicy::Strict,
            }
        );
    }

    #[test]
    fn a_minimal_config_takes_the_cri_defaults() {
        let request = container_request(&minimal()).unwrap();
        // No namespace options: the proto's zero value, POD.
        assert_eq!(request.security.pid_mode, ContainerPidMode::Pod);
        // No seccomp profile: unconfined; no AppArmor profile: the runtime's default.
        assert_eq!(request.security.seccomp, SeccompRequest::Unconfined);
        assert_eq!(request.security.apparmor, AppArmorRequest::RuntimeDefault);
        assert_eq!(request.resources, Resources::default());
        assert_eq!(request.security.user, UserRequest::default());
        assert_eq!(request.security.selinux, None);
    }

    #[test]
    fn metadata_and_image_are_required() {
        let mut config = minimal();
        config.metadata = None;
        assert!(refused(&config).contains("metadata"));
        let mut config = minimal();
        config.image = None;
        assert!(refused(&config).contains("image"));
        let mut config = minimal();
        config.image = Some(cri::ImageSpec::default());
        assert!(refused(&config).contains("image"));
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [
            "",
            "a/b",
            "a\0b",
            "..",
            "a..b",
            ".hidden",
            "a_b",
            "a b",
            &"x".repeat(254),
        ] {
            let mut config = minimal();
            config.metadata = Some(cri::ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            });
            assert!(refused(&config).contains("metadata.name"), "{name:?}");
        }
    }

    #[test]
    fn bad_log_paths_are_refused() {
        for log_path in [
            "/abs/0.log",
            "../0.log",
            "app/../../0.log",
            "a\0b",
            "app/",
            ".",
        ] {
            let mut config = minimal();
            config.log_path = log_path.into();
            assert!(refused(&config).contains("log_path"), "{log_path:?}");
        }
        let mut config = minimal();
        config.log_path = "app/0.log".into();
        assert!(container_request(&config).is_ok());
    }

    #[test]
    fn the_log_file_is_under_the_pod_log_directory() {
        assert_eq!(
            log_file("/var/log/pods/ns_pod_uid", "app/0.log").unwrap(),
            Some(PathBuf::from("/var/log/pods/ns_pod_uid/app/0.log"))
        );
        assert_eq!(log_file("", "app/0.log").unwrap(), None);
        assert_eq!(log_file("", "").unwrap(), None);
        assert!(log_file("/var/log/pods/x", "").is_err());
        assert!(log_file("/var/log/pods/x", "../escape.log").is_err());
    }

    #[test]
    fn bad_envs_are_refused() {
        for (key, value) in [("", "v"), ("A=B", "v"), ("A", "v\0")] {
            let mut config = minimal();
            config.envs = vec![cri::KeyValue {
                key: key.into(),
                value: value.into(),
            }];
            refused(&config);
        }
    }

    fn with_mount(mount: cri::Mount) -> cri::ContainerConfig {
        cri::ContainerConfig {
            mounts: vec![mount],
            ..minimal()
        }
    }

    fn host_mount() -> cri::Mount {
        cri::Mount {
            container_path: "/data".into(),
            host_path: "/srv/data".into(),
            ..Default::default()
        }
    }

    #[test]
    fn mount_propagation_maps() {
        for (mode, expected) in [
            (
                cri::MountPropagation::PropagationPrivate,
                Propagation::Private,
            ),
            (
                cri::MountPropagation::PropagationHostToContainer,
                Propagation::HostToContainer,
            ),
            (
                cri::MountPropagation::PropagationBidirectional,
                Propagation::Bidirectional,
            ),
        ] {
            let config = with_mount(cri::Mount {
                propagation: mode.into(),
                ..host_mount()
            });
            assert_eq!(
                container_request(&config).unwrap().mounts[0].propagation,
                expected
            );
        }
    }

    #[test]
    fn bad_mounts_are_refused() {
        let cases = [
            (
                cri::Mount {
                    host_path: String::new(),
                    image: Some(cri::ImageSpec {
                        image: "sha256:abc".into(),
                        ..Default::default()
                    }),
                    ..host_mount()
                },
                "image volumes are not supported",
            ),
            (
                cri::Mount {
                    container_path: "data".into(),
                    ..host_mount()
                },
                "absolute",
            ),
            (
                cri::Mount {
                    host_path: String::new(),
                    ..host_mount()
                },
                "absolute",
            ),
            (
                cri::Mount {
                    recursive_read_only: true,
                    ..host_mount()
                },
                "recursive_read_only",
            ),
            (
                cri::Mount {
                    recursive_read_only: true,
                    readonly: true,
                    propagation: cri::MountPropagation::PropagationHostToContainer.into(),
                    ..host_mount()
                },
                "recursive_read_only",
            ),
            (
                cri::Mount {
                    propagation: 7,
                    ..host_mount()
                },
                "propagation",
            ),
            (
                cri::Mount {
                    uid_mappings: vec![cri::IdMapping {
                        host_id: 1000,
                        container_id: 0,
                        length: 1,
                    }],
                    ..host_mount()
                },
                "ID-mapped",
            ),
        ];
        for (mount, expected) in cases {
            let message = refused(&with_mount(mount.clone()));
            assert!(message.contains(expected), "{mount:?}: {message}");
        }
    }

    #[test]
    fn cdi_devices_are_refused() {
        let config = cri::ContainerConfig {
            cdi_devices: vec![cri::CdiDevice {
                name: "vendor.com/gpu=0".into(),
            }],
            ..minimal()
        };
        assert!(refused(&config).contains("CDI"));
    }

    #[test]
    fn negative_resources_are_refused() {
        for edit in [
            |r: &mut cri::LinuxContainerResources| r.cpu_shares = -1,
            |r: &mut cri::LinuxContainerResources| r.cpu_period = -1,
            |r: &mut cri::LinuxContainerResources| r.memory_limit_in_bytes = -1,
        ] {
            let mut resources = cri::LinuxContainerResources::default();
            edit(&mut resources);
            let config = cri::ContainerConfig {
                linux: Some(cri::LinuxContainerConfig {
                    resources: Some(resources),
                    ..Default::default()
                }),
                ..minimal()
            };
            assert!(refused(&config).contains("negative"));
        }
    }

    #[test]
    fn pid_modes_map_and_target_needs_an_id() {
        for (mode, target, expected) in [
            (cri::NamespaceMode::Pod, "", ContainerPidMode::Pod),
            (
                cri::NamespaceMode::Container,
                "",
                ContainerPidMode::Container,
            ),
            (cri::NamespaceMode::Node, "", ContainerPidMode::Host),
            (
                cri::NamespaceMode::Target,
                "abc",
                ContainerPidMode::Target("abc".into()),
            ),
        ] {
            let config = with_security(|c| {
                c.namespace_options = Some(cri::NamespaceOption {
                    pid: mode.into(),
                    target_id: target.into(),
                    ..Default::default()
                });
            });
            assert_eq!(
                container_request(&config).unwrap().security.pid_mode,
                expected
            );
        }
        let config = with_security(|c| {
            c.namespace_options = Some(cri::NamespaceOption {
                pid: cri::NamespaceMode::Target.into(),
                ..Default::default()
            });
        });
        assert!(refused(&config).contains("target_id"));
    }

    #[test]
    #[allow(deprecated)]
    fn seccomp_profiles_and_the_deprecated_field_map() {
        let profile = |profile_type: ProfileType, localhost_ref: &str| {
            with_security(|c| {
                c.seccomp = Some(cri::SecurityProfile {
                    profile_type: profile_type.into(),
                    localhost_ref: localhost_ref.into(),
                });
            })
        };
        let seccomp =
            |config: &cri::ContainerConfig| container_request(config).unwrap().security.seccomp;
        assert_eq!(
            seccomp(&profile(ProfileType::Unconfined, "")),
            SeccompRequest::Unconfined
        );
        assert_eq!(
            seccomp(&profile(ProfileType::Localhost, "/etc/seccomp/a.json")),
            SeccompRequest::Localhost("/etc/seccomp/a.json".into())
        );
        refused(&profile(ProfileType::Localhost, ""));
        refused(&profile(ProfileType::Localhost, "relative.json"));
        for (path, expected) in [
            ("", SeccompRequest::Unconfined),
            ("unconfined", SeccompRequest::Unconfined),
            ("runtime/default", SeccompRequest::RuntimeDefault),
            ("docker/default", SeccompRequest::RuntimeDefault),
            (
                "localhost//var/lib/kubelet/seccomp/p.json",
                SeccompRequest::Localhost("/var/lib/kubelet/seccomp/p.json".into()),
            ),
        ] {
            let config = with_security(|c| c.seccomp_profile_path = path.into());
            assert_eq!(seccomp(&config), expected, "{path}");
        }
        for path in ["default", "localhost/relative.json"] {
            refused(&with_security(|c| c.seccomp_profile_path = path.into()));
        }
    }

    #[test]
    #[allow(deprecated)]
    fn apparmor_profiles_and_the_deprecated_field_map() {
        let apparmor =
            |config: &cri::ContainerConfig| container_request(config).unwrap().security.apparmor;
        let config = with_security(|c| {
            c.apparmor = Some(cri::SecurityProfile {
                profile_type: ProfileType::Unconfined.into(),
                localhost_ref: String::new(),
            });
        });
        assert_eq!(apparmor(&config), AppArmorRequest::Unconfined);
        let config = with_security(|c| {
            c.apparmor = Some(cri::SecurityProfile {
                profile_type: ProfileType::Localhost.into(),
                localhost_ref: "my-profile".into(),
            });
        });
        assert_eq!(
            apparmor(&config),
            AppArmorRequest::Localhost("my-profile".into())
        );
        for (value, expected) in [
            ("runtime/default", AppArmorRequest::RuntimeDefault),
            ("unconfined", AppArmorRequest::Unconfined),
            ("localhost/p", AppArmorRequest::Localhost("p".into())),
        ] {
            let config = with_security(|c| c.apparmor_profile = value.into());
            assert_eq!(apparmor(&config), expected, "{value}");
        }
        refused(&with_security(|c| {
            c.apparmor_profile = "docker-default".into();
        }));
        refused(&with_security(|c| c.apparmor_profile = "localhost/".into()));
        refused(&with_security(|c| {
            c.apparmor = Some(cri::SecurityProfile {
                profile_type: 9,
                localhost_ref: String::new(),
            });
        }));
    }

    #[test]
    fn user_fields_map_and_unknown_policies_are_refused() {
        let config = with_security(|c| {
            c.run_as_username = "www".into();
            c.selinux_options = Some(cri::SeLinuxOption {
                level: "s0:c1".into(),
                r#type: "t".into(),
                ..Default::default()
            });
        });
        let request = container_request(&config).unwrap();
        assert_eq!(
            request.security.user.run_as_username.as_deref(),
            Some("www")
        );
        assert_eq!(
            request.security.user.policy,
            SupplementalGroupsPolicy::Merge
        );
        let selinux = request.security.selinux.unwrap();
        assert_eq!(
            (selinux.type_.as_str(), selinux.level.as_str()),
            ("t", "s0:c1")
        );
        refused(&with_security(|c| c.supplemental_groups_policy = 5));
    }
}
