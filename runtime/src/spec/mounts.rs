//! The container's mounts: the kernel filesystems every container gets, the pod's files
//! (`/dev/shm`, `/etc/hostname`, `/etc/resolv.conf`) and the request's host paths.
//!
//! Order matters to the OCI runtime, which mounts in the listed order: the kernel filesystems
//! first, then the bind mounts sorted so that a parent directory is mounted before what goes
//! inside it. A request mount replaces a default one of the same destination.

use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::process::clean_path;
use super::request::{MountRequest, Propagation};
use crate::RuntimeError;

/// The pod's files a container bind-mounts.
pub struct PodFiles<'a> {
    /// The pod's `/dev/shm` mount directory, or the host's when the pod shares the host IPC
    /// namespace.
    pub shm: &'a Path,
    pub hostname: &'a Path,
    pub resolv_conf: &'a Path,
}

/// What the mounts depend on besides the request.
pub struct MountContext<'a> {
    pub pod_files: PodFiles<'a>,
    pub privileged: bool,
    /// The pod's `/etc/hostname` and `/etc/resolv.conf` are mounted read-only with a read-only
    /// root filesystem (as cri-o and containerd do), read-write otherwise.
    pub readonly_rootfs: bool,
    pub selinux_enabled: bool,
    /// `/proc/self/mountinfo`, to check the propagation of host paths.
    pub mountinfo: &'a Path,
}

/// The mounts of the spec and the root filesystem propagation they need.
#[derive(Debug)]
pub struct Mounts {
    pub mounts: Vec<Mount>,
    /// `rshared` when a mount is bidirectional, `rslave` when one receives the host's mounts.
    pub rootfs_propagation: Option<String>,
}

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

fn mount(destination: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut mount = Mount::default();
    mount
        .set_destination(PathBuf::from(destination))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(source.into()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    mount
}

/// The kernel filesystems (containerd's defaults); `/sys` and the cgroup tree are writable only
/// for privileged containers.
fn kernel_mounts(privileged: bool) -> Vec<Mount> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ]
}

/// The pod's files; one that does not exist (a pod without a resolv.conf) is not mounted.
fn pod_file_mounts(files: &PodFiles<'_>, readonly_rootfs: bool) -> Vec<Mount> {
    let file_mode = if readonly_rootfs { "ro" } else { "rw" };
    let mut mounts = vec![mount(
        "/dev/shm",
        "bind",
        files.shm,
        &["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"],
    )];
    for (destination, source) in [
        ("/etc/hostname", files.hostname),
        ("/etc/resolv.conf", files.resolv_conf),
    ] {
        if source.symlink_metadata().is_ok() {
            mounts.push(mount(
                destination,
                "bind",
                source,
                &["rbind", "rprivate", "nosuid", "nodev", "noexec", file_mode],
            ));
        }
    }
    mounts
}

/// Checks one host-path mount of the request without touching the host; returns its
/// destination, cleaned.
fn check_request(request: &MountRequest, selinux_enabled: bool) -> Result<PathBuf, RuntimeError> {
    let destination = &request.container_path;
    if !destination.starts_with('/') || destination.contains('\0') {
        return Err(invalid(format!(
            "mount container_path {destination:?} is not an absolute path"
        )));
    }
    let clean = clean_path(Path::new(destination));
    if clean == Path::new("/") {
        return Err(invalid(format!(
            "mount container_path {destination:?} is the container's root"
        )));
    }
    let host_path = &request.host_path;
    if !host_path.starts_with('/') || host_path.contains('\0') {
        return Err(invalid(format!(
            "mount {destination}: host_path {host_path:?} is not an absolute path"
        )));
    }
    if request.recursive_read_only
        && (!request.readonly || request.propagation != Propagation::Private)
    {
        return Err(invalid(format!(
            "mount {destination}: recursive read-only needs readonly and private propagation"
        )));
    }
    if request.selinux_relabel && selinux_enabled {
        return Err(invalid(format!(
            "mount {destination}: SELinux relabeling is not supported"
        )));
    }
    Ok(clean)
}

