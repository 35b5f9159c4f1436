//! Pinned namespaces for pod sandboxes, instead of a pause container.
//!
//! `pin` runs `crius-monitor pin-ns` (see [`pin_ns`]), which unshares the pod's net/ipc/uts
//! namespaces, sets them up (hostname, `lo` up, namespaced sysctls) and bind-mounts each one onto a
//! file under the pod's run dir. The namespaces outlive the helper through those mounts until
//! `unpin` takes them off.

pub mod pin_ns;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::RuntimeError;
use crate::sys::mount::{LinuxMounts, MountOps};
use crate::sysctl::OwnNamespaces;

/// A namespace kind that can be pinned; its file under the pin dir is named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Net,
    Ipc,
    Uts,
}

impl Namespace {
    pub const ALL: [Namespace; 3] = [Namespace::Net, Namespace::Ipc, Namespace::Uts];

    /// The name the kernel uses under `/proc/<pid>/ns/`, also the pinned file's name.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
        }
    }

    pub(crate) fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

/// What to pin and how to set the new namespaces up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinRequest {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
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
        }
    }

    /// The namespaces asked for, in the order net, ipc, uts.
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
}

impl PinnedNamespaces {
    pub fn path(&self, namespace: Namespace) -> Option<&Path> {
        match namespace {
            Namespace::Net => self.net.as_deref(),
            Namespace::Ipc => self.ipc.as_deref(),
            Namespace::Uts => self.uts.as_deref(),
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
    let file = |namespace: Namespace| request.wants(namespace).then(|| dir.join(namespace.name()));
    Ok(PinnedNamespaces {
        dir: dir.to_path_buf(),
        net: file(Namespace::Net),
        ipc: file(Namespace::Ipc),
        uts: file(Namespace::Uts),
    })
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

/// Unmounts (`MNT_DETACH`) and removes every namespace file under `dir`, then `dir`.
/// Idempotent: a missing dir or file, or a file that is not a mount point, is fine.
pub fn unpin(dir: &Path) -> Result<(), RuntimeError> {
    unpin_with(&LinuxMounts, dir)
}

/// More mounts than one on a pinned file only come from a bug or a race; this bounds the loop
/// that takes them all off.
const MAX_STACKED_MOUNTS: usize = 16;

pub(crate) fn unpin_with(mounts: &impl MountOps, dir: &Path) -> Result<(), RuntimeError> {
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
    match std::fs::remove_dir(dir) {
        Err(err) if err.kind() != ErrorKind::NotFound => Err(RuntimeError::Io {
            op: "remove directory",
            path: dir.to_path_buf(),
            source: err,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::RuntimeErrorKind;
    use crate::sys::fake::FakeMounts;

    fn all_three() -> PinRequest {
        PinRequest {
            net: true,
            ipc: true,
            uts: true,
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
        unpin_with(&mounts, &dir).unwrap();
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
        unpin_with(&mounts, &dir).unwrap();
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
        unpin_with(&mounts, &dir).unwrap();
        assert!(mounts.targets().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn unpin_of_a_missing_dir_is_ok() {
        let root = tempfile::tempdir().unwrap();
        unpin_with(&FakeMounts::default(), &root.path().join("gone")).unwrap();
    }

    #[test]
    fn unpin_leaves_a_dir_with_foreign_files_and_says_so() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pod");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("other"), "").unwrap();
        let err = unpin_with(&FakeMounts::default(), &dir).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        assert!(err.to_string().starts_with("remove directory"), "{err}");
    }
}
