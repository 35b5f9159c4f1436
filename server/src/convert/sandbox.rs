//! Pod sandboxes: a `RunPodSandboxRequest` checked and turned into a [`PodSpec`] before anything
//! is created, and pod records turned into CRI statuses.

use std::collections::BTreeMap;

use crius_runtime::sandbox::files::{DnsConfig, validate_hostname};
use crius_runtime::sandbox::record::{
    HostNamespaces, PidMode, SandboxMetadata, SandboxRecord, SandboxState,
};
use crius_runtime::sysctl::{self, OwnNamespaces};
use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::config::Config;

/// A pod sandbox request that passed every check.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub metadata: SandboxMetadata,
    pub hostname: String,
    pub log_directory: String,
    pub dns: Option<DnsConfig>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub cgroup_parent: String,
    pub sysctls: Vec<(String, String)>,
    pub host: HostNamespaces,
    pub pid_mode: PidMode,
    pub runtime_handler: String,
    pub network: NetworkRequest,
}

/// What a pod asks of the network, kept in its record for CNI DEL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    pub port_mappings: Vec<PortMapping>,
    /// Traffic shaping from the pod's bandwidth annotations, in bits per second.
    #[serde(default)]
    pub ingress_bits_per_second: Option<u64>,
    #[serde(default)]
    pub egress_bits_per_second: Option<u64>,
    pub dns_servers: Vec<String>,
    pub dns_searches: Vec<String>,
    pub dns_options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: String,
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// A name kubelet gives (pod name, namespace, uid): non-empty, at most 253 bytes, printable,
/// without `/` or `_` (which joins them into the reserved name).
fn check_name(what: &str, value: &str) -> Result<(), Status> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'_' | b';' | b'=' | b'\\'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "metadata.{what} {value:?} must be 1 to 253 printable characters without '/', '_', ';', '=' or '\\'"
        )))
    }
}

pub fn pod_spec(config: &Config, request: &cri::RunPodSandboxRequest) -> Result<PodSpec, Status> {
    let pod = request
        .config
        .as_ref()
        .ok_or_else(|| invalid("config is required"))?;
    let metadata = pod
        .metadata
        .as_ref()
        .ok_or_else(|| invalid("config.metadata is required"))?;
    check_name("name", &metadata.name)?;
    check_name("namespace", &metadata.namespace)?;
    check_name("uid", &metadata.uid)?;
    let runtime_handler = if request.runtime_handler.is_empty() {
        config.runtime.default_runtime.clone()
    } else {
        request.runtime_handler.clone()
    };
    if !config.runtime.handlers.contains_key(&runtime_handler) {
        return Err(invalid(format!(
            "unknown runtime handler {runtime_handler:?} (configured: {})",
            config
                .runtime
                .handlers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !pod.log_directory.is_empty() && !pod.log_directory.starts_with('/') {
        return Err(invalid(format!(
            "log_directory {:?} is not absolute",
            pod.log_directory
        )));
    }
    let linux = pod.linux.clone().unwrap_or_default();
    let options = linux
        .security_context
        .as_ref()
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default();
    let host = HostNamespaces {
        network: options.network() == cri::NamespaceMode::Node,
        ipc: options.ipc() == cri::NamespaceMode::Node,
        pid: options.pid() == cri::NamespaceMode::Node,
    };
    let pid_mode = match options.pid() {
        cri::NamespaceMode::Pod => PidMode::Pod,
        cri::NamespaceMode::Container => PidMode::Container,
        cri::NamespaceMode::Node => PidMode::Host,
        cri::NamespaceMode::Target => {
            return Err(invalid(
                "pod-level PID namespace mode TARGET is only valid for containers",
            ));
        }
    };
    let hostname = if host.network {
        nix::unistd::gethostname()
            .map_err(|e| Status::internal(format!("read the node's hostname: {e}")))?
            .to_string_lossy()
            .into_owned()
    } else if pod.hostname.is_empty() {
        metadata.name.chars().take(63).collect()
    } else {
        pod.hostname.clone()
    };
    validate_hostname(&hostname).map_err(|e| invalid(e.to_string()))?;
    let own = OwnNamespaces {
        network: !host.network,
        ipc: !host.ipc,
    };
    let mut sysctls = Vec::with_capacity(linux.sysctls.len());
    for (name, value) in &linux.sysctls {
        let dotted = sysctl::validate(name, value, own).map_err(|e| invalid(e.to_string()))?;
        sysctls.push((dotted, value.clone()));
    }
    sysctls.sort();
    let cgroup_parent = if linux.cgroup_parent.is_empty() {
        String::new()
    } else {
        config
            .runtime
            .cgroup_driver
            .cgroupfs_path(&linux.cgroup_parent)
            .map_err(|e| invalid(e.to_string()))?
    };
    let dns = pod.dns_config.as_ref().map(|d| DnsConfig {
        servers: d.servers.clone(),
        searches: d.searches.clone(),
        options: d.options.clone(),
    });
    let mut port_mappings = Vec::new();
    for mapping in &pod.port_mappings {
        port_mappings.push(port_mapping(mapping)?);
    }
    let bandwidth = |annotation: &str| {
        pod.annotations
            .get(annotation)
            .map(|value| {
                bits_per_second(value).ok_or_else(|| {
                    invalid(format!(
                        "annotation {annotation}: {value:?} is not a bandwidth"
                    ))
                })
            })
            .transpose()
    };
    let ingress_bits_per_second = bandwidth(INGRESS_BANDWIDTH)?;
    let egress_bits_per_second = bandwidth(EGRESS_BANDWIDTH)?;
    Ok(PodSpec {
        metadata: SandboxMetadata {
            name: metadata.name.clone(),
            uid: metadata.uid.clone(),
            namespace: metadata.namespace.clone(),
            attempt: metadata.attempt,
        },
        hostname,
        log_directory: pod.log_directory.clone(),
        network: NetworkRequest {
            port_mappings,
            ingress_bits_per_second,
            egress_bits_per_second,
            dns_servers: dns.as_ref().map(|d| d.servers.clone()).unwrap_or_default(),
            dns_searches: dns.as_ref().map(|d| d.searches.clone()).unwrap_or_default(),
            dns_options: dns.as_ref().map(|d| d.options.clone()).unwrap_or_default(),
        },
        dns,
        labels: pod.labels.clone().into_iter().collect(),
        annotations: pod.annotations.clone().into_iter().collect(),
        cgroup_parent,
        sysctls,
        host,
        pid_mode,
        runtime_handler,
    })
}

/// The annotations kubelet carries a pod's traffic shaping in.
const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";
const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";

/// A Kubernetes quantity of bits per second (`10M`, `1Gi`, `500k`, `1000`), within the range
/// kubelet accepts: 1 kbit/s to 1 Pbit/s.
fn bits_per_second(quantity: &str) -> Option<u64> {
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (digits, suffix) = quantity.split_at(split);
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        _ => return None,
    };
    let value = digits.parse::<u64>().ok()?.checked_mul(multiplier)?;
    (1_000..=1_000_000_000_000_000)
        .contains(&value)
        .then_some(value)
}

fn port_mapping(mapping: &cri::PortMapping) -> Result<PortMapping, Status> {
    let port = |what: &str, value: i32| {
        u16::try_from(value)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format!("port mapping {what} {value} is not a port")))
    };
    let protocol = match mapping.protocol() {
        cri::Protocol::Tcp => "tcp",
        cri::Protocol::Udp => "udp",
        cri::Protocol::Sctp => "sctp",
    };
    if !mapping.host_ip.is_empty() && mapping.host_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(format!(
            "port mapping host_ip {:?} is not an IP address",
            mapping.host_ip
        )));
    }
    Ok(PortMapping {
        // A mapping without a host port only documents the container port: nothing to publish.
        host_port: if mapping.host_port == 0 {
            0
        } else {
            port("host_port", mapping.host_port)?
        },
        container_port: port("container_port", mapping.container_port)?,
        protocol: protocol.to_string(),
        host_ip: mapping.host_ip.clone(),
    })
}

