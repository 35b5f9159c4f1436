//! Seccomp profiles: crius's own RuntimeDefault profile and `Localhost` profiles (JSON files on
//! the host in the Docker/containerd format), both turned into the OCI form for config.json.
//!
//! A profile depends on the process's capabilities: syscalls that only make sense with a
//! capability (the mount family with CAP_SYS_ADMIN, ptrace with CAP_SYS_PTRACE, ...) are allowed
//! only when the process has it, as the Docker/containerd profiles do.

mod default_profile;

use std::cell::OnceCell;
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use serde::Deserialize;

use self::default_profile::{Outcome, RULES, When};
use super::user::{BoundedReadError, read_regular_file};
use crate::RuntimeError;

/// The largest `Localhost` profile file accepted.
pub const MAX_PROFILE_SIZE: u64 = 1024 * 1024;

/// errno of the default action of the RuntimeDefault profile.
const EPERM: u32 = 1;

/// Where the kernel says its release ("6.18.0-...").
const KERNEL_RELEASE_PATH: &str = "/proc/sys/kernel/osrelease";

/// crius's own RuntimeDefault profile, for a process with these capabilities (syscalls such as
/// the mount family, ptrace, etc. are allowed only with the capability that makes them
/// meaningful, as the Docker/containerd default profiles do).
pub fn runtime_default(capabilities: &HashSet<Capability>) -> LinuxSeccomp {
    runtime_default_for(capabilities, std::env::consts::ARCH)
}

/// [`runtime_default`] for a host of architecture `host_arch` (`std::env::consts::ARCH` names).
fn runtime_default_for(capabilities: &HashSet<Capability>, host_arch: &str) -> LinuxSeccomp {
    let syscalls = RULES
        .iter()
        .filter(|rule| match rule.when {
            When::Always => true,
            When::With(capability) => capabilities.contains(&capability),
            When::Without(capability) => !capabilities.contains(&capability),
            When::HostArch(arches) => arches.contains(&host_arch),
        })
        .map(|rule| {
            let (action, errno_ret) = match rule.outcome {
                Outcome::Allow => (LinuxSeccompAction::ScmpActAllow, None),
                Outcome::Fail(errno) => (LinuxSeccompAction::ScmpActErrno, Some(errno)),
            };
            let args = rule
                .arg
                .iter()
                .map(|arg| oci_arg(arg.index, arg.value, None, arg.op))
                .collect::<Vec<_>>();
            oci_syscall(
                rule.names.iter().map(|name| (*name).to_string()).collect(),
                action,
                errno_ret,
                args,
            )
        })
        .collect();
    let mut seccomp = LinuxSeccomp::default();
    seccomp
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(EPERM))
        .set_architectures(host_seccomp_arches(host_arch))
        .set_syscalls(Some(syscalls));
    seccomp
}

/// The architectures a filter for a host of `host_arch` covers: the native one and those whose
/// binaries the host also runs (x86 and x32 on x86_64, arm on aarch64). None for other hosts:
/// the native architecture only.
fn host_seccomp_arches(host_arch: &str) -> Option<Vec<Arch>> {
    match host_arch {
        "x86_64" => Some(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ]),
        "aarch64" => Some(vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]),
        _ => None,
    }
}

/// A `Localhost` profile: a JSON file on the host, in the Docker/containerd profile format
/// (defaultAction, architectures or archMap, syscalls[{names|name, action, args, errnoRet,
/// includes/excludes by caps/arch}]) — the format kubelet users write. Converted to the OCI form.
/// Missing file, unreadable, too big (> 1 MiB), or malformed → RuntimeError (InvalidArgument
/// kind for bad content or missing file, saying which).
pub fn localhost(
    path: &Path,
    capabilities: &HashSet<Capability>,
) -> Result<LinuxSeccomp, RuntimeError> {
    let bytes = read_profile(path)?;
    profile_to_oci(path, &bytes, capabilities, &Host::running())
}

