//! containerd from Debian (1.6) as the baseline of the benchmarks: started with its own root,
//! state and socket in a temp dir, its CRI plugin pulling from the test registry over plain HTTP.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::CriClient;

pub const CONTAINERD_BINARY: &str = "/usr/bin/containerd";

const PATIENCE: Duration = Duration::from_secs(30);

/// A running containerd; killed and its directories removed when dropped.
#[derive(Debug)]
pub struct Containerd {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd with `registry_host` (`127.0.0.1:<port>`) reachable over HTTP, and the
    /// pod network from `cni_config_dir` (Debian's plugins), if given.
    pub async fn start(
        registry_host: &str,
        cni_config_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\n\
                 root = \"{root}\"\n\
                 state = \"{state}\"\n\
                 [grpc]\n  address = \"{socket}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n\
                 \x20 restrict_oom_score_adj = true\n\
                 \x20 sandbox_image = \"{registry_host}/pause:3.10\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"{registry_host}\"]\n\
                 \x20 endpoint = [\"http://{registry_host}\"]\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
                 \x20 bin_dir = \"/usr/lib/cni\"\n\
                 \x20 conf_dir = \"{cni}\"\n",
                root = dir.path().join("root").display(),
                state = dir.path().join("state").display(),
                socket = socket.display(),
                cni = cni_config_dir
                    .unwrap_or(&dir.path().join("net.d"))
                    .display(),
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("containerd.log"))?;
        let child = Command::new(CONTAINERD_BINARY)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {CONTAINERD_BINARY} (install containerd)"))?;
        let mut containerd = Containerd { child, socket, dir };
        containerd.wait_until_serving().await?;
        Ok(containerd)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn client(&self) -> anyhow::Result<CriClient> {
        CriClient::connect(&self.socket).await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Waits until the CRI plugin answers `Version`.
    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(mut client) = self.client().await
                && client
                    .runtime
                    .version(k8s_cri::v1::VersionRequest::default())
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("containerd exited with {status}:\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not serve CRI within {PATIENCE:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        // Snapshots may be left mounted by a killed containerd; unmount before the temp dir goes.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let root = self.dir.path().display().to_string();
            for mount_point in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
                if mount_point.starts_with(&root) {
                    Command::new("umount")
                        .arg("-l")
                        .arg(mount_point)
                        .status()
                        .ok();
                }
            }
        }
    }
}