/// The bind mount of a checked request at `destination`, its host path resolved (and created
/// when missing).
fn bind_mount(
    request: &MountRequest,
    destination: &Path,
    mount_table: &[MountInfo],
) -> Result<Mount, RuntimeError> {
    let source = resolve_host_path(Path::new(&request.host_path))?;
    let propagation = match request.propagation {
        Propagation::Private => "rprivate",
        Propagation::HostToContainer => "rslave",
        Propagation::Bidirectional => "rshared",
    };
    if request.propagation != Propagation::Private {
        check_source_propagation(mount_table, &source, request.propagation)?;
    }
    let mut options = vec![
        "rbind",
        propagation,
        if request.readonly { "ro" } else { "rw" },
    ];
    if request.recursive_read_only {
        options.push("rro");
    }
    Ok(mount(
        &destination.to_string_lossy(),
        "bind",
        source,
        &options,
    ))
}

/// A host path with its symlinks resolved; one that does not exist is created as a directory
/// (0755), as cri-o and kubelet's `DirectoryOrCreate` expect.
fn resolve_host_path(host_path: &Path) -> Result<PathBuf, RuntimeError> {
    match host_path.canonicalize() {
        Ok(resolved) => Ok(resolved),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(host_path)
                .map_err(RuntimeError::io("create mount source", host_path))?;
            host_path
                .canonicalize()
                .map_err(RuntimeError::io("resolve mount source", host_path))
        }
        Err(e) => Err(RuntimeError::io("resolve mount source", host_path)(e)),
    }
}

/// One line of `/proc/self/mountinfo`, the parts needed to know a mount's propagation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountInfo {
    mount_point: PathBuf,
    shared: bool,
    slave: bool,
}

/// `\040`-style octal escapes of mountinfo fields, undone.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match escape {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (before, _) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mount_point = unescape_mountinfo(fields.get(4)?);
            let optional = fields.get(6..).unwrap_or_default();
            Some(MountInfo {
                mount_point: PathBuf::from(mount_point),
                shared: optional.iter().any(|f| f.starts_with("shared:")),
                slave: optional.iter().any(|f| f.starts_with("master:")),
            })
        })
        .collect()
}

fn read_mountinfo(path: &Path) -> Result<Vec<MountInfo>, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(RuntimeError::io("read", path))?;
    Ok(parse_mountinfo(&text))
}

