//! Manifests and indexes, OCI and Docker schema 2, parsed from the exact bytes whose digest was
//! verified. Docker schema 1 is refused.

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::ImageStoreError;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header of a manifest request: everything crius can pull.
pub const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests and configs larger than this are refused unread (containerd's limit too).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The platform crius runs images for.
pub const PLATFORM_OS: &str = "linux";
pub const PLATFORM_ARCHITECTURE: &str = "amd64";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A single-platform image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Vec<Descriptor>),
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

fn bad(detail: impl Into<String>) -> ImageStoreError {
    ImageStoreError::BadContent {
        what: "manifest",
        detail: detail.into(),
    }
}

impl Manifest {
    /// Parses `bytes`, served with `content_type`. The media type inside the document wins over
    /// the header when both are present; a document without either is told apart by its fields.
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest, ImageStoreError> {
        let content_type = content_type.split(';').next().unwrap_or("").trim();
        if matches!(content_type, DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) {
            return Err(schema1());
        }
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
        if raw.schema_version == Some(1) {
            return Err(schema1());
        }
        if raw.schema_version != Some(2) {
            return Err(bad(format!(
                "schemaVersion {:?}, expected 2",
                raw.schema_version
            )));
        }
        let media_type = raw.media_type.as_deref().unwrap_or(content_type);
        let is_index = match media_type {
            OCI_INDEX | DOCKER_LIST => true,
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            _ => raw.manifests.is_some(),
        };
        if is_index {
            let manifests = raw
                .manifests
                .ok_or_else(|| bad("index without manifests"))?;
            return Ok(Manifest::Index(manifests));
        }
        let config = raw.config.ok_or_else(|| bad("manifest without config"))?;
        let layers = raw.layers.ok_or_else(|| bad("manifest without layers"))?;
        Ok(Manifest::Image(ImageManifest { config, layers }))
    }
}

fn schema1() -> ImageStoreError {
    ImageStoreError::Unsupported {
        what: "manifest",
        detail: "Docker schema 1 manifests are deprecated and not supported; push the image \
                 again with a current client"
            .into(),
    }
}

/// The entry of an index for linux/amd64 (no variant, as amd64 has none in practice).
pub fn select_platform(manifests: &[Descriptor]) -> Result<&Descriptor, ImageStoreError> {
    manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == PLATFORM_OS && p.architecture == PLATFORM_ARCHITECTURE)
        })
        .ok_or_else(|| {
            let offered: Vec<String> = manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect();
            ImageStoreError::NotFound {
                what: "manifest for linux/amd64",
                target: format!("the index offers [{}]", offered.join(", ")),
            }
        })
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn layer_compression(media_type: &str) -> Result<Compression, ImageStoreError> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Ok(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Ok(Compression::Zstd),
        other => Err(ImageStoreError::Unsupported {
            what: "layer media type",
            detail: format!("{other:?}"),
        }),
    }
}

/// The parts of an image config crius uses; the whole document is kept as bytes besides.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ImageStoreError> {
        let config: ImageConfig =
            serde_json::from_slice(bytes).map_err(|e| ImageStoreError::BadContent {
                what: "image config",
                detail: e.to_string(),
            })?;
        if config.rootfs.kind != "layers" {
            return Err(ImageStoreError::BadContent {
                what: "image config",
                detail: format!("rootfs type {:?}, expected \"layers\"", config.rootfs.kind),
            });
        }
        Ok(config)
    }

    pub fn user(&self) -> &str {
        self.config
            .as_ref()
            .and_then(|c| c.user.as_deref())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn oci_manifest_is_parsed() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
                "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":10}},
                "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":20}}]}}"#
        );
        let Manifest::Image(m) = Manifest::parse(json.as_bytes(), OCI_MANIFEST).unwrap() else {
            panic!("not an image manifest")
        };
        assert_eq!(m.config.size, 10);
        assert_eq!(m.layers[0].digest.to_string(), D2);
    }

    #[test]
    fn index_entry_for_linux_amd64_is_selected() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
                {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D1}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},
                {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D2}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let Manifest::Index(entries) = Manifest::parse(json.as_bytes(), "").unwrap() else {
            panic!("not an index")
        };
        assert_eq!(select_platform(&entries).unwrap().digest.to_string(), D2);
        let err = select_platform(&entries[..1]).unwrap_err().to_string();
        assert!(err.contains("linux/arm64"), "{err}");
    }

    #[test]
    fn schema1_is_refused_clearly() {
        let err = Manifest::parse(br#"{"schemaVersion":1,"name":"x"}"#, "").unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        let err = Manifest::parse(b"{}", DOCKER_SCHEMA1_SIGNED).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
    }

    #[test]
    fn malformed_digest_inside_a_manifest_is_refused() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
                "config":{{"digest":"sha256:../../etc","size":10}},"layers":[]}}"#
        );
        assert!(Manifest::parse(json.as_bytes(), OCI_MANIFEST).is_err());
    }

    #[test]
    fn image_config_user_and_diff_ids_are_read() {
        let json = format!(
            r#"{{"config":{{"User":"www-data:1004"}},"rootfs":{{"type":"layers","diff_ids":["{D1}"]}}}}"#
        );
        let config = ImageConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(config.user(), "www-data:1004");
        assert_eq!(config.rootfs.diff_ids.len(), 1);
    }
}