/// The OCI form of the profile `bytes` read from `path`, for a process with `capabilities` on
/// `host`.
fn profile_to_oci(
    path: &Path,
    bytes: &[u8],
    capabilities: &HashSet<Capability>,
    host: &Host<'_>,
) -> Result<LinuxSeccomp, RuntimeError> {
    let profile: ProfileFile = serde_json::from_slice(bytes).map_err(|err| {
        RuntimeError::InvalidArgument(format!(
            "seccomp profile {} is malformed: {err}",
            path.display()
        ))
    })?;
    profile
        .into_oci(capabilities, host)
        .map_err(|err| match err {
            ProfileError::Invalid(message) => RuntimeError::InvalidArgument(format!(
                "seccomp profile {}: {message}",
                path.display()
            )),
            ProfileError::Runtime(err) => err,
        })
}

/// The bytes of the profile file at `path`, a regular file of at most [`MAX_PROFILE_SIZE`].
fn read_profile(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    let fd: OwnedFd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            return Err(RuntimeError::InvalidArgument(format!(
                "seccomp profile {} does not exist",
                path.display()
            )));
        }
        Err(errno) => return Err(RuntimeError::io("open", path)(errno.into())),
    };
    read_regular_file(fd, MAX_PROFILE_SIZE).map_err(|err| match err {
        BoundedReadError::NotRegularFile => RuntimeError::InvalidArgument(format!(
            "seccomp profile {} is not a regular file",
            path.display()
        )),
        BoundedReadError::TooLarge => RuntimeError::InvalidArgument(format!(
            "seccomp profile {} is larger than {} KiB",
            path.display(),
            MAX_PROFILE_SIZE / 1024
        )),
        BoundedReadError::Io { op, source } => RuntimeError::Io {
            op,
            path: path.to_path_buf(),
            source,
        },
    })
}

fn oci_syscall(
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut syscall = LinuxSyscall::default();
    syscall
        .set_names(names)
        .set_action(action)
        .set_errno_ret(errno_ret)
        .set_args((!args.is_empty()).then_some(args));
    syscall
}

fn oci_arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    match value_two {
        Some(value_two) => builder.value_two(value_two),
        None => builder,
    }
    .build()
    .expect("every field of LinuxSeccompArg has a default")
}

/// What a profile's conditions are evaluated against.
struct Host<'a> {
    /// `std::env::consts::ARCH` of the host.
    arch: &'a str,
    /// (major, minor) of the running kernel, read when a rule first asks.
    kernel: OnceCell<(u32, u32)>,
    kernel_release_path: &'a Path,
}

impl Host<'static> {
    /// This machine.
    fn running() -> Self {
        Host {
            arch: std::env::consts::ARCH,
            kernel: OnceCell::new(),
            kernel_release_path: Path::new(KERNEL_RELEASE_PATH),
        }
    }
}

impl Host<'_> {
    /// The Go name of the host architecture, as profiles name them in includes/excludes.
    fn go_arch(&self) -> &str {
        match self.arch {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        }
    }

    /// The libseccomp name of the host architecture, as `archMap` names them.
    fn seccomp_arch(&self) -> Option<Arch> {
        match self.arch {
            "x86_64" => Some(Arch::ScmpArchX86_64),
            "x86" => Some(Arch::ScmpArchX86),
            "aarch64" => Some(Arch::ScmpArchAarch64),
            "arm" => Some(Arch::ScmpArchArm),
            "riscv64" => Some(Arch::ScmpArchRiscv64),
            "s390x" => Some(Arch::ScmpArchS390x),
            "loongarch64" => Some(Arch::ScmpArchLoongarch64),
            "powerpc64" if cfg!(target_endian = "little") => Some(Arch::ScmpArchPpc64le),
            _ => None,
        }
    }

    fn kernel_at_least(&self, min_kernel: &str) -> Result<bool, ProfileError> {
        let wanted = parse_kernel_version(min_kernel).ok_or_else(|| {
            ProfileError::Invalid(format!("minKernel {min_kernel:?} is not a kernel version"))
        })?;
        let running = match self.kernel.get() {
            Some(version) => *version,
            None => {
                let release = std::fs::read_to_string(self.kernel_release_path)
                    .map_err(RuntimeError::io("read", self.kernel_release_path))?;
                let version = parse_kernel_version(release.trim()).ok_or_else(|| {
                    RuntimeError::io("parse kernel release", self.kernel_release_path)(
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{:?} is not a kernel version", release.trim()),
                        ),
                    )
                })?;
                *self.kernel.get_or_init(|| version)
            }
        };
        Ok(running >= wanted)
    }
}

