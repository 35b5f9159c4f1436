//! `CreateContainer`, `StartContainer`, `StopContainer`, `RemoveContainer`, `ContainerStatus`,
//! `ListContainers`, `UpdateContainerResources`, `ReopenContainerLog`, `ContainerStats`,
//! `ListContainerStats` and `ExecSync`: requests checked and converted here, the lifecycle in
//! [`crate::containers`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crius_runtime::container::record::{ContainerRecord, ContainerState};
use crius_runtime::monitor;
use k8s_cri::v1 as cri;
use tonic::Status;

use crate::blocking::run_blocking;
use crate::containers::ContainerManager;
use crate::containers::create::CreateRequest;
use crate::convert::container::{container_request, resources};
use crate::convert::container_status::{self, container, status};
use crate::creations::request_digest;
use crate::status::runtime as runtime_status;

fn required_id(id: &str) -> Result<&str, Status> {
    if id.is_empty() {
        Err(Status::invalid_argument("container_id is required"))
    } else {
        tracing::Span::current().record("container_id", id);
        Ok(id)
    }
}

fn existing(containers: &ContainerManager, id: &str) -> Result<ContainerRecord, Status> {
    containers
        .find(required_id(id)?)
        .ok_or_else(|| Status::not_found(format!("container {id} not found")))
}

pub async fn create(
    containers: &Arc<ContainerManager>,
    request: &cri::CreateContainerRequest,
) -> Result<cri::CreateContainerResponse, Status> {
    if request.pod_sandbox_id.is_empty() {
        return Err(Status::invalid_argument("pod_sandbox_id is required"));
    }
    let config = request
        .config
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("container config is required"))?;
    let image = config
        .image
        .as_ref()
        .map(|spec| spec.image.clone())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| Status::invalid_argument("container config needs an image"))?;
    let container = container_request(config)?;
    let container_id = containers
        .create(CreateRequest {
            pod_id: request.pod_sandbox_id.clone(),
            container,
            image,
            request_digest: request_digest(request),
        })
        .await?;
    tracing::Span::current().record("container_id", container_id.as_str());
    Ok(cri::CreateContainerResponse { container_id })
}

pub async fn start(
    containers: &ContainerManager,
    request: &cri::StartContainerRequest,
) -> Result<cri::StartContainerResponse, Status> {
    containers
        .start(required_id(&request.container_id)?)
        .await?;
    Ok(cri::StartContainerResponse {})
}

pub async fn stop(
    containers: &ContainerManager,
    request: &cri::StopContainerRequest,
) -> Result<cri::StopContainerResponse, Status> {
    let timeout = Duration::from_secs(u64::try_from(request.timeout).unwrap_or(0));
    containers
        .stop(required_id(&request.container_id)?, timeout)
        .await?;
    Ok(cri::StopContainerResponse {})
}

pub async fn remove(
    containers: &ContainerManager,
    request: &cri::RemoveContainerRequest,
) -> Result<cri::RemoveContainerResponse, Status> {
    containers
        .remove(required_id(&request.container_id)?)
        .await?;
    Ok(cri::RemoveContainerResponse {})
}

pub fn container_status(
    containers: &ContainerManager,
    request: &cri::ContainerStatusRequest,
) -> Result<cri::ContainerStatusResponse, Status> {
    let record = existing(containers, &request.container_id)?;
    let mut info = HashMap::new();
    if request.verbose {
        let details = serde_json::json!({
            "sandboxID": record.pod_id,
            "pid": record.init.filter(|_| record.state != ContainerState::Exited).map_or(0, |p| p.pid),
            "runtimeHandler": record.runtime_handler,
            "cgroupsPath": record.cgroups_path,
            "bundle": record.dir,
            "stopSignal": record.stop_signal,
        });
        info.insert("info".to_string(), details.to_string());
    }
    Ok(cri::ContainerStatusResponse {
        status: Some(status(&record)),
        info,
    })
}

