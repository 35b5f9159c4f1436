//! `Version`: who we are and which CRI we speak.

use k8s_cri::v1 as cri;

/// The kubelet runtime API version every CRI runtime reports (cri-o and containerd alike).
const KUBELET_API_VERSION: &str = "0.1.0";

pub fn version() -> cri::VersionResponse {
    cri::VersionResponse {
        version: KUBELET_API_VERSION.into(),
        runtime_name: "crius".into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: "v1".into(),
    }
}