/// A bidirectional mount needs its source on a shared mount, a host-to-container one on a
/// shared or slave mount: otherwise nothing would propagate, silently.
fn check_source_propagation(
    table: &[MountInfo],
    source: &Path,
    propagation: Propagation,
) -> Result<(), RuntimeError> {
    // The mount holding `source`: the longest mount point above it, the last one when stacked.
    let Some(holder) = table
        .iter()
        .filter(|m| source.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
    else {
        return Err(invalid(format!(
            "mount source {} is on no mount of the host",
            source.display()
        )));
    };
    let ok = match propagation {
        Propagation::Private => true,
        Propagation::HostToContainer => holder.shared || holder.slave,
        Propagation::Bidirectional => holder.shared,
    };
    if ok {
        return Ok(());
    }
    let needed = if propagation == Propagation::Bidirectional {
        "shared"
    } else {
        "shared or slave"
    };
    Err(invalid(format!(
        "mount source {} is on the mount {}, which is not {needed}: its propagation cannot be \
         {propagation:?}",
        source.display(),
        holder.mount_point.display()
    )))
}

/// All the mounts of a container. Every request is checked before any missing host path is
/// created.
pub fn mounts(
    requests: &[MountRequest],
    context: &MountContext<'_>,
) -> Result<Mounts, RuntimeError> {
    let mut destinations: Vec<PathBuf> = Vec::with_capacity(requests.len());
    for request in requests {
        let destination = check_request(request, context.selinux_enabled)?;
        if destinations.contains(&destination) {
            return Err(invalid(format!(
                "two mounts have the destination {}",
                destination.display()
            )));
        }
        destinations.push(destination);
    }
    let mount_table = if requests
        .iter()
        .any(|r| r.propagation != Propagation::Private)
    {
        read_mountinfo(context.mountinfo)?
    } else {
        Vec::new()
    };
    let asked = requests
        .iter()
        .zip(&destinations)
        .map(|(request, destination)| bind_mount(request, destination, &mount_table))
        .collect::<Result<Vec<_>, _>>()?;
    let overridden = |m: &Mount| asked.iter().any(|a| a.destination() == m.destination());
    let mut mounts: Vec<Mount> = kernel_mounts(context.privileged)
        .into_iter()
        .filter(|m| !overridden(m))
        .collect();
    let mut binds: Vec<Mount> = pod_file_mounts(&context.pod_files, context.readonly_rootfs)
        .into_iter()
        .filter(|m| !overridden(m))
        .collect();
    binds.extend(asked);
    // Parents before children; stable, so the defaults come first at each depth.
    binds.sort_by_key(|m| m.destination().components().count());
    mounts.extend(binds);

    let propagations = requests.iter().map(|r| r.propagation);
    let rootfs_propagation = if propagations
        .clone()
        .any(|p| p == Propagation::Bidirectional)
    {
        Some("rshared".to_string())
    } else if propagations
        .into_iter()
        .any(|p| p == Propagation::HostToContainer)
    {
        Some("rslave".to_string())
    } else {
        None
    };
    Ok(Mounts {
        mounts,
        rootfs_propagation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            for file in ["hostname", "resolv.conf"] {
                std::fs::write(dir.path().join(file), "x\n").unwrap();
            }
            std::fs::create_dir(dir.path().join("shm")).unwrap();
            std::fs::write(
                dir.path().join("mountinfo"),
                format!(
                    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                     40 27 0:40 / {}/shared rw shared:7 - tmpfs tmpfs rw\n\
                     41 27 0:41 / {}/slave rw master:7 - tmpfs tmpfs rw\n",
                    dir.path().display(),
                    dir.path().display()
                ),
            )
            .unwrap();
            Fixture { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn build(
            &self,
            requests: &[MountRequest],
            privileged: bool,
            readonly: bool,
        ) -> Result<Mounts, RuntimeError> {
            let shm = self.path("shm");
            let hostname = self.path("hostname");
            let resolv = self.path("resolv.conf");
            let mountinfo = self.path("mountinfo");
            mounts(
                requests,
                &MountContext {
                    pod_files: PodFiles {
                        shm: &shm,
                        hostname: &hostname,
                        resolv_conf: &resolv,
                    },
                    privileged,
                    readonly_rootfs: readonly,
                    selinux_enabled: false,
                    mountinfo: &mountinfo,
                },
            )
        }
    }

    fn bind(container_path: &str, host_path: &Path) -> MountRequest {
        MountRequest {
            container_path: container_path.to_string(),
            host_path: host_path.to_string_lossy().into_owned(),
            ..MountRequest::default()
        }
    }

    fn destinations(mounts: &Mounts) -> Vec<String> {
        mounts
            .mounts
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect()
    }

    fn find<'m>(mounts: &'m Mounts, destination: &str) -> &'m Mount {
        mounts
            .mounts
            .iter()
            .find(|m| m.destination() == Path::new(destination))
            .unwrap()
    }

    fn options(mount: &Mount) -> Vec<String> {
        mount.options().clone().unwrap_or_default()
    }

    #[test]
    fn defaults_come_in_order_with_read_only_sys() {
        let fixture = Fixture::new();
        let mounts = fixture.build(&[], false, false).unwrap();
        assert_eq!(
            destinations(&mounts),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/shm",
                "/etc/hostname",
                "/etc/resolv.conf"
            ]
        );
        assert!(options(find(&mounts, "/sys")).contains(&"ro".to_string()));
        assert!(options(find(&mounts, "/sys/fs/cgroup")).contains(&"ro".to_string()));
        assert!(options(find(&mounts, "/etc/resolv.conf")).contains(&"rw".to_string()));
        assert_eq!(
            find(&mounts, "/dev/shm").source().as_deref(),
            Some(fixture.path("shm").as_path())
        );
        assert_eq!(mounts.rootfs_propagation, None);
    }

    #[test]
    fn privileged_sys_is_writable_and_readonly_rootfs_makes_pod_files_readonly() {
        let fixture = Fixture::new();
        let mounts = fixture.build(&[], true, true).unwrap();
        assert!(options(find(&mounts, "/sys")).contains(&"rw".to_string()));
        assert!(options(find(&mounts, "/sys/fs/cgroup")).contains(&"rw".to_string()));
        assert!(options(find(&mounts, "/etc/hostname")).contains(&"ro".to_string()));
        assert!(options(find(&mounts, "/etc/resolv.conf")).contains(&"ro".to_string()));
    }

    #[test]
    fn a_missing_resolv_conf_is_not_mounted() {
        let fixture = Fixture::new();
        std::fs::remove_file(fixture.path("resolv.conf")).unwrap();
        let mounts = fixture.build(&[], false, false).unwrap();
        assert!(!destinations(&mounts).contains(&"/etc/resolv.conf".to_string()));
    }

    #[test]
    fn request_mounts_override_defaults_and_sort_parents_first() {
        let fixture = Fixture::new();
        let data = fixture.path("data");
        std::fs::create_dir(&data).unwrap();
        let requests = [
            bind("/var/lib/app/cache", &data),
            bind("/etc/resolv.conf/", &fixture.path("hostname")),
            bind("/var", &data),
            bind("/dev/termination-log", &fixture.path("hostname")),
        ];
        let mounts = fixture.build(&requests, false, false).unwrap();
        assert_eq!(
            destinations(&mounts),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/var",
                "/dev/shm",
                "/etc/hostname",
                "/etc/resolv.conf",
                "/dev/termination-log",
                "/var/lib/app/cache",
            ]
        );
        let resolv = find(&mounts, "/etc/resolv.conf");
        assert_eq!(
            resolv.source().as_deref(),
            Some(fixture.path("hostname").as_path())
        );
        assert_eq!(options(resolv), ["rbind", "rprivate", "rw"]);
    }

    #[test]
    fn host_paths_resolve_symlinks_and_missing_ones_are_created() {
        let fixture = Fixture::new();
        let real = fixture.path("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, fixture.path("link")).unwrap();
        let missing = fixture.path("new/dir");
        let mounts = fixture
            .build(
                &[bind("/a", &fixture.path("link")), bind("/b", &missing)],
                false,
                false,
            )
            .unwrap();
        assert_eq!(
            find(&mounts, "/a").source().as_deref(),
            Some(real.as_path())
        );
        assert!(missing.is_dir());
        assert_eq!(
            find(&mounts, "/b").source().as_deref(),
            Some(missing.as_path())
        );
    }

    #[test]
    fn nothing_is_created_when_a_later_mount_is_refused() {
        let fixture = Fixture::new();
        let missing = fixture.path("never");
        let refused = bind("relative", &fixture.path("shm"));
        assert!(
            fixture
                .build(&[bind("/a", &missing), refused], false, false)
                .is_err()
        );
        assert!(!missing.exists());
    }

    #[test]
    fn propagation_maps_and_sets_the_rootfs_propagation() {
        let fixture = Fixture::new();
        let shared = fixture.path("shared");
        let slave = fixture.path("slave");
        std::fs::create_dir_all(shared.join("sub")).unwrap();
        std::fs::create_dir(&slave).unwrap();
        let mut to_container = bind("/slave", &slave);
        to_container.propagation = Propagation::HostToContainer;
        let mounts = fixture
            .build(std::slice::from_ref(&to_container), false, false)
            .unwrap();
        assert_eq!(options(find(&mounts, "/slave")), ["rbind", "rslave", "rw"]);
        assert_eq!(mounts.rootfs_propagation.as_deref(), Some("rslave"));

        let mut both = bind("/shared", &shared.join("sub"));
        both.propagation = Propagation::Bidirectional;
        both.readonly = true;
        let mounts = fixture.build(&[to_container, both], false, false).unwrap();
        assert_eq!(
            options(find(&mounts, "/shared")),
            ["rbind", "rshared", "ro"]
        );
        assert_eq!(mounts.rootfs_propagation.as_deref(), Some("rshared"));
    }

    #[test]
    fn propagation_needs_a_shared_or_slave_source() {
        let fixture = Fixture::new();
        let slave = fixture.path("slave");
        std::fs::create_dir(&slave).unwrap();
        let mut both = bind("/x", &slave);
        both.propagation = Propagation::Bidirectional;
        let err = fixture.build(&[both], false, false).unwrap_err();
        assert!(err.to_string().contains("not shared"), "{err}");
        let mut private_source = bind("/x", &fixture.path("shm"));
        private_source.propagation = Propagation::HostToContainer;
        assert!(fixture.build(&[private_source], false, false).is_err());
    }

    #[test]
    fn recursive_read_only_needs_readonly_and_private() {
        let fixture = Fixture::new();
        let shm = fixture.path("shm");
        let mut rro = bind("/x", &shm);
        rro.recursive_read_only = true;
        assert!(
            fixture
                .build(std::slice::from_ref(&rro), false, false)
                .is_err()
        );
        rro.readonly = true;
        let mounts = fixture
            .build(std::slice::from_ref(&rro), false, false)
            .unwrap();
        assert_eq!(
            options(find(&mounts, "/x")),
            ["rbind", "rprivate", "ro", "rro"]
        );
        let shared = fixture.path("shared");
        std::fs::create_dir(&shared).unwrap();
        let mut rro = bind("/x", &shared);
        rro.readonly = true;
        rro.recursive_read_only = true;
        rro.propagation = Propagation::Bidirectional;
        assert!(fixture.build(&[rro], false, false).is_err());
    }

    #[test]
    fn bad_paths_and_duplicate_destinations_are_refused() {
        let fixture = Fixture::new();
        let shm = fixture.path("shm");
        for request in [
            bind("relative", &shm),
            bind("/x\0", &shm),
            bind("/x", Path::new("relative/host")),
            bind("/x", Path::new("")),
            bind("/a/..", &shm),
        ] {
            let err = fixture.build(&[request], false, false).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{err}"
            );
        }
        let err = fixture
            .build(&[bind("/x", &shm), bind("/x/", &shm)], false, false)
            .unwrap_err();
        assert!(err.to_string().contains("two mounts"), "{err}");
    }

    #[test]
    fn relabel_is_ignored_without_selinux_and_refused_with_it() {
        let fixture = Fixture::new();
        let mut relabel = bind("/x", &fixture.path("shm"));
        relabel.selinux_relabel = true;
        assert!(
            fixture
                .build(std::slice::from_ref(&relabel), false, false)
                .is_ok()
        );
        let shm = fixture.path("shm");
        let context = MountContext {
            pod_files: PodFiles {
                shm: &shm,
                hostname: &shm,
                resolv_conf: &shm,
            },
            privileged: false,
            readonly_rootfs: false,
            selinux_enabled: true,
            mountinfo: Path::new("/nonexistent"),
        };
        assert!(mounts(&[relabel], &context).is_err());
    }

    #[test]
    fn mountinfo_escapes_and_optional_fields_parse() {
        let table = parse_mountinfo(
            "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:2 - ext3 /dev/root rw\n\
             37 35 98:0 / /plain rw - ext3 /dev/root rw\n",
        );
        assert_eq!(
            table,
            [
                MountInfo {
                    mount_point: PathBuf::from("/mnt/with space"),
                    shared: true,
                    slave: true
                },
                MountInfo {
                    mount_point: PathBuf::from("/plain"),
                    shared: false,
                    slave: false
                }
            ]
        );
    }
}