pub fn list(
    containers: &ContainerManager,
    request: &cri::ListContainersRequest,
) -> cri::ListContainersResponse {
    let filter = request.filter.clone().unwrap_or_default();
    let records = if filter.id.is_empty() {
        containers.list()
    } else {
        containers.find(&filter.id).into_iter().collect()
    };
    let mut items: Vec<_> = records
        .iter()
        .filter(|record| {
            filter
                .state
                .as_ref()
                .is_none_or(|s| s.state == i32::from(container_status::state(record.state)))
                && selected(record, &filter.pod_sandbox_id, &filter.label_selector)
        })
        .map(container)
        .collect();
    items.sort_by_key(|item| std::cmp::Reverse(item.created_at));
    cri::ListContainersResponse { containers: items }
}

/// Whether a container passes a pod filter (an id or id prefix) and a label selector.
fn selected(record: &ContainerRecord, pod_id: &str, labels: &HashMap<String, String>) -> bool {
    record.pod_id.starts_with(pod_id)
        && labels
            .iter()
            .all(|(key, value)| record.labels.get(key) == Some(value))
}

pub async fn update_resources(
    containers: &ContainerManager,
    request: &cri::UpdateContainerResourcesRequest,
) -> Result<cri::UpdateContainerResourcesResponse, Status> {
    let record = existing(containers, &request.container_id)?;
    if let Some(linux) = request.linux.as_ref() {
        containers
            .update_resources(&record.id, resources(linux)?)
            .await?;
    }
    Ok(cri::UpdateContainerResourcesResponse {})
}

pub async fn reopen_log(
    containers: &ContainerManager,
    request: &cri::ReopenContainerLogRequest,
) -> Result<cri::ReopenContainerLogResponse, Status> {
    let record = existing(containers, &request.container_id)?;
    if record.state != ContainerState::Running {
        return Err(Status::failed_precondition(format!(
            "container {} is not running",
            record.id
        )));
    }
    let dir = record.dir.clone();
    run_blocking(move || monitor::reopen_log(&dir))
        .await
        .map_err(|e| runtime_status(&e))?;
    Ok(cri::ReopenContainerLogResponse {})
}

pub async fn stats(
    containers: &ContainerManager,
    request: &cri::ContainerStatsRequest,
) -> Result<cri::ContainerStatsResponse, Status> {
    let record = existing(containers, &request.container_id)?;
    let stats = containers.stats(vec![record]).await.pop();
    Ok(cri::ContainerStatsResponse { stats })
}

pub async fn list_stats(
    containers: &ContainerManager,
    request: &cri::ListContainerStatsRequest,
) -> cri::ListContainerStatsResponse {
    let filter = request.filter.clone().unwrap_or_default();
    let records = if filter.id.is_empty() {
        containers.list()
    } else {
        containers.find(&filter.id).into_iter().collect()
    };
    let records = records
        .into_iter()
        .filter(|record| {
            record.state != ContainerState::Exited
                && selected(record, &filter.pod_sandbox_id, &filter.label_selector)
        })
        .collect();
    cri::ListContainerStatsResponse {
        stats: containers.stats(records).await,
    }
}

pub async fn exec_sync(
    containers: &ContainerManager,
    request: cri::ExecSyncRequest,
) -> Result<cri::ExecSyncResponse, Status> {
    let id = required_id(&request.container_id)?;
    if request.cmd.is_empty() {
        return Err(Status::invalid_argument("cmd is required"));
    }
    let timeout = u64::try_from(request.timeout)
        .ok()
        .filter(|seconds| *seconds > 0)
        .map(Duration::from_secs);
    let output = containers.exec_sync(id, request.cmd, timeout).await?;
    Ok(cri::ExecSyncResponse {
        stdout: output.stdout,
        stderr: output.stderr,
        exit_code: output.exit_code,
    })
}
