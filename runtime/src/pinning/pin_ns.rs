//! The `crius-monitor pin-ns` subcommand: the helper process side of namespace pinning.
//!
//! It creates the pin dir, unshares the asked namespaces in one call (never the mount
//! namespace, so its bind mounts land in the daemon's), sets the hostname, brings `lo` up,
//! writes the sysctls into the new namespaces, then bind-mounts `/proc/thread-self/ns/<ns>` onto
//! `<dir>/<ns>`. With `--pid` it then unshares the PID namespace, forks the pod init into it
//! (`sys::pod_init`), bind-mounts `/proc/<init>/ns/pid` onto `<dir>/pid` and writes the init's pid
//! to `<dir>/init.pid`; the init outlives the helper. On failure it undoes all of that, killing
//! the init.

use std::ffi::OsString;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;
use nix::sched::CloneFlags;

use super::{INIT_PID_FILE, Namespace, PinRequest};
use crate::sys::mount::{LinuxMounts, MountOps};
use crate::sys::namespace::{LinuxNamespaces, NamespaceOps};

pub const USAGE: &str = "usage: crius-monitor pin-ns --dir DIR [--net] [--ipc] [--uts] [--pid] \
                         [--hostname NAME] [--sysctl NAME=VALUE]...";

/// The parsed command line of `pin-ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinNsArgs {
    pub dir: PathBuf,
    pub request: PinRequest,
}

/// Parses the arguments after `pin-ns`. The error is a usage error (exit 2).
pub fn parse_args(args: &[OsString]) -> Result<PinNsArgs, String> {
    let mut dir = None;
    let mut request = PinRequest::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value_of = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let utf8 = |flag: &str, value: OsString| {
            value
                .into_string()
                .map_err(|value| format!("{flag} {value:?} is not utf-8"))
        };
        match arg.to_str() {
            Some("--net") => request.net = true,
            Some("--ipc") => request.ipc = true,
            Some("--uts") => request.uts = true,
            Some("--pid") => request.pid = true,
            Some("--dir") => {
                let value = value_of("--dir")?;
                if dir.replace(PathBuf::from(value)).is_some() {
                    return Err("--dir given twice".to_string());
                }
            }
            Some("--hostname") => {
                let value = utf8("--hostname", value_of("--hostname")?)?;
                if request.hostname.replace(value).is_some() {
                    return Err("--hostname given twice".to_string());
                }
            }
            Some("--sysctl") => {
                let value = utf8("--sysctl", value_of("--sysctl")?)?;
                let (name, value) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--sysctl {value:?} is not NAME=VALUE"))?;
                request.sysctls.push((name.to_string(), value.to_string()));
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    let dir = dir.ok_or_else(|| "--dir is required".to_string())?;
    Ok(PinNsArgs { dir, request })
}

/// The command line `parse_args` reads back, after the `pin-ns` subcommand word.
pub(crate) fn command_args(dir: &Path, request: &PinRequest) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["pin-ns".into(), "--dir".into(), dir.into()];
    for namespace in request.namespaces() {
        args.push(format!("--{}", namespace.name()).into());
    }
    if let Some(hostname) = &request.hostname {
        args.push("--hostname".into());
        args.push(hostname.into());
    }
    for (name, value) in &request.sysctls {
        args.push("--sysctl".into());
        args.push(format!("{name}={value}").into());
    }
    args
}

/// Why `pin-ns` failed: the step, its cause (with the errno), and any cleanup that failed too.
#[derive(Debug)]
pub struct PinNsError {
    step: String,
    cause: String,
    cleanup_failures: Vec<String>,
}

impl PinNsError {
    fn new(step: impl Into<String>, cause: impl Into<String>) -> Self {
        PinNsError {
            step: step.into(),
            cause: cause.into(),
            cleanup_failures: Vec::new(),
        }
    }

    fn errno(step: impl Into<String>, errno: Errno) -> Self {
        Self::new(step, errno_text(errno))
    }

    fn io(step: impl Into<String>, err: &std::io::Error) -> Self {
        Self::new(step, io_text(err))
    }
}

/// One line, whatever the paths contain.
impl fmt::Display for PinNsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = format!("{}: {}", self.step, self.cause);
        if !self.cleanup_failures.is_empty() {
            line.push_str("; cleanup also failed: ");
            line.push_str(&self.cleanup_failures.join(", "));
        }
        f.write_str(&line.replace('\n', "\\n"))
    }
}

