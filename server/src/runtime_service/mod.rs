//! The CRI `RuntimeService`: a thin trait impl that hands each RPC to its own module.

mod container;
mod runtime_config;
mod sandbox;
mod status;
mod version;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::containers::ContainerManager;
use crate::pods::PodManager;
use crate::status::not_built;
use crate::streaming::StreamServer;

pub use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;

#[derive(Debug)]
pub struct CriRuntimeService {
    config: Arc<Config>,
    pods: Arc<PodManager>,
    containers: Arc<ContainerManager>,
    streaming: Arc<StreamServer>,
}

impl CriRuntimeService {
    pub fn new(
        config: Arc<Config>,
        pods: Arc<PodManager>,
        containers: Arc<ContainerManager>,
        streaming: Arc<StreamServer>,
    ) -> Self {
        CriRuntimeService {
            config,
            pods,
            containers,
            streaming,
        }
    }
}

type ContainerEventStream =
    Pin<Box<dyn Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

/// Methods that answer `UNIMPLEMENTED` naming the RPC, until their issue builds them.
///
/// `#[tonic::async_trait]` does not rewrite methods that a macro produces, so these are written
/// in the form it rewrites `async fn` into: a boxed `Send` future borrowing `self`.
macro_rules! not_built_yet {
    ($($method:ident($request:ident) -> $response:ident = $rpc:literal;)*) => {$(
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            _request: Request<cri::$request>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<cri::$response>, Status>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(not_built($rpc)) })
        }
    )*};
}

#[tonic::async_trait]
impl RuntimeService for CriRuntimeService {
    async fn version(
        &self,
        _request: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        Ok(Response::new(version::version()))
    }

    async fn status(
        &self,
        request: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        status::status(&self.config, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn runtime_config(
        &self,
        _request: Request<cri::RuntimeConfigRequest>,
    ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
        Ok(Response::new(runtime_config::runtime_config(&self.config)))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        sandbox::run(&self.config, &self.pods, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        sandbox::stop(&self.pods, &self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        sandbox::remove(&self.pods, &self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        sandbox::pod_status(&self.pods, request.get_ref()).map(Response::new)
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        Ok(Response::new(sandbox::list(&self.pods, request.get_ref())))
    }

    async fn create_container(
        &self,
        request: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        container::create(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn start_container(
        &self,
        request: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        container::start(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn stop_container(
        &self,
        request: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        container::stop(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn remove_container(
        &self,
        request: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        container::remove(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_containers(
        &self,
        request: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        Ok(Response::new(container::list(
            &self.containers,
            request.get_ref(),
        )))
    }

    async fn container_status(
        &self,
        request: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        container::container_status(&self.containers, request.get_ref()).map(Response::new)
    }

    async fn update_container_resources(
        &self,
        request: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        container::update_resources(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn reopen_container_log(
        &self,
        request: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        container::reopen_log(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn container_stats(
        &self,
        request: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        container::stats(&self.containers, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_container_stats(
        &self,
        request: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        Ok(Response::new(
            container::list_stats(&self.containers, request.get_ref()).await,
        ))
    }

    async fn exec_sync(
        &self,
        request: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        container::exec_sync(&self.containers, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn exec(
        &self,
        request: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        self.streaming.exec(request.into_inner()).map(Response::new)
    }

    async fn attach(
        &self,
        request: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        self.streaming.attach(request.get_ref()).map(Response::new)
    }

    async fn port_forward(
        &self,
        request: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        self.streaming
            .port_forward(request.get_ref())
            .map(Response::new)
    }

    type GetContainerEventsStream = ContainerEventStream;

    async fn get_container_events(
        &self,
        _request: Request<cri::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        Err(not_built("GetContainerEvents"))
    }

    not_built_yet! {
        pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse = "PodSandboxStats";
        list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse = "ListPodSandboxStats";
        update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse = "UpdateRuntimeConfig";
        checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse = "CheckpointContainer";
        list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse = "ListMetricDescriptors";
        list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse = "ListPodSandboxMetrics";
    }
}
