//! The image service as kubelet and crictl drive it, against a real registry and real images.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::path::Path;

use crius_conformance::daemon::Crius;
use crius_conformance::fixture::ImageFixture;
use crius_conformance::image::{
    LayerBuilder, LayerCompression, OciImage, RunConfig, STATIC_BUSYBOX, busybox_image,
    busybox_image_with_marker, busybox_layer, index,
};
use k8s_cri::v1 as cri;
use tonic::Code;

#[tokio::test]
async fn pull_by_tag_then_status_by_every_name_then_remove_and_pull_again() {
    let mut fx = ImageFixture::new().await;
    let image = busybox_image().unwrap();
    let manifest_digest = fx
        .registry
        .push("test/busybox", "1.0", &image)
        .await
        .unwrap();
    let name = fx.name("test/busybox:1.0");

    let image_ref = fx.pull(&name).await.unwrap();
    assert_eq!(image_ref, image.id());

    let repo = fx.name("test/busybox");
    let by_digest = format!("{repo}@{manifest_digest}");
    let id_hex = image.id().strip_prefix("sha256:").unwrap().to_string();
    for reference in [
        name.clone(),
        image.id().to_string(),
        id_hex.clone(),
        id_hex[..12].to_string(),
        by_digest.clone(),
    ] {
        let status = fx
            .status(&reference)
            .await
            .unwrap_or_else(|| panic!("no image for {reference}"));
        assert_eq!(status.id, image.id(), "{reference}");
        assert_eq!(status.repo_tags, std::slice::from_ref(&name));
        assert_eq!(status.repo_digests, std::slice::from_ref(&by_digest));
        let blob_bytes: usize = image.blobs().map(|b| b.bytes.len()).sum();
        assert_eq!(status.size, blob_bytes as u64);
        assert_eq!(status.uid, None);
        assert_eq!(status.username, "");
        assert_eq!(status.spec.unwrap().image, image.id());
    }
    assert_eq!(fx.list().await.len(), 1);

    let (layers, blobs) = fx.stored();
    assert_eq!(layers.len(), 1);
    let busybox = layers[0].join("diff/bin/busybox");
    assert_eq!(
        std::fs::metadata(&busybox).unwrap().len(),
        std::fs::metadata(STATIC_BUSYBOX).unwrap().len()
    );
    assert_eq!(
        std::fs::read_link(layers[0].join("diff/bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(blobs.len(), 3, "manifest, config, layer");

    fx.remove(&name).await;
    assert!(fx.status(&name).await.is_none());
    assert!(fx.list().await.is_empty());
    assert_eq!(
        fx.stored(),
        (vec![], vec![]),
        "layers and blobs go with the last image"
    );

    assert_eq!(fx.pull(&name).await.unwrap(), image.id());
    assert!(fx.status(&name).await.is_some());
}

#[tokio::test]
async fn short_names_are_normalized_docker_style() {
    let mut fx = ImageFixture::new().await;
    let image = busybox_image().unwrap();
    fx.registry
        .push("library/busybox", "latest", &image)
        .await
        .unwrap();
    // `<host>/busybox` has a domain, so no `library/`; the default tag is `latest`.
    let err = fx.pull(&fx.name("busybox")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    fx.pull(&fx.name("library/busybox")).await.unwrap();
    let status = fx.status(&fx.name("library/busybox:latest")).await.unwrap();
    assert_eq!(status.repo_tags, [fx.name("library/busybox:latest")]);
}

#[tokio::test]
async fn three_tags_of_one_image_are_one_image_and_three_images_are_three() {
    let mut fx = ImageFixture::new().await;
    let image = busybox_image().unwrap();
    for tag in ["a", "b", "c"] {
        fx.registry.push("test/one", tag, &image).await.unwrap();
        fx.pull(&fx.name(&format!("test/one:{tag}"))).await.unwrap();
    }
    let images = fx.list().await;
    assert_eq!(images.len(), 1);
    let mut tags = images[0].repo_tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        ["a", "b", "c"].map(|t| fx.name(&format!("test/one:{t}")))
    );

    for marker in ["x", "y", "z"] {
        let other = busybox_image_with_marker(marker).unwrap();
        fx.registry
            .push("test/three", marker, &other)
            .await
            .unwrap();
        fx.pull(&fx.name(&format!("test/three:{marker}")))
            .await
            .unwrap();
    }
    assert_eq!(fx.list().await.len(), 4);
    let (layers, _) = fx.stored();
    assert_eq!(
        layers.len(),
        4,
        "the busybox layer is shared, each marker layer is its own"
    );

    // Untagging one of three tags keeps the image.
    fx.remove(&fx.name("test/one:a")).await;
    let status = fx.status(&fx.name("test/one:b")).await.unwrap();
    assert_eq!(status.repo_tags.len(), 2);
    assert!(fx.status(&fx.name("test/one:a")).await.is_none());
}

#[tokio::test]
async fn pull_by_digest_records_the_digest_and_no_tag() {
    let mut fx = ImageFixture::new().await;
    let image = busybox_image().unwrap();
    let digest = fx
        .registry
        .push("test/busybox", "1.0", &image)
        .await
        .unwrap();
    let by_digest = format!("{}@{digest}", fx.name("test/busybox"));
    assert_eq!(fx.pull(&by_digest).await.unwrap(), image.id());
    let status = fx.status(&by_digest).await.unwrap();
    assert!(status.repo_tags.is_empty());
    assert_eq!(status.repo_digests, std::slice::from_ref(&by_digest));
    fx.remove(&by_digest).await;
    assert!(fx.list().await.is_empty());
}

#[tokio::test]
async fn pull_of_an_index_takes_the_linux_amd64_image_and_records_the_index_digest() {
    let mut fx = ImageFixture::new().await;
    let amd64 = busybox_image_with_marker("amd64").unwrap();
    let arm64 = busybox_image_with_marker("arm64").unwrap();
    let index = index(&[(&arm64, "arm64"), (&amd64, "amd64")]).unwrap();
    let index_digest = fx
        .registry
        .push_index("test/multi", "1.0", &[&arm64, &amd64], &index)
        .await
        .unwrap();
    let name = fx.name("test/multi:1.0");
    assert_eq!(fx.pull(&name).await.unwrap(), amd64.id());
    let status = fx.status(&name).await.unwrap();
    assert_eq!(
        status.repo_digests,
        [format!("{}@{index_digest}", fx.name("test/multi"))]
    );
    let (layers, _) = fx.stored();
    let marker = layers
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join("diff/marker")).ok());
    assert_eq!(marker.as_deref(), Some("amd64"));
}

#[tokio::test]
async fn zstd_and_uncompressed_layers_are_pulled() {
    let mut fx = ImageFixture::new().await;
    for (tag, compression) in [
        ("zstd", LayerCompression::Zstd),
        ("plain", LayerCompression::None),
    ] {
        let image = OciImage::build(
            vec![
                busybox_layer(Path::new(STATIC_BUSYBOX)).unwrap(),
                LayerBuilder::default()
                    .file("etc/motd", 0o644, tag.as_bytes())
                    .unwrap()
                    .compression(compression),
            ],
            &RunConfig::default(),
        )
        .unwrap();
        fx.registry
            .push("test/compressed", tag, &image)
            .await
            .unwrap();
        assert_eq!(
            fx.pull(&fx.name(&format!("test/compressed:{tag}")))
                .await
                .unwrap(),
            image.id()
        );
    }
    assert_eq!(fx.list().await.len(), 2);
}

#[tokio::test]
async fn image_user_is_reported_as_uid_or_username() {
    let mut fx = ImageFixture::new().await;
    let cases = [
        ("1002", Some(1002), ""),
        ("www-data", None, "www-data"),
        ("1003:1004", Some(1003), ""),
        ("www-data:1004", None, "www-data"),
    ];
    for (n, (user, uid, username)) in cases.into_iter().enumerate() {
        let image = OciImage::build(
            vec![
                LayerBuilder::default()
                    .file("id", 0o644, n.to_string().as_bytes())
                    .unwrap(),
            ],
            &RunConfig {
                user: user.into(),
                ..RunConfig::default()
            },
        )
        .unwrap();
        fx.registry
            .push("test/user", &n.to_string(), &image)
            .await
            .unwrap();
        let name = fx.name(&format!("test/user:{n}"));
        fx.pull(&name).await.unwrap();
        let status = fx.status(&name).await.unwrap();
        assert_eq!(status.uid.map(|u| u.value), uid, "{user}");
        assert_eq!(status.username, username, "{user}");
    }
}

#[tokio::test]
async fn verbose_status_carries_the_image_config() {
    let mut fx = ImageFixture::new().await;
    let image = busybox_image().unwrap();
    let name = fx.push_and_pull("test/busybox", "1.0", &image).await;
    let response = fx
        .client
        .image
        .image_status(cri::ImageStatusRequest {
            image: Some(crius_conformance::fixture::spec(&name)),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&response.info["info"]).unwrap();
    assert_eq!(info["imageSpec"]["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(info["imageSpec"]["rootfs"]["type"], "layers");
}

#[tokio::test]
async fn unknown_images_are_absent_and_their_removal_succeeds() {
    let mut fx = ImageFixture::new().await;
    assert!(fx.status("docker.io/library/nothing:here").await.is_none());
    fx.remove("docker.io/library/nothing:here").await;
    fx.remove("sha256:0000000000000000000000000000000000000000000000000000000000000000")
        .await;
    let err = fx.pull(&fx.name("test/absent:1.0")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

#[tokio::test]
async fn malformed_references_are_invalid_arguments() {
    let mut fx = ImageFixture::new().await;
    for bad in [
        "Busybox",
        "busybox:",
        "a//b",
        "busybox@sha256:abc",
        "bad name",
        "",
    ] {
        let err = fx.pull(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    let err = fx
        .client
        .image
        .image_status(cri::ImageStatusRequest {
            image: Some(crius_conformance::fixture::spec("Busybox")),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn image_fs_info_reports_the_store_usage() {
    let mut fx = ImageFixture::new().await;
    let usage = |response: cri::ImageFsInfoResponse| {
        let fs = &response.image_filesystems[0];
        assert!(fs.timestamp > 0);
        (
            fs.fs_id.as_ref().unwrap().mountpoint.clone(),
            fs.used_bytes.as_ref().unwrap().value,
            fs.inodes_used.as_ref().unwrap().value,
        )
    };
    let empty = usage(
        fx.client
            .image
            .image_fs_info(cri::ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!((empty.1, empty.2), (0, 0));
    assert!(
        empty.0.starts_with(&fx.root().display().to_string()),
        "{}",
        empty.0
    );

    let image = busybox_image().unwrap();
    fx.push_and_pull("test/busybox", "1.0", &image).await;
    let (_, bytes, inodes) = usage(
        fx.client
            .image
            .image_fs_info(cri::ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    let busybox = std::fs::metadata(STATIC_BUSYBOX).unwrap().len();
    assert!(bytes > busybox, "{bytes} bytes used");
    assert!(inodes > 30, "{inodes} inodes used");
}

#[tokio::test]
async fn images_survive_a_daemon_restart() {
    let mut fx = ImageFixture::new().await;
    let image = busybox_image().unwrap();
    let name = fx.push_and_pull("test/busybox", "1.0", &image).await;
    let paths = fx.crius.paths.clone();
    let args = [format!(
        "--registries-conf={}",
        fx.registries_conf().display()
    )];
    fx.crius
        .signal_and_wait(nix::sys::signal::Signal::SIGKILL)
        .await
        .unwrap();
    let restarted = Crius::start_at(paths, &[args[0].as_str()]).await.unwrap();
    fx.client = restarted.client().await.unwrap();
    assert_eq!(fx.status(&name).await.unwrap().id, image.id());
}
