//! The per-container monitor (`crius-monitor container`): the process that creates a container
//! through the OCI runtime, holds its stdio, writes its log and records how it ended.
//!
//! One monitor runs per container, conmon-like: single-threaded, fixed buffers, detached from the
//! daemon (it outlives daemon restarts) and the parent (a subreaper) of the container's init. Its
//! files live in the container run dir, `<dir>`:
//!
//! | file | what |
//! |---|---|
//! | `attach` | unix socket for attach clients, framed by [`attach_protocol`] |
//! | `ctl` | unix socket for control requests, one line each (`reopen`) |
//! | `console.sock` | with a terminal, where runc sends the pty master; gone once received |
//! | `container.pid` | the init's host pid, written by runc |
//! | `runc.log` | runc's JSON log, whose last error is the reported create error |
//! | `exit` | how the init ended ([`ExitStatus`]), written atomically after its output |
//!
//! This module is also the daemon's side: [`start`] runs a monitor and waits for its report,
//! [`reopen_log`] asks it to reopen the log file, [`read_exit`] reads the exit file, and
//! [`connect_attach`] connects to the attach socket. The monitor's own side is
//! [`supervise::run`], called by the binary with what [`args::parse_args`] returns.

pub mod args;
mod attach;
pub mod attach_protocol;
mod control;
mod exit_file;
mod log_writer;
mod oom;
pub mod supervise;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use args::ContainerArgs;
pub use exit_file::{EXIT_FILE, ExitStatus, read_exit};

use crate::RuntimeError;

/// The attach socket in the container run dir.
pub const ATTACH_SOCKET: &str = "attach";
/// The control socket in the container run dir.
pub const CONTROL_SOCKET: &str = "ctl";
/// The console socket runc sends a terminal to (only while `runc create` runs).
pub const CONSOLE_SOCKET: &str = "console.sock";
/// The pid file runc writes.
pub const CONTAINER_PID_FILE: &str = "container.pid";
/// runc's log file.
pub const RUNTIME_LOG_FILE: &str = "runc.log";

/// What `PATH` the monitor (and so runc) runs with; its environment is otherwise empty.
const MONITOR_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long [`reopen_log`] waits for the monitor's reply.
const CONTROL_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of the monitor's stderr an error keeps.
const MAX_MONITOR_MESSAGE: usize = 4096;

/// A created container and its monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The long-lived monitor process (not a child of the daemon: watch it with a pidfd).
    pub monitor_pid: i32,
    /// The container's init, created and waiting for `runc start`.
    pub container_pid: i32,
}

/// The one line the monitor writes to its stdout at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Report {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monitor_pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Report {
    pub(crate) fn started(pid: i32, monitor_pid: i32) -> Self {
        Report {
            pid: Some(pid),
            monitor_pid: Some(monitor_pid),
            error: None,
        }
    }

    pub(crate) fn failed(message: &str) -> Self {
        Report {
            error: Some(message.to_string()),
            ..Report::default()
        }
    }
}

