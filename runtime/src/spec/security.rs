//! The confinement of a container: capabilities, masked and read-only paths, the seccomp
//! filter, the AppArmor profile, and the SELinux options this host can honour. A privileged
//! container gets all capabilities and none of the rest.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp};

use super::request::{AppArmorRequest, CapabilitiesRequest, SeccompRequest, SelinuxOptions};
use super::seccomp;
use crate::RuntimeError;

/// Every capability the kernel knows (Linux 5.9 onwards), by the name the CRI uses, at the index
/// of its number.
const ALL_CAPABILITIES: [(&str, Capability); 41] = [
    ("CHOWN", Capability::Chown),
    ("DAC_OVERRIDE", Capability::DacOverride),
    ("DAC_READ_SEARCH", Capability::DacReadSearch),
    ("FOWNER", Capability::Fowner),
    ("FSETID", Capability::Fsetid),
    ("KILL", Capability::Kill),
    ("SETGID", Capability::Setgid),
    ("SETUID", Capability::Setuid),
    ("SETPCAP", Capability::Setpcap),
    ("LINUX_IMMUTABLE", Capability::LinuxImmutable),
    ("NET_BIND_SERVICE", Capability::NetBindService),
    ("NET_BROADCAST", Capability::NetBroadcast),
    ("NET_ADMIN", Capability::NetAdmin),
    ("NET_RAW", Capability::NetRaw),
    ("IPC_LOCK", Capability::IpcLock),
    ("IPC_OWNER", Capability::IpcOwner),
    ("SYS_MODULE", Capability::SysModule),
    ("SYS_RAWIO", Capability::SysRawio),
    ("SYS_CHROOT", Capability::SysChroot),
    ("SYS_PTRACE", Capability::SysPtrace),
    ("SYS_PACCT", Capability::SysPacct),
    ("SYS_ADMIN", Capability::SysAdmin),
    ("SYS_BOOT", Capability::SysBoot),
    ("SYS_NICE", Capability::SysNice),
    ("SYS_RESOURCE", Capability::SysResource),
    ("SYS_TIME", Capability::SysTime),
    ("SYS_TTY_CONFIG", Capability::SysTtyConfig),
    ("MKNOD", Capability::Mknod),
    ("LEASE", Capability::Lease),
    ("AUDIT_WRITE", Capability::AuditWrite),
    ("AUDIT_CONTROL", Capability::AuditControl),
    ("SETFCAP", Capability::Setfcap),
    ("MAC_OVERRIDE", Capability::MacOverride),
    ("MAC_ADMIN", Capability::MacAdmin),
    ("SYSLOG", Capability::Syslog),
    ("WAKE_ALARM", Capability::WakeAlarm),
    ("BLOCK_SUSPEND", Capability::BlockSuspend),
    ("AUDIT_READ", Capability::AuditRead),
    ("PERFMON", Capability::Perfmon),
    ("BPF", Capability::Bpf),
    ("CHECKPOINT_RESTORE", Capability::CheckpointRestore),
];

/// The capabilities of an unprivileged container unless the request adds or drops some:
/// containerd's and Docker's default set.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// containerd's default masked paths.
const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// containerd's default read-only paths.
const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The AppArmor profile applied for `RuntimeDefault` on hosts with AppArmor.
pub const DEFAULT_APPARMOR_PROFILE: &str = "crius-default";

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

/// Whether a name (with or without `CAP_`, any case) is `ALL`.
fn is_all(name: &str) -> bool {
    name.eq_ignore_ascii_case("ALL")
}

/// A capability by its CRI name: `CAP_SYS_ADMIN`, `SYS_ADMIN` and `sys_admin` are the same.
pub fn parse_capability(name: &str) -> Result<Capability, RuntimeError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    ALL_CAPABILITIES
        .iter()
        .find(|(known, _)| *known == bare)
        .map(|(_, capability)| *capability)
        .ok_or_else(|| {
            invalid(format!(
                "unknown capability {:?}",
                name.chars().take(64).collect::<String>()
            ))
        })
}

