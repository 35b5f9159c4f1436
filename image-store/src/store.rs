//! The image store: what the image service asks of this crate. It owns the content store, the
//! layer store and the image index under one root, and removes what no image needs.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::blocking::run_blocking;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::ImageStoreError;
use crate::images::{ImageIndex, ImageRecord, ImageSelector};
use crate::layers::LayerStore;
use crate::pull::{InFlightPulls, KeyedLocks};
use crate::registries_conf::RegistriesConf;
use crate::registry::RegistryClient;

#[derive(Debug, Clone)]
pub struct ImageStoreConfig {
    /// Holds `blobs/`, `layers/` and `images.json`.
    pub root: PathBuf,
    /// containers-registries.conf(5); read again at every pull, so edits apply without a restart.
    pub registries_conf: PathBuf,
    /// Docker-style auth file with credentials per registry host; a missing file has none.
    pub auth_file: PathBuf,
    /// A pull fails when no byte arrives for this long.
    pub progress_timeout: Duration,
    /// Largest uncompressed layer accepted.
    pub max_layer_bytes: u64,
}

/// Disk used by the image store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsUsage {
    pub mountpoint: PathBuf,
    pub bytes: u64,
    pub inodes: u64,
}

#[derive(Debug)]
pub struct ImageStore {
    pub(crate) config: ImageStoreConfig,
    pub(crate) content: ContentStore,
    pub(crate) layers: LayerStore,
    pub(crate) index: Mutex<ImageIndex>,
    pub(crate) client: RegistryClient,
    pub(crate) in_flight: InFlightPulls,
    /// One unpack of a layer at a time, whichever pulls need it.
    pub(crate) layer_locks: KeyedLocks,
    /// Pulls hold it shared; removal holds it exclusively while it deletes unreferenced content,
    /// so no pull can find a layer present and lose it before its image is recorded.
    pub(crate) content_lock: tokio::sync::RwLock<()>,
}

impl ImageStore {
    /// Opens the store: removes what a crash left (temp files, staged layers) and any content
    /// no image references, such as the layers of a pull that never completed.
    pub fn open(config: ImageStoreConfig) -> Result<Arc<Self>, ImageStoreError> {
        RegistriesConf::load(&config.registries_conf)?;
        let content = ContentStore::open(&config.root.join("blobs"))?;
        let layers = LayerStore::open(&config.root.join("layers"))?;
        let index = ImageIndex::load(&config.root.join("images.json"))?;
        let store = ImageStore {
            client: RegistryClient::new()?,
            config,
            content,
            layers,
            index: Mutex::new(index),
            in_flight: InFlightPulls::default(),
            layer_locks: KeyedLocks::default(),
            content_lock: tokio::sync::RwLock::new(()),
        };
        store.remove_unreferenced()?;
        Ok(Arc::new(store))
    }

    pub(crate) fn index(&self) -> std::sync::MutexGuard<'_, ImageIndex> {
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn list(&self) -> Vec<ImageRecord> {
        self.index().images().to_vec()
    }

    /// The image `name` names (an ID, a tag or a digest reference), if present.
    pub fn status(&self, name: &str) -> Result<Option<ImageRecord>, ImageStoreError> {
        let selector = ImageSelector::parse(name)?;
        Ok(self.index().find(&selector).cloned())
    }

    /// The image's config document as stored.
    pub fn config_json(&self, image: &ImageRecord) -> Result<Vec<u8>, ImageStoreError> {
        self.content
            .read(&image.id, crate::manifest::MAX_MANIFEST_BYTES)
    }

    /// The unpacked layer directories of `image`, base first: the lower dirs of an overlay.
    pub fn layer_dirs(&self, image: &ImageRecord) -> Vec<PathBuf> {
        image
            .layers
            .iter()
            .map(|layer| self.layers.diff_dir(&layer.chain_id))
            .collect()
    }

    /// Removes what `name` names (see [`ImageIndex::remove`]), then the content no image needs
    /// any more. Naming nothing is success.
    pub async fn remove(self: &Arc<Self>, name: &str) -> Result<(), ImageStoreError> {
        let selector = ImageSelector::parse(name)?;
        let _exclusive = self.content_lock.write().await;
        let store = Arc::clone(self);
        run_blocking(move || {
            let removed = store.index().remove(&selector)?;
            if let Some(image) = removed {
                tracing::info!(id = %image.id, "image removed");
                store.remove_unreferenced()?;
            }
            Ok(())
        })
        .await
    }

    /// Deletes layers and blobs that no image record references.
    fn remove_unreferenced(&self) -> Result<(), ImageStoreError> {
        let (layers, blobs) = {
            let index = self.index();
            let mut layers = HashSet::new();
            let mut blobs = HashSet::new();
            for image in index.images() {
                blobs.insert(image.id.clone());
                blobs.extend(image.manifests.iter().cloned());
                for layer in &image.layers {
                    layers.insert(layer.chain_id.clone());
                    blobs.insert(layer.blob.clone());
                }
            }
            (layers, blobs)
        };
        for chain_id in self.layers.list()? {
            if !layers.contains(&chain_id) {
                tracing::debug!(%chain_id, "removing unreferenced layer");
                self.layers.remove(&chain_id)?;
            }
        }
        for digest in self.content.list()? {
            if !blobs.contains(&digest) {
                self.content.remove(&digest)?;
            }
        }
        Ok(())
    }

    /// Bytes and inodes of the image store, from the records (no walk of the disk).
    pub fn fs_usage(&self) -> FsUsage {
        let index = self.index();
        let mut layers: HashMap<&Digest, (u64, u64)> = HashMap::new();
        let mut blobs: HashSet<&Digest> = HashSet::new();
        let mut blob_bytes = 0;
        for image in index.images() {
            for layer in &image.layers {
                layers.insert(
                    &layer.chain_id,
                    (layer.unpacked_bytes, layer.unpacked_entries),
                );
            }
            if blobs.insert(&image.id) {
                blob_bytes += self.content.size(&image.id);
            }
            for digest in image
                .manifests
                .iter()
                .chain(image.layers.iter().map(|l| &l.blob))
            {
                if blobs.insert(digest) {
                    blob_bytes += self.content.size(digest);
                }
            }
        }
        let (layer_bytes, layer_inodes) = layers
            .values()
            .fold((0, 0), |(bytes, inodes), (b, i)| (bytes + b, inodes + i));
        FsUsage {
            mountpoint: self.layers.dir().to_path_buf(),
            bytes: layer_bytes + blob_bytes,
            inodes: layer_inodes + blobs.len() as u64,
        }
    }
}
