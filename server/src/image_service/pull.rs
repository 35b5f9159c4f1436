//! `PullImage`.

use crius_image_store::reference::Reference;
use k8s_cri::v1 as cri;
use tonic::Status;

use super::{CriImageService, image_name};
use crate::convert::image::credentials;
use crate::status::image_store;

pub async fn pull_image(
    service: &CriImageService,
    request: cri::PullImageRequest,
) -> Result<cri::PullImageResponse, Status> {
    let name = image_name(request.image.as_ref())?;
    let reference = Reference::parse(name).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let credentials = credentials(request.auth.as_ref())?;
    tracing::info!(image = %reference, "pulling image");
    let record = service
        .store
        .pull(&reference, credentials)
        .await
        .map_err(|e| image_store(&e))?;
    Ok(cri::PullImageResponse {
        image_ref: record.id.to_string(),
    })
}
