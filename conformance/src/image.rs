//! OCI images built in the test process from files of this machine: tar layers (gzip), an image
//! config and an OCI manifest, each with its sha256 digest, ready for [`TestRegistry::push`].
//!
//! [`TestRegistry::push`]: crate::registry::TestRegistry::push

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Debian's busybox-static: one static binary that is every tool a test container needs.
pub const STATIC_BUSYBOX: &str = "/bin/busybox";

/// The applets linked into the busybox test image's `/bin`.
const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "env", "ps", "mkdir", "rm", "touch",
    "wc", "head", "tail", "grep", "hostname", "kill", "nc", "date", "stat", "printf", "test",
    "seq", "yes", "dd", "mount", "ip", "ifconfig", "whoami", "readlink", "httpd", "top",
];

/// Content and its identity.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: &'static str,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        Blob {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCompression {
    #[default]
    Gzip,
    Zstd,
    None,
}

/// One layer being written: a tar archive with fixed owners and mtimes.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
    compression: LayerCompression,
}

impl std::fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerBuilder").finish_non_exhaustive()
    }
}

impl Default for LayerBuilder {
    fn default() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        LayerBuilder {
            tar,
            compression: LayerCompression::default(),
        }
    }
}

impl LayerBuilder {
    pub fn dir(mut self, path: &str, mode: u32) -> anyhow::Result<Self> {
        let mut header = header(tar::EntryType::Directory, mode, 0);
        self.tar.append_data(&mut header, path, std::io::empty())?;
        Ok(self)
    }

    pub fn file(mut self, path: &str, mode: u32, contents: &[u8]) -> anyhow::Result<Self> {
        let mut header = header(tar::EntryType::Regular, mode, contents.len() as u64);
        self.tar.append_data(&mut header, path, contents)?;
        Ok(self)
    }

    pub fn symlink(mut self, path: &str, target: &str) -> anyhow::Result<Self> {
        let mut header = header(tar::EntryType::Symlink, 0o777, 0);
        self.tar.append_link(&mut header, path, target)?;
        Ok(self)
    }

    /// An entry written byte for byte, bypassing the tar crate's path checks: for hostile
    /// archives (`../x`, absolute paths, links out of the root). Names up to 100 bytes.
    pub fn raw_entry(
        mut self,
        kind: tar::EntryType,
        path: &str,
        link: &str,
        contents: &[u8],
    ) -> anyhow::Result<Self> {
        let mut header = header(kind, 0o644, contents.len() as u64);
        let old = header.as_old_mut();
        anyhow::ensure!(path.len() <= old.name.len() && link.len() <= old.linkname.len());
        old.name = [0; 100];
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_cksum();
        self.tar.append(&header, contents)?;
        Ok(self)
    }

    pub fn compression(mut self, compression: LayerCompression) -> Self {
        self.compression = compression;
        self
    }

    /// The uncompressed tar (whose digest is the layer's diff ID) and the blob.
    fn finish(self) -> anyhow::Result<(Vec<u8>, Blob)> {
        let tar = self.tar.into_inner().context("finish layer tar")?;
        let blob = match self.compression {
            LayerCompression::Gzip => {
                let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
                gzip.write_all(&tar)?;
                Blob::new(OCI_LAYER_GZIP, gzip.finish()?)
            }
            LayerCompression::Zstd => Blob::new(OCI_LAYER_ZSTD, zstd::encode_all(&tar[..], 3)?),
            LayerCompression::None => Blob::new(OCI_LAYER_TAR, tar.clone()),
        };
        Ok((tar, blob))
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header
}

/// What goes into the image config's `config` object.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
}

/// A complete image: layers, config and manifest.
#[derive(Debug, Clone)]
pub struct OciImage {
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
}

