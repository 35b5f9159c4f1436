//! `Status`: the runtime and network conditions kubelet gates the node's readiness on.
//!
//! NetworkReady follows the CNI config dir as it is at the time of the call, so a network add-on
//! that writes its conflist after crius started makes the node ready without a restart.

use std::collections::HashMap;

use crius_cni::{CniError, NetworkConfigList};
use k8s_cri::v1 as cri;
use serde_json::json;
use tonic::Status;

use crate::config::Config;
use crate::status::internal;

/// The reason kubelet (and `kubectl describe node`) shows for a node without a pod network; the
/// same words containerd and cri-o use.
const NETWORK_NOT_READY_REASON: &str = "NetworkPluginNotReady";

pub async fn status(
    config: &Config,
    request: cri::StatusRequest,
) -> Result<cri::StatusResponse, Status> {
    let network = load_network(config).await;
    let runtime_ready = cri::RuntimeCondition {
        r#type: "RuntimeReady".into(),
        status: true,
        reason: String::new(),
        message: String::new(),
    };
    let network_ready = match &network {
        Ok(_) => cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        },
        Err(err) => cri::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: false,
            reason: NETWORK_NOT_READY_REASON.into(),
            message: format!("Network plugin returns error: {err}"),
        },
    };
    let mut info = HashMap::new();
    if request.verbose {
        let config_json = config
            .to_info_json()
            .map_err(|e| internal("serialize the configuration", &e))?;
        info.insert("config".to_string(), config_json);
        info.insert("network".to_string(), network_info(&network).to_string());
    }
    Ok(cri::StatusResponse {
        status: Some(cri::RuntimeStatus {
            conditions: vec![runtime_ready, network_ready],
        }),
        info,
        runtime_handlers: Vec::new(),
        features: None,
    })
}

async fn load_network(config: &Config) -> Result<NetworkConfigList, CniError> {
    let network = config.network.clone();
    crate::blocking::run_blocking(move || crate::network::load(&network)).await
}

/// What `crictl info` shows of the pod network: the network in use, or why there is none.
fn network_info(network: &Result<NetworkConfigList, CniError>) -> serde_json::Value {
    match network {
        Ok(list) => json!({
            "name": list.name,
            "cniVersion": list.cni_version,
            "source": list.source,
            "plugins": list.plugins.iter().map(|p| &p.plugin_type).collect::<Vec<_>>(),
        }),
        Err(err) => json!({ "error": err.to_string() }),
    }
}
