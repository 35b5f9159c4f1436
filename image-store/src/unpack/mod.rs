//! Unpacking one OCI image layer (an uncompressed tar stream) into a directory that overlayfs
//! stacks as a lower layer, safely against hostile archives.
//!
//! The layer is untrusted input. Every filesystem operation is relative to a directory fd of the
//! destination: parents are resolved with `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks
//! (absolute ones included) can never lead out of it, and the last component is created with
//! `*at` calls that do not follow symlinks. Paths with a `..` component are refused outright.
//! OCI whiteouts become overlayfs whiteouts (a 0/0 char device, `trusted.overlay.opaque=y`);
//! overlay xattrs coming from the archive itself are dropped. Memory stays bounded: file data is
//! streamed, header records are capped per entry, and the entry count is capped.

mod block_padding;
mod budget;
mod entries;
mod metadata;
mod path;
mod tree;
mod whiteout;

#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use self::block_padding::BlockPadded;
use self::budget::HeaderBudget;
use self::entries::Unpacker;
use self::path::display_bytes;

/// How a layer is unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Apply tar uid/gid (true when running as root; false = leave files owned by the
    /// unpacking user).
    pub preserve_ownership: bool,
    /// Allow creating char/block device nodes (false in an unprivileged context → error for
    /// device entries, except the 0/0 overlay whiteout we create ourselves).
    pub allow_devices: bool,
}

/// What an unpack wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Archive entries read (extension headers the tar crate folds into an entry not counted).
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub bytes: u64,
}

/// At most this many entries in one layer.
pub const MAX_LAYER_ENTRIES: u64 = 1_000_000;

/// At most this many bytes of headers, long names and PAX records for one entry.
const MAX_ENTRY_HEADER_BYTES: u64 = 1024 * 1024;

/// At most about this much memory for the directory modes and times applied at the end.
const MAX_DEFERRED_DIR_BYTES: usize = 64 * 1024 * 1024;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The tar stream is malformed, truncated or could not be read.
    #[error("read layer archive after entry {after:?}: {source}")]
    Archive {
        after: String,
        #[source]
        source: io::Error,
    },
    /// A header field could not be parsed.
    #[error("entry {path:?}: invalid {field}: {source}")]
    InvalidHeader {
        path: String,
        field: &'static str,
        #[source]
        source: io::Error,
    },
    /// The entry is one a layer must not contain (a `..` path, a whiteout of `..`, ...).
    #[error("entry {path:?}: refused: {reason}")]
    Refused { path: String, reason: &'static str },
    /// A char/block device entry while devices are not allowed.
    #[error("entry {path:?}: device nodes are not allowed in this context")]
    DeviceNotAllowed { path: String },
    /// An overlay whiteout could not be created for lack of privilege: an opaque directory's
    /// `trusted.overlay.opaque` needs CAP_SYS_ADMIN; a 0/0 whiteout device needs CAP_MKNOD
    /// before Linux 5.8.
    #[error("entry {path:?}: overlay whiteouts need root")]
    WhiteoutNeedsRoot { path: String },
    /// A hardlink whose target is not in the layer.
    #[error("entry {path:?}: hardlink target {target:?} does not exist in the layer")]
    HardlinkTargetMissing { path: String, target: String },
    /// The archive ended in the middle of a file's data.
    #[error("entry {path:?}: archive ended after {written} of {expected} bytes of file data")]
    Truncated {
        path: String,
        written: u64,
        expected: u64,
    },
    /// The layer has more than [`MAX_LAYER_ENTRIES`] entries.
    #[error("layer has more than {max} entries")]
    TooManyEntries { max: u64 },
    /// A filesystem operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// A coarse classification of an [`UnpackError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackErrorKind {
    /// The layer content is malformed or hostile.
    BadLayer,
    /// The layer needs privileges this unpack does not have (devices, whiteouts).
    NotPermitted,
    /// A filesystem operation failed (disk full, permissions; content can cause some too).
    Io,
}

impl UnpackError {
    pub fn kind(&self) -> UnpackErrorKind {
        match self {
            UnpackError::Archive { .. }
            | UnpackError::InvalidHeader { .. }
            | UnpackError::Refused { .. }
            | UnpackError::HardlinkTargetMissing { .. }
            | UnpackError::Truncated { .. }
            | UnpackError::TooManyEntries { .. } => UnpackErrorKind::BadLayer,
            UnpackError::DeviceNotAllowed { .. } | UnpackError::WhiteoutNeedsRoot { .. } => {
                UnpackErrorKind::NotPermitted
            }
            UnpackError::Io { .. } => UnpackErrorKind::Io,
        }
    }

    /// An `Io` error maker for `map_err`, naming the operation and the layer-relative path.
    fn os(op: &'static str, path: &[u8]) -> impl FnOnce(rustix::io::Errno) -> UnpackError {
        let path = display_bytes(path);
        move |errno| UnpackError::Io {
            op,
            path,
            source: io::Error::from(errno),
        }
    }

    fn refused(path: &[u8], reason: &'static str) -> UnpackError {
        UnpackError::Refused {
            path: display_bytes(path),
            reason,
        }
    }
}

/// The caps one unpack enforces; tests lower them.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_entries: u64,
    max_entry_header_bytes: u64,
    max_deferred_dir_bytes: usize,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        max_entries: MAX_LAYER_ENTRIES,
        max_entry_header_bytes: MAX_ENTRY_HEADER_BYTES,
        max_deferred_dir_bytes: MAX_DEFERRED_DIR_BYTES,
    };
}

/// Unpacks the tar stream `reader` into `dest`, an existing empty directory, converting OCI
/// whiteouts to overlayfs ones. Nothing is ever created, changed or followed outside `dest`.
pub fn unpack_layer(
    reader: impl Read,
    dest: &Path,
    options: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    unpack_with_limits(reader, dest, options, Limits::DEFAULT)
}

fn unpack_with_limits(
    reader: impl Read,
    dest: &Path,
    options: &UnpackOptions,
    limits: Limits,
) -> Result<UnpackStats, UnpackError> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| UnpackError::Io {
        op: "open layer directory",
        path: dest.display().to_string(),
        source: io::Error::from(errno),
    })?;
    let (reader, entry_data_end) = BlockPadded::new(reader);
    let (budget, reader) = HeaderBudget::wrap(reader, limits.max_entry_header_bytes);
    let mut archive = tar::Archive::new(reader);
    archive.set_ignore_zeros(false);
    let archive_error = |after: &str| {
        let after = after.to_owned();
        move |source| UnpackError::Archive { after, source }
    };
    let mut entries = archive.entries().map_err(archive_error(""))?;
    let mut unpacker = Unpacker::new(root, *options, limits);
    let mut last_path = String::new();
    loop {
        budget.arm();
        let next = entries.next();
        budget.disarm();
        let mut entry = match next {
            None => break,
            Some(entry) => entry.map_err(archive_error(&last_path))?,
        };
        if unpacker.stats.entries >= limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                max: limits.max_entries,
            });
        }
        unpacker.stats.entries += 1;
        let data_in_archive = entry.header().entry_size().unwrap_or_else(|_| entry.size());
        entry_data_end.set(entry.raw_file_position() + data_in_archive);
        last_path = display_bytes(&entry.path_bytes());
        unpacker.unpack_entry(&mut entry)?;
        // Whatever data the entry has left is skipped here, outside the header budget.
        io::copy(&mut entry, &mut io::sink()).map_err(archive_error(&last_path))?;
    }
    unpacker.finish()
}
