//! The content store: verified blobs (manifests, configs, compressed layers) under
//! `<root>/blobs/<algorithm>/<hex>`.
//!
//! A blob is streamed into a temp file under `blobs/tmp` while it is hashed, and gets its name
//! only once its digest and size match what was asked for (fsync, rename, fsync dir), so a blob
//! under its digest's name is always complete and verified. Temp files of a crashed daemon are
//! removed when the store opens.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::durable::sync_dir;
use crate::error::ImageStoreError;

#[derive(Debug)]
pub struct ContentStore {
    dir: PathBuf,
}

impl ContentStore {
    /// Opens (creating) the store in `dir` and removes leftover temp files.
    pub fn open(dir: &Path) -> Result<Self, ImageStoreError> {
        let store = ContentStore {
            dir: dir.to_path_buf(),
        };
        let tmp = store.tmp_dir();
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(ImageStoreError::io("remove", &tmp))?;
        }
        for sub in [
            tmp,
            dir.join(Algorithm::Sha256.name()),
            dir.join(Algorithm::Sha512.name()),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&sub)
                .map_err(ImageStoreError::io("create directory", &sub))?;
        }
        Ok(store)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Where the blob with `digest` lives (digests are validated, so the name is safe).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.algorithm().name()).join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Reads a blob of at most `max_bytes`.
    pub fn read(&self, digest: &Digest, max_bytes: u64) -> Result<Vec<u8>, ImageStoreError> {
        let path = self.path(digest);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes))
            .map_err(ImageStoreError::io("read", &path))?;
        if bytes.len() as u64 > max_bytes {
            return Err(ImageStoreError::BadContent {
                what: "blob",
                detail: format!("{digest} is larger than {max_bytes} bytes"),
            });
        }
        Ok(bytes)
    }

    /// Size on disk of a stored blob, 0 if absent.
    pub fn size(&self, digest: &Digest) -> u64 {
        std::fs::metadata(self.path(digest))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Starts writing a blob that must turn out to be `expected` of `expected_size` bytes.
    pub fn writer(
        &self,
        expected: &Digest,
        expected_size: u64,
    ) -> Result<BlobWriter, ImageStoreError> {
        let tmp = self.tmp_dir();
        let file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(ImageStoreError::io("create temp file in", &tmp))?;
        Ok(BlobWriter {
            file,
            hasher: expected.hasher(),
            expected: expected.clone(),
            expected_size,
            destination: self.path(expected),
        })
    }

    /// Stores `bytes` that must have digest `expected`.
    pub fn put(&self, expected: &Digest, bytes: &[u8]) -> Result<(), ImageStoreError> {
        if self.contains(expected) {
            return Ok(());
        }
        let mut writer = self.writer(expected, bytes.len() as u64)?;
        writer
            .write_all(bytes)
            .map_err(ImageStoreError::io("write", writer.file.path()))?;
        writer.commit()
    }

    pub fn remove(&self, digest: &Digest) -> Result<(), ImageStoreError> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageStoreError::io("remove", &path)(e)),
        }
    }

    /// Digests of every stored blob.
    pub fn list(&self) -> Result<Vec<Digest>, ImageStoreError> {
        let mut digests = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.dir.join(algorithm.name());
            for entry in
                std::fs::read_dir(&dir).map_err(ImageStoreError::io("read directory", &dir))?
            {
                let entry = entry.map_err(ImageStoreError::io("read directory", &dir))?;
                let name = entry.file_name();
                if let Some(digest) = name
                    .to_str()
                    .and_then(|hex| format!("{}:{hex}", algorithm.name()).parse().ok())
                {
                    digests.push(digest);
                }
            }
        }
        Ok(digests)
    }
}

/// A blob being written: hashed as it is written, named only by [`BlobWriter::commit`]. Dropped
/// uncommitted, its temp file is removed.
#[derive(Debug)]
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Hasher,
    expected: Digest,
    expected_size: u64,
    destination: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Checks size and digest, then makes the blob durable under its name.
    pub fn commit(self) -> Result<(), ImageStoreError> {
        let size = self.hasher.len();
        if size != self.expected_size {
            return Err(ImageStoreError::Verification {
                what: "blob",
                digest: self.expected,
                detail: format!("size {size} bytes, expected {}", self.expected_size),
            });
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(ImageStoreError::Verification {
                what: "blob",
                digest: self.expected,
                detail: format!("content has digest {actual}"),
            });
        }
        self.file
            .as_file()
            .sync_all()
            .map_err(ImageStoreError::io("fsync", self.file.path()))?;
        let destination = self.destination;
        self.file
            .persist(&destination)
            .map_err(|e| ImageStoreError::io("rename to", &destination)(e.error))?;
        sync_dir(destination.parent().unwrap_or(Path::new("/")))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.hasher.len() + buf.len() as u64 > self.expected_size {
            return Err(std::io::Error::other(format!(
                "blob {} is larger than its {} bytes",
                self.expected, self.expected_size
            )));
        }
        let written = self.file.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&dir.path().join("blobs")).unwrap();
        (dir, store)
    }

    fn temp_files(dir: &tempfile::TempDir) -> usize {
        std::fs::read_dir(dir.path().join("blobs/tmp"))
            .unwrap()
            .count()
    }

    #[test]
    fn verified_blob_is_committed_under_its_digest() {
        let (dir, store) = store();
        let digest = Digest::sha256_of(b"hello");
        store.put(&digest, b"hello").unwrap();
        assert!(store.contains(&digest));
        assert_eq!(store.read(&digest, 100).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![digest]);
        assert_eq!(temp_files(&dir), 0);
    }

    #[test]
    fn wrong_content_is_never_named_and_leaves_no_temp_file() {
        let (dir, store) = store();
        let digest = Digest::sha256_of(b"hello");
        let err = store.put(&digest, b"hellO").unwrap_err();
        assert!(err.to_string().contains("content has digest"), "{err}");
        assert!(!store.contains(&digest));
        assert_eq!(temp_files(&dir), 0);
    }

    #[test]
    fn short_and_long_content_is_refused() {
        let (_dir, store) = store();
        let digest = Digest::sha256_of(b"hello");
        let mut writer = store.writer(&digest, 5).unwrap();
        writer.write_all(b"hel").unwrap();
        assert!(
            writer
                .commit()
                .unwrap_err()
                .to_string()
                .contains("size 3 bytes")
        );
        let mut writer = store.writer(&digest, 5).unwrap();
        assert!(writer.write_all(b"hello!").is_err());
    }

    #[test]
    fn opening_removes_temp_files_of_a_crash() {
        let (dir, store) = store();
        let writer = store.writer(&Digest::sha256_of(b"x"), 1).unwrap();
        std::mem::forget(writer);
        assert_eq!(temp_files(&dir), 1);
        ContentStore::open(&dir.path().join("blobs")).unwrap();
        assert_eq!(temp_files(&dir), 0);
    }
}