fn state(record: &SandboxRecord) -> cri::PodSandboxState {
    match record.state {
        SandboxState::Ready => cri::PodSandboxState::SandboxReady,
        SandboxState::Creating | SandboxState::NotReady => cri::PodSandboxState::SandboxNotready,
    }
}

fn metadata(record: &SandboxRecord) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: record.metadata.name.clone(),
        uid: record.metadata.uid.clone(),
        namespace: record.metadata.namespace.clone(),
        attempt: record.metadata.attempt,
    }
}

fn namespace_mode(host: bool) -> cri::NamespaceMode {
    if host {
        cri::NamespaceMode::Node
    } else {
        cri::NamespaceMode::Pod
    }
}

pub fn status(record: &SandboxRecord) -> cri::PodSandboxStatus {
    let mut ips = record.ips.iter();
    let pid = match record.pid_mode {
        PidMode::Pod => cri::NamespaceMode::Pod,
        PidMode::Container => cri::NamespaceMode::Container,
        PidMode::Host => cri::NamespaceMode::Node,
    };
    cri::PodSandboxStatus {
        id: record.id.clone(),
        metadata: Some(metadata(record)),
        state: state(record).into(),
        created_at: record.created_at,
        network: Some(cri::PodSandboxNetworkStatus {
            ip: ips.next().cloned().unwrap_or_default(),
            additional_ips: ips.map(|ip| cri::PodIp { ip: ip.clone() }).collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: namespace_mode(record.host_namespaces.network).into(),
                    pid: pid.into(),
                    ipc: namespace_mode(record.host_namespaces.ipc).into(),
                    ..Default::default()
                }),
            }),
        }),
        labels: record.labels.clone().into_iter().collect(),
        annotations: record.annotations.clone().into_iter().collect(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

pub fn sandbox(record: &SandboxRecord) -> cri::PodSandbox {
    cri::PodSandbox {
        id: record.id.clone(),
        metadata: Some(metadata(record)),
        state: state(record).into(),
        created_at: record.created_at,
        labels: record.labels.clone().into_iter().collect(),
        annotations: record.annotations.clone().into_iter().collect(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

/// Whether a record passes a `ListPodSandbox` filter (the id filter is applied by the caller,
/// which resolves prefixes).
pub fn matches(record: &SandboxRecord, filter: &cri::PodSandboxFilter) -> bool {
    if let Some(wanted) = &filter.state
        && wanted.state != i32::from(state(record))
    {
        return false;
    }
    filter
        .label_selector
        .iter()
        .all(|(key, value)| record.labels.get(key) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_quantities_are_bits_per_second_in_kubelets_range() {
        assert_eq!(bits_per_second("10M"), Some(10_000_000));
        assert_eq!(bits_per_second("1Gi"), Some(1 << 30));
        assert_eq!(bits_per_second("500k"), Some(500_000));
        assert_eq!(bits_per_second("2000"), Some(2000));
        for bad in ["", "M", "10m", "1.5M", "-1M", "10X", "999", "2P"] {
            assert_eq!(bits_per_second(bad), None, "{bad}");
        }
    }
}
