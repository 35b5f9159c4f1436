//! Image records and the index of them, persisted as one JSON document written atomically
//! (`<root>/images.json`). The index is the only metadata: an image is in the store exactly when
//! its record is, and a record is written only after all its content is committed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::durable::write_atomic;
use crate::error::ImageStoreError;
use crate::reference::Reference;

/// One unpacked layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The compressed blob as the registry served it.
    pub blob: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Names the layer's directory: the digest of this layer stacked on those below.
    pub chain_id: Digest,
    /// Bytes of regular files and entries unpacked, for filesystem usage.
    pub unpacked_bytes: u64,
    pub unpacked_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest: the image ID.
    pub id: Digest,
    /// `name:tag`, normalized.
    pub repo_tags: Vec<String>,
    /// `name@digest` of the manifest (the index, for a multi-platform pull) as pulled.
    pub repo_digests: Vec<String>,
    /// The manifest actually used for linux/amd64 and the manifests above it (an index).
    pub manifests: Vec<Digest>,
    pub layers: Vec<LayerRecord>,
    /// The config's `User`, as written in the image.
    pub user: String,
    /// Bytes of the blobs: config plus compressed layers.
    pub size: u64,
}

/// How a caller names an image: by ID (full, with or without `sha256:`, or a unique prefix of
/// at least 12 hex digits), or by a reference with a tag or a digest.
#[derive(Debug, Clone)]
pub enum ImageSelector {
    Id(String),
    Reference(Reference),
}

/// Shortest ID prefix accepted, as `docker`/`crictl` print IDs.
const MIN_ID_PREFIX: usize = 12;

impl ImageSelector {
    pub fn parse(text: &str) -> Result<ImageSelector, ImageStoreError> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() >= MIN_ID_PREFIX
            && hex.len() <= 64
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Ok(ImageSelector::Id(hex.to_string()));
        }
        Ok(ImageSelector::Reference(Reference::parse(text)?))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    images: Vec<ImageRecord>,
}

#[derive(Debug)]
pub struct ImageIndex {
    path: PathBuf,
    images: Vec<ImageRecord>,
}