/// (major, minor) of "6.18", "4.8.0" or "6.18.0-1-amd64".
fn parse_kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor_part = parts.next()?;
    let digits = minor_part
        .find(|c: char| !c.is_ascii_digit())
        .map_or(minor_part, |end| &minor_part[..end]);
    Some((major, digits.parse().ok()?))
}

/// Why a parsed profile cannot be used.
enum ProfileError {
    /// The profile's content is wrong.
    Invalid(String),
    /// Evaluating it failed locally.
    Runtime(RuntimeError),
}

impl From<RuntimeError> for ProfileError {
    fn from(err: RuntimeError) -> Self {
        ProfileError::Runtime(err)
    }
}

/// A profile file in the Docker/containerd format. Unknown fields (`comment`, ...) are ignored,
/// as Docker and containerd do; Go's `null` is accepted wherever a list is.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<SyscallRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyscallRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<ArgRule>>,
    #[serde(default)]
    includes: Option<RuleFilter>,
    #[serde(default)]
    excludes: Option<RuleFilter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArgRule {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
}

/// `includes` (the rule applies only if all of it holds) or `excludes` (the rule does not apply
/// if any of it holds).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleFilter {
    /// Capability names ("CAP_SYS_ADMIN").
    #[serde(default)]
    caps: Option<Vec<String>>,
    /// Go architecture names ("amd64", "arm64").
    #[serde(default)]
    arches: Option<Vec<String>>,
    /// "major.minor".
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Whether the process holds the capability named `name` ("CAP_SYS_ADMIN" or "SYS_ADMIN"); a
/// name unknown here is a capability it does not hold.
fn holds(capabilities: &HashSet<Capability>, name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare).is_ok_and(|capability| capabilities.contains(&capability))
}

impl ProfileFile {
    fn into_oci(
        self,
        capabilities: &HashSet<Capability>,
        host: &Host<'_>,
    ) -> Result<LinuxSeccomp, ProfileError> {
        let architectures = match (self.architectures, self.arch_map) {
            (Some(arches), Some(map)) if !arches.is_empty() && !map.is_empty() => {
                return Err(ProfileError::Invalid(
                    "both architectures and archMap are set; use one".to_string(),
                ));
            }
            (Some(arches), _) if !arches.is_empty() => Some(arches),
            (_, Some(map)) => {
                let native = host.seccomp_arch();
                map.into_iter()
                    .find(|entry| Some(entry.architecture) == native)
                    .map(|entry| {
                        let mut arches = vec![entry.architecture];
                        arches.extend(entry.sub_architectures.unwrap_or_default());
                        arches
                    })
            }
            _ => None,
        };

        let mut syscalls = Vec::new();
        for rule in self.syscalls.unwrap_or_default() {
            if let Some(syscall) = rule.into_oci(capabilities, host)? {
                syscalls.push(syscall);
            }
        }

        let mut seccomp = LinuxSeccomp::default();
        seccomp
            .set_default_action(self.default_action)
            .set_default_errno_ret(self.default_errno_ret)
            .set_architectures(architectures)
            .set_flags(self.flags.filter(|flags| !flags.is_empty()))
            .set_listener_path(
                self.listener_path
                    .filter(|path| !path.as_os_str().is_empty()),
            )
            .set_listener_metadata(self.listener_metadata.filter(|meta| !meta.is_empty()))
            .set_syscalls(Some(syscalls));
        Ok(seccomp)
    }
}

