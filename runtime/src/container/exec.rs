//! The OCI runtime side of ExecSync and Exec, all synchronous: the process an exec runs, derived from the
//! container's own spec so that it has the container's user, environment, working dir,
//! capabilities, rlimits, no_new_privileges and LSM labels; the per-exec directory holding it and
//! the pid file; what runc says when it could not start the process; and the end of an exec'd
//! process whose time is up, with everything it started.
//!
//! The caller runs [`OciRuntime::exec_command`](super::oci_runtime::OciRuntime::exec_command):
//! `runc exec` in the foreground, the exec'd process's output passed through runc, its exit
//! status runc's own (128 + signal when killed). With a terminal, runc makes the process's
//! terminal and relays between it and a terminal of the caller's (runc's stdin and stdout, see
//! [`crate::terminal`]): runc cannot stay in the foreground with a console socket, and a
//! detached exec's exit status would go to whoever reaps it, not to crius.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use oci_spec::runtime::Process;
use rustix::process::{Pid, PidfdFlags};

use crate::RuntimeError;
use crate::sys::pidfd::signal_process_group;

/// The exec'd process, as `runc exec --process` takes it.
const PROCESS_FILE: &str = "process.json";
/// Where runc writes the exec'd process's pid (host PID namespace) once it runs.
const PID_FILE: &str = "pid";
/// Where runc logs (warnings), so that they stay out of the exec'd process's stderr.
const RUNTIME_LOG_FILE: &str = "runc.log";
/// How many descendants of an exec'd process are tracked down one by one (a fork bomb is the
/// pids cgroup's business; the process group signal reaches the rest of it).
const MAX_DESCENDANTS: usize = 4096;
/// How much of runc's message goes into an error.
const MESSAGE_LIMIT: usize = 4096;

/// The files of one exec, in a directory of its own under the container's run dir; removed when
/// dropped.
#[derive(Debug)]
pub struct ExecDir {
    dir: tempfile::TempDir,
}

impl ExecDir {
    /// Writes the process that runs `command` in the container whose bundle (holding its
    /// `config.json`) is `container_dir`, into a new directory there; with `terminal`, the
    /// process gets a terminal of its own (runc makes it and relays between it and runc's
    /// stdio, which must then include a terminal; see
    /// [`OciRuntime::exec_command`](super::oci_runtime::OciRuntime::exec_command)).
    pub fn prepare(
        container_dir: &Path,
        command: Vec<String>,
        terminal: bool,
    ) -> Result<Self, RuntimeError> {
        let spec_path = container_dir.join("config.json");
        let spec = std::fs::read(&spec_path).map_err(RuntimeError::io("read", &spec_path))?;
        let process = exec_process(&spec, command, terminal).map_err(|e| RuntimeError::Io {
            op: "parse",
            path: spec_path,
            source: std::io::Error::other(e),
        })?;
        let dir = tempfile::Builder::new()
            .prefix("exec-")
            .tempdir_in(container_dir)
            .map_err(RuntimeError::io("create an exec dir in", container_dir))?;
        let exec = ExecDir { dir };
        let process_file = exec.process_file();
        let json = serde_json::to_vec(&process).map_err(|e| RuntimeError::Io {
            op: "serialize",
            path: process_file.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&process_file, json).map_err(RuntimeError::io("write", &process_file))?;
        Ok(exec)
    }

    /// The process JSON for `runc exec --process`.
    pub fn process_file(&self) -> PathBuf {
        self.dir.path().join(PROCESS_FILE)
    }

    /// The file for `runc exec --pid-file`.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join(PID_FILE)
    }

    /// The file for the OCI runtime's `--log`.
    pub fn runtime_log_file(&self) -> PathBuf {
        self.dir.path().join(RUNTIME_LOG_FILE)
    }

    /// The exec'd process's pid in crius's PID namespace, once runc has started it; None before,
    /// and when runc could not start it.
    pub fn exec_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|pid| *pid > 0)
    }
}

/// The container's process (from its spec, `spec_json`) with `command` as its arguments, and a
/// terminal if `terminal` (its size is runc's terminal's, not the container's).
fn exec_process(
    spec_json: &[u8],
    command: Vec<String>,
    terminal: bool,
) -> Result<Process, serde_json::Error> {
    /// Only the process of the spec is read; the rest (mounts, seccomp) is skipped.
    #[derive(serde::Deserialize)]
    struct ProcessOfSpec {
        process: Option<Process>,
    }
    let mut process = serde_json::from_slice::<ProcessOfSpec>(spec_json)?
        .process
        .unwrap_or_default();
    process.set_args(Some(command));
    process.set_command_line(None);
    process.set_terminal(Some(terminal));
    process.set_console_size(None);
    Ok(process)
}

