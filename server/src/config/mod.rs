//! The daemon's configuration: TOML `/etc/crius/crius.toml`, drop-ins from `crius.d/*.toml`
//! merged over it in lexical order, then command-line flags (see [`load`]).
//!
//! Every table is `#[serde(default, deny_unknown_fields)]`: a key left out takes its default, a
//! key crius does not know is an error naming the file and the key. [`Config::validate`] is pure;
//! [`Config::check_host`] is the part that looks at the machine.

mod load;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use crius_runtime::cgroup::CgroupDriver;
use serde::{Deserialize, Serialize};

pub use load::load;

/// Longest unix socket path the kernel takes (`sun_path` is 108 bytes with the final NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The CRI socket.
    pub listen: PathBuf,
    /// Persistent state (images, layers, records).
    pub root: PathBuf,
    /// Runtime state, expected on a tmpfs: its absence at start means the node rebooted.
    pub state_dir: PathBuf,
    /// How long in-flight calls may run on after SIGTERM/SIGINT before the daemon exits anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    pub log: LogConfig,
    pub runtime: RuntimeConfig,
    pub image: ImageConfig,
    pub network: NetworkConfig,
    pub stream: StreamConfig,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Reported to kubelet by `RuntimeConfig`; fixed for the daemon's lifetime.
    pub cgroup_driver: CgroupDriver,
    /// The handler used when a pod names none.
    pub default_runtime: String,
    /// OCI runtimes by handler name (a RuntimeClass's `handler`): the binary to run.
    pub handlers: BTreeMap<String, PathBuf>,
    /// The `crius-monitor` binary; empty means the one beside the `crius` binary.
    pub monitor_binary: PathBuf,
    /// Size of each pod's private /dev/shm, in bytes.
    pub shm_size: u64,
    /// A pod created after every caller of its RunPodSandbox went away (a deadline) is removed
    /// when no retry claims it within this time.
    #[serde(with = "humantime_serde")]
    pub orphan_pod_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// The pause image kubeadm pre-pulls (crius itself runs pods without one) and that image
    /// garbage collection never removes.
    pub sandbox_image: String,
    /// Registry configuration, containers-registries.conf(5) v2.
    pub registries_conf: PathBuf,
    /// Docker-style auth file (`{"auths": {host: {"auth": …}}}`) for registries that need
    /// credentials the pull request does not carry; a missing file has none.
    pub auth_file: PathBuf,
    /// A pull fails when no byte arrives for this long.
    #[serde(with = "humantime_serde")]
    pub pull_progress_timeout: Duration,
    /// Largest uncompressed layer accepted: a decompression bomb stops here.
    pub max_layer_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    pub cni_config_dir: PathBuf,
    /// Searched in order for plugin executables.
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// The network pods join, by name; empty means the first valid file in the config dir.
    pub network_name: String,
    /// How long one CNI plugin call may take before it is killed.
    #[serde(with = "humantime_serde")]
    pub plugin_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    pub address: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// A session's connection that passes nothing for this long is closed, as kubelet's
    /// streaming server does (default 4h).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "/run/crius/crius.sock".into(),
            root: "/var/lib/crius".into(),
            state_dir: "/run/crius".into(),
            shutdown_timeout: Duration::from_secs(10),
            log: LogConfig::default(),
            runtime: RuntimeConfig::default(),
            image: ImageConfig::default(),
            network: NetworkConfig::default(),
            stream: StreamConfig::default(),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cgroup_driver: CgroupDriver::default(),
            default_runtime: "runc".into(),
            handlers: BTreeMap::from([("runc".to_string(), PathBuf::from("/usr/sbin/runc"))]),
            monitor_binary: PathBuf::new(),
            shm_size: 64 * 1024 * 1024,
            orphan_pod_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            sandbox_image: "registry.k8s.io/pause:3.10".into(),
            registries_conf: "/etc/containers/registries.conf".into(),
            auth_file: "/etc/crius/auth.json".into(),
            pull_progress_timeout: Duration::from_secs(5 * 60),
            max_layer_bytes: 64 * 1024 * 1024 * 1024,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            cni_config_dir: "/etc/cni/net.d".into(),
            cni_plugin_dirs: vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()],
            network_name: String::new(),
            plugin_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            idle_timeout: Duration::from_secs(4 * 60 * 60),
        }
    }
}