impl SyscallRule {
    /// The OCI rule, or None when its includes/excludes rule it out for this process and host.
    fn into_oci(
        self,
        capabilities: &HashSet<Capability>,
        host: &Host<'_>,
    ) -> Result<Option<LinuxSyscall>, ProfileError> {
        let names = match (self.name, self.names) {
            (Some(name), Some(names)) if !name.is_empty() && !names.is_empty() => {
                return Err(ProfileError::Invalid(format!(
                    "a syscall rule has both name ({name:?}) and names; use one"
                )));
            }
            (Some(name), _) if !name.is_empty() => vec![name],
            (_, Some(names)) if !names.is_empty() => names,
            _ => {
                return Err(ProfileError::Invalid(
                    "a syscall rule has no name or names".to_string(),
                ));
            }
        };
        if let Some(name) = names.iter().find(|name| !is_syscall_name(name)) {
            return Err(ProfileError::Invalid(format!(
                "{name:?} is not a syscall name"
            )));
        }

        let excludes = self.excludes.unwrap_or_default();
        if excludes
            .arches
            .unwrap_or_default()
            .iter()
            .any(|arch| arch == host.go_arch())
            || excludes
                .caps
                .unwrap_or_default()
                .iter()
                .any(|cap| holds(capabilities, cap))
        {
            return Ok(None);
        }
        if let Some(min_kernel) = &excludes.min_kernel
            && host.kernel_at_least(min_kernel)?
        {
            return Ok(None);
        }
        let includes = self.includes.unwrap_or_default();
        let arches = includes.arches.unwrap_or_default();
        if !arches.is_empty() && !arches.iter().any(|arch| arch == host.go_arch()) {
            return Ok(None);
        }
        if !includes
            .caps
            .unwrap_or_default()
            .iter()
            .all(|cap| holds(capabilities, cap))
        {
            return Ok(None);
        }
        if let Some(min_kernel) = &includes.min_kernel
            && !host.kernel_at_least(min_kernel)?
        {
            return Ok(None);
        }

        let args = self
            .args
            .unwrap_or_default()
            .into_iter()
            .map(|arg| oci_arg(arg.index, arg.value, arg.value_two, arg.op))
            .collect::<Vec<_>>();
        if let Some(arg) = args.iter().find(|arg| arg.index() > 5) {
            return Err(ProfileError::Invalid(format!(
                "argument index {} is out of range 0..=5",
                arg.index()
            )));
        }
        Ok(Some(oci_syscall(names, self.action, self.errno_ret, args)))
    }
}