/// Runs the monitor and waits for its report: Ok once `runc create` succeeded.
///
/// Blocks until the monitor reports (for as long as `runc create` takes). The container is then
/// created, not started: `runc start` starts it. On an error the container may still exist in the
/// runtime (a failure after `runc create`, e.g. no pid file): the caller runs
/// `runc delete --force` as it does for any failed creation.
pub fn start(binary: &Path, args: &ContainerArgs) -> Result<Started, RuntimeError> {
    args.validate().map_err(RuntimeError::InvalidArgument)?;
    let output = Command::new(binary)
        .args(args.command_args())
        .env_clear()
        .env("PATH", MONITOR_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(RuntimeError::io("spawn", binary))?;
    started_from_report(
        &args.id,
        &output.stdout,
        &output.stderr,
        &output.status.to_string(),
    )
}

/// Reads the monitor's report (its stdout) into the outcome of [`start`].
fn started_from_report(
    id: &str,
    stdout: &[u8],
    stderr: &[u8],
    status: &str,
) -> Result<Started, RuntimeError> {
    let first_line = stdout.split(|&b| b == b'\n').next().unwrap_or_default();
    let report: Option<Report> = serde_json::from_slice(first_line).ok();
    match report {
        Some(Report {
            error: Some(message),
            ..
        }) => Err(RuntimeError::ContainerCreate {
            id: id.to_string(),
            message,
        }),
        Some(Report {
            pid: Some(container_pid),
            monitor_pid: Some(monitor_pid),
            error: None,
        }) if container_pid > 1 && monitor_pid > 1 => Ok(Started {
            monitor_pid,
            container_pid,
        }),
        _ => {
            let stderr = String::from_utf8_lossy(&stderr[..stderr.len().min(MAX_MONITOR_MESSAGE)]);
            let stdout =
                String::from_utf8_lossy(&first_line[..first_line.len().min(MAX_MONITOR_MESSAGE)]);
            let mut message = format!("no report from the monitor ({status})");
            for (name, text) in [("stdout", stdout.trim()), ("stderr", stderr.trim())] {
                if !text.is_empty() {
                    message.push_str(&format!("; {name}: {}", text.replace('\n', "; ")));
                }
            }
            Err(RuntimeError::MonitorFailed {
                id: id.to_string(),
                message,
            })
        }
    }
}

/// Asks the monitor of the container run dir `dir` to reopen its log file; Ok once the new file
/// is open. [`RuntimeError::MonitorGone`] if the monitor is not there any more (the container has
/// exited).
pub fn reopen_log(dir: &Path) -> Result<(), RuntimeError> {
    let path = dir.join(CONTROL_SOCKET);
    let mut stream = connect(dir, &path)?;
    let io = |op| RuntimeError::io(op, &path);
    stream
        .set_read_timeout(Some(CONTROL_REPLY_TIMEOUT))
        .map_err(io("set timeout on"))?;
    stream
        .set_write_timeout(Some(CONTROL_REPLY_TIMEOUT))
        .map_err(io("set timeout on"))?;
    let request = format!("{}\n", control::REOPEN);
    match stream.write_all(request.as_bytes()) {
        Ok(()) => {}
        Err(err) if is_gone(&err) => return Err(gone(dir)),
        Err(source) => return Err(io("write to")(source)),
    }
    let mut reply = Vec::with_capacity(control::MAX_REQUEST_LINE);
    let mut chunk = [0u8; control::MAX_REQUEST_LINE];
    while !reply.contains(&b'\n') && reply.len() < control::MAX_REQUEST_LINE {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(gone(dir)),
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) if is_gone(&err) => return Err(gone(dir)),
            Err(source) => return Err(io("read reply from")(source)),
        }
    }
    reply_result(dir, control::REOPEN, &reply)
}

/// The outcome of a control request from the monitor's reply line.
fn reply_result(dir: &Path, request: &'static str, reply: &[u8]) -> Result<(), RuntimeError> {
    let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    if line == "ok" {
        return Ok(());
    }
    let message = line.strip_prefix("error ").unwrap_or(&line).to_string();
    Err(RuntimeError::MonitorRequest {
        dir: dir.to_path_buf(),
        request,
        message,
    })
}

/// Connects to the attach socket of the monitor of `dir` (see [`attach_protocol`]).
/// [`RuntimeError::MonitorGone`] if the monitor is not there any more.
pub fn connect_attach(dir: &Path) -> Result<UnixStream, RuntimeError> {
    connect(dir, &dir.join(ATTACH_SOCKET))
}

/// Connects to a socket of the run dir `dir` through a descriptor of the dir, so that the
/// address stays short however long the dir's path is.
fn connect(dir: &Path, socket: &Path) -> Result<UnixStream, RuntimeError> {
    let dir_fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|err| {
        let err = std::io::Error::from(err);
        if is_gone(&err) {
            gone(dir)
        } else {
            RuntimeError::io("open", dir)(err)
        }
    })?;
    let name = socket.file_name().unwrap_or_default();
    let short = Path::new("/proc/self/fd")
        .join(std::os::fd::AsRawFd::as_raw_fd(&dir_fd).to_string())
        .join(name);
    UnixStream::connect(short).map_err(|err| {
        if is_gone(&err) {
            gone(dir)
        } else {
            RuntimeError::Io {
                op: "connect to",
                path: socket.to_path_buf(),
                source: err,
            }
        }
    })
}

