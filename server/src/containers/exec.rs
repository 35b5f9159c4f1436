//! Exec and ExecSync: a command run in a running container, through `runc exec` in the
//! foreground, with the container's own process settings (see
//! [`crius_runtime::container::exec`]). [`ContainerManager::spawn_exec`] starts one with pipes or
//! a terminal (for Exec's streaming session); ExecSync runs one to its end with pipes.
//!
//! runc runs as a tokio child process, its stdout and stderr read concurrently, each kept up to
//! [`OUTPUT_LIMIT`] and drained (discarded) beyond it so that the process never blocks on a full
//! pipe. When the caller's timeout passes, the exec'd process is killed with what it started
//! (the container keeps running) and the call fails with `DeadlineExceeded`, which kubelet takes
//! for a failed probe. When the caller goes away first, the exec is killed the same way.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crius_runtime::container::exec::{ExecDir, exec_failure_message, kill_exec};
use crius_runtime::container::record::{ContainerRecord, ContainerState};
use crius_runtime::monitor::attach_protocol::TerminalSize;
use crius_runtime::terminal::{Pty, open_pty};
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tonic::Status;
use tracing::Instrument as _;

use super::ContainerManager;
use super::terminal::Terminal;
use crate::blocking::run_blocking;
use crate::status::runtime as runtime_status;

/// The most of each output stream an ExecSync answers with, as cri-o and containerd keep.
pub const OUTPUT_LIMIT: usize = 16 * 1024 * 1024;
/// How long `runc exec` may take to end once the exec'd process was killed, before it is
/// killed too (a process that left the exec's group may still hold its output pipes).
const RUNTIME_GRACE: Duration = Duration::from_secs(2);
/// How often a pid file that runc has not written yet is looked for.
const PID_FILE_POLL: Duration = Duration::from_millis(10);
/// The size of each read from an output pipe.
const READ_CHUNK: usize = 64 * 1024;

/// What an exec'd command wrote and how it ended.
#[derive(Debug)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit code, or 128 + the signal that killed it.
    pub exit_code: i32,
}

/// Which of an exec'd process's standard streams are piped to crius; the others are
/// `/dev/null`. With `tty`, the process has a terminal instead: runc's stdin and stdout are a
/// terminal of crius's ([`SpawnedExec::terminal`]), which runc relays to and from the process's
/// own, and runc's stderr is piped (its own messages); `stdin`, `stdout` and `stderr` are then
/// not looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A `runc exec` started in the foreground.
#[derive(Debug)]
pub struct SpawnedExec {
    /// The container's full id.
    pub container_id: String,
    /// `runc exec`, killed if dropped.
    pub child: Child,
    /// The exec's files; the exec'd process's pid once runc started it.
    pub exec: ExecDir,
    /// With a terminal: its master, which reads EOF once runc has ended.
    pub terminal: Option<Terminal>,
}

impl ContainerManager {
    /// The record of container `id` (or unique id prefix) if it is running.
    pub fn running(&self, id: &str) -> Result<ContainerRecord, Status> {
        let record = self
            .find(id)
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        if record.state != ContainerState::Running {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                record.id
            )));
        }
        Ok(record)
    }

    /// Starts `command` in running container `id` through `runc exec`, with the container's
    /// process settings and `streams` piped (or a terminal).
    pub async fn spawn_exec(
        &self,
        id: &str,
        command: Vec<String>,
        streams: ExecStreams,
    ) -> Result<SpawnedExec, Status> {
        let record = self.running(id)?;
        let runtime = self.oci_runtime(&record.runtime_handler)?;
        let dir = record.dir.clone();
        let exec = run_blocking(move || ExecDir::prepare(&dir, command, streams.tty))
            .await
            .map_err(|e| runtime_status(&e))?;
        let piped_if = |wanted: bool| {
            if wanted {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut command = tokio::process::Command::from(runtime.exec_command(&record.id, &exec));
        let terminal = if streams.tty {
            let Pty { master, slave } = open_pty().map_err(|e| runtime_status(&e))?;
            let terminal_failed = |e| Status::internal(format!("set up a terminal: {e}"));
            command
                .stdin(slave.try_clone().map_err(terminal_failed)?)
                .stdout(slave)
                .stderr(Stdio::piped());
            Some(Terminal::new(master).map_err(terminal_failed)?)
        } else {
            command
                .stdin(piped_if(streams.stdin))
                .stdout(piped_if(streams.stdout))
                .stderr(piped_if(streams.stderr));
            None
        };
        let child = command
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Status::internal(format!("run {}: {e}", runtime.binary.display())))?;
        // Closes crius's copies of the terminal's slave: the master reads EOF once runc's are
        // closed too.
        drop(command);
        Ok(SpawnedExec {
            container_id: record.id,
            child,
            exec,
            terminal,
        })
    }

    /// Runs `command` in running container `id` to its end, or until `timeout` passes (None:
    /// no limit).
    pub async fn exec_sync(
        &self,
        id: &str,
        command: Vec<String>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, Status> {
        let described = command.join(" ");
        let SpawnedExec {
            container_id,
            child,
            exec,
            ..
        } = self
            .spawn_exec(
                id,
                command,
                ExecStreams {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                    tty: false,
                },
            )
            .await?;
        // The exec runs in a task of its own, which ends it as it would at the timeout when
        // the caller goes away (this future dropped, `_caller` with it).
        let (_caller, caller_gone) = tokio::sync::oneshot::channel::<()>();
        let finished =
            tokio::spawn(run_to_end(child, exec, timeout, caller_gone).in_current_span())
                .await
                .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()))?;
        let Finished {
            status,
            stdout,
            stderr,
            exec_started,
        } = finished;
        let Some(status) = status else {
            let limit = timeout.unwrap_or_default().as_secs();
            return Err(Status::deadline_exceeded(format!(
                "command {described:?} in container {container_id} timed out after {limit}s"
            )));
        };
        let exit_code = exit_code(status);
        if exit_code != 0 && !exec_started {
            // runc could not start the process (no such command, the container just ended): an
            // error, as cri-o and containerd answer, not an exit code of the command's.
            return Err(Status::unknown(format!(
                "exec in container {container_id} failed: {}",
                exec_failure_message(&stderr)
            )));
        }
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code,
        })
    }
}