impl OciImage {
    /// Assembles an image for linux/amd64 from layers (bottom first).
    pub fn build(layers: Vec<LayerBuilder>, run: &RunConfig) -> anyhow::Result<Self> {
        let mut diff_ids = Vec::new();
        let mut blobs = Vec::new();
        for layer in layers {
            let (tar, blob) = layer.finish()?;
            diff_ids.push(sha256_digest(&tar));
            blobs.push(blob);
        }
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {
                "Entrypoint": run.entrypoint,
                "Cmd": run.cmd,
                "Env": run.env,
                "User": run.user,
                "WorkingDir": run.working_dir,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = Blob::new(OCI_CONFIG, serde_json::to_vec(&config)?);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": blobs.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        let manifest = Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest)?);
        Ok(OciImage {
            layers: blobs,
            config,
            manifest,
        })
    }

    /// The config digest: the image ID a runtime reports.
    pub fn id(&self) -> &str {
        &self.config.digest
    }

    /// The blobs the manifest references: layers, then config.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }
}

/// A multi-platform index: each image with the architecture it is for (os linux).
pub fn index(entries: &[(&OciImage, &str)]) -> anyhow::Result<Blob> {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(image, architecture)| {
            json!({
                "mediaType": image.manifest.media_type,
                "digest": image.manifest.digest,
                "size": image.manifest.bytes.len(),
                "platform": {"architecture": architecture, "os": "linux"},
            })
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    Ok(Blob::new(OCI_INDEX, serde_json::to_vec(&index)?))
}

/// Static busybox with one more layer holding `/marker` = `marker`: images that share the busybox
/// layer but differ in ID.
pub fn busybox_image_with_marker(marker: &str) -> anyhow::Result<OciImage> {
    OciImage::build(
        vec![
            busybox_layer(Path::new(STATIC_BUSYBOX))?,
            LayerBuilder::default().file("marker", 0o644, marker.as_bytes())?,
        ],
        &RunConfig {
            cmd: vec!["/bin/sh".into()],
            ..RunConfig::default()
        },
    )
}

/// A benchmark image of `layers` gzip layers, each holding `random_bytes` of incompressible data
/// and `text_bytes` of word-like text (which gzip shrinks several times), from a fixed seed.
pub fn bulky_image(
    layers: usize,
    random_bytes: usize,
    text_bytes: usize,
) -> anyhow::Result<OciImage> {
    const WORDS: &[&str] = &[
        "container",
        "runtime",
        "layer",
        "image",
        "pod",
        "sandbox",
        "kernel",
        "namespace",
        "cgroup",
        "overlay",
        "registry",
        "digest",
        "manifest",
        "the",
        "of",
        "and",
        "a",
        "to",
        "node",
        "kubelet",
        "network",
        "volume",
        "mount",
        "process",
        "signal",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut builders = Vec::with_capacity(layers);
    for layer in 0..layers {
        let mut random = Vec::with_capacity(random_bytes + 8);
        while random.len() < random_bytes {
            random.extend_from_slice(&next().to_le_bytes());
        }
        random.truncate(random_bytes);
        let mut text = String::with_capacity(text_bytes + 16);
        while text.len() < text_bytes {
            let word = WORDS[(next() % WORDS.len() as u64) as usize];
            text.push_str(word);
            text.push(if next() % 12 == 0 { '\n' } else { ' ' });
        }
        builders.push(
            LayerBuilder::default()
                .dir("data", 0o755)?
                .file(&format!("data/random-{layer}"), 0o644, &random)?
                .file(&format!("data/text-{layer}.txt"), 0o644, text.as_bytes())?,
        );
    }
    OciImage::build(builders, &RunConfig::default())
}

/// A one-layer image of static busybox: `/bin/busybox` with its applets linked beside it, `/etc`
/// with root and nobody, and the usual empty mount points. Runs `/bin/sh` by default.
pub fn busybox_image() -> anyhow::Result<OciImage> {
    OciImage::build(
        vec![busybox_layer(Path::new(STATIC_BUSYBOX))?],
        &RunConfig {
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
            ..RunConfig::default()
        },
    )
}

pub fn busybox_layer(busybox: &Path) -> anyhow::Result<LayerBuilder> {
    let binary = std::fs::read(busybox)
        .with_context(|| format!("read {} (install busybox-static)", busybox.display()))?;
    let mut layer =
        LayerBuilder::default()
            .dir("bin", 0o755)?
            .file("bin/busybox", 0o755, &binary)?;
    for applet in BUSYBOX_APPLETS {
        layer = layer.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    for dir in ["dev", "proc", "sys", "tmp", "etc", "root", "var", "run"] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        layer = layer.dir(dir, mode)?;
    }
    layer
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?
        .file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")
}
