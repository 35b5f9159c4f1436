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
use rustix::fs::{self as rfs, Mode, OFlags};
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
    let profile: ProfileFile = serde_json::from_slice(&bytes).map_err(|err| {
        RuntimeError::InvalidArgument(format!(
            "seccomp profile {} is malformed: {err}",
            path.display()
        ))
    })?;
    let host = Host {
        arch: std::env::consts::ARCH,
        kernel: OnceCell::new(),
        kernel_release_path: Path::new(KERNEL_RELEASE_PATH),
    };
    profile
        .into_oci(capabilities, &host)
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
    let fd: OwnedFd = match rfs::open(
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
                    RuntimeError::InvalidArgument(format!(
                        "kernel release {:?} in {} is not a kernel version",
                        release.trim(),
                        self.kernel_release_path.display()
                    ))
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
