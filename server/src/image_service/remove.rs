//! `RemoveImage`: idempotent, an unknown image is success; an image a container uses stays.

use k8s_cri::v1 as cri;
use tonic::Status;

use super::{CriImageService, image_name};
use crate::status::image_store;

pub async fn remove_image(
    service: &CriImageService,
    request: cri::RemoveImageRequest,
) -> Result<cri::RemoveImageResponse, Status> {
    let name = image_name(request.image.as_ref())?;
    if let Some(image) = service.store.status(name).map_err(|e| image_store(&e))?
        && service.containers.uses_image(&image.id.to_string())
    {
        return Err(Status::failed_precondition(format!(
            "image {name} is in use by a container"
        )));
    }
    service
        .store
        .remove(name)
        .await
        .map_err(|e| image_store(&e))?;
    Ok(cri::RemoveImageResponse {})
}
