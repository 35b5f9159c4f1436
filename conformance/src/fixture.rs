//! The setting of the image tests: a test registry and a crius that pulls from it, with helpers
//! that speak the image service as crictl does.

#![allow(clippy::unwrap_used)] // fixture helpers panic as the tests' failure report

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;

use crate::client::CriClient;
use crate::daemon::Crius;
use crate::image::OciImage;
use crate::registry::TestRegistry;

/// A registry, and a crius that pulls from it (marked insecure: plain HTTP on loopback).
#[derive(Debug)]
pub struct ImageFixture {
    pub registry: TestRegistry,
    pub crius: Crius,
    pub client: CriClient,
    conf_dir: tempfile::TempDir,
}

/// An `ImageSpec` naming `image`.
pub fn spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

impl ImageFixture {
    pub async fn new() -> Self {
        let registry = TestRegistry::start().await.unwrap();
        Self::with(registry, "", "").await
    }

    /// `extra_registries_conf` is appended to the registries.conf that marks the registry
    /// insecure; `config_toml` is crius's config file.
    pub async fn with(
        registry: TestRegistry,
        extra_registries_conf: &str,
        config_toml: &str,
    ) -> Self {
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("registries.conf");
        std::fs::write(
            &conf,
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n{extra_registries_conf}",
                registry.host()
            ),
        )
        .unwrap();
        let arg = format!("--registries-conf={}", conf.display());
        let crius = Crius::start_configured(config_toml, &[arg.as_str()])
            .await
            .unwrap();
        let client = crius.client().await.unwrap();
        ImageFixture {
            registry,
            crius,
            client,
            conf_dir,
        }
    }

    pub fn registries_conf(&self) -> PathBuf {
        self.conf_dir.path().join("registries.conf")
    }

    /// `<registry host>/<repository_and_tag>`.
    pub fn name(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.registry.host())
    }

    /// Pushes `image` as `repository:tag` and pulls it; returns the name pulled.
    pub async fn push_and_pull(&mut self, repository: &str, tag: &str, image: &OciImage) -> String {
        self.registry.push(repository, tag, image).await.unwrap();
        let name = self.name(&format!("{repository}:{tag}"));
        self.pull(&name).await.unwrap();
        name
    }

    pub async fn pull(&mut self, image: &str) -> Result<String, tonic::Status> {
        self.pull_with(image, None).await
    }

    pub async fn pull_with(
        &mut self,
        image: &str,
        auth: Option<cri::AuthConfig>,
    ) -> Result<String, tonic::Status> {
        let response = self
            .client
            .image
            .pull_image(cri::PullImageRequest {
                image: Some(spec(image)),
                auth,
                sandbox_config: None,
            })
            .await?;
        Ok(response.into_inner().image_ref)
    }

    pub async fn status(&mut self, image: &str) -> Option<cri::Image> {
        self.client
            .image
            .image_status(cri::ImageStatusRequest {
                image: Some(spec(image)),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .image
    }

    pub async fn list(&mut self) -> Vec<cri::Image> {
        self.client
            .image
            .list_images(cri::ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .images
    }

    pub async fn remove(&mut self, image: &str) {
        self.client
            .image
            .remove_image(cri::RemoveImageRequest {
                image: Some(spec(image)),
            })
            .await
            .unwrap();
    }

    pub fn root(&self) -> &Path {
        &self.crius.paths.root
    }

    /// Unpacked layer directories and stored blobs (staging dirs aside).
    pub fn stored(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let entries = |dir: PathBuf| -> Vec<PathBuf> {
            std::fs::read_dir(dir)
                .map(|d| {
                    d.map(|e| e.unwrap().path())
                        .filter(|p| !p.ends_with("tmp"))
                        .collect()
                })
                .unwrap_or_default()
        };
        (
            entries(self.root().join("layers")),
            entries(self.root().join("blobs/sha256")),
        )
    }

    /// Files left in the staging directories (`blobs/tmp`, `layers/tmp`): none after any pull,
    /// failed or not.
    pub fn staged(&self) -> Vec<PathBuf> {
        ["blobs/tmp", "layers/tmp"]
            .iter()
            .flat_map(|dir| {
                std::fs::read_dir(self.root().join(dir))
                    .into_iter()
                    .flatten()
            })
            .map(|e| e.unwrap().path())
            .collect()
    }
}
