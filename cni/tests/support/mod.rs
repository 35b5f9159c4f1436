//! Helpers shared by the integration tests: temp networks and fake plugins.

#![allow(dead_code)] // each test file uses its own subset
#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::hash::{BuildHasher, RandomState};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crius_cni::NetworkConfigList;
use crius_cni::exec::Attachment;

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A random number, different in every call and every process.
pub fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A sandbox id: 64 hex digits.
pub fn random_container_id() -> String {
    (0..4).map(|_| format!("{:016x}", random_u64())).collect()
}

pub fn attachment(netns: &Path) -> Attachment {
    Attachment {
        container_id: random_container_id(),
        netns: netns.to_path_buf(),
        ifname: "eth0".into(),
        pod_name: "web-0".into(),
        pod_namespace: "default".into(),
        pod_uid: "6a1c0f2e-1b7e-4bb4-9a4e-0d3c2f1b0a99".into(),
        port_mappings: Vec::new(),
        bandwidth: None,
        dns: None,
    }
}

/// Writes an executable file; a plugin stand-in when `contents` is a script.
pub fn write_executable(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes `conflist` into a fresh dir under `root` and loads it the way the daemon does.
pub fn load_conflist(root: &Path, conflist: &str, plugin_dirs: &[PathBuf]) -> NetworkConfigList {
    let config_dir = root.join("net.d");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("10-test.conflist"), conflist).unwrap();
    crius_cni::load_default_network(&config_dir, plugin_dirs).unwrap()
}

/// The lines of `path`, or none when it does not exist.
pub fn lines(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(String::from).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}
