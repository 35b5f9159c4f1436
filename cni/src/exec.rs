//! Attaching a pod to the network and detaching it: running a list's plugins (ADD in order, DEL
//! in reverse) as the CNI spec describes, for spec versions 0.3.0 to 1.0.0.

mod args;
mod invoke;
mod result;
mod stdin;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::{CniError, NetworkConfigList, PluginConfig};
use args::{CniCommand, plugin_environment, validate_attachment};
use invoke::invoke_plugin;

/// A port of the pod published on the host (the `portMappings` capability).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Empty: every host address.
    pub host_ip: String,
}

/// Traffic shaping of the pod (the `bandwidth` capability): rates in bits/s, bursts in bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub ingress_rate: u64,
    pub ingress_burst: u64,
    pub egress_rate: u64,
    pub egress_burst: u64,
}

/// The pod's DNS settings (the `dns` capability).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// What a pod asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The pod sandbox id.
    pub container_id: String,
    /// The pinned network namespace file.
    pub netns: PathBuf,
    /// The interface to create in the pod, normally `eth0`.
    pub ifname: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    pub port_mappings: Vec<PortMapping>,
    pub bandwidth: Option<Bandwidth>,
    pub dns: Option<Dns>,
}

/// The outcome of a successful ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachResult {
    /// The pod's addresses.
    pub ips: Vec<PodIp>,
    /// The last plugin's result in the list's `cniVersion`: cache it and pass it to [`del`].
    ///
    /// [`del`]: NetworkConfigList::del
    pub result: Value,
}

/// One address of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIp {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
}

impl NetworkConfigList {
    /// ADD through every plugin in order, each getting the previous result as `prevResult`. On
    /// a failure, DEL runs for the whole list (best effort, errors logged) before the error is
    /// returned, so nothing stays half-attached. `timeout` bounds each plugin call.
    pub async fn add(
        &self,
        attachment: &Attachment,
        plugin_dirs: &[PathBuf],
        timeout: Duration,
    ) -> Result<AttachResult, CniError> {
        validate_attachment(attachment)?;
        self.require_plugins()?;
        let mut prev_result = None;
        match self
            .add_all(attachment, plugin_dirs, timeout, &mut prev_result)
            .await
        {
            Ok(attached) => Ok(attached),
            Err(err) => {
                tracing::warn!(
                    network = %self.name,
                    container_id = %attachment.container_id,
                    error = %err,
                    "CNI ADD failed; deleting the whole network list"
                );
                if let Err(del_err) = self
                    .del_all(attachment, prev_result.as_ref(), plugin_dirs, timeout)
                    .await
                {
                    tracing::warn!(
                        network = %self.name,
                        container_id = %attachment.container_id,
                        error = %del_err,
                        "CNI DEL after a failed ADD failed"
                    );
                }
                Err(err)
            }
        }
    }

    /// DEL through the plugins in reverse order; every plugin is called even if one fails, and
    /// the first error is returned. The netns path is passed even when it no longer exists
    /// (plugins tolerate that). `prev_result` is the cached ADD result, if any; it is passed to
    /// plugins of lists at 0.4.0 or later.
    pub async fn del(
        &self,
        attachment: &Attachment,
        prev_result: Option<&Value>,
        plugin_dirs: &[PathBuf],
        timeout: Duration,
    ) -> Result<(), CniError> {
        validate_attachment(attachment)?;
        self.require_plugins()?;
        self.del_all(attachment, prev_result, plugin_dirs, timeout)
            .await
    }

    /// Runs ADD plugin by plugin; `prev_result` holds the last result obtained, for the DEL
    /// that undoes a failure.
    async fn add_all(
        &self,
        attachment: &Attachment,
        plugin_dirs: &[PathBuf],
        timeout: Duration,
        prev_result: &mut Option<Value>,
    ) -> Result<AttachResult, CniError> {
        let env = plugin_environment(CniCommand::Add, attachment, plugin_dirs);
        let mut last_plugin = None;
        for plugin in &self.plugins {
            let config = stdin::plugin_stdin(self, plugin, attachment, prev_result.as_ref());
            let stdout = invoke_plugin(
                plugin,
                CniCommand::Add,
                &env,
                &config_bytes(&config),
                timeout,
            )
            .await?;
            let result = result::normalize_result(&stdout, &self.cni_version)
                .map_err(|reason| invalid_result(plugin, reason))?;
            *prev_result = Some(result);
            last_plugin = Some(plugin);
        }
        let (Some(plugin), Some(result)) = (last_plugin, prev_result.as_ref()) else {
            return Err(self.no_plugins());
        };
        let ips = result::pod_ips(result).map_err(|reason| invalid_result(plugin, reason))?;
        Ok(AttachResult {
            ips,
            result: result.clone(),
        })
    }

    async fn del_all(
        &self,
        attachment: &Attachment,
        prev_result: Option<&Value>,
        plugin_dirs: &[PathBuf],
        timeout: Duration,
    ) -> Result<(), CniError> {
        // libcni passes a cached result on DEL only from spec 0.4.0 on.
        let prev_result = prev_result.filter(|_| !self.cni_version.starts_with("0.3."));
        let env = plugin_environment(CniCommand::Del, attachment, plugin_dirs);
        let mut first_error = None;
        for plugin in self.plugins.iter().rev() {
            let config = stdin::plugin_stdin(self, plugin, attachment, prev_result);
            let outcome = invoke_plugin(
                plugin,
                CniCommand::Del,
                &env,
                &config_bytes(&config),
                timeout,
            )
            .await;
            if let Err(err) = outcome {
                tracing::warn!(
                    network = %self.name,
                    container_id = %attachment.container_id,
                    error = %err,
                    "CNI DEL failed; continuing with the other plugins"
                );
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A list built by hand may be empty; a loaded one never is.
    fn require_plugins(&self) -> Result<(), CniError> {
        if self.plugins.is_empty() {
            return Err(self.no_plugins());
        }
        Ok(())
    }

    fn no_plugins(&self) -> CniError {
        CniError::NoValidConfig {
            dir: self.source.parent().map(PathBuf::from).unwrap_or_default(),
            rejected: vec![(self.source.clone(), "\"plugins\" is empty".into())],
        }
    }
}

fn config_bytes(config: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail: its keys are strings.
    serde_json::to_vec(config).unwrap_or_default()
}

fn invalid_result(plugin: &PluginConfig, reason: String) -> CniError {
    CniError::InvalidResult {
        plugin: plugin.plugin_type.clone(),
        command: CniCommand::Add.as_str(),
        reason,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid attachment, for the tests of the submodules.
    pub(crate) fn attachment() -> Attachment {
        Attachment {
            container_id: "a".repeat(64),
            netns: "/run/crius/netns/pod".into(),
            ifname: "eth0".into(),
            pod_name: "web-0".into(),
            pod_namespace: "default".into(),
            pod_uid: "6a1c0f2e-1b7e-4bb4-9a4e-0d3c2f1b0a99".into(),
            port_mappings: Vec::new(),
            bandwidth: None,
            dns: None,
        }
    }
}