impl ImageIndex {
    /// Loads `path`; a missing file is an empty index.
    pub fn load(path: &Path) -> Result<Self, ImageStoreError> {
        let images = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice::<IndexFile>(&bytes)
                    .map_err(|e| ImageStoreError::BadContent {
                        what: "image index",
                        detail: format!("{}: {e}", path.display()),
                    })?
                    .images
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ImageStoreError::io("read", path)(e)),
        };
        Ok(ImageIndex {
            path: path.to_path_buf(),
            images,
        })
    }

    pub fn images(&self) -> &[ImageRecord] {
        &self.images
    }

    pub fn find(&self, selector: &ImageSelector) -> Option<&ImageRecord> {
        match selector {
            ImageSelector::Id(prefix) => {
                let mut matches = self
                    .images
                    .iter()
                    .filter(|i| i.id.hex().starts_with(prefix.as_str()));
                let first = matches.next()?;
                matches.next().is_none().then_some(first)
            }
            ImageSelector::Reference(reference) => self.find_by_reference(reference),
        }
    }

    fn find_by_reference(&self, reference: &Reference) -> Option<&ImageRecord> {
        if let Some(digest) = reference.digest() {
            let by_digest = reference.digested_name(digest);
            return self
                .images
                .iter()
                .find(|i| i.repo_digests.contains(&by_digest) || i.id == *digest);
        }
        let tagged = reference.tagged_name()?;
        self.images.iter().find(|i| i.repo_tags.contains(&tagged))
    }

    /// Adds or merges `record` (same ID: tags and digests are added), moves its tags away from
    /// any other image, and persists. Returns the stored record.
    pub fn insert(&mut self, record: ImageRecord) -> Result<ImageRecord, ImageStoreError> {
        let mut images = self.images.clone();
        for other in images.iter_mut().filter(|i| i.id != record.id) {
            other.repo_tags.retain(|t| !record.repo_tags.contains(t));
        }
        let stored = match images.iter_mut().find(|i| i.id == record.id) {
            Some(existing) => {
                for tag in &record.repo_tags {
                    if !existing.repo_tags.contains(tag) {
                        existing.repo_tags.push(tag.clone());
                    }
                }
                for digest in &record.repo_digests {
                    if !existing.repo_digests.contains(digest) {
                        existing.repo_digests.push(digest.clone());
                    }
                }
                for manifest in &record.manifests {
                    if !existing.manifests.contains(manifest) {
                        existing.manifests.push(manifest.clone());
                    }
                }
                existing.clone()
            }
            None => {
                images.push(record.clone());
                record
            }
        };
        self.replace(images)?;
        Ok(stored)
    }

    /// Removes what `selector` names: a tag untags (the image goes with its last tag); a digest
    /// reference drops that digest (the image goes when nothing names it); an ID removes the
    /// image. Returns the removed image, if one was removed.
    pub fn remove(
        &mut self,
        selector: &ImageSelector,
    ) -> Result<Option<ImageRecord>, ImageStoreError> {
        let Some(target) = self.find(selector).map(|i| i.id.clone()) else {
            return Ok(None);
        };
        let mut images = self.images.clone();
        let position = images
            .iter()
            .position(|i| i.id == target)
            .expect("found above");
        let image = &mut images[position];
        let remove_whole = match selector {
            ImageSelector::Id(_) => true,
            ImageSelector::Reference(reference) => {
                if let Some(tagged) = reference
                    .tagged_name()
                    .filter(|_| reference.digest().is_none())
                {
                    image.repo_tags.retain(|t| *t != tagged);
                } else if let Some(digest) = reference.digest() {
                    let named = reference.digested_name(digest);
                    image.repo_digests.retain(|d| *d != named);
                }
                image.repo_tags.is_empty()
            }
        };
        let removed = remove_whole.then(|| images.remove(position));
        self.replace(images)?;
        Ok(removed)
    }

    fn replace(&mut self, images: Vec<ImageRecord>) -> Result<(), ImageStoreError> {
        let file = IndexFile { images };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| ImageStoreError::BadContent {
            what: "image index",
            detail: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)?;
        self.images = file.images;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn record(id: u8, tags: &[&str]) -> ImageRecord {
        ImageRecord {
            id: digest(id),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: vec![format!("docker.io/library/x@{}", digest(id + 100))],
            manifests: vec![digest(id + 100)],
            layers: Vec::new(),
            user: String::new(),
            size: 1,
        }
    }

    fn selector(text: &str) -> ImageSelector {
        ImageSelector::parse(text).unwrap()
    }

    fn index() -> (tempfile::TempDir, ImageIndex) {
        let dir = tempfile::tempdir().unwrap();
        let index = ImageIndex::load(&dir.path().join("images.json")).unwrap();
        (dir, index)
    }

    #[test]
    fn images_are_found_by_id_prefix_tag_and_digest() {
        let (_dir, mut index) = index();
        index.insert(record(1, &["docker.io/library/x:1"])).unwrap();
        let id = digest(1);
        for text in [
            id.to_string(),
            id.hex().to_string(),
            id.hex()[..12].to_string(),
            "x:1".to_string(),
            format!("x@{}", digest(101)),
        ] {
            assert_eq!(
                index.find(&selector(&text)).map(|i| &i.id),
                Some(&id),
                "{text}"
            );
        }
        assert!(index.find(&selector("x:2")).is_none());
    }

    #[test]
    fn a_tag_moves_to_the_image_pulled_last() {
        let (_dir, mut index) = index();
        index
            .insert(record(1, &["docker.io/library/x:latest"]))
            .unwrap();
        index
            .insert(record(2, &["docker.io/library/x:latest"]))
            .unwrap();
        assert!(index.images()[0].repo_tags.is_empty());
        assert_eq!(index.find(&selector("x")).unwrap().id, digest(2));
    }

    #[test]
    fn removing_a_tag_untags_and_the_last_tag_removes_the_image() {
        let (dir, mut index) = index();
        index
            .insert(record(
                1,
                &["docker.io/library/x:1", "docker.io/library/x:2"],
            ))
            .unwrap();
        assert!(index.remove(&selector("x:1")).unwrap().is_none());
        assert_eq!(index.images()[0].repo_tags, ["docker.io/library/x:2"]);
        assert!(index.remove(&selector("x:2")).unwrap().is_some());
        assert!(index.images().is_empty());
        let reloaded = ImageIndex::load(&dir.path().join("images.json")).unwrap();
        assert!(reloaded.images().is_empty(), "persisted");
    }

    #[test]
    fn the_index_survives_a_reload() {
        let (dir, mut index) = index();
        index.insert(record(1, &["docker.io/library/x:1"])).unwrap();
        let reloaded = ImageIndex::load(&dir.path().join("images.json")).unwrap();
        assert_eq!(reloaded.images(), index.images());
    }

    #[test]
    fn unknown_image_removal_is_a_no_op() {
        let (_dir, mut index) = index();
        assert!(index.remove(&selector("nothing:here")).unwrap().is_none());
    }
}
