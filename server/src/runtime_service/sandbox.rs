//! `RunPodSandbox`, `StopPodSandbox`, `RemovePodSandbox`, `PodSandboxStatus`, `ListPodSandbox`:
//! requests checked and converted here, the lifecycle in [`crate::pods`].

use std::collections::HashMap;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use tonic::Status;

use crate::config::Config;
use crate::containers::ContainerManager;
use crate::convert::sandbox::{matches, pod_spec, sandbox, status};
use crate::creations::request_digest;
use crate::pods::PodManager;

pub async fn run(
    config: &Config,
    pods: &Arc<PodManager>,
    request: &cri::RunPodSandboxRequest,
) -> Result<cri::RunPodSandboxResponse, Status> {
    let spec = pod_spec(config, request)?;
    let pod_sandbox_id = pods.run(spec, request_digest(request)).await?;
    tracing::Span::current().record("pod_id", pod_sandbox_id.as_str());
    Ok(cri::RunPodSandboxResponse { pod_sandbox_id })
}

fn required_id(id: &str) -> Result<&str, Status> {
    if id.is_empty() {
        Err(Status::invalid_argument("pod_sandbox_id is required"))
    } else {
        Ok(id)
    }
}

pub async fn stop(
    pods: &PodManager,
    containers: &ContainerManager,
    request: &cri::StopPodSandboxRequest,
) -> Result<cri::StopPodSandboxResponse, Status> {
    let id = required_id(&request.pod_sandbox_id)?;
    tracing::Span::current().record("pod_id", id);
    let Some(pod) = pods.find(id) else {
        return Ok(cri::StopPodSandboxResponse {});
    };
    containers.stop_pod_containers(&pod.id).await?;
    pods.stop(&pod.id).await?;
    Ok(cri::StopPodSandboxResponse {})
}

pub async fn remove(
    pods: &PodManager,
    containers: &ContainerManager,
    request: &cri::RemovePodSandboxRequest,
) -> Result<cri::RemovePodSandboxResponse, Status> {
    let id = required_id(&request.pod_sandbox_id)?;
    tracing::Span::current().record("pod_id", id);
    let Some(pod) = pods.find(id) else {
        return Ok(cri::RemovePodSandboxResponse {});
    };
    containers.remove_pod_containers(&pod.id).await?;
    pods.remove(&pod.id).await?;
    Ok(cri::RemovePodSandboxResponse {})
}

pub fn pod_status(
    pods: &PodManager,
    request: &cri::PodSandboxStatusRequest,
) -> Result<cri::PodSandboxStatusResponse, Status> {
    let id = required_id(&request.pod_sandbox_id)?;
    let record = pods
        .find(id)
        .ok_or_else(|| Status::not_found(format!("pod sandbox {id} not found")))?;
    let mut info = HashMap::new();
    if request.verbose {
        let details = serde_json::json!({
            "id": record.id,
            "namespaces": record.namespaces,
            "hostname": record.hostname,
            "cgroupParent": record.cgroup_parent,
            "cniResult": record.cni_result,
            "pidMode": record.pid_mode,
        });
        info.insert("info".to_string(), details.to_string());
    }
    Ok(cri::PodSandboxStatusResponse {
        status: Some(status(&record)),
        info,
        containers_statuses: Vec::new(),
        timestamp: 0,
    })
}

pub fn list(
    pods: &PodManager,
    request: &cri::ListPodSandboxRequest,
) -> cri::ListPodSandboxResponse {
    let filter = request.filter.clone().unwrap_or_default();
    let records = if filter.id.is_empty() {
        pods.list()
    } else {
        pods.find(&filter.id).into_iter().collect()
    };
    let mut items: Vec<_> = records
        .iter()
        .filter(|record| matches(record, &filter))
        .map(sandbox)
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.created_at));
    cri::ListPodSandboxResponse { items }
}