/// A Linux syscall name: lowercase letters, digits and `_`.
fn is_syscall_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::{Value, json};

    use super::default_profile::CLONE_NAMESPACE_FLAGS;
    use super::*;
    use crate::RuntimeErrorKind;

    fn caps(list: &[Capability]) -> HashSet<Capability> {
        list.iter().copied().collect()
    }

    /// The rules that name `name`.
    fn rules_for<'a>(seccomp: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|syscall| syscall.names().iter().any(|n| n == name))
            .collect()
    }

    /// Whether `name` is allowed with whatever arguments.
    fn allowed_unconditionally(seccomp: &LinuxSeccomp, name: &str) -> bool {
        rules_for(seccomp, name).iter().any(|syscall| {
            syscall.action() == LinuxSeccompAction::ScmpActAllow && syscall.args().is_none()
        })
    }

    #[test]
    fn default_profile_denies_with_eperm_and_allows_the_basics() {
        let seccomp = runtime_default_for(&caps(&[]), "x86_64");
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(seccomp.default_errno_ret(), Some(1));
        for name in [
            "read",
            "write",
            "openat",
            "pipe",
            "pipe2",
            "wait4",
            "execve",
            "exit_group",
            "futex",
            "arch_prctl",
        ] {
            assert!(allowed_unconditionally(&seccomp, name), "{name}");
        }
        for name in [
            "mount", "umount2", "unshare", "setns", "ptrace", "reboot", "bpf",
        ] {
            assert!(rules_for(&seccomp, name).is_empty(), "{name}");
        }
    }

    #[test]
    fn default_profile_allows_mount_family_only_with_cap_sys_admin() {
        let seccomp = runtime_default_for(&caps(&[Capability::SysAdmin]), "x86_64");
        for name in ["mount", "umount2", "unshare", "setns", "clone", "clone3"] {
            assert!(allowed_unconditionally(&seccomp, name), "{name}");
        }
        assert_eq!(rules_for(&seccomp, "clone").len(), 1);
        assert_eq!(rules_for(&seccomp, "clone3").len(), 1);
    }

    #[test]
    fn default_profile_without_cap_sys_admin_filters_clone_flags_and_fails_clone3() {
        let seccomp = runtime_default_for(&caps(&[Capability::SysPtrace]), "x86_64");
        let clone = rules_for(&seccomp, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].action(), LinuxSeccompAction::ScmpActAllow);
        let args = clone[0].args().as_ref().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), CLONE_NAMESPACE_FLAGS);
        assert_eq!(args[0].value(), 0x7E02_0000);
        assert_eq!(args[0].value_two(), None);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);

        let clone3 = rules_for(&seccomp, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn default_profile_capability_groups() {
        let cases = [
            (Capability::SysPtrace, "ptrace"),
            (Capability::SysPtrace, "process_vm_readv"),
            (Capability::SysModule, "finit_module"),
            (Capability::SysBoot, "reboot"),
            (Capability::SysChroot, "chroot"),
            (Capability::SysTime, "clock_settime"),
            (Capability::SysNice, "mbind"),
            (Capability::SysPacct, "acct"),
            (Capability::SysRawio, "iopl"),
            (Capability::Syslog, "syslog"),
            (Capability::SysTtyConfig, "vhangup"),
            (Capability::Bpf, "bpf"),
            (Capability::Perfmon, "perf_event_open"),
            (Capability::DacReadSearch, "open_by_handle_at"),
        ];
        let without = runtime_default_for(&caps(&[]), "x86_64");
        for (capability, name) in cases {
            assert!(rules_for(&without, name).is_empty(), "{name}");
            let with = runtime_default_for(&caps(&[capability]), "x86_64");
            assert!(
                allowed_unconditionally(&with, name),
                "{name} with {capability}"
            );
        }
    }

    #[test]
    fn default_profile_personality_only_for_the_usual_personas() {
        let seccomp = runtime_default_for(&caps(&[]), "x86_64");
        let mut values: Vec<u64> = rules_for(&seccomp, "personality")
            .iter()
            .map(|syscall| {
                let args = syscall.args().as_ref().unwrap();
                assert_eq!(args.len(), 1);
                assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpEq);
                args[0].value()
            })
            .collect();
        values.sort_unstable();
        assert_eq!(values, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn default_profile_architectures_follow_the_host() {
        let x86 = runtime_default_for(&caps(&[]), "x86_64");
        assert_eq!(
            x86.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert!(rules_for(&x86, "set_tls").is_empty());

        let arm = runtime_default_for(&caps(&[]), "aarch64");
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        assert!(allowed_unconditionally(&arm, "set_tls"));
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert!(rules_for(&arm, "modify_ldt").is_empty());
    }

    #[test]
    fn default_table_names_are_syscall_names_without_repeats_in_a_rule() {
        for rule in RULES {
            let mut names = rule.names.to_vec();
            assert!(names.iter().all(|name| is_syscall_name(name)), "{names:?}");
            names.sort_unstable();
            let count = names.len();
            names.dedup();
            assert_eq!(names.len(), count, "a name repeats in {:?}", rule.names);
        }
    }

    #[test]
    fn default_profile_serializes_to_the_oci_config_json_form() {
        let seccomp = runtime_default_for(&caps(&[Capability::SysChroot]), "x86_64");
        let value = serde_json::to_value(&seccomp).unwrap();
        assert_eq!(value["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(value["defaultErrnoRet"], 1);
        assert_eq!(
            value["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let syscalls = value["syscalls"].as_array().unwrap();
        assert!(syscalls.iter().all(|syscall| {
            syscall["names"]
                .as_array()
                .is_some_and(|names| !names.is_empty())
                && syscall["action"].as_str().is_some()
        }));
        let clone = syscalls
            .iter()
            .find(|syscall| syscall["names"] == json!(["clone"]))
            .unwrap();
        assert_eq!(
            clone["args"],
            json!([{"index": 0, "value": 0x7E02_0000_u64, "op": "SCMP_CMP_MASKED_EQ"}])
        );
        assert!(
            syscalls
                .iter()
                .any(|syscall| syscall["names"] == json!(["chroot"]))
        );
        let back: LinuxSeccomp = serde_json::from_value(value).unwrap();
        assert_eq!(back, seccomp);
    }

    /// A host for profile tests: `arch`, running the kernel `release`.
    struct TestHost {
        arch: &'static str,
        release_file: tempfile::NamedTempFile,
    }

    impl TestHost {
        fn new(arch: &'static str, release: &str) -> Self {
            let release_file = tempfile::NamedTempFile::new().unwrap();
            fs::write(release_file.path(), release).unwrap();
            TestHost { arch, release_file }
        }

        fn host(&self) -> Host<'_> {
            Host {
                arch: self.arch,
                kernel: OnceCell::new(),
                kernel_release_path: self.release_file.path(),
            }
        }
    }

    fn convert(
        profile: &Value,
        capabilities: &[Capability],
        host: &TestHost,
    ) -> Result<LinuxSeccomp, RuntimeError> {
        profile_to_oci(
            Path::new("/profiles/test.json"),
            &serde_json::to_vec(profile).unwrap(),
            &caps(capabilities),
            &host.host(),
        )
    }

    fn invalid(result: Result<LinuxSeccomp, RuntimeError>) -> String {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument, "{err}");
        err.to_string()
    }

    fn docker_profile() -> Value {
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "basics"},
                {"name": "getpid", "action": "SCMP_ACT_LOG"},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "4.8"}},
                {"names": ["futex_waitv"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "7.1"}},
                {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "includes": {"caps": ["CAP_SYS_BOOT", "CAP_SYS_ADMIN"]}},
                {"names": ["acct"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_NOT_A_CAPABILITY"]}}
            ]
        })
    }

    fn names(seccomp: &LinuxSeccomp) -> Vec<String> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|syscall| syscall.names().iter().cloned())
            .collect()
    }

    #[test]
    fn localhost_docker_profile_for_an_unprivileged_process() {
        let host = TestHost::new("x86_64", "6.18.0-1-amd64\n");
        let seccomp = convert(&docker_profile(), &[], &host).unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(seccomp.default_errno_ret(), Some(1));
        assert_eq!(
            seccomp.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert_eq!(
            names(&seccomp),
            [
                "read",
                "write",
                "getpid",
                "socket",
                "clone",
                "arch_prctl",
                "ptrace"
            ]
        );
        let getpid = &rules_for(&seccomp, "getpid")[0];
        assert_eq!(getpid.action(), LinuxSeccompAction::ScmpActLog);
        let socket_args = rules_for(&seccomp, "socket")[0].args().clone().unwrap();
        assert_eq!(socket_args[0].value(), 40);
        assert_eq!(socket_args[0].value_two(), Some(0));
        assert_eq!(socket_args[0].op(), LinuxSeccompOperator::ScmpCmpNe);
        let clone_args = rules_for(&seccomp, "clone")[0].args().clone().unwrap();
        assert_eq!(clone_args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    }

    #[test]
    fn localhost_docker_profile_for_a_privileged_process_on_arm64_and_an_old_kernel() {
        let host = TestHost::new("aarch64", "4.4.0\n");
        let capabilities = [Capability::SysAdmin, Capability::SysBoot];
        let seccomp = convert(&docker_profile(), &capabilities, &host).unwrap();
        assert_eq!(
            seccomp.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        assert_eq!(
            names(&seccomp),
            ["read", "write", "getpid", "socket", "mount", "kexec_load"]
        );
        let kexec = &rules_for(&seccomp, "kexec_load")[0];
        assert_eq!(kexec.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(kexec.errno_ret(), Some(38));
    }

    #[test]
    fn localhost_arch_map_without_the_host_leaves_the_native_arch() {
        let host = TestHost::new("s390x", "6.1\n");
        let seccomp = convert(&docker_profile(), &[], &host).unwrap();
        assert_eq!(seccomp.architectures(), &None);
    }

    #[test]
    fn localhost_architectures_list_and_flags_are_kept() {
        let host = TestHost::new("x86_64", "6.1\n");
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
        let seccomp = convert(&profile, &[], &host).unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(seccomp.default_errno_ret(), None);
        assert_eq!(
            seccomp.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64][..])
        );
        assert_eq!(
            seccomp.flags().as_deref(),
            Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..])
        );
        let value = serde_json::to_value(&seccomp).unwrap();
        assert_eq!(
            value["syscalls"],
            json!([{"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"}])
        );
    }

    #[test]
    fn localhost_profile_content_errors_say_what_is_wrong() {
        let host = TestHost::new("x86_64", "6.1\n");
        let cases = [
            (json!({"syscalls": []}), "malformed"),
            (json!({"defaultAction": "SCMP_ACT_PERHAPS"}), "malformed"),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}),
                "malformed",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}),
                "malformed",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO",
                       "architectures": ["SCMP_ARCH_X86_64"],
                       "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}),
                "both architectures and archMap",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}),
                "both name",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": [], "action": "SCMP_ACT_ALLOW"}]}),
                "no name",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": ["read\n"], "action": "SCMP_ACT_ALLOW"}]}),
                "not a syscall name",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "argument index 6",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"minKernel": "new"}}]}),
                "minKernel",
            ),
        ];
        for (profile, expected) in cases {
            let message = invalid(convert(&profile, &[], &host));
            assert!(message.contains("/profiles/test.json"), "{message}");
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
        let message = invalid(profile_to_oci(
            Path::new("/profiles/test.json"),
            b"{\"defaultAction\": ",
            &caps(&[]),
            &host.host(),
        ));
        assert!(message.contains("malformed"), "{message}");
    }

    #[test]
    fn localhost_profile_in_the_oci_form_converts_to_itself() {
        let host = TestHost::new("x86_64", "6.18.0\n");
        let capabilities = [Capability::SysAdmin, Capability::SysNice];
        let default = runtime_default_for(&caps(&capabilities), "x86_64");
        let profile = serde_json::to_value(&default).unwrap();
        assert_eq!(convert(&profile, &capabilities, &host).unwrap(), default);
    }

    #[test]
    fn localhost_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        fs::write(&path, serde_json::to_vec(&docker_profile()).unwrap()).unwrap();
        let seccomp = localhost(&path, &caps(&[])).unwrap();
        assert!(names(&seccomp).contains(&"read".to_string()));
    }

    #[test]
    fn localhost_missing_huge_or_odd_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let err = localhost(&missing, &caps(&[])).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
        assert!(err.to_string().contains("does not exist"), "{err}");

        let huge = dir.path().join("huge.json");
        fs::File::create(&huge)
            .unwrap()
            .set_len(MAX_PROFILE_SIZE + 1)
            .unwrap();
        let err = localhost(&huge, &caps(&[])).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
        assert!(err.to_string().contains("larger than 1024 KiB"), "{err}");

        let err = localhost(dir.path(), &caps(&[])).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
        assert!(err.to_string().contains("not a regular file"), "{err}");

        let garbage = dir.path().join("garbage.json");
        fs::write(&garbage, "not json").unwrap();
        let err = localhost(&garbage, &caps(&[])).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
        assert!(err.to_string().contains("malformed"), "{err}");
    }

    #[test]
    fn unparsable_kernel_release_is_a_local_failure() {
        let host = TestHost::new("x86_64", "garbage\n");
        let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}]});
        let err = convert(&profile, &[], &host).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal, "{err}");
        // without minKernel the release is never read
        let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
        convert(&profile, &[], &host).unwrap();
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("5.10-rc1"), Some((5, 10)));
        assert_eq!(parse_kernel_version("6"), None);
        assert_eq!(parse_kernel_version("six.one"), None);
    }
}
