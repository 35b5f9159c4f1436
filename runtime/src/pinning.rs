//! Pinned namespaces for pod sandboxes, instead of a pause container.
//!
//! `pin` runs `crius-monitor pin-ns` (see [`pin_ns`]), which unshares the pod's net/ipc/uts
//! namespaces, sets them up (hostname, `lo` up, namespaced sysctls) and bind-mounts each one onto a
//! file under the pod's run dir. The namespaces outlive the helper through those mounts until
//! `unpin` takes them off.
//!
//! A pod-wide PID namespace needs a live PID 1 as well as a mount: the helper forks a minimal init
//! of ours (`crius-pod-init`, see `sys::pod_init`) into it, which reaps orphans and outlives the
//! helper and the daemon; its pid is in `<dir>/init.pid`, and `unpin` kills it.

pub mod pin_ns;

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::RuntimeError;
use crate::sys::mount::{LinuxMounts, MountOps};
use crate::sys::process::{LinuxProcesses, ProcessOps};
use crate::sysctl::OwnNamespaces;

/// A namespace kind that can be pinned; its file under the pin dir is named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Net,
    Ipc,
    Uts,
    /// Held by the pod init as well as by the pinned file.
    Pid,
}

impl Namespace {
    pub const ALL: [Namespace; 4] = [
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Pid,
    ];

    /// The name the kernel uses under `/proc/<pid>/ns/`, also the pinned file's name.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Pid => "pid",
        }
    }

    pub(crate) fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
        }
    }
}

/// What to pin and how to set the new namespaces up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinRequest {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    /// A pod-wide PID namespace, held by an init process of ours.
    pub pid: bool,
    /// The hostname of the new UTS namespace (needs `uts`).
    pub hostname: Option<String>,
    /// Namespaced sysctls in dotted form (`net.ipv4.ip_unprivileged_port_start`), each in a
    /// namespace this request pins.
    pub sysctls: Vec<(String, String)>,
}

const MAX_HOSTNAME_BYTES: usize = 64;

impl PinRequest {
    pub fn wants(&self, namespace: Namespace) -> bool {
        match namespace {
            Namespace::Net => self.net,
            Namespace::Ipc => self.ipc,
            Namespace::Uts => self.uts,
            Namespace::Pid => self.pid,
        }
    }