impl std::error::Error for PinNsError {}

fn errno_text(errno: Errno) -> String {
    format!("{errno:?} ({})", errno.desc().to_ascii_lowercase())
}

fn io_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => errno_text(Errno::from_raw(code)),
        None => err.to_string(),
    }
}

/// Runs `pin-ns` in this process, on the real system. Only for the `crius-monitor` binary: it
/// moves the calling thread into the new namespaces for good; the daemon calls `pinning::pin`.
pub fn run(args: &PinNsArgs) -> Result<(), PinNsError> {
    pin_here(
        &mut LinuxNamespaces,
        &LinuxMounts,
        Path::new("/proc"),
        &args.dir,
        &args.request,
    )
}

/// What has been done so far, for the undo.
#[derive(Default)]
struct Done {
    created_dir: bool,
    init_pid: Option<u32>,
    files: Vec<PathBuf>,
    mounts: Vec<PathBuf>,
}

/// Pins `request`'s namespaces under `dir`; `proc_root` stands for `/proc`.
pub(crate) fn pin_here(
    namespaces: &mut impl NamespaceOps,
    mounts: &impl MountOps,
    proc_root: &Path,
    dir: &Path,
    request: &PinRequest,
) -> Result<(), PinNsError> {
    request
        .validate()
        .map_err(|err| PinNsError::new("check request", err.to_string()))?;
    let mut done = Done::default();
    let result = pin_steps(namespaces, mounts, proc_root, dir, request, &mut done);
    if let Err(mut err) = result {
        undo(namespaces, mounts, dir, &done, &mut err);
        return Err(err);
    }
    Ok(())
}

fn pin_steps(
    namespaces: &mut impl NamespaceOps,
    mounts: &impl MountOps,
    proc_root: &Path,
    dir: &Path,
    request: &PinRequest,
    done: &mut Done,
) -> Result<(), PinNsError> {
    let create_dir = format!("create directory {}", dir.display());
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => done.created_dir = true,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            let is_dir = dir.symlink_metadata().is_ok_and(|m| m.is_dir());
            if !is_dir {
                return Err(PinNsError::new(create_dir, "exists and is not a directory"));
            }
        }
        Err(err) => return Err(PinNsError::io(create_dir, &err)),
    }

    // The PID namespace comes last, on its own: unsharing it moves only the next child.
    let others = || request.namespaces().filter(|ns| *ns != Namespace::Pid);
    let flags = others().fold(CloneFlags::empty(), |flags, ns| flags | ns.clone_flag());
    if !flags.is_empty() {
        let names: Vec<&str> = others().map(Namespace::name).collect();
        namespaces
            .unshare(flags)
            .map_err(|errno| PinNsError::errno(format!("unshare {}", names.join(",")), errno))?;
    }

    if let Some(hostname) = request.hostname.as_deref().filter(|_| request.uts) {
        namespaces
            .set_hostname(hostname)
            .map_err(|errno| PinNsError::errno(format!("set hostname {hostname:?}"), errno))?;
    }
    if request.net {
        namespaces
            .set_loopback_up()
            .map_err(|errno| PinNsError::errno("bring up lo", errno))?;
    }
    for (name, value) in &request.sysctls {
        write_sysctl(proc_root, name, value)?;
    }

    for namespace in others() {
        let source = proc_root.join("thread-self/ns").join(namespace.name());
        pin_file(mounts, &source, &dir.join(namespace.name()), done)?;
    }

    if request.pid {
        namespaces
            .unshare(Namespace::Pid.clone_flag())
            .map_err(|errno| PinNsError::errno("unshare pid", errno))?;
        let pid = namespaces
            .start_pid_init()
            .map_err(|errno| PinNsError::errno("start the pod init", errno))?;
        done.init_pid = Some(pid);
        let source = proc_root.join(pid.to_string()).join("ns/pid");
        pin_file(mounts, &source, &dir.join(Namespace::Pid.name()), done)?;
        let file = dir.join(INIT_PID_FILE);
        let step = || format!("write {}", file.display());
        let mut out = new_file(&file, 0o644).map_err(|err| PinNsError::io(step(), &err))?;
        done.files.push(file.clone());
        out.write_all(format!("{pid}\n").as_bytes())
            .map_err(|err| PinNsError::io(step(), &err))?;
    }
    Ok(())
}

