//! Crash-safe file updates: data is on disk before the name that points at it.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::ImageStoreError;

/// Replaces `path` with `bytes` atomically: a temp file in the same directory, fsync, rename over
/// `path`, fsync the directory. After a crash the file is the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageStoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(ImageStoreError::io("create temp file in", dir))?;
    temp.write_all(bytes)
        .map_err(ImageStoreError::io("write", temp.path()))?;
    temp.as_file()
        .sync_all()
        .map_err(ImageStoreError::io("fsync", temp.path()))?;
    temp.persist(path)
        .map_err(|e| ImageStoreError::io("rename over", path)(e.error))?;
    sync_dir(dir)
}

/// Makes a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), ImageStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageStoreError::io("fsync directory", dir))
}
