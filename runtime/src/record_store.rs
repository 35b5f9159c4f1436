//! Records of pods and containers: in memory for every answer, on disk as `<dir>/<id>.json`
//! (each written atomically) so they survive a daemon restart.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::RuntimeError;

/// A record the store keeps: known by its id, and by the name it reserves while it exists.
pub trait Record: Clone + Serialize + DeserializeOwned {
    /// What the records are, for messages ("pod", "container").
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn reserved_name(&self) -> String;
}

/// How far a save goes before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The file, then its directory, are fsync'd: the record survives a power cut.
    Synced,
    /// The file replaces the old one atomically but is left to the page cache: it survives a
    /// crash of the daemon, not one of the machine. For records whose loss in a power cut is
    /// harmless because what they describe does not survive it either.
    Atomic,
}

#[derive(Debug)]
pub struct RecordStore<R> {
    dir: PathBuf,
    durability: Durability,
    records: Mutex<HashMap<String, R>>,
}

impl<R: Record> RecordStore<R> {
    /// Loads every record under `dir` (created if missing). A record that cannot be read is
    /// logged and skipped, not fatal: one bad file must not keep the node from starting.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, RuntimeError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(RuntimeError::io("create directory", dir))?;
        let mut records = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(RuntimeError::io("read directory", dir))? {
            let path = entry
                .map_err(RuntimeError::io("read directory", dir))?
                .path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let read = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<R>(&bytes).map_err(|e| e.to_string()));
            match read {
                Ok(record) => {
                    records.insert(record.id().to_owned(), record);
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, kind = R::KIND, "skipping an unreadable record");
                }
            }
        }
        Ok(RecordStore {
            dir: dir.to_path_buf(),
            durability,
            records: Mutex::new(records),
        })
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, R>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, id: &str) -> Option<R> {
        self.records().get(id).cloned()
    }

    /// The record whose id is `id` or starts with it, if exactly one does.
    pub fn find(&self, id_or_prefix: &str) -> Option<R> {
        if id_or_prefix.is_empty() {
            return None;
        }
        let records = self.records();
        if let Some(record) = records.get(id_or_prefix) {
            return Some(record.clone());
        }
        let mut matches = records
            .values()
            .filter(|r| r.id().starts_with(id_or_prefix));
        let first = matches.next()?;
        matches.next().is_none().then(|| first.clone())
    }

    pub fn find_by_name(&self, reserved_name: &str) -> Option<R> {
        self.records()
            .values()
            .find(|r| r.reserved_name() == reserved_name)
            .cloned()
    }

    pub fn list(&self) -> Vec<R> {
        self.records().values().cloned().collect()
    }

    /// Writes `record` to disk (temp file, fsync, rename, fsync dir; without the fsyncs when
    /// the store is [`Durability::Atomic`]), then to memory.
    pub fn save(&self, record: &R) -> Result<(), RuntimeError> {
        let path = self.dir.join(format!("{}.json", record.id()));
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| RuntimeError::Io {
            op: "serialize record",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(RuntimeError::io("create temp file in", &self.dir))?;
        temp.write_all(&bytes)
            .map_err(RuntimeError::io("write", temp.path()))?;
        let synced = self.durability == Durability::Synced;
        if synced {
            temp.as_file()
                .sync_all()
                .map_err(RuntimeError::io("fsync", temp.path()))?;
        }
        temp.persist(&path)
            .map_err(|e| RuntimeError::io("rename to", &path)(e.error))?;
        if synced {
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(RuntimeError::io("fsync directory", &self.dir))?;
        }
        self.records()
            .insert(record.id().to_owned(), record.clone());
        Ok(())
    }

    /// Forgets a record, on disk and in memory; an unknown id is fine.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let path = self.dir.join(format!("{id}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RuntimeError::io("remove", &path)(e)),
        }
        self.records().remove(id);
        Ok(())
    }
}