/// The capability sets of the container's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySets {
    /// Bounding, effective and permitted (and inheritable for the ambient ones).
    pub effective: HashSet<Capability>,
    pub ambient: HashSet<Capability>,
}

impl CapabilitySets {
    /// The OCI form: bounding = effective = permitted; inheritable and ambient only the ambient
    /// ones (the kernel keeps an ambient capability only if it is inheritable too).
    pub fn to_oci(&self) -> LinuxCapabilities {
        let mut capabilities = LinuxCapabilities::default();
        capabilities
            .set_bounding(Some(self.effective.clone()))
            .set_effective(Some(self.effective.clone()))
            .set_permitted(Some(self.effective.clone()))
            .set_inheritable(Some(self.ambient.clone()))
            .set_ambient(Some(self.ambient.clone()));
        capabilities
    }
}

/// The capabilities in a `/proc/<pid>/status` line `CapBnd:\t000001fffeffffff`; `None` when
/// the text has no such line.
pub fn bounding_set(status: &str) -> Option<HashSet<Capability>> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapBnd:"))?
        .trim();
    let mask = u64::from_str_radix(hex, 16).ok()?;
    Some(
        ALL_CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(number, _)| mask & (1 << number) != 0)
            .map(|(_, (_, capability))| *capability)
            .collect(),
    )
}

/// The capabilities of the process, as containerd computes them, from those the runtime has
/// (`available`, its bounding set: no process can get more). All available ones when privileged;
/// else the defaults, all when `add` holds `ALL`, none when `drop` holds `ALL`, then the named
/// additions, then the named drops. Ambient capabilities are in every set. A capability named in
/// `add` or `add_ambient` that is not available is refused.
pub fn capabilities(
    request: &CapabilitiesRequest,
    privileged: bool,
    available: &HashSet<Capability>,
) -> Result<CapabilitySets, RuntimeError> {
    let named = |names: &[String]| -> Result<Vec<Capability>, RuntimeError> {
        names
            .iter()
            .filter(|n| !is_all(n))
            .map(|n| parse_capability(n))
            .collect()
    };
    let granted = |names: &[String]| -> Result<Vec<Capability>, RuntimeError> {
        let capabilities = named(names)?;
        match capabilities.iter().find(|c| !available.contains(c)) {
            Some(missing) => Err(invalid(format!(
                "capability {missing} cannot be granted: crius itself does not have it"
            ))),
            None => Ok(capabilities),
        }
    };
    let added = granted(&request.add)?;
    let dropped = named(&request.drop)?;
    if request.add_ambient.iter().any(|n| is_all(n)) {
        return Err(invalid(
            "ALL is not allowed in add_ambient_capabilities".to_string(),
        ));
    }
    let ambient: HashSet<Capability> = granted(&request.add_ambient)?.into_iter().collect();
    let mut effective: HashSet<Capability> = if privileged {
        available.clone()
    } else {
        let mut set: HashSet<Capability> = if request.add.iter().any(|n| is_all(n)) {
            available.clone()
        } else {
            DEFAULT_CAPABILITIES
                .into_iter()
                .filter(|c| available.contains(c))
                .collect()
        };
        if request.drop.iter().any(|n| is_all(n)) {
            set.clear();
        }
        set.extend(added);
        for capability in &dropped {
            set.remove(capability);
        }
        set
    };
    effective.extend(ambient.iter().copied());
    Ok(CapabilitySets { effective, ambient })
}

fn check_paths(what: &str, paths: &[String]) -> Result<(), RuntimeError> {
    match paths
        .iter()
        .find(|p| !p.starts_with('/') || p.contains('\0'))
    {
        Some(bad) => Err(invalid(format!("{what} {bad:?} is not an absolute path"))),
        None => Ok(()),
    }
}

