//! `RemoveImage`: idempotent, an unknown image is success.

use k8s_cri::v1 as cri;
use tonic::Status;

use super::{CriImageService, image_name};
use crate::status::image_store;

pub async fn remove_image(
    service: &CriImageService,
    request: cri::RemoveImageRequest,
) -> Result<cri::RemoveImageResponse, Status> {
    let name = image_name(request.image.as_ref())?;
    service
        .store
        .remove(name)
        .await
        .map_err(|e| image_store(&e))?;
    Ok(cri::RemoveImageResponse {})
}