impl Config {
    /// Checks the values on their own, without looking at the machine.
    pub fn validate(&self) -> anyhow::Result<()> {
        require_absolute("listen", &self.listen)?;
        require_absolute("root", &self.root)?;
        require_absolute("state_dir", &self.state_dir)?;
        require_absolute("image.registries_conf", &self.image.registries_conf)?;
        require_absolute("image.auth_file", &self.image.auth_file)?;
        require_absolute("network.cni_config_dir", &self.network.cni_config_dir)?;
        let socket_len = self.listen.as_os_str().len();
        if socket_len > MAX_SOCKET_PATH_BYTES {
            bail!(
                "listen: socket path is {socket_len} bytes, longer than the {MAX_SOCKET_PATH_BYTES} \
                 a unix socket address holds"
            );
        }
        if self.listen.file_name().is_none() {
            bail!("listen: {} names no socket file", self.listen.display());
        }
        if self.network.cni_plugin_dirs.is_empty() {
            bail!("network.cni_plugin_dirs: at least one directory is needed");
        }
        for dir in &self.network.cni_plugin_dirs {
            require_absolute("network.cni_plugin_dirs", dir)?;
            // CNI_PATH joins them with ':'.
            if dir.to_string_lossy().contains(':') {
                bail!("network.cni_plugin_dirs: {} contains ':'", dir.display());
            }
        }
        if self.image.sandbox_image.trim().is_empty() {
            bail!("image.sandbox_image: must name an image");
        }
        if self.image.pull_progress_timeout.is_zero() {
            bail!("image.pull_progress_timeout: must be longer than zero");
        }
        if !self
            .runtime
            .handlers
            .contains_key(&self.runtime.default_runtime)
        {
            bail!(
                "runtime.default_runtime: {:?} is not one of runtime.handlers",
                self.runtime.default_runtime
            );
        }
        if self.network.plugin_timeout.is_zero() {
            bail!("network.plugin_timeout: must be longer than zero");
        }
        if self.shutdown_timeout.is_zero() {
            bail!("shutdown_timeout: must be longer than zero");
        }
        if self.stream.idle_timeout.is_zero() {
            bail!("stream.idle_timeout: must be longer than zero");
        }
        Ok(())
    }

    /// Checks what the configuration asks of this machine.
    pub fn check_host(&self) -> anyhow::Result<()> {
        self.runtime
            .cgroup_driver
            .check_host(Path::new("/run"))
            .context("runtime.cgroup_driver")
    }

    /// The `crius-monitor` binary to run.
    pub fn monitor_binary(&self) -> anyhow::Result<PathBuf> {
        if !self.runtime.monitor_binary.as_os_str().is_empty() {
            return Ok(self.runtime.monitor_binary.clone());
        }
        let crius = std::env::current_exe().context("locate the crius binary")?;
        Ok(crius.with_file_name("crius-monitor"))
    }

    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string(self).context("serialize configuration")
    }

    /// The configuration as a JSON string with camelCase keys, for `Status` verbose info. kubeadm
    /// reads the pause image to pre-pull from a top-level `sandboxImage`, where containerd puts
    /// it, so that key is added beside the `image` table.
    pub fn to_info_json(&self) -> anyhow::Result<String> {
        let mut value =
            camel_case_keys(serde_json::to_value(self).context("serialize configuration")?);
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "sandboxImage".into(),
                self.image.sandbox_image.clone().into(),
            );
        }
        Ok(value.to_string())
    }
}

fn require_absolute(key: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_absolute() {
        Ok(())
    } else {
        bail!("{key}: {} is not an absolute path", path.display())
    }
}

fn camel_case_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (snake_to_camel(&key), camel_case_keys(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper_next = false;
    for c in key.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn the_shipped_config_file_spells_out_the_defaults() {
        let shipped: Config = toml::from_str(include_str!("../../../deploy/crius.toml")).unwrap();
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn relative_paths_are_refused_with_the_key_named() {
        let config = Config {
            state_dir: "run/crius".into(),
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert_eq!(err, "state_dir: run/crius is not an absolute path");
    }

    #[test]
    fn socket_path_longer_than_sun_path_is_refused() {
        let config = Config {
            listen: PathBuf::from(format!("/{}", "s".repeat(120))),
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("longer than the 107"), "{err}");
    }

    #[test]
    fn info_json_uses_camel_case_keys() {
        let json: serde_json::Value =
            serde_json::from_str(&Config::default().to_info_json().unwrap()).unwrap();
        assert_eq!(json["sandboxImage"], "registry.k8s.io/pause:3.10");
        assert_eq!(json["image"]["sandboxImage"], "registry.k8s.io/pause:3.10");
        assert_eq!(json["network"]["cniPluginDirs"][0], "/usr/lib/cni");
        assert_eq!(json["stateDir"], "/run/crius");
        assert_eq!(json["runtime"]["cgroupDriver"], "cgroupfs");
    }

    #[test]
    fn toml_output_reads_back_to_the_same_config() {
        let mut config = Config::default();
        config.stream.port = 10010;
        config.log.format = LogFormat::Json;
        let text = config.to_toml().unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
}