/// What runc said when it could not start an exec'd process: its stderr (the process never
/// ran, so it wrote nothing there), bounded.
pub fn exec_failure_message(stderr: &[u8]) -> String {
    String::from_utf8_lossy(&stderr[..stderr.len().min(MESSAGE_LIMIT)])
        .trim()
        .to_owned()
}

/// Kills an exec'd process whose time is up, and what it started: SIGKILL to its process group
/// (runc makes it a session leader, so all it forked and did not move elsewhere is in there,
/// children it left behind included) and to each of its descendants (those that left the group).
///
/// `runtime_pid` is the `runc exec` running it, not reaped yet: the exec'd process is its child,
/// which tells it apart from a later process with the same pid. Returns false when the exec'd
/// process had already ended.
pub fn kill_exec(exec_pid: i32, runtime_pid: u32) -> Result<bool, RuntimeError> {
    let Some(leader) = open_child(exec_pid, i32::try_from(runtime_pid).unwrap_or(0)) else {
        return Ok(false);
    };
    // Found before any of them dies: a dead parent's children move to another.
    let descendants = descendants(exec_pid);
    let group = match signal_process_group(leader.as_fd(), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        // Before Linux 6.9: by number. The group cannot be another while the leader we hold
        // is unreaped (runc reaps it only once it ended) or any member lives.
        Err(Errno::EINVAL) => {
            match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(exec_pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    for pidfd in std::iter::once(&leader).chain(&descendants) {
        match rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(RuntimeError::io(
                    "pidfd_send_signal",
                    format!("/proc/{exec_pid}"),
                )(e.into()));
            }
        }
    }
    group.map_err(|e| {
        RuntimeError::io("signal the process group of", format!("/proc/{exec_pid}"))(e.into())
    })?;
    Ok(true)
}

/// Pidfds of the processes below `root`, found by their parent pids in `/proc/<pid>/stat`
/// (`/proc/<pid>/task/<tid>/children` needs `CONFIG_PROC_CHILDREN`, which kernels may lack).
fn descendants(root: i32) -> Vec<OwnedFd> {
    let parents = parent_pids();
    let mut found = Vec::new();
    let mut below = vec![root];
    while let Some(parent) = below.pop() {
        for &(child, _) in parents.iter().filter(|(_, p)| *p == parent) {
            if found.len() >= MAX_DESCENDANTS {
                return found;
            }
            if let Some(pidfd) = open_child(child, parent) {
                found.push(pidfd);
                below.push(child);
            }
        }
    }
    found
}

/// Every process of crius's PID namespace with its parent: `(pid, parent pid)`.
fn parent_pids() -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// A pidfd of process `pid` if it is (still) a child of `parent`.
fn open_child(pid: i32, parent: i32) -> Option<OwnedFd> {
    let pidfd = rustix::process::pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
    // The pidfd holds whichever process has the pid now; it is the child if its parent is.
    (parent_of(pid) == Some(parent)).then_some(pidfd)
}

/// The parent pid of `pid` (field 4 of `/proc/<pid>/stat`).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last
    // ')', with the state first.
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    const SPEC: &str = r#"{
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1234, "gid": 5678, "additionalGids": [9]},
            "args": ["/bin/sleep", "3600"],
            "env": ["PATH=/bin", "GREETING=hello"],
            "cwd": "/work",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]},
            "noNewPrivileges": true,
            "apparmorProfile": "crius-default",
            "selinuxLabel": "system_u:system_r:container_t:s0"
        },
        "root": {"path": "rootfs"},
        "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}
    }"#;

    #[test]
    fn the_exec_process_is_the_containers_with_the_command_and_no_terminal() {
        let process = exec_process(SPEC.as_bytes(), vec!["id".into(), "-u".into()], false).unwrap();
        let json = serde_json::to_value(&process).unwrap();
        assert_eq!(json["args"], serde_json::json!(["id", "-u"]));
        assert_eq!(json["terminal"], false);
        assert!(json.get("consoleSize").is_none());
        assert_eq!(json["user"]["uid"], 1234);
        assert_eq!(json["user"]["gid"], 5678);
        assert_eq!(json["user"]["additionalGids"], serde_json::json!([9]));
        assert_eq!(
            json["env"],
            serde_json::json!(["PATH=/bin", "GREETING=hello"])
        );
        assert_eq!(json["cwd"], "/work");
        assert_eq!(
            json["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN"])
        );
        assert_eq!(json["noNewPrivileges"], true);
        assert_eq!(json["apparmorProfile"], "crius-default");
        assert_eq!(json["selinuxLabel"], "system_u:system_r:container_t:s0");
    }

    #[test]
    fn the_exec_dir_holds_the_process_and_goes_away_when_dropped() {
        let bundle = tempfile::tempdir().unwrap();
        std::fs::write(bundle.path().join("config.json"), SPEC).unwrap();
        let exec = ExecDir::prepare(bundle.path(), vec!["true".into()], false).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(exec.process_file()).unwrap()).unwrap();
        assert_eq!(written["args"], serde_json::json!(["true"]));
        assert_eq!(exec.exec_pid(), None);
        std::fs::write(exec.pid_file(), "4242").unwrap();
        assert_eq!(exec.exec_pid(), Some(4242));
        let dir = exec.process_file().parent().unwrap().to_path_buf();
        assert!(dir.starts_with(bundle.path()));
        drop(exec);
        assert!(!dir.exists());
    }

    #[test]
    fn an_exec_with_a_terminal_asks_for_one_without_the_containers_size() {
        let process = exec_process(SPEC.as_bytes(), vec!["sh".into()], true).unwrap();
        let json = serde_json::to_value(&process).unwrap();
        assert_eq!(json["terminal"], true);
        assert!(json.get("consoleSize").is_none());
        assert_eq!(json["args"], serde_json::json!(["sh"]));
    }

    #[test]
    fn a_bundle_without_a_spec_is_an_error() {
        let bundle = tempfile::tempdir().unwrap();
        let err = ExecDir::prepare(bundle.path(), vec!["true".into()], false).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn runc_failures_are_told_by_their_stderr_bounded() {
        assert_eq!(
            exec_failure_message(b"exec failed: exec: \"nope\": not found\n"),
            "exec failed: exec: \"nope\": not found"
        );
        assert_eq!(exec_failure_message(&[b'x'; 10_000]).len(), MESSAGE_LIMIT);
    }

    fn gone_within(pid: i32, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            // Reaped by the test's `sh` or by init: no /proc entry, or a zombie.
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(stat)
                    if stat
                        .rsplit_once(')')
                        .unwrap()
                        .1
                        .trim_start()
                        .starts_with('Z') =>
                {
                    return true;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        false
    }

    /// The pids of the processes running `sleep <seconds>`, waiting (bounded) until there is one
    /// for each of `seconds`.
    fn sleepers(seconds: &[&str]) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<i32> = seconds
                .iter()
                .filter_map(|wanted| {
                    parent_pids().into_iter().map(|(pid, _)| pid).find(|pid| {
                        std::fs::read(format!("/proc/{pid}/cmdline"))
                            .is_ok_and(|cmdline| cmdline == format!("sleep\0{wanted}\0").as_bytes())
                    })
                })
                .collect();
            if found.len() == seconds.len() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn an_exec_is_killed_with_its_group_and_its_descendants_that_left_it() {
        // `setsid` stands in for runc: it makes the inner `sh` a session leader, as runc does
        // with the exec'd process; the outer `sh` stands in for `runc exec`, the parent. Of the
        // inner sh's sleeps, 7101 is its child, 7102 an orphan in its group (its parent, a
        // subshell, has ended), 7103 a child in a session of its own.
        let mut runtime = Command::new("sh")
            .args([
                "-c",
                "setsid sh -c 'sleep 7101 & (sleep 7102 &); setsid sleep 7103 & wait; exit 0' & wait",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let runtime_pid = runtime.id();
        let sleeping = sleepers(&["7101", "7102", "7103"]);
        assert_eq!(sleeping.len(), 3, "{sleeping:?}");
        let exec_pid = parent_pids()
            .into_iter()
            .find(|(_, parent)| *parent == runtime_pid as i32)
            .unwrap()
            .0;
        assert!(kill_exec(exec_pid, runtime_pid).unwrap());
        for pid in sleeping.iter().chain([&exec_pid]) {
            assert!(gone_within(*pid, Duration::from_secs(5)), "{pid} lives on");
        }
        runtime.wait().unwrap();
        assert!(!kill_exec(exec_pid, runtime_pid).unwrap());
    }

    #[test]
    fn a_process_that_is_not_the_runtimes_child_is_left_alone() {
        let mut stranger = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = stranger.id() as i32;
        assert!(!kill_exec(pid, std::process::id() + 1).unwrap());
        assert!(!gone_within(pid, Duration::from_millis(100)));
        stranger.kill().unwrap();
        stranger.wait().unwrap();
    }
}
