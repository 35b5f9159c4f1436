//! The test registry and image builder that the image and container tests stand on: a busybox
//! image built here is pushed to a real `docker-registry` and served back byte for byte.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::io::Read;

use crius_conformance::image::{OCI_MANIFEST, STATIC_BUSYBOX, busybox_image, sha256_digest};
use crius_conformance::registry::TestRegistry;
use reqwest::StatusCode;

#[tokio::test]
async fn busybox_image_is_served_back_by_the_registry_byte_for_byte() {
    let registry = TestRegistry::start().await.unwrap();
    assert!(registry.host().starts_with("127.0.0.1:"));
    let image = busybox_image().unwrap();
    let digest = registry.push("test/busybox", "1.0", &image).await.unwrap();
    assert_eq!(digest, image.manifest.digest);

    for reference in ["1.0", digest.as_str()] {
        let (status, manifest) = registry
            .get(
                &format!("/v2/test/busybox/manifests/{reference}"),
                OCI_MANIFEST,
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "manifest by {reference}");
        assert_eq!(sha256_digest(&manifest), digest);
    }

    let (status, config) = registry
        .get(
            &format!("/v2/test/busybox/blobs/{}", image.config.digest),
            "*/*",
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sha256_digest(&config), image.config.digest);

    let (status, layer) = registry
        .get(
            &format!("/v2/test/busybox/blobs/{}", image.layers[0].digest),
            "*/*",
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let busybox_size = std::fs::metadata(STATIC_BUSYBOX).unwrap().len();
    let entries: Vec<(String, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.size())
        })
        .collect();
    assert!(
        entries.contains(&("bin/busybox".to_string(), busybox_size)),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|(path, _)| path == "bin/sh"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn pushing_again_is_idempotent_and_unknown_manifests_are_404() {
    let registry = TestRegistry::start().await.unwrap();
    let image = busybox_image().unwrap();
    let first = registry.push("test/busybox", "a", &image).await.unwrap();
    let second = registry.push("test/busybox", "b", &image).await.unwrap();
    assert_eq!(first, second);
    let (status, _) = registry
        .get("/v2/test/busybox/manifests/missing", OCI_MANIFEST)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
}
