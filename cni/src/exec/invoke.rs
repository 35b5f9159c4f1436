//! Running one plugin: exec with a given environment, config on stdin, bounded output, a deadline.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::exec::args::CniCommand;
use crate::exec::result::parse_error_output;
use crate::{CniError, PluginConfig};

/// A plugin's stdout (its result) beyond this is refused.
pub(super) const MAX_STDOUT_BYTES: usize = 1024 * 1024;
/// Only this much of a plugin's stderr is kept for error messages; the rest is discarded.
pub(super) const MAX_STDERR_BYTES: usize = 64 * 1024;

/// How often a spawn is retried when the binary is being replaced (`ETXTBSY`).
const SPAWN_ATTEMPTS: u32 = 5;
/// How long a killed plugin gets to be reaped before it is left to `kill_on_drop`.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// Runs `plugin` once and returns its stdout when it exits zero. The plugin is killed when
/// `timeout` passes, even if a process it started still holds its stdout open.
pub(super) async fn invoke_plugin(
    plugin: &PluginConfig,
    command: CniCommand,
    env: &[(&'static str, OsString)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, CniError> {
    let started = Instant::now();
    let mut child = spawn(plugin, env).await?;
    let mut stdin_pipe = child.stdin.take();
    let stdout_pipe = child.stdout.take();
    let stderr_pipe = child.stderr.take();
    let exchange = async {
        let write_stdin = async {
            if let Some(mut pipe) = stdin_pipe.take() {
                // A plugin may exit without reading all of its config; its exit status tells.
                if let Err(e) = pipe.write_all(stdin).await {
                    tracing::debug!(plugin = %plugin.plugin_type, error = %e, "plugin stdin write");
                }
            }
        };
        let (_, stdout, stderr) = tokio::join!(
            write_stdin,
            read_bounded(stdout_pipe, MAX_STDOUT_BYTES),
            read_bounded(stderr_pipe, MAX_STDERR_BYTES),
        );
        let status = child.wait().await;
        (stdout, stderr, status)
    };
    let outcome = tokio::time::timeout(timeout, exchange).await;
    let Ok((stdout, stderr, status)) = outcome else {
        kill_and_reap(&mut child, plugin).await;
        return Err(CniError::Timeout {
            plugin: plugin.plugin_type.clone(),
            command: command.as_str(),
            timeout,
        });
    };
    let io_error = |op: &'static str| {
        let path = plugin.binary.clone();
        move |source| CniError::Io { op, path, source }
    };
    let (stdout, stdout_overflowed) = stdout.map_err(io_error("read output of plugin"))?;
    let (stderr, _) = stderr.map_err(io_error("read stderr of plugin"))?;
    let status = status.map_err(io_error("wait for plugin"))?;
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    tracing::debug!(
        plugin = %plugin.plugin_type,
        command = command.as_str(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        status = %status,
        stderr,
        "CNI plugin finished"
    );
    if !status.success() {
        return Err(plugin_failure(plugin, command, status, &stdout, stderr));
    }
    if stdout_overflowed {
        return Err(CniError::InvalidResult {
            plugin: plugin.plugin_type.clone(),
            command: command.as_str(),
            reason: format!("output larger than {MAX_STDOUT_BYTES} bytes"),
        });
    }
    Ok(stdout)
}

async fn spawn(plugin: &PluginConfig, env: &[(&'static str, OsString)]) -> Result<Child, CniError> {
    let mut command = Command::new(&plugin.binary);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Ok(child) => return Ok(child),
            // The binary is open for writing: an upgrade, or another thread's fork that has not
            // exec'd yet. libcni retries too.
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && attempt < SPAWN_ATTEMPTS =>
            {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(source) => {
                return Err(CniError::Io {
                    op: "execute plugin",
                    path: plugin.binary.clone(),
                    source,
                });
            }
        }
    }
}

async fn kill_and_reap(child: &mut Child, plugin: &PluginConfig) {
    if let Err(e) = child.start_kill() {
        tracing::warn!(plugin = %plugin.plugin_type, error = %e, "kill of timed-out CNI plugin");
    }
    if tokio::time::timeout(REAP_GRACE, child.wait())
        .await
        .is_err()
    {
        tracing::warn!(plugin = %plugin.plugin_type, "timed-out CNI plugin not reaped yet");
    }
}

/// Reads `pipe` to its end, keeping at most `limit` bytes; the flag says whether more came. The
/// rest is drained so the plugin never blocks on a full pipe.
async fn read_bounded(
    pipe: Option<impl AsyncRead + Unpin>,
    limit: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return Ok((kept, false));
    };
    let mut overflowed = false;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = pipe.read(&mut buffer).await?;
        if n == 0 {
            return Ok((kept, overflowed));
        }
        let room = limit - kept.len();
        kept.extend_from_slice(&buffer[..n.min(room)]);
        overflowed |= n > room;
    }
}

/// The error of a plugin that exited non-zero: its CNI error object if it printed one, else its
/// stderr, with how it exited.
fn plugin_failure(
    plugin: &PluginConfig,
    command: CniCommand,
    status: ExitStatus,
    stdout: &[u8],
    stderr: &str,
) -> CniError {
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    };
    let (code, message) = match parse_error_output(stdout) {
        Some((code, message)) if !message.is_empty() => (code, message),
        Some((code, _)) => (code, with_stderr(exit, stderr)),
        None => (None, with_stderr(exit, stderr)),
    };
    CniError::PluginFailed {
        plugin: plugin.plugin_type.clone(),
        command: command.as_str(),
        code,
        message,
    }
}

fn with_stderr(exit: String, stderr: &str) -> String {
    if stderr.is_empty() {
        exit
    } else {
        format!("{exit}: {stderr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_bounded_keeps_the_limit_and_drains_the_rest() {
        let data = vec![7u8; 40_000];
        let (kept, overflowed) = read_bounded(Some(&data[..]), 1000).await.unwrap();
        assert_eq!((kept.len(), overflowed), (1000, true));
        let (kept, overflowed) = read_bounded(Some(&data[..]), 40_000).await.unwrap();
        assert_eq!((kept.len(), overflowed), (40_000, false));
    }
}
