//! Requests shaped as kubelet sends them, for benchmarks that compare runtimes on equal terms,
//! and CRI calls bounded in time.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_cri::v1 as cri;

use crate::client::CriClient;

/// How long a benchmark waits for any one CRI call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Awaits a CRI call for at most [`CALL_TIMEOUT`].
pub async fn bounded<T>(
    what: &str,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(answer) => Ok(answer.with_context(|| what.to_string())?.into_inner()),
        Err(_) => bail!("{what}: no answer within {CALL_TIMEOUT:?}"),
    }
}

/// Pulls `image`; returns the image ref the runtime reports.
pub async fn pull(client: &mut CriClient, image: &str) -> anyhow::Result<String> {
    let pulled = bounded(
        "PullImage",
        client.image.pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .await?;
    Ok(pulled.image_ref)
}

/// The namespaces kubelet asks for when a pod does not share its PID namespace.
pub fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A pod named `name` in namespace `bench`, its log directory made beforehand as kubelet does.
pub fn pod_config(
    name: &str,
    log_directory: &Path,
    cgroup_parent: String,
) -> anyhow::Result<cri::PodSandboxConfig> {
    std::fs::create_dir_all(log_directory)
        .with_context(|| format!("create {}", log_directory.display()))?;
    Ok(cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("{name}-uid"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        log_directory: log_directory.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent,
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A container `sleep` of image `image_ref` running `command`, logging to `sleep.log`.
pub fn container_config(
    image_ref: &str,
    command: &[&str],
    resources: Option<cri::LinuxContainerResources>,
) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "sleep".into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image_ref.to_string(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: "sleep.log".into(),
        linux: Some(cri::LinuxContainerConfig {
            resources,
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}
