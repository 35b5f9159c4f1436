//! The OCI runtime binary (runc, crun): the calls crius makes once a container exists. `create`
//! is the monitor's business (it holds the container's stdio).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::RuntimeError;
use crate::container::exec::ExecDir;

/// How much of a failing call's stderr goes into the error.
const STDERR_LIMIT: usize = 4096;

/// One OCI runtime handler: its binary and the state dir it keeps containers in (`--root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRuntime {
    pub binary: PathBuf,
    pub root: PathBuf,
}

impl OciRuntime {
    /// Runs the container's process (`start`), created by the monitor.
    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("start", id, &["start", id], None)
    }

    /// Forgets the container and removes its cgroup, killing what is left of it; a container
    /// the runtime does not know is fine.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        match self.call("delete", id, &["delete", "--force", id], None) {
            Err(RuntimeError::OciRuntime { message, .. })
                if message.contains("does not exist") || message.contains("not found") =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Sends `signal` to every process of the container (`kill --all`).
    pub fn kill_all(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.call(
            "kill",
            id,
            &["kill", "--all", id, &signal.to_string()],
            None,
        )
    }

    /// Sends `signal` to the container's init.
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        self.call("kill", id, &["kill", id, &signal.to_string()], None)
    }

    /// Applies new resource limits (`linux.resources` of the spec) to a container.
    pub fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), RuntimeError> {
        let json = serde_json::to_vec(resources).map_err(|e| RuntimeError::OciRuntime {
            op: "update",
            id: id.to_owned(),
            message: format!("serialize resources: {e}"),
        })?;
        self.call(
            "update",
            id,
            &["update", "--resources", "-", id],
            Some(&json),
        )
    }

    /// The command line that runs `exec`'s process in container `id`: runc in the foreground
    /// (the process's output passes through it, its exit status is runc's), the process's pid
    /// written to `exec`'s pid file, runc's log (warnings) to `exec`'s log file; when runc
    /// cannot start the process, it says why on stderr. The caller sets the stdio and runs it.
    ///
    /// When `exec`'s process has a terminal, runc makes it and relays between it and its own
    /// stdin and stdout, which must then be a terminal (the slave of a
    /// [`Pty`](crate::terminal::Pty)): runc copies that terminal's size to the process's at the
    /// start and whenever it gets SIGWINCH.
    pub fn exec_command(&self, id: &str, exec: &ExecDir) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(exec.runtime_log_file())
            .args(["exec", "--process"])
            .arg(exec.process_file())
            .arg("--pid-file")
            .arg(exec.pid_file())
            .arg(id);
        command
    }

    fn call(
        &self,
        op: &'static str,
        id: &str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<(), RuntimeError> {
        let mut child = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(RuntimeError::io("run", &self.binary))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input)
                .map_err(RuntimeError::io("write to", &self.binary))?;
        }
        let output = child
            .wait_with_output()
            .map_err(RuntimeError::io("wait for", &self.binary))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = &output.stderr[..output.stderr.len().min(STDERR_LIMIT)];
        let stderr = String::from_utf8_lossy(stderr);
        let message = stderr.trim();
        Err(RuntimeError::OciRuntime {
            op,
            id: id.to_owned(),
            message: if message.is_empty() {
                output.status.to_string()
            } else {
                message.to_owned()
            },
        })
    }
}
