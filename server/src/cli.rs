//! The command line. Every flag overrides the matching key of the configuration files; the flag
//! names are public interface (kubeadm guides, unit files and scripts use them).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use crius_runtime::cgroup::CgroupDriver;

use crate::config::{Config, LogFormat, LogLevel};

/// The default configuration file; its drop-in directory is `crius.d` beside it.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/crius/crius.toml";

#[derive(Debug, Parser)]
#[command(name = "crius", version, about = "A Kubernetes CRI runtime")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Configuration file [default: /etc/crius/crius.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Drop-in directory, `*.toml` merged in lexical order [default: crius.d beside the file]
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// The CRI socket
    #[arg(long, global = true, value_name = "SOCKET_PATH")]
    pub listen: Option<PathBuf>,
    /// Persistent state: images, layers, pod and container records
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Runtime state (a tmpfs): pinned namespaces, bundles, monitor sockets
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// cgroupfs or systemd
    #[arg(long, global = true, value_name = "DRIVER")]
    pub cgroup_driver: Option<CgroupDriver>,
    /// Where CNI network configurations are read from
    #[arg(long, global = true, value_name = "DIR")]
    pub cni_config_dir: Option<PathBuf>,
    /// Where CNI plugin executables are searched, in order (repeatable; replaces the list)
    #[arg(long, global = true, value_name = "DIR")]
    pub cni_plugin_dir: Vec<PathBuf>,
    /// Registry configuration in the containers-registries.conf(5) v2 format
    #[arg(long, global = true, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// Address the streaming server (exec, attach, port-forward) listens on
    #[arg(long, global = true, value_name = "IP")]
    pub stream_address: Option<IpAddr>,
    /// Port of the streaming server; 0 picks a free one
    #[arg(long, global = true, value_name = "PORT")]
    pub stream_port: Option<u16>,
    /// How long a streaming connection may pass nothing before it is closed (e.g. 4h, 30s)
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
    pub stream_idle_timeout: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the effective configuration (files, drop-ins and flags merged) as TOML
    Config,
}

impl Cli {
    /// Applies the flags that were given on top of the configuration from the files.
    pub fn apply_overrides(&self, config: &mut Config) {
        fn set<T: Clone>(target: &mut T, flag: &Option<T>) {
            if let Some(value) = flag {
                *target = value.clone();
            }
        }
        set(&mut config.listen, &self.listen);
        set(&mut config.root, &self.root);
        set(&mut config.state_dir, &self.state_dir);
        set(&mut config.log.level, &self.log_level);
        set(&mut config.log.format, &self.log_format);
        set(&mut config.network.cni_config_dir, &self.cni_config_dir);
        set(&mut config.image.registries_conf, &self.registries_conf);
        set(&mut config.stream.address, &self.stream_address);
        set(&mut config.stream.port, &self.stream_port);
        set(&mut config.stream.idle_timeout, &self.stream_idle_timeout);
        set(&mut config.runtime.cgroup_driver, &self.cgroup_driver);
        if !self.cni_plugin_dir.is_empty() {
            config.network.cni_plugin_dirs = self.cni_plugin_dir.clone();
        }
    }
}
