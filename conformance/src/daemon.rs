//! A `crius` daemon started from the built binary in its own temporary directories.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::client::CriClient;

/// How long a daemon may take to start serving or to exit after a signal before the harness
/// calls it hung. A bound on waiting, not a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// The `crius` binary under test: `$CRIUS_BIN`, or the one cargo built beside this test binary
/// (`target/<profile>/crius`, one level above `deps/`).
pub fn crius_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CRIUS_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locate the test binary")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary is not under target/<profile>/deps")?;
    let binary = profile_dir.join("crius");
    if !binary.exists() {
        bail!(
            "{} is missing: build it first (cargo build --workspace --bins)",
            binary.display()
        );
    }
    Ok(binary)
}

/// The paths one daemon instance owns, all under one temp dir unless a test moves them, and
/// the level it logs at.
#[derive(Debug, Clone)]
pub struct CriusPaths {
    pub socket: PathBuf,
    pub root: PathBuf,
    pub state_dir: PathBuf,
    pub cni_config_dir: PathBuf,
    pub config_file: PathBuf,
    pub log: PathBuf,
    /// `--log-level`: `debug` for tests (their assertions and failure reports read the log);
    /// benchmarks measure at the daemon's default, `info`.
    pub log_level: &'static str,
}

impl CriusPaths {
    pub fn under(dir: &Path) -> Self {
        CriusPaths {
            socket: dir.join("run/crius.sock"),
            root: dir.join("lib"),
            state_dir: dir.join("run/state"),
            cni_config_dir: dir.join("net.d"),
            config_file: dir.join("crius.toml"),
            log: dir.join("crius.log"),
            log_level: "debug",
        }
    }

    /// The command line that points a daemon at these paths, at its log level.
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--config={}", self.config_file.display()),
            format!("--listen={}", self.socket.display()),
            format!("--root={}", self.root.display()),
            format!("--state-dir={}", self.state_dir.display()),
            format!("--cni-config-dir={}", self.cni_config_dir.display()),
            format!("--log-level={}", self.log_level),
        ]
    }
}

/// A running daemon. Dropping it kills it (SIGKILL) and reaps it; its directories go with the
/// temp dir unless the test keeps it. Waiting is asynchronous so that the test's own clients
/// (tasks on the same runtime) keep answering the daemon meanwhile.
#[derive(Debug)]
pub struct Crius {
    child: Option<Child>,
    pub paths: CriusPaths,
    _dir: Option<tempfile::TempDir>,
}

impl Crius {
    /// Starts a daemon in a fresh temp dir with an empty config file and no CNI config.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_configured("", &[]).await
    }

    /// Starts a daemon in a fresh temp dir whose config file holds `config_toml`, with extra
    /// command-line arguments.
    pub async fn start_configured(config_toml: &str, extra_args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let paths = CriusPaths::under(dir.path());
        std::fs::write(&paths.config_file, config_toml).context("write config file")?;
        let mut crius = Self::spawn(paths, extra_args)?;
        crius._dir = Some(dir);
        crius.wait_until_serving().await?;
        Ok(crius)
    }

    /// Starts a daemon on `paths` (which the caller keeps) and waits until it serves.
    pub async fn start_at(paths: CriusPaths, extra_args: &[&str]) -> anyhow::Result<Self> {
        let mut crius = Self::spawn(paths, extra_args)?;
        crius.wait_until_serving().await?;
        Ok(crius)
    }

    /// Spawns the daemon without waiting for it.
    pub fn spawn(paths: CriusPaths, extra_args: &[&str]) -> anyhow::Result<Self> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&paths.log)
            .with_context(|| format!("open {}", paths.log.display()))?;
        let child = Command::new(crius_binary()?)
            .args(paths.args())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn crius")?;
        Ok(Crius {
            child: Some(child),
            paths,
            _dir: None,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the daemon wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.paths.log).unwrap_or_default()
    }

    pub async fn client(&self) -> anyhow::Result<CriClient> {
        CriClient::connect(&self.paths.socket).await
    }

    /// Waits until the daemon answers a Version call; fails if it exits first. The socket is
    /// bound, and accepts connections, before the daemon has set its mode and opened its stores.
    pub async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.answers_version().await {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                bail!("crius exited with {status} before serving:\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!("crius did not serve within {PATIENCE:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether a Version call on a new connection is answered, within a short wait.
    async fn answers_version(&self) -> bool {
        let version = async {
            let mut client = self.client().await.ok()?;
            let request = k8s_cri::v1::VersionRequest::default();
            client.runtime.version(request).await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), version).await,
            Ok(Some(_))
        )
    }

    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("crius was already reaped"),
        }
    }

    /// Waits for the daemon to exit on its own (bounded) and returns its status.
    pub async fn wait_for_exit(&mut self) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("crius did not exit within {PATIENCE:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `signal` and waits for the exit.
    pub async fn signal_and_wait(&mut self, signal: Signal) -> anyhow::Result<ExitStatus> {
        self.signal(signal)?;
        self.wait_for_exit().await
    }

    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self.pid().context("crius was already reaped")?;
        let pid = Pid::from_raw(i32::try_from(pid).context("pid out of range")?);
        kill(pid, signal).with_context(|| format!("send {signal} to crius"))
    }
}

/// How much of the daemon's log a failing test prints.
const LOG_TAIL_LINES: usize = 200;

impl Drop for Crius {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: what the daemon said last goes into the test's output, since
            // its temporary directory (and so the log) goes away with it.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "--- the last {} lines of the crius log ---\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}