/// Errors that mean nobody serves the socket: no file, nobody listening, the peer went away.
fn is_gone(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::NotFound
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
    )
}

fn gone(dir: &Path) -> RuntimeError {
    RuntimeError::MonitorGone {
        dir: dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeErrorKind;

    #[test]
    fn a_started_report_gives_both_pids() {
        let started = started_from_report(
            "c1",
            b"{\"pid\":4242,\"monitor_pid\":4200}\n",
            b"",
            "exit status: 0",
        )
        .unwrap();
        assert_eq!(
            started,
            Started {
                monitor_pid: 4200,
                container_pid: 4242
            }
        );
    }

    #[test]
    fn reports_round_trip_through_json() {
        let line = serde_json::to_string(&Report::started(7, 8)).unwrap();
        assert_eq!(line, r#"{"pid":7,"monitor_pid":8}"#);
        let line = serde_json::to_string(&Report::failed("runc: \"x\"")).unwrap();
        assert_eq!(line, r#"{"error":"runc: \"x\""}"#);
    }

    #[test]
    fn an_error_report_is_a_create_error_with_its_message() {
        let err = started_from_report(
            "c1",
            br#"{"error":"exec: \"nope\": executable file not found in $PATH"}"#,
            b"",
            "exit status: 0",
        )
        .unwrap_err();
        assert!(matches!(err, RuntimeError::ContainerCreate { .. }));
        assert_eq!(
            err.to_string(),
            "creating container c1 failed: exec: \"nope\": executable file not found in $PATH"
        );
    }

    #[test]
    fn no_report_is_a_monitor_failure_with_its_stderr() {
        let err = started_from_report(
            "c1",
            b"",
            b"crius-monitor: unknown argument\nusage: ...\n",
            "exit status: 2",
        )
        .unwrap_err();
        assert!(matches!(err, RuntimeError::MonitorFailed { .. }));
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        let message = err.to_string();
        assert!(message.contains("exit status: 2"), "{message}");
        assert!(
            message.contains("stderr: crius-monitor: unknown argument; usage: ..."),
            "{message}"
        );
        let err = started_from_report("c1", b"{\"pid\":1}\n", b"", "exit status: 0").unwrap_err();
        assert!(matches!(err, RuntimeError::MonitorFailed { .. }), "{err}");
    }

    #[test]
    fn start_refuses_an_invalid_config_without_running_anything() {
        let binary = Path::new("/nonexistent/crius-monitor");
        let args = ContainerArgs {
            id: "../escape".into(),
            runtime: "/usr/sbin/runc".into(),
            runtime_root: "/run/runc".into(),
            bundle: "/b".into(),
            dir: "/d".into(),
            log_path: None,
            tty: false,
            stdin: false,
            stdin_once: false,
            oom_cgroup: None,
        };
        let err = start(binary, &args).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
        let err = start(
            binary,
            &ContainerArgs {
                id: "ok".into(),
                ..args
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spawn /nonexistent/crius-monitor"),
            "{err}"
        );
    }

    #[test]
    fn control_replies_map_to_results() {
        let dir = Path::new("/run/c");
        reply_result(dir, "reopen", b"ok\n").unwrap();
        let err = reply_result(dir, "reopen", b"error open /x: EACCES\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "monitor in /run/c refused reopen: open /x: EACCES"
        );
    }

    #[test]
    fn a_missing_monitor_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let err = reopen_log(dir.path()).unwrap_err();
        assert!(matches!(err, RuntimeError::MonitorGone { .. }), "{err}");
        assert_eq!(err.kind(), RuntimeErrorKind::NotRunning);
        let err = connect_attach(dir.path()).unwrap_err();
        assert!(matches!(err, RuntimeError::MonitorGone { .. }), "{err}");
    }

    #[test]
    fn a_monitor_that_closes_without_a_reply_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let listener =
            std::os::unix::net::UnixListener::bind(dir.path().join(CONTROL_SOCKET)).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = [0u8; 7];
            stream.read_exact(&mut line).unwrap();
            assert_eq!(&line, b"reopen\n");
        });
        let err = reopen_log(dir.path()).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, RuntimeError::MonitorGone { .. }), "{err}");
    }
}