    /// The namespaces asked for, in the order net, ipc, uts, pid.
    pub fn namespaces(&self) -> impl Iterator<Item = Namespace> + '_ {
        Namespace::ALL.into_iter().filter(|ns| self.wants(*ns))
    }

    /// Checks the request without touching the system: at least one namespace, a sane hostname
    /// only with `uts`, and every sysctl well-formed and inside a namespace being pinned (so it
    /// can never land on the node).
    pub fn validate(&self) -> Result<(), RuntimeError> {
        if self.namespaces().next().is_none() {
            return Err(invalid(
                "nothing to pin: no namespace asked for".to_string(),
            ));
        }
        if let Some(hostname) = &self.hostname {
            if !self.uts {
                return Err(invalid(format!(
                    "hostname {hostname:?} needs a new uts namespace"
                )));
            }
            if hostname.is_empty()
                || hostname.len() > MAX_HOSTNAME_BYTES
                || hostname.chars().any(|c| c.is_control() || c == '/')
            {
                return Err(invalid(format!(
                    "invalid hostname {hostname:?}: must be 1 to {MAX_HOSTNAME_BYTES} bytes \
                     without control characters or '/'"
                )));
            }
        }
        let own = OwnNamespaces {
            network: self.net,
            ipc: self.ipc,
        };
        for (name, value) in &self.sysctls {
            // Callers pass the dotted form `sysctl::validate` returns; the helper writes it.
            if crate::sysctl::validate(name, value, own)? != *name {
                return Err(invalid(format!(
                    "sysctl {name:?} must be passed in dotted form"
                )));
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

/// The pinned namespace files of one pod, each a bind mount of an nsfs file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedNamespaces {
    pub dir: PathBuf,
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    /// The pod-wide PID namespace (records written before it existed have none).
    #[serde(default)]
    pub pid: Option<PathBuf>,
    /// The host pid of the pod init holding `pid`.
    #[serde(default)]
    pub init_pid: Option<u32>,
}

impl PinnedNamespaces {
    pub fn path(&self, namespace: Namespace) -> Option<&Path> {
        match namespace {
            Namespace::Net => self.net.as_deref(),
            Namespace::Ipc => self.ipc.as_deref(),
            Namespace::Uts => self.uts.as_deref(),
            Namespace::Pid => self.pid.as_deref(),
        }
    }
}

/// How much of the helper's stderr an error keeps.
const MAX_HELPER_MESSAGE_BYTES: usize = 4096;

/// Runs `<monitor> pin-ns` for `dir`; returns the pinned namespace files.
///
/// `dir` must not be pinned already; its parent must exist. On failure the helper has undone its
/// work and the error carries its stderr. Blocks for the helper's few milliseconds.
pub fn pin(
    monitor: &Path,
    dir: &Path,
    request: &PinRequest,
) -> Result<PinnedNamespaces, RuntimeError> {
    request.validate()?;
    let output = Command::new(monitor)
        .args(pin_ns::command_args(dir, request))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| RuntimeError::Io {
            op: "spawn",
            path: monitor.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(RuntimeError::PinNamespaces {
            dir: dir.to_path_buf(),
            status: output.status.to_string(),
            stderr: helper_message(&output.stderr),
        });
    }
    let init_pid = if request.pid {
        match read_init_pid(dir) {
            Ok(Some(pid)) => Some(pid),
            Ok(None) => {
                let path = dir.join(INIT_PID_FILE);
                let _ = unpin(dir);
                return Err(RuntimeError::Io {
                    op: "read",
                    path,
                    source: ErrorKind::NotFound.into(),
                });
            }
            Err(err) => {
                let _ = unpin(dir);
                return Err(err);
            }
        }
    } else {
        None
    };
    let file = |namespace: Namespace| request.wants(namespace).then(|| dir.join(namespace.name()));
    Ok(PinnedNamespaces {
        dir: dir.to_path_buf(),
        net: file(Namespace::Net),
        ipc: file(Namespace::Ipc),
        uts: file(Namespace::Uts),
        pid: file(Namespace::Pid),
        init_pid,
    })
}

/// The file under the pin dir holding the pod init's host pid, `<pid>\n`.
pub const INIT_PID_FILE: &str = "init.pid";

/// Reads `<dir>/init.pid`: `None` if there is none. Refuses anything but a pid above 1, so that
/// nothing read here can ever name a process group, every process, or the node's init.
fn read_init_pid(dir: &Path) -> Result<Option<u32>, RuntimeError> {
    let path = dir.join(INIT_PID_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RuntimeError::Io {
                op: "read",
                path,
                source,
            });
        }
    };
    match parse_init_pid(&text) {
        Some(pid) => Ok(Some(pid)),
        None => Err(RuntimeError::Io {
            op: "read",
            path,
            source: std::io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "not a pod init pid: {:?}",
                    text.chars().take(32).collect::<String>()
                ),
            ),
        }),
    }
}

fn parse_init_pid(text: &str) -> Option<u32> {
    let digits = text.strip_suffix('\n').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<i32>()
        .ok()
        .filter(|pid| *pid > 1)
        .and_then(|pid| u32::try_from(pid).ok())
}

fn helper_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(&stderr[..stderr.len().min(MAX_HELPER_MESSAGE_BYTES)]);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "no message".to_string()
    } else {
        lines.join("; ")
    }
}

/// Kills the pod init named by `<dir>/init.pid` if it still holds the pinned PID namespace and
/// waits (up to 2 s) until it is gone, then unmounts (`MNT_DETACH`) and removes every namespace
/// file under `dir`, `init.pid`, then `dir`.
/// Idempotent: a missing dir or file, or a file that is not a mount point, is fine. A pid whose
/// process is not in the pinned PID namespace (gone, or the pid reused) is never signalled.
pub fn unpin(dir: &Path) -> Result<(), RuntimeError> {
    unpin_with(&LinuxMounts, &LinuxProcesses, Path::new("/proc"), dir)
}

/// More mounts than one on a pinned file only come from a bug or a race; this bounds the loop
/// that takes them all off.
const MAX_STACKED_MOUNTS: usize = 16;

