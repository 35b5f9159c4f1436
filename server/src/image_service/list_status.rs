//! `ListImages` and `ImageStatus`, answered from the image store's in-memory index.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use serde_json::json;
use tonic::Status;

use super::{CriImageService, image_name};
use crate::status::image_store;

pub fn list_images(
    service: &CriImageService,
    request: cri::ListImagesRequest,
) -> Result<cri::ListImagesResponse, Status> {
    let wanted = request
        .filter
        .and_then(|f| f.image)
        .map(|spec| spec.image)
        .filter(|name| !name.is_empty());
    let images = match wanted {
        Some(name) => service
            .store
            .status(&name)
            .map_err(|e| image_store(&e))?
            .into_iter()
            .collect(),
        None => service.store.list(),
    };
    Ok(cri::ListImagesResponse {
        images: images.iter().map(|record| service.to_cri(record)).collect(),
    })
}

/// An image that is not present is an empty answer, not an error (kubelet's pull decision).
pub fn image_status(
    service: &CriImageService,
    request: &cri::ImageStatusRequest,
) -> Result<cri::ImageStatusResponse, Status> {
    let name = image_name(request.image.as_ref())?;
    let Some(record) = service.store.status(name).map_err(|e| image_store(&e))? else {
        return Ok(cri::ImageStatusResponse::default());
    };
    let mut info = HashMap::new();
    if request.verbose {
        let config = service
            .store
            .config_json(&record)
            .map_err(|e| image_store(&e))?;
        let config: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| Status::internal(format!("stored image config: {e}")))?;
        let details = json!({
            "id": record.id.to_string(),
            "manifests": record.manifests.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "chainIDs": record.layers.iter().map(|l| l.chain_id.to_string()).collect::<Vec<_>>(),
            "imageSpec": config,
        });
        info.insert("info".to_string(), details.to_string());
    }
    Ok(cri::ImageStatusResponse {
        image: Some(service.to_cri(&record)),
        info,
    })
}