/// Creates `file` (it must not exist) and bind-mounts the nsfs file `source` onto it.
fn pin_file(
    mounts: &impl MountOps,
    source: &Path,
    file: &Path,
    done: &mut Done,
) -> Result<(), PinNsError> {
    new_file(file, 0o444)
        .map_err(|err| PinNsError::io(format!("create {}", file.display()), &err))?;
    done.files.push(file.to_path_buf());
    mounts.bind(source, file).map_err(|errno| {
        let step = format!("bind-mount {} onto {}", source.display(), file.display());
        PinNsError::errno(step, errno)
    })?;
    done.mounts.push(file.to_path_buf());
    Ok(())
}

/// A new file, never through a symlink, never over an existing file.
fn new_file(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

/// Writes `value` to `<proc_root>/sys/<name with '.' as '/'>`. The name was checked: dotted words
/// only, so the path stays under `sys`.
fn write_sysctl(proc_root: &Path, name: &str, value: &str) -> Result<(), PinNsError> {
    let path = proc_root.join("sys").join(name.replace('.', "/"));
    let step = || format!("write sysctl {name} to {}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|err| PinNsError::io(step(), &err))?;
    file.write_all(value.as_bytes())
        .map_err(|err| PinNsError::io(step(), &err))
}

fn undo(
    namespaces: &mut impl NamespaceOps,
    mounts: &impl MountOps,
    dir: &Path,
    done: &Done,
    err: &mut PinNsError,
) {
    if let Some(pid) = done.init_pid
        && let Err(errno) = namespaces.stop_pid_init(pid)
    {
        let failure = format!("kill pod init {pid}: {}", errno_text(errno));
        err.cleanup_failures.push(failure);
    }
    for file in done.mounts.iter().rev() {
        if let Err(errno) = mounts.unmount_detach(file) {
            let failure = format!("unmount {}: {}", file.display(), errno_text(errno));
            err.cleanup_failures.push(failure);
        }
    }
    for file in done.files.iter().rev() {
        if let Err(e) = std::fs::remove_file(file) {
            let failure = format!("remove {}: {}", file.display(), io_text(&e));
            err.cleanup_failures.push(failure);
        }
    }
    if done.created_dir
        && let Err(e) = std::fs::remove_dir(dir)
    {
        let failure = format!("remove directory {}: {}", dir.display(), io_text(&e));
        err.cleanup_failures.push(failure);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::sys::fake::{FakeMounts, FakeNamespaces};

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn full_request() -> PinRequest {
        PinRequest {
            net: true,
            ipc: true,
            uts: true,
            pid: false,
            hostname: Some("pod-a".into()),
            sysctls: vec![
                ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
                ("kernel.shm_rmid_forced".into(), "1".into()),
            ],
        }
    }

    /// A stand-in for /proc with the sysctl files of `full_request`.
    fn fake_proc() -> tempfile::TempDir {
        let proc_root = tempfile::tempdir().unwrap();
        for file in [
            "sys/net/ipv4/ip_unprivileged_port_start",
            "sys/kernel/shm_rmid_forced",
        ] {
            let path = proc_root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        proc_root
    }

    #[test]
    fn parse_args_reads_every_option() {
        let args = parse_args(&os(&[
            "--dir",
            "/run/crius/pods/x/ns",
            "--net",
            "--ipc",
            "--uts",
            "--pid",
            "--hostname",
            "pod-a",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=0",
            "--sysctl",
            "kernel.sem=250 32000 32 128",
        ]))
        .unwrap();
        assert_eq!(args.dir, Path::new("/run/crius/pods/x/ns"));
        assert_eq!(
            args.request,
            PinRequest {
                net: true,
                ipc: true,
                uts: true,
                pid: true,
                hostname: Some("pod-a".into()),
                sysctls: vec![
                    ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
                    ("kernel.sem".into(), "250 32000 32 128".into()),
                ],
            }
        );
    }

    #[test]
    fn parse_args_splits_sysctls_at_the_first_equals_sign() {
        let args = parse_args(&os(&["--dir", "d", "--net", "--sysctl", "net.x=a=b"])).unwrap();
        assert_eq!(args.request.sysctls, vec![("net.x".into(), "a=b".into())]);
    }

    #[test]
    fn parse_args_refuses_bad_command_lines() {
        for (args, expected) in [
            (&["--net"][..], "--dir is required"),
            (&["--dir"], "--dir needs a value"),
            (&["--dir", "a", "--dir", "b"], "--dir given twice"),
            (
                &["--dir", "a", "--hostname", "x", "--hostname", "y"],
                "--hostname given twice",
            ),
            (&["--dir", "a", "--sysctl", "net.x"], "is not NAME=VALUE"),
            (&["--dir", "a", "--pidx"], "unknown argument \"--pidx\""),
        ] {
            let err = parse_args(&os(args)).unwrap_err();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn command_args_round_trip_through_parse_args() {
        let request = full_request();
        let args = command_args(Path::new("/run/p"), &request);
        assert_eq!(args[0], "pin-ns");
        let parsed = parse_args(&args[1..]).unwrap();
        assert_eq!(parsed.dir, Path::new("/run/p"));
        assert_eq!(parsed.request, request);
    }

    #[test]
    fn pin_here_unshares_once_sets_up_and_binds_each_namespace() {
        let proc_root = fake_proc();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces::default();
        let mounts = FakeMounts::default();
        pin_here(
            &mut namespaces,
            &mounts,
            proc_root.path(),
            &dir,
            &full_request(),
        )
        .unwrap();

        let all = CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
        assert_eq!(namespaces.unshared, vec![all]);
        assert_eq!(namespaces.hostname.as_deref(), Some("pod-a"));
        assert!(namespaces.loopback_up);
        let read = |file: &str| std::fs::read_to_string(proc_root.path().join(file)).unwrap();
        assert_eq!(read("sys/net/ipv4/ip_unprivileged_port_start"), "0");
        assert_eq!(read("sys/kernel/shm_rmid_forced"), "1");

        let expected: Vec<(PathBuf, PathBuf)> = ["net", "ipc", "uts"]
            .iter()
            .map(|ns| {
                (
                    proc_root.path().join("thread-self/ns").join(ns),
                    dir.join(ns),
                )
            })
            .collect();
        assert_eq!(*mounts.mounted.borrow(), expected);
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dir), 0o700);
        for ns in ["net", "ipc", "uts"] {
            assert_eq!(mode(&dir.join(ns)), 0o444, "{ns}");
        }
    }

    #[test]
    fn pin_here_with_net_only_pins_only_net() {
        let proc_root = fake_proc();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces::default();
        let mounts = FakeMounts::default();
        let request = PinRequest {
            net: true,
            ..PinRequest::default()
        };
        pin_here(&mut namespaces, &mounts, proc_root.path(), &dir, &request).unwrap();
        assert_eq!(namespaces.unshared, vec![CloneFlags::CLONE_NEWNET]);
        assert_eq!(namespaces.hostname, None);
        assert_eq!(mounts.targets(), vec![dir.join("net")]);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        assert_eq!(entries, vec![OsString::from("net")]);
    }

    #[test]
    fn failed_bind_undoes_earlier_mounts_files_and_dir() {
        let proc_root = fake_proc();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces::default();
        let mounts = FakeMounts {
            fail_bind_onto: Some(dir.join("uts")),
            ..FakeMounts::default()
        };
        let err = pin_here(
            &mut namespaces,
            &mounts,
            proc_root.path(),
            &dir,
            &full_request(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("bind-mount "), "{message}");
        assert!(
            message.contains("uts: EPERM (operation not permitted)"),
            "{message}"
        );
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn failed_sysctl_write_names_the_sysctl_and_removes_the_dir() {
        let proc_root = fake_proc();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut request = full_request();
        request
            .sysctls
            .push(("net.ipv4.nonexistent".into(), "1".into()));
        let mounts = FakeMounts::default();
        let err = pin_here(
            &mut FakeNamespaces::default(),
            &mounts,
            proc_root.path(),
            &dir,
            &request,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("write sysctl net.ipv4.nonexistent to "),
            "{message}"
        );
        assert!(
            message.ends_with("ENOENT (no such file or directory)"),
            "{message}"
        );
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn failed_unshare_removes_the_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces {
            fail: Some(("unshare", Errno::EPERM)),
            ..FakeNamespaces::default()
        };
        let err = pin_here(
            &mut namespaces,
            &FakeMounts::default(),
            Path::new("/nonexistent"),
            &dir,
            &full_request(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unshare net,ipc,uts: EPERM (operation not permitted)"
        );
        assert!(!dir.exists());
    }

    #[test]
    fn failure_keeps_a_dir_that_existed_before() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        let mut namespaces = FakeNamespaces {
            fail: Some(("set_loopback_up", Errno::ENODEV)),
            ..FakeNamespaces::default()
        };
        let err = pin_here(
            &mut namespaces,
            &FakeMounts::default(),
            Path::new("/nonexistent"),
            &dir,
            &full_request(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("bring up lo: ENODEV"), "{err}");
        assert!(dir.is_dir());
    }

    #[test]
    fn an_existing_namespace_file_is_never_mounted_over() {
        let proc_root = fake_proc();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ipc"), "mine").unwrap();
        let mounts = FakeMounts::default();
        let err = pin_here(
            &mut FakeNamespaces::default(),
            &mounts,
            proc_root.path(),
            &dir,
            &full_request(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("EEXIST"), "{err}");
        assert!(mounts.targets().is_empty());
        assert!(!dir.join("net").exists());
        assert_eq!(std::fs::read_to_string(dir.join("ipc")).unwrap(), "mine");
    }

    #[test]
    fn a_symlink_in_place_of_the_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::os::unix::fs::symlink(root.path(), &dir).unwrap();
        let err = pin_here(
            &mut FakeNamespaces::default(),
            &FakeMounts::default(),
            Path::new("/nonexistent"),
            &dir,
            &full_request(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("exists and is not a directory"),
            "{err}"
        );
    }

    #[test]
    fn invalid_requests_fail_before_anything_is_created() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces::default();
        for sysctl in ["net/../x", "kernel.nonexistent"] {
            let request = PinRequest {
                net: true,
                sysctls: vec![(sysctl.into(), "1".into())],
                ..PinRequest::default()
            };
            let err = pin_here(
                &mut namespaces,
                &FakeMounts::default(),
                Path::new("/nonexistent"),
                &dir,
                &request,
            )
            .unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("check request: "), "{message}");
            assert!(message.contains(sysctl), "{message}");
        }
        assert!(namespaces.unshared.is_empty());
        assert!(!dir.exists());
    }

    fn pid_request() -> PinRequest {
        PinRequest {
            net: true,
            pid: true,
            ..PinRequest::default()
        }
    }

    #[test]
    fn pid_is_unshared_last_on_its_own_and_its_init_pinned_and_recorded() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let proc_root = Path::new("/fakeproc");
        let mut namespaces = FakeNamespaces::default();
        let mounts = FakeMounts::default();
        pin_here(&mut namespaces, &mounts, proc_root, &dir, &pid_request()).unwrap();

        assert_eq!(
            namespaces.unshared,
            vec![CloneFlags::CLONE_NEWNET, CloneFlags::CLONE_NEWPID]
        );
        assert_eq!(namespaces.init_running, Some(FakeNamespaces::INIT_PID));
        assert_eq!(
            *mounts.mounted.borrow(),
            vec![
                (proc_root.join("thread-self/ns/net"), dir.join("net")),
                (proc_root.join("4242/ns/pid"), dir.join("pid")),
            ]
        );
        let init_pid = dir.join("init.pid");
        assert_eq!(std::fs::read_to_string(&init_pid).unwrap(), "4242\n");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("pid")) & !0o444, 0);
        assert_eq!(mode(&init_pid) & !0o644, 0);
    }

    #[test]
    fn pid_alone_unshares_only_pid() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces::default();
        let request = PinRequest {
            pid: true,
            ..PinRequest::default()
        };
        pin_here(
            &mut namespaces,
            &FakeMounts::default(),
            Path::new("/fakeproc"),
            &dir,
            &request,
        )
        .unwrap();
        assert_eq!(namespaces.unshared, vec![CloneFlags::CLONE_NEWPID]);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        assert_eq!(entries, ["init.pid", "pid"]);
    }

    #[test]
    fn failure_after_the_init_started_kills_it_and_removes_everything() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces::default();
        let mounts = FakeMounts {
            fail_bind_onto: Some(dir.join("pid")),
            ..FakeMounts::default()
        };
        let err = pin_here(
            &mut namespaces,
            &mounts,
            Path::new("/fakeproc"),
            &dir,
            &pid_request(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bind-mount /fakeproc/4242/ns/pid onto"),
            "{err}"
        );
        assert_eq!(namespaces.stopped, vec![FakeNamespaces::INIT_PID]);
        assert_eq!(namespaces.init_running, None);
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn a_failing_kill_of_the_init_is_reported_as_cleanup_failure() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("init.pid"), "stale").unwrap();
        let mut namespaces = FakeNamespaces {
            fail: Some(("stop_pid_init", Errno::ESRCH)),
            ..FakeNamespaces::default()
        };
        let err = pin_here(
            &mut namespaces,
            &FakeMounts::default(),
            Path::new("/fakeproc"),
            &dir,
            &pid_request(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("init.pid: EEXIST"), "{message}");
        assert!(
            message.contains("cleanup also failed: kill pod init 4242: ESRCH"),
            "{message}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("init.pid")).unwrap(),
            "stale"
        );
        assert!(!dir.join("pid").exists());
    }

    #[test]
    fn a_failed_init_start_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let mut namespaces = FakeNamespaces {
            fail: Some(("start_pid_init", Errno::EAGAIN)),
            ..FakeNamespaces::default()
        };
        let mounts = FakeMounts::default();
        let err = pin_here(
            &mut namespaces,
            &mounts,
            Path::new("/fakeproc"),
            &dir,
            &pid_request(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("start the pod init: EAGAIN"),
            "{err}"
        );
        assert!(namespaces.stopped.is_empty());
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn command_args_carry_pid() {
        let args = command_args(Path::new("/run/p"), &pid_request());
        assert_eq!(args, os(&["pin-ns", "--dir", "/run/p", "--net", "--pid"]));
        assert_eq!(parse_args(&args[1..]).unwrap().request, pid_request());
    }

    #[test]
    fn error_line_stays_one_line() {
        let err = PinNsError::new("create directory /a\nb", "EACCES");
        assert_eq!(err.to_string(), "create directory /a\\nb: EACCES");
    }
}
