//! Unpacked layers, one directory each, shared by every image that has them:
//! `<root>/layers/<chain-id hex>/diff` (what overlayfs stacks) beside `layer.json` (its record).
//!
//! A layer is unpacked into a staging directory under `layers/tmp` and renamed into place only
//! when its content is verified, so a layer directory under its chain ID is always complete.
//! Staging directories of a crashed daemon are removed when the store opens.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::durable::sync_dir;
use crate::error::ImageStoreError;
use crate::images::LayerRecord;

const RECORD_FILE: &str = "layer.json";
const DIFF_DIR: &str = "diff";

/// Chain IDs of a stack of layers, bottom first: the first is its diff ID, each next one is
/// `sha256("<chain below> <diff id>")`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => Digest::sha256_of(format!("{below} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

#[derive(Debug)]
pub struct LayerStore {
    dir: PathBuf,
}

/// A layer being unpacked; removed when dropped uncommitted.
#[derive(Debug)]
pub struct StagedLayer {
    dir: tempfile::TempDir,
}

impl StagedLayer {
    /// The directory to unpack the layer's tar into.
    pub fn diff_dir(&self) -> PathBuf {
        self.dir.path().join(DIFF_DIR)
    }
}

impl LayerStore {
    pub fn open(dir: &Path) -> Result<Self, ImageStoreError> {
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(ImageStoreError::io("remove", &tmp))?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)
            .map_err(ImageStoreError::io("create directory", &tmp))?;
        Ok(LayerStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// The directory overlayfs stacks for this layer.
    pub fn diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join(DIFF_DIR)
    }

    /// The record of a committed layer, if it is in the store.
    pub fn get(&self, chain_id: &Digest) -> Option<LayerRecord> {
        let bytes = std::fs::read(self.layer_dir(chain_id).join(RECORD_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn stage(&self) -> Result<StagedLayer, ImageStoreError> {
        let tmp = self.dir.join("tmp");
        let dir = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&tmp)
            .map_err(ImageStoreError::io("create staging directory in", &tmp))?;
        let diff = dir.path().join(DIFF_DIR);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&diff)
            .map_err(ImageStoreError::io("create directory", &diff))?;
        Ok(StagedLayer { dir })
    }

    /// Names a fully unpacked and verified layer by its chain ID. The caller has flushed its
    /// content (see [`LayerStore::sync`]) or will before the layer is referenced.
    pub fn commit(&self, staged: StagedLayer, record: &LayerRecord) -> Result<(), ImageStoreError> {
        let record_path = staged.dir.path().join(RECORD_FILE);
        let bytes = serde_json::to_vec(record).map_err(|e| ImageStoreError::BadContent {
            what: "layer record",
            detail: e.to_string(),
        })?;
        std::fs::write(&record_path, bytes).map_err(ImageStoreError::io("write", &record_path))?;
        let destination = self.layer_dir(&record.chain_id);
        if destination.exists() {
            return Ok(()); // committed meanwhile by another pull; the staged copy goes
        }
        let staged_path = staged.dir.keep();
        std::fs::rename(&staged_path, &destination).map_err(|e| {
            std::fs::remove_dir_all(&staged_path).ok();
            ImageStoreError::io("rename to", &destination)(e)
        })?;
        sync_dir(&self.dir)
    }

    /// Flushes every unpacked file of the store's filesystem to disk (one `syncfs`), so image
    /// records written after it never point at content a crash could lose.
    pub fn sync(&self) -> Result<(), ImageStoreError> {
        let dir = std::fs::File::open(&self.dir).map_err(ImageStoreError::io("open", &self.dir))?;
        rustix::fs::syncfs(&dir).map_err(|e| ImageStoreError::io("syncfs", &self.dir)(e.into()))
    }

    pub fn remove(&self, chain_id: &Digest) -> Result<(), ImageStoreError> {
        let dir = self.layer_dir(chain_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageStoreError::io("remove", &dir)(e)),
        }
    }

    /// Chain IDs of every committed layer.
    pub fn list(&self) -> Result<Vec<Digest>, ImageStoreError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(ImageStoreError::io("read directory", &self.dir))?;
        let mut chain_ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ImageStoreError::io("read directory", &self.dir))?;
            if let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|hex| format!("sha256:{hex}").parse().ok())
            {
                chain_ids.push(digest);
            }
        }
        Ok(chain_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_stack_diff_ids() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn staged_layer_is_named_only_on_commit_and_dropped_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path()).unwrap();
        let diff_id = Digest::sha256_of(b"layer");
        let record = LayerRecord {
            blob: Digest::sha256_of(b"blob"),
            diff_id: diff_id.clone(),
            chain_id: diff_id.clone(),
            unpacked_bytes: 1,
            unpacked_entries: 1,
        };
        drop(store.stage().unwrap());
        let staged = store.stage().unwrap();
        std::fs::write(staged.diff_dir().join("f"), "x").unwrap();
        assert!(store.get(&diff_id).is_none());
        store.commit(staged, &record).unwrap();
        assert_eq!(store.get(&diff_id), Some(record));
        assert!(store.diff_dir(&diff_id).join("f").exists());
        assert_eq!(store.list().unwrap(), vec![diff_id]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