/// How a `runc exec` ended.
struct Finished {
    /// runc's exit status; None when the timeout passed (or the caller went away).
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Whether runc started the exec'd process (wrote its pid).
    exec_started: bool,
}

/// Reads runc's output and waits for its end, until `timeout` passes or `caller_gone` fires:
/// then kills the exec'd process and what it started, and runc if it lingers.
async fn run_to_end(
    mut child: Child,
    exec: ExecDir,
    timeout: Option<Duration>,
    caller_gone: tokio::sync::oneshot::Receiver<()>,
) -> Result<Finished, Status> {
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Status::internal(
            "runc exec started without its output pipes",
        ));
    };
    let waited = async {
        let expired = async {
            match timeout {
                Some(limit) => {
                    tokio::select! {
                        () = tokio::time::sleep(limit) => {}
                        _ = caller_gone => {}
                    }
                }
                None => {
                    // Err: the sender was dropped, the caller went away; it never sends.
                    caller_gone.await.ok();
                }
            }
        };
        tokio::select! {
            status = child.wait() => return status.map(Some),
            () = expired => {}
        }
        end_exec(&mut child, &exec).await?;
        Ok(None)
    };
    let (stdout, stderr, status) = tokio::join!(read_capped(stdout), read_capped(stderr), waited);
    let status = status.map_err(|e| Status::internal(format!("wait for runc exec: {e}")))?;
    let read_failed = |e: std::io::Error| Status::internal(format!("read exec output: {e}"));
    Ok(Finished {
        status,
        stdout: stdout.map_err(read_failed)?,
        stderr: stderr.map_err(read_failed)?,
        exec_started: exec.exec_pid().is_some(),
    })
}

/// Ends an exec whose time is up or whose client went away: kills the exec'd process and what it
/// started, then waits for `runc exec` (`child`) to end, killing it too if it lingers.
pub async fn end_exec(child: &mut Child, exec: &ExecDir) -> std::io::Result<()> {
    if let (Some(exec_pid), Some(runtime_pid)) = (started_exec_pid(child, exec).await, child.id())
        && let Err(e) = run_blocking(move || kill_exec(exec_pid, runtime_pid)).await
    {
        tracing::warn!(error = %e, "killing an exec'd process");
    }
    if tokio::time::timeout(RUNTIME_GRACE, child.wait())
        .await
        .is_err()
    {
        child.kill().await?;
    }
    Ok(())
}

/// The exec'd process's pid. runc writes it only after it started the process, which may run
/// already: while runc runs, the pid file is waited for (up to [`RUNTIME_GRACE`]), so that an
/// exec ended early is not left running once runc is killed. None if runc ended without it.
async fn started_exec_pid(child: &mut Child, exec: &ExecDir) -> Option<i32> {
    let deadline = tokio::time::Instant::now() + RUNTIME_GRACE;
    loop {
        if let Some(pid) = exec.exec_pid() {
            return Some(pid);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::select! {
            // runc ended: whatever it wrote is there now.
            _ = child.wait() => return exec.exec_pid(),
            () = tokio::time::sleep(PID_FILE_POLL) => {}
        }
    }
}

/// Resizes an exec's `terminal` and has `runc exec` (`child`) pass the size on to the process's
/// own terminal (runc does that on SIGWINCH). Once runc has ended (and been waited for) there is
/// no one to tell.
pub fn resize_exec_terminal(
    child: &Child,
    terminal: &Terminal,
    size: TerminalSize,
) -> Result<(), Status> {
    terminal
        .resize(size)
        .map_err(|e| Status::internal(format!("resize the terminal: {e}")))?;
    // The pid is runc's as long as the child is not waited for: `id()` is None after.
    let Some(runtime_pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return Ok(());
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(runtime_pid), Signal::SIGWINCH) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(Status::internal(format!(
            "tell runc exec of the terminal's size: {e}"
        ))),
    }
}

/// Reads `pipe` to its end, keeping the first [`OUTPUT_LIMIT`] bytes.
async fn read_capped(mut pipe: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut chunk = vec![0; READ_CHUNK];
    loop {
        let read = pipe.read(&mut chunk).await?;
        if read == 0 {
            return Ok(kept);
        }
        let room = OUTPUT_LIMIT - kept.len();
        kept.extend_from_slice(&chunk[..read.min(room)]);
    }
}

/// An exit status as a CRI exit code: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_kept_up_to_the_limit_and_the_rest_drained() {
        let (reader, mut writer) = tokio::io::simplex(READ_CHUNK);
        let total = OUTPUT_LIMIT + 3 * READ_CHUNK + 17;
        let write = async move {
            use tokio::io::AsyncWriteExt;
            let block = vec![b'y'; READ_CHUNK];
            let mut left = total;
            while left > 0 {
                let n = left.min(block.len());
                writer.write_all(&block[..n]).await.unwrap();
                left -= n;
            }
            writer.shutdown().await.unwrap();
        };
        let (kept, ()) = tokio::join!(read_capped(reader), write);
        let kept = kept.unwrap();
        assert_eq!(kept.len(), OUTPUT_LIMIT);
        assert!(kept.iter().all(|b| *b == b'y'));
    }

    #[test]
    fn signals_are_reported_as_128_plus_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