/// The masked and the read-only paths: the request's when it gives some, else containerd's
/// defaults; none for a privileged container.
pub fn masked_and_readonly_paths(
    masked: &[String],
    readonly: &[String],
    privileged: bool,
) -> Result<(Vec<String>, Vec<String>), RuntimeError> {
    check_paths("masked path", masked)?;
    check_paths("read-only path", readonly)?;
    if privileged {
        return Ok((Vec::new(), Vec::new()));
    }
    let or_default = |asked: &[String], default: &[&str]| {
        if asked.is_empty() {
            default.iter().map(|p| p.to_string()).collect()
        } else {
            asked.to_vec()
        }
    };
    Ok((
        or_default(masked, &DEFAULT_MASKED_PATHS),
        or_default(readonly, &DEFAULT_READONLY_PATHS),
    ))
}

/// The seccomp filter: none when privileged or unconfined, ours for RuntimeDefault, the node's
/// file for Localhost. The filter allows what the capabilities make meaningful.
pub fn seccomp_filter(
    request: &SeccompRequest,
    privileged: bool,
    capabilities: &HashSet<Capability>,
) -> Result<Option<LinuxSeccomp>, RuntimeError> {
    if privileged {
        return Ok(None);
    }
    match request {
        SeccompRequest::Unconfined => Ok(None),
        SeccompRequest::RuntimeDefault => Ok(Some(seccomp::runtime_default(capabilities))),
        SeccompRequest::Localhost(path) => {
            if !path.is_absolute() {
                return Err(invalid(format!(
                    "seccomp profile {} is not an absolute path",
                    path.display()
                )));
            }
            seccomp::localhost(path, capabilities).map(Some)
        }
    }
}

/// Where the kernel says whether AppArmor is on and which profiles are loaded.
#[derive(Debug, Clone, Copy)]
pub struct AppArmorHost<'a> {
    /// `/sys/module/apparmor/parameters/enabled`: `Y` when AppArmor is on.
    pub enabled: &'a Path,
    /// `/sys/kernel/security/apparmor/profiles`: `name (mode)` lines.
    pub profiles: &'a Path,
}

impl AppArmorHost<'_> {
    fn is_enabled(&self) -> bool {
        std::fs::read_to_string(self.enabled).is_ok_and(|text| text.trim() == "Y")
    }

    fn is_loaded(&self, profile: &str) -> Result<bool, RuntimeError> {
        let text = std::fs::read_to_string(self.profiles)
            .map_err(RuntimeError::io("read", self.profiles))?;
        Ok(text
            .lines()
            .any(|line| line.rsplit_once(" (").map_or(line, |(name, _mode)| name) == profile))
    }
}

/// The AppArmor profile of the process. On a host without AppArmor, only `RuntimeDefault` and
/// `Unconfined` are accepted and nothing is applied. On a host with it, the profile named (ours
/// for `RuntimeDefault`) must be loaded: nothing is loaded on the fly.
pub fn apparmor_profile(
    request: &AppArmorRequest,
    privileged: bool,
    host: AppArmorHost<'_>,
) -> Result<Option<String>, RuntimeError> {
    if let AppArmorRequest::Localhost(name) = request
        && (name.is_empty() || name.contains(['\0', '\n']))
    {
        return Err(invalid(format!(
            "AppArmor profile name {name:?} is not valid"
        )));
    }
    if privileged || *request == AppArmorRequest::Unconfined {
        return Ok(None);
    }
    if !host.is_enabled() {
        return match request {
            AppArmorRequest::Localhost(name) => Err(invalid(format!(
                "AppArmor is not enabled on this host: profile {name:?} cannot be applied"
            ))),
            AppArmorRequest::RuntimeDefault | AppArmorRequest::Unconfined => Ok(None),
        };
    }
    let profile = match request {
        AppArmorRequest::Localhost(name) => name.as_str(),
        AppArmorRequest::RuntimeDefault | AppArmorRequest::Unconfined => DEFAULT_APPARMOR_PROFILE,
    };
    if !host.is_loaded(profile)? {
        return Err(invalid(format!(
            "AppArmor profile {profile:?} is not loaded on this host (load it with \
             apparmor_parser, or ask for an unconfined profile)"
        )));
    }
    Ok(Some(profile.to_string()))
}