/// How long `unpin` waits for a killed pod init to disappear.
const INIT_EXIT_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn unpin_with(
    mounts: &impl MountOps,
    processes: &impl ProcessOps,
    proc_root: &Path,
    dir: &Path,
) -> Result<(), RuntimeError> {
    stop_pod_init(processes, proc_root, dir)?;
    for namespace in Namespace::ALL {
        let file = dir.join(namespace.name());
        for _ in 0..MAX_STACKED_MOUNTS {
            match mounts.unmount_detach(&file) {
                Ok(()) => {}
                // EINVAL: not (or no longer) a mount point; ENOENT: no such file.
                Err(Errno::EINVAL | Errno::ENOENT) => break,
                Err(errno) => {
                    return Err(RuntimeError::Io {
                        op: "unmount",
                        path: file,
                        source: errno.into(),
                    });
                }
            }
        }
        match std::fs::remove_file(&file) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                return Err(RuntimeError::Io {
                    op: "remove",
                    path: file,
                    source: err,
                });
            }
            _ => {}
        }
    }
    let init_pid_file = dir.join(INIT_PID_FILE);
    match std::fs::remove_file(&init_pid_file) {
        Err(err) if err.kind() != ErrorKind::NotFound => {
            return Err(RuntimeError::Io {
                op: "remove",
                path: init_pid_file,
                source: err,
            });
        }
        _ => {}
    }
    match std::fs::remove_dir(dir) {
        Err(err) if err.kind() != ErrorKind::NotFound => Err(RuntimeError::Io {
            op: "remove directory",
            path: dir.to_path_buf(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// SIGKILLs the pod init of `dir` if `<proc_root>/<pid>/ns/pid` is the namespace pinned at
/// `<dir>/pid` (same device and inode), and waits for it to go. Anything else is left alone: no
/// `init.pid`, an unreadable one, no pinned file, a process that is gone or is someone else.
fn stop_pod_init(
    processes: &impl ProcessOps,
    proc_root: &Path,
    dir: &Path,
) -> Result<(), RuntimeError> {
    let pid = match read_init_pid(dir) {
        Ok(Some(pid)) => pid,
        Ok(None) => return Ok(()),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "not killing any pod init");
            return Ok(());
        }
    };
    let pinned = match std::fs::metadata(dir.join(Namespace::Pid.name())) {
        Ok(meta) => meta,
        Err(_) => {
            tracing::warn!(dir = %dir.display(), pid, "no pinned pid namespace: not killing the pod init");
            return Ok(());
        }
    };
    let process_dir = proc_root.join(pid.to_string());
    let Ok(its) = std::fs::metadata(process_dir.join("ns/pid")) else {
        // Gone already (or a zombie, whose namespaces are gone).
        return Ok(());
    };
    if (its.dev(), its.ino()) != (pinned.dev(), pinned.ino()) {
        tracing::warn!(dir = %dir.display(), pid, "pid is not the pod init (reused?): not killing it");
        return Ok(());
    }
    match processes.kill(pid) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(errno) => {
            return Err(RuntimeError::Io {
                op: "kill pod init",
                path: process_dir,
                source: errno.into(),
            });
        }
    }
    let deadline = Instant::now() + INIT_EXIT_TIMEOUT;
    while !is_gone(&process_dir) {
        if Instant::now() >= deadline {
            return Err(RuntimeError::PodInitStillRunning {
                pid,
                waited: INIT_EXIT_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Whether the process of `<proc_root>/<pid>` has exited: no such dir, or a zombie (`Z`) or dead
/// (`X`) state in its `stat`, a zombie being dead for our purposes (its parent reaps it).
fn is_gone(process_dir: &Path) -> bool {
    match std::fs::read_to_string(process_dir.join("stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state == 'Z' || state == 'X'),
        Err(_) => !process_dir.exists(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::RuntimeErrorKind;
    use crate::sys::fake::{FakeMounts, FakeProcesses};

    fn all_three() -> PinRequest {
        PinRequest {
            net: true,
            ipc: true,
            uts: true,
            pid: false,
            hostname: Some("pod-a".to_string()),
            sysctls: vec![
                ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
                ("kernel.shm_rmid_forced".into(), "1".into()),
                ("kernel.sem".into(), "250 32000 32 128".into()),
                ("fs.mqueue.msg_max".into(), "10".into()),
            ],
        }
    }

    fn invalid_message(request: &PinRequest) -> String {
        let err = request.validate().unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument, "{err}");
        err.to_string()
    }

    #[test]
    fn request_with_namespaced_sysctls_and_hostname_is_valid() {
        all_three().validate().unwrap();
    }

    #[test]
    fn request_without_namespaces_is_refused() {
        let message = invalid_message(&PinRequest::default());
        assert!(message.contains("nothing to pin"), "{message}");
    }

    #[test]
    fn hostname_without_uts_is_refused() {
        let request = PinRequest {
            net: true,
            hostname: Some("pod-a".into()),
            ..PinRequest::default()
        };
        assert!(invalid_message(&request).contains("uts"));
    }

    #[test]
    fn malformed_hostnames_are_refused() {
        for hostname in ["", "a\nb", "a/b", &"h".repeat(65)] {
            let request = PinRequest {
                uts: true,
                hostname: Some(hostname.to_string()),
                ..PinRequest::default()
            };
            assert!(invalid_message(&request).contains("invalid hostname"));
        }
    }

    #[test]
    fn sysctl_of_a_namespace_not_pinned_is_refused() {
        let request = PinRequest {
            ipc: true,
            sysctls: vec![("net.ipv4.ip_unprivileged_port_start".into(), "0".into())],
            ..PinRequest::default()
        };
        let message = invalid_message(&request);
        assert!(
            message.contains("net.ipv4.ip_unprivileged_port_start"),
            "{message}"
        );
        assert!(message.contains("network namespace"), "{message}");
    }

    #[test]
    fn pin_refuses_an_invalid_request_without_running_the_helper() {
        let dir = tempfile::tempdir().unwrap();
        let request = PinRequest {
            net: true,
            sysctls: vec![("kernel.nonexistent".into(), "1".into())],
            ..PinRequest::default()
        };
        let err = pin(
            Path::new("/nonexistent/monitor"),
            &dir.path().join("p"),
            &request,
        )
        .unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
        assert!(err.to_string().contains("kernel.nonexistent"), "{err}");
    }

    #[test]
    fn pin_reports_a_missing_helper_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let request = PinRequest {
            net: true,
            ..PinRequest::default()
        };
        let err = pin(
            Path::new("/nonexistent/monitor"),
            &dir.path().join("p"),
            &request,
        )
        .unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        assert!(
            err.to_string().contains("spawn /nonexistent/monitor"),
            "{err}"
        );
    }

    #[test]
    fn pin_carries_the_helper_stderr_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("helper");
        std::fs::write(
            &helper,
            "#!/bin/sh\necho 'pin-ns: unshare net: EPERM' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let request = PinRequest {
            net: true,
            ..PinRequest::default()
        };
        // A freshly written script can be briefly "text file busy" while another test thread
        // forks with its write fd open.
        let err = (0..50)
            .map(|_| pin(&helper, &dir.path().join("p"), &request).unwrap_err())
            .find(|err| !err.to_string().contains("busy"))
            .unwrap();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        let message = err.to_string();
        assert!(message.contains("pin-ns: unshare net: EPERM"), "{message}");
        assert!(message.contains("exit status: 1"), "{message}");
    }

    #[test]
    fn helper_message_is_bounded_and_one_line() {
        assert_eq!(helper_message(b""), "no message");
        assert_eq!(helper_message(b"a\n\nb\n"), "a; b");
        assert!(helper_message(&[b'x'; 100_000]).len() <= MAX_HELPER_MESSAGE_BYTES);
    }

    #[test]
    fn unpin_unmounts_and_removes_files_then_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        let mounts = FakeMounts::default();
        for name in ["net", "uts"] {
            let file = dir.join(name);
            std::fs::write(&file, "").unwrap();
            mounts
                .mounted
                .borrow_mut()
                .push((PathBuf::from("/proc/self/ns").join(name), file));
        }
        unpin_with(
            &mounts,
            &FakeProcesses::default(),
            Path::new("/nonexistent"),
            &dir,
        )
        .unwrap();
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
        unpin_with(
            &mounts,
            &FakeProcesses::default(),
            Path::new("/nonexistent"),
            &dir,
        )
        .unwrap();
    }

    #[test]
    fn unpin_takes_off_stacked_mounts() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("ipc");
        std::fs::write(&file, "").unwrap();
        let mounts = FakeMounts::default();
        for _ in 0..3 {
            mounts
                .mounted
                .borrow_mut()
                .push(("/proc/self/ns/ipc".into(), file.clone()));
        }
        unpin_with(
            &mounts,
            &FakeProcesses::default(),
            Path::new("/nonexistent"),
            &dir,
        )
        .unwrap();
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn unpin_of_a_missing_dir_is_ok() {
        let root = tempfile::tempdir().unwrap();
        unpin_with(
            &FakeMounts::default(),
            &FakeProcesses::default(),
            Path::new("/nonexistent"),
            &root.path().join("gone"),
        )
        .unwrap();
    }

    #[test]
    fn unpin_leaves_a_dir_with_foreign_files_and_says_so() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("other"), "").unwrap();
        let err = unpin_with(
            &FakeMounts::default(),
            &FakeProcesses::default(),
            Path::new("/nonexistent"),
            &dir,
        )
        .unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        assert!(err.to_string().starts_with("remove directory"), "{err}");
    }

    #[test]
    fn parse_init_pid_takes_only_a_pid_above_one() {
        assert_eq!(parse_init_pid("4242\n"), Some(4242));
        assert_eq!(parse_init_pid("17"), Some(17));
        for text in [
            "",
            "\n",
            "0\n",
            "1\n",
            "-1\n",
            "+5",
            " 5",
            "5 \n",
            "99999999999",
            "4242\n\n",
        ] {
            assert_eq!(parse_init_pid(text), None, "{text:?}");
        }
    }

    #[test]
    fn records_without_pid_fields_still_deserialize() {
        let old = r#"{"dir":"/run/p","net":"/run/p/net","ipc":null,"uts":null}"#;
        let pinned: PinnedNamespaces = serde_json::from_str(old).unwrap();
        assert_eq!(pinned.pid, None);
        assert_eq!(pinned.init_pid, None);
        assert_eq!(pinned.path(Namespace::Net), Some(Path::new("/run/p/net")));
    }

    /// A pod dir with a pinned `pid` file and `init.pid` naming 4242, and a fake /proc where
    /// 4242's `ns/pid` is the pinned file itself (`same_namespace`) or another file.
    fn pod_with_init(same_namespace: bool) -> (tempfile::TempDir, PathBuf, PathBuf, FakeMounts) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        let proc_root = root.path().join("proc");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir_all(proc_root.join("4242/ns")).unwrap();
        std::fs::write(
            proc_root.join("4242/stat"),
            "4242 (crius-pod-init) S 1 4242",
        )
        .unwrap();
        let pinned = dir.join("pid");
        std::fs::write(&pinned, "").unwrap();
        if same_namespace {
            std::fs::hard_link(&pinned, proc_root.join("4242/ns/pid")).unwrap();
        } else {
            std::fs::write(proc_root.join("4242/ns/pid"), "").unwrap();
        }
        std::fs::write(dir.join("init.pid"), "4242\n").unwrap();
        let mounts = FakeMounts::default();
        mounts
            .mounted
            .borrow_mut()
            .push((proc_root.join("4242/ns/pid"), pinned));
        (root, dir, proc_root, mounts)
    }

    #[test]
    fn unpin_kills_the_init_holding_the_pinned_pid_namespace() {
        let (_root, dir, proc_root, mounts) = pod_with_init(true);
        let processes = FakeProcesses {
            proc_root: proc_root.clone(),
            ..FakeProcesses::default()
        };
        unpin_with(&mounts, &processes, &proc_root, &dir).unwrap();
        assert_eq!(*processes.killed.borrow(), vec![4242]);
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
        unpin_with(&mounts, &processes, &proc_root, &dir).unwrap();
        assert_eq!(processes.killed.borrow().len(), 1);
    }

    #[test]
    fn unpin_never_kills_a_pid_outside_the_pinned_namespace() {
        let (_root, dir, proc_root, mounts) = pod_with_init(false);
        let processes = FakeProcesses {
            proc_root: proc_root.clone(),
            ..FakeProcesses::default()
        };
        unpin_with(&mounts, &processes, &proc_root, &dir).unwrap();
        assert!(processes.killed.borrow().is_empty());
        assert!(proc_root.join("4242").exists());
        assert!(!dir.exists());
    }

    #[test]
    fn unpin_never_kills_without_a_pinned_pid_file() {
        let (_root, dir, proc_root, _) = pod_with_init(true);
        std::fs::remove_file(dir.join("pid")).unwrap();
        let processes = FakeProcesses {
            proc_root: proc_root.clone(),
            ..FakeProcesses::default()
        };
        unpin_with(&FakeMounts::default(), &processes, &proc_root, &dir).unwrap();
        assert!(processes.killed.borrow().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn unpin_keeps_everything_while_the_init_survives_sigkill() {
        let (_root, dir, proc_root, mounts) = pod_with_init(true);
        let processes = FakeProcesses {
            proc_root: proc_root.clone(),
            survives: true,
            ..FakeProcesses::default()
        };
        let err = unpin_with(&mounts, &processes, &proc_root, &dir).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        assert_eq!(
            err.to_string(),
            "pod init 4242 still running 2s after SIGKILL"
        );
        assert!(dir.join("init.pid").exists());
        assert_eq!(mounts.targets(), vec![dir.join("pid")]);
    }

    #[test]
    fn a_zombie_counts_as_gone() {
        let root = tempfile::tempdir().unwrap();
        let process = root.path().join("7");
        std::fs::create_dir(&process).unwrap();
        std::fs::write(process.join("stat"), "7 (a) b) Z 1 7").unwrap();
        assert!(is_gone(&process));
        std::fs::write(process.join("stat"), "7 (a) Z) S 1 7").unwrap();
        assert!(!is_gone(&process));
        assert!(is_gone(&root.path().join("8")));
    }
}
