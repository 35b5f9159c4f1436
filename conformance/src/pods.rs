//! The setting of the pod tests: a crius whose CNI config is a bridge network of its own (a
//! unique bridge name, subnet and IPAM lease dir), and helpers to look inside a pod's namespaces.

#![allow(clippy::unwrap_used)] // fixture helpers panic as the tests' failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_cri::v1 as cri;

use crate::client::CriClient;
use crate::cni::{DEBIAN_PLUGIN_DIR, bridge_conflist_with_ipam_dir, write_config};
use crate::daemon::{Crius, CriusPaths};

#[derive(Debug)]
pub struct PodFixture {
    pub crius: Crius,
    pub client: CriClient,
    pub bridge: String,
    /// `10.<a>.<b>.0/24`, unique per fixture.
    pub subnet_prefix: String,
    pub ipam_dir: PathBuf,
    dir: tempfile::TempDir,
}

fn random_u16() -> u16 {
    use std::io::Read;
    let mut bytes = [0u8; 2];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    u16::from_le_bytes(bytes)
}

impl PodFixture {
    pub async fn new() -> Self {
        Self::with(None, "").await
    }

    /// A fixture whose network ends with one more plugin, if given: `(type, shell script)`,
    /// installed in a plugin dir of the fixture's own (searched after Debian's); `config_toml` is
    /// appended to crius's config file.
    pub async fn with(extra: Option<(&str, &str)>, config_toml: &str) -> Self {
        Self::build(extra, config_toml, &[], &[]).await
    }

    /// A fixture whose daemon gets `daemon_args` on its command line; `config_toml` is appended
    /// to crius's config file.
    pub async fn with_daemon_args(config_toml: &str, daemon_args: &[&str]) -> Self {
        Self::build(None, config_toml, &[], daemon_args).await
    }

    /// A fixture whose network also has Debian's bandwidth plugin (capability `bandwidth`).
    pub async fn with_bandwidth() -> Self {
        let bandwidth =
            serde_json::json!({"type": "bandwidth", "capabilities": {"bandwidth": true}});
        Self::build(None, "", &[bandwidth], &[]).await
    }

    async fn build(
        extra: Option<(&str, &str)>,
        config_toml: &str,
        plugins: &[serde_json::Value],
        daemon_args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let n = random_u16();
        let bridge = format!("crt{n:04x}");
        let subnet_prefix = format!("10.{}.{}", 128 + (n >> 8) % 120, n & 0xff);
        let ipam_dir = dir.path().join("ipam");
        let paths = CriusPaths::under(dir.path());
        let mut conflist: serde_json::Value = serde_json::from_str(&bridge_conflist_with_ipam_dir(
            "crius-test",
            &bridge,
            &format!("{subnet_prefix}.0/24"),
            Some(&ipam_dir),
        ))
        .unwrap();
        conflist["plugins"]
            .as_array_mut()
            .unwrap()
            .extend(plugins.iter().cloned());
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugin_dir).unwrap();
        if let Some((plugin_type, script)) = extra {
            use std::os::unix::fs::PermissionsExt;
            let path = plugin_dir.join(plugin_type);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            conflist["plugins"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({ "type": plugin_type }));
        }
        write_config(
            &paths.cni_config_dir,
            "10-test.conflist",
            &conflist.to_string(),
        )
        .unwrap();
        std::fs::write(
            &paths.config_file,
            format!(
                "[network]\ncni_plugin_dirs = [\"{DEBIAN_PLUGIN_DIR}\", \"{}\"]\n{config_toml}",
                plugin_dir.display()
            ),
        )
        .unwrap();
        let crius = Crius::start_at(paths, daemon_args).await.unwrap();
        let client = crius.client().await.unwrap();
        PodFixture {
            crius,
            client,
            bridge,
            subnet_prefix,
            ipam_dir,
            dir,
        }
    }

    /// The fixture's own directory (plugin scripts keep their markers there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn paths(&self) -> &CriusPaths {
        &self.crius.paths
    }

    /// The directory a pod's files and pinned namespaces live in.
    pub fn pod_dir(&self, id: &str) -> PathBuf {
        self.paths().state_dir.join("pods").join(id)
    }

    pub async fn run(&mut self, config: cri::PodSandboxConfig) -> Result<String, tonic::Status> {
        let response = self
            .client
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await?;
        Ok(response.into_inner().pod_sandbox_id)
    }

    pub async fn status(&mut self, id: &str) -> Result<cri::PodSandboxStatus, tonic::Status> {
        let response = self
            .client
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })
            .await?;
        Ok(response.into_inner().status.unwrap())
    }

    pub async fn stop(&mut self, id: &str) {
        self.client
            .runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .unwrap();
    }

    pub async fn remove(&mut self, id: &str) {
        self.client
            .runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })
            .await
            .unwrap();
    }

    pub async fn list(&mut self, filter: Option<cri::PodSandboxFilter>) -> Vec<cri::PodSandbox> {
        self.client
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter })
            .await
            .unwrap()
            .into_inner()
            .items
    }

    /// IP leases host-local holds for this fixture's network.
    pub fn leases(&self) -> Vec<String> {
        std::fs::read_dir(self.ipam_dir.join("crius-test"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("10."))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mount points under this fixture's directory.
    pub fn mounts(&self) -> Vec<String> {
        let root = self.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for PodFixture {
    fn drop(&mut self) {
        Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output()
            .ok();
    }
}

/// A pod config as kubelet sends it, with a unique uid.
pub fn pod_config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("uid-{:04x}{:04x}", random_u16(), random_u16()),
            namespace: "default".to_string(),
            attempt: 0,
        }),
        ..Default::default()
    }
}

/// Linux pod settings that only choose namespace modes.
pub fn linux_with_namespaces(options: cri::NamespaceOption) -> cri::LinuxPodSandboxConfig {
    cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(options),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs `command` inside the namespaces given as (`--net`, path) pairs, with nsenter.
pub fn in_namespaces(namespaces: &[(&str, &Path)], command: &[&str]) -> String {
    let mut nsenter = Command::new("nsenter");
    for (flag, path) in namespaces {
        nsenter.arg(format!("{flag}={}", path.display()));
    }
    let output = nsenter.args(command).output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