/// SELinux options are refused unless empty: crius applies no SELinux labels, and a host
/// without SELinux could not honour them anyway. `selinux_enforce` is `/sys/fs/selinux/enforce`,
/// there only when SELinux is on. Privileged containers get no label, so theirs are ignored.
pub fn check_selinux(
    options: Option<&SelinuxOptions>,
    privileged: bool,
    selinux_enforce: &Path,
) -> Result<(), RuntimeError> {
    let Some(options) = options.filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if privileged {
        return Ok(());
    }
    if selinux_enforce.exists() {
        Err(invalid(format!(
            "SELinux labels are not supported by crius (asked: {}:{}:{}:{})",
            options.user, options.role, options.type_, options.level
        )))
    } else {
        Err(invalid("SELinux is not enabled on this host".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn every() -> HashSet<Capability> {
        ALL_CAPABILITIES.iter().map(|(_, c)| *c).collect()
    }

    fn caps(add: &[&str], drop: &[&str], ambient: &[&str]) -> CapabilitiesRequest {
        let strings = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        CapabilitiesRequest {
            add: strings(add),
            drop: strings(drop),
            add_ambient: strings(ambient),
        }
    }

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        for name in ["CAP_SYS_ADMIN", "SYS_ADMIN", "sys_admin", "Cap_Sys_Admin"] {
            assert_eq!(
                parse_capability(name).unwrap(),
                Capability::SysAdmin,
                "{name}"
            );
        }
        assert_eq!(parse_capability("CAP_BPF").unwrap(), Capability::Bpf);
        for bad in ["", "CAP_", "SYS_ADMIN ", "CAP_FOO", "ALL"] {
            assert!(parse_capability(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_set_is_containerds() {
        let sets = capabilities(&CapabilitiesRequest::default(), false, &every()).unwrap();
        assert_eq!(sets.effective, DEFAULT_CAPABILITIES.into_iter().collect());
        assert!(sets.ambient.is_empty());
        let oci = sets.to_oci();
        assert_eq!(oci.bounding(), oci.effective());
        assert_eq!(oci.permitted(), oci.effective());
        assert_eq!(oci.inheritable().as_ref().map(HashSet::len), Some(0));
    }

    #[test]
    fn add_and_drop_change_the_defaults() {
        let sets = capabilities(
            &caps(&["NET_ADMIN", "cap_sys_time"], &["CAP_CHOWN", "kill"], &[]),
            false,
            &every(),
        )
        .unwrap();
        assert!(sets.effective.contains(&Capability::NetAdmin));
        assert!(sets.effective.contains(&Capability::SysTime));
        assert!(!sets.effective.contains(&Capability::Chown));
        assert!(!sets.effective.contains(&Capability::Kill));
        assert_eq!(sets.effective.len(), 14);
    }

    #[test]
    fn all_in_add_or_drop() {
        let everything = capabilities(&caps(&["ALL"], &["CHOWN"], &[]), false, &every()).unwrap();
        assert_eq!(everything.effective.len(), 40);
        assert!(!everything.effective.contains(&Capability::Chown));
        let only =
            capabilities(&caps(&["NET_BIND_SERVICE"], &["all"], &[]), false, &every()).unwrap();
        assert_eq!(only.effective, HashSet::from([Capability::NetBindService]));
        let none = capabilities(&caps(&["ALL"], &["ALL"], &[]), false, &every()).unwrap();
        assert!(none.effective.is_empty());
    }

    #[test]
    fn unknown_capabilities_are_refused() {
        for request in [
            caps(&["CAP_NOPE"], &[], &[]),
            caps(&[], &["NOPE"], &[]),
            caps(&[], &[], &["NOPE"]),
            caps(&[], &[], &["ALL"]),
        ] {
            let err = capabilities(&request, false, &every()).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{request:?}"
            );
        }
    }

    #[test]
    fn ambient_capabilities_join_every_set() {
        let sets =
            capabilities(&caps(&[], &["ALL"], &["NET_BIND_SERVICE"]), false, &every()).unwrap();
        assert_eq!(sets.effective, HashSet::from([Capability::NetBindService]));
        let oci = sets.to_oci();
        assert_eq!(
            oci.ambient(),
            &Some(HashSet::from([Capability::NetBindService]))
        );
        assert_eq!(
            oci.inheritable(),
            &Some(HashSet::from([Capability::NetBindService]))
        );
    }

    #[test]
    fn the_bounding_set_parses_from_proc_status() {
        let status = "Name:\tcrius\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        let set = bounding_set(status).unwrap();
        assert_eq!(set.len(), 40);
        assert!(!set.contains(&Capability::SysResource));
        assert!(set.contains(&Capability::CheckpointRestore));
        assert_eq!(
            bounding_set("CapBnd:\t0000000000000001\n").unwrap(),
            HashSet::from([Capability::Chown])
        );
        assert_eq!(bounding_set("Name:\tx\n"), None);
        assert_eq!(bounding_set("CapBnd:\tzz\n"), None);
    }

    #[test]
    fn only_capabilities_the_runtime_has_are_given() {
        let available: HashSet<Capability> = every()
            .into_iter()
            .filter(|c| *c != Capability::SysResource && *c != Capability::Mknod)
            .collect();
        let privileged = capabilities(&CapabilitiesRequest::default(), true, &available).unwrap();
        assert_eq!(privileged.effective, available);
        let all = capabilities(&caps(&["ALL"], &[], &[]), false, &available).unwrap();
        assert_eq!(all.effective, available);
        let defaults = capabilities(&CapabilitiesRequest::default(), false, &available).unwrap();
        assert_eq!(defaults.effective.len(), 13);
        assert!(!defaults.effective.contains(&Capability::Mknod));
        let err = capabilities(&caps(&["SYS_RESOURCE"], &[], &[]), false, &available).unwrap_err();
        assert!(err.to_string().contains("SYS_RESOURCE"), "{err}");
        assert!(capabilities(&caps(&[], &[], &["SYS_RESOURCE"]), false, &available).is_err());
    }

    #[test]
    fn privileged_has_every_capability() {
        let sets = capabilities(&caps(&[], &["ALL"], &[]), true, &every()).unwrap();
        assert_eq!(sets.effective.len(), ALL_CAPABILITIES.len());
    }

    #[test]
    fn masked_paths_default_unless_given_and_none_when_privileged() {
        let (masked, readonly) = masked_and_readonly_paths(&[], &[], false).unwrap();
        assert_eq!(masked.len(), 11);
        assert!(masked.contains(&"/proc/kcore".to_string()));
        assert_eq!(readonly, DEFAULT_READONLY_PATHS);
        let asked = vec!["/proc/custom".to_string()];
        let (masked, readonly) = masked_and_readonly_paths(&asked, &[], false).unwrap();
        assert_eq!(masked, asked);
        assert_eq!(readonly.len(), 5);
        let (masked, readonly) = masked_and_readonly_paths(&asked, &asked, true).unwrap();
        assert!(masked.is_empty() && readonly.is_empty());
        assert!(masked_and_readonly_paths(&["proc/x".into()], &[], false).is_err());
    }

    #[test]
    fn seccomp_choice_follows_the_request() {
        let caps: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
        assert_eq!(
            seccomp_filter(&SeccompRequest::Unconfined, false, &caps).unwrap(),
            None
        );
        assert_eq!(
            seccomp_filter(&SeccompRequest::RuntimeDefault, true, &caps).unwrap(),
            None
        );
        assert_eq!(
            seccomp_filter(&SeccompRequest::RuntimeDefault, false, &caps).unwrap(),
            Some(seccomp::runtime_default(&caps))
        );
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile.json");
        std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        let localhost = seccomp_filter(&SeccompRequest::Localhost(profile), false, &caps).unwrap();
        assert!(localhost.is_some());
        let missing = SeccompRequest::Localhost(dir.path().join("missing.json"));
        assert!(seccomp_filter(&missing, false, &caps).is_err());
        let relative = SeccompRequest::Localhost(PathBuf::from("profile.json"));
        assert!(seccomp_filter(&relative, false, &caps).is_err());
    }

    struct FakeAppArmor {
        dir: tempfile::TempDir,
    }

    impl FakeAppArmor {
        fn new(enabled: &str, profiles: &str) -> FakeAppArmor {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("enabled"), enabled).unwrap();
            std::fs::write(dir.path().join("profiles"), profiles).unwrap();
            FakeAppArmor { dir }
        }

        fn profile(&self, request: &AppArmorRequest) -> Result<Option<String>, RuntimeError> {
            let enabled = self.dir.path().join("enabled");
            let profiles = self.dir.path().join("profiles");
            apparmor_profile(
                request,
                false,
                AppArmorHost {
                    enabled: &enabled,
                    profiles: &profiles,
                },
            )
        }
    }

    #[test]
    fn apparmor_off_accepts_default_and_unconfined_and_refuses_localhost() {
        let host = FakeAppArmor::new("N\n", "");
        assert_eq!(
            host.profile(&AppArmorRequest::RuntimeDefault).unwrap(),
            None
        );
        assert_eq!(host.profile(&AppArmorRequest::Unconfined).unwrap(), None);
        let err = host
            .profile(&AppArmorRequest::Localhost("my-profile".into()))
            .unwrap_err();
        assert!(err.to_string().contains("AppArmor is not enabled"), "{err}");
        let missing = AppArmorHost {
            enabled: Path::new("/nonexistent/enabled"),
            profiles: Path::new("/nonexistent/profiles"),
        };
        assert_eq!(
            apparmor_profile(&AppArmorRequest::RuntimeDefault, false, missing).unwrap(),
            None
        );
    }

    #[test]
    fn apparmor_on_needs_the_profile_loaded() {
        let host = FakeAppArmor::new("Y\n", "crius-default (enforce)\nmy profile (complain)\n");
        assert_eq!(
            host.profile(&AppArmorRequest::RuntimeDefault)
                .unwrap()
                .as_deref(),
            Some("crius-default")
        );
        assert_eq!(
            host.profile(&AppArmorRequest::Localhost("my profile".into()))
                .unwrap()
                .as_deref(),
            Some("my profile")
        );
        assert_eq!(host.profile(&AppArmorRequest::Unconfined).unwrap(), None);
        assert!(
            host.profile(&AppArmorRequest::Localhost("other".into()))
                .is_err()
        );
        let without_default = FakeAppArmor::new("Y\n", "other (enforce)\n");
        let err = without_default
            .profile(&AppArmorRequest::RuntimeDefault)
            .unwrap_err();
        assert!(err.to_string().contains("not loaded"), "{err}");
    }

    #[test]
    fn selinux_options_are_refused_unless_empty() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("enforce");
        let options = SelinuxOptions {
            type_: "spc_t".into(),
            ..SelinuxOptions::default()
        };
        assert!(check_selinux(None, false, &absent).is_ok());
        assert!(check_selinux(Some(&SelinuxOptions::default()), false, &absent).is_ok());
        let err = check_selinux(Some(&options), false, &absent).unwrap_err();
        assert_eq!(err.to_string(), "SELinux is not enabled on this host");
        assert!(check_selinux(Some(&options), true, &absent).is_ok());
        std::fs::write(&absent, "1").unwrap();
        let err = check_selinux(Some(&options), false, &absent).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }
}
