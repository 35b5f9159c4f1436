//! The CRI `ImageService`: a thin trait impl over the image store, one module per RPC group.

mod fs_info;
mod list_status;
mod pull;
mod remove;

use std::sync::Arc;

use crius_image_store::images::ImageRecord;
use crius_image_store::reference::Reference;
use crius_image_store::store::ImageStore;
use k8s_cri::v1 as cri;

use crate::containers::ContainerManager;
use k8s_cri::v1::image_service_server::ImageService;
use tonic::{Request, Response, Status};

pub use k8s_cri::v1::image_service_server::ImageServiceServer;

#[derive(Debug)]
pub struct CriImageService {
    store: Arc<ImageStore>,
    /// Consulted before an image is removed: one that containers use stays.
    containers: Arc<ContainerManager>,
    /// The pause image, normalized: pinned, so image garbage collection keeps it.
    sandbox_image: Option<Reference>,
}

impl CriImageService {
    pub fn new(
        store: Arc<ImageStore>,
        containers: Arc<ContainerManager>,
        sandbox_image: &str,
    ) -> Self {
        let sandbox_image = Reference::parse(sandbox_image)
            .inspect_err(|e| tracing::warn!(error = %e, "sandbox_image is not a valid reference"))
            .ok();
        CriImageService {
            store,
            containers,
            sandbox_image,
        }
    }

    fn to_cri(&self, record: &ImageRecord) -> cri::Image {
        let pinned = self
            .sandbox_image
            .as_ref()
            .and_then(Reference::tagged_name)
            .is_some_and(|tagged| record.repo_tags.contains(&tagged));
        crate::convert::image::image(record, pinned)
    }
}

/// The image name of a request's `ImageSpec`, which must be present and non-empty.
fn image_name(spec: Option<&cri::ImageSpec>) -> Result<&str, Status> {
    spec.map(|s| s.image.as_str())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| Status::invalid_argument("image spec with an image name is required"))
}

#[tonic::async_trait]
impl ImageService for CriImageService {
    async fn list_images(
        &self,
        request: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        list_status::list_images(self, request.into_inner()).map(Response::new)
    }

    async fn image_status(
        &self,
        request: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        list_status::image_status(self, &request.into_inner()).map(Response::new)
    }

    async fn pull_image(
        &self,
        request: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        pull::pull_image(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn remove_image(
        &self,
        request: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        remove::remove_image(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn image_fs_info(
        &self,
        _request: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        Ok(Response::new(fs_info::image_fs_info(self)))
    }
}
