//! Entry metadata from the archive (mode, owner, times, xattrs) and applying it to what was
//! created, through an fd or with no-follow `*at` calls, never through a symlink.
//!
//! Order matters: owner before mode (chown clears setuid/setgid), mode before xattrs, times
//! last. Directory modes and times are applied at the very end ([`DeferredDirs`]): creating
//! children changes a directory's mtime, and a read-only directory mode would stop an
//! unprivileged unpack from creating them.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::BorrowedFd;

use rustix::fs::{self, AtFlags, Gid, Mode, OFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

use super::path::{LayerPath, display_bytes};
use super::tree::open_dir_in_root;
use super::{UnpackError, UnpackOptions};

/// The PAX record prefix of an extended attribute (GNU tar, Go's archive/tar).
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Xattr namespaces overlayfs interprets (`user.overlay.` with the `userxattr` mount option): a
/// layer must not forge whiteouts, redirects or metacopy through them.
const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// File capabilities; only meaningful, and only settable, with ownership preserved.
const CAPABILITY_XATTR: &[u8] = b"security.capability";

/// What the archive says about an entry besides its type, path and data.
#[derive(Debug)]
pub(super) struct EntryMetadata {
    /// Permission bits with setuid, setgid and sticky.
    pub(super) mode: Mode,
    /// `None` unless ownership is preserved.
    pub(super) owner: Option<(Uid, Gid)>,
    /// The modification time, also used as the access time.
    pub(super) mtime: Timespec,
    /// `SCHILY.xattr.*` PAX records: (name, value).
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl EntryMetadata {
    /// Reads the metadata of `entry`. Never call it on a PAX global header: the tar crate would
    /// read that entry's data whole.
    pub(super) fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        path: &LayerPath,
        preserve_ownership: bool,
    ) -> Result<EntryMetadata, UnpackError> {
        let invalid = |field: &'static str| {
            let path = path.display();
            move |source| UnpackError::InvalidHeader {
                path,
                field,
                source,
            }
        };
        let header = entry.header();
        let mode = Mode::from_raw_mode(header.mode().map_err(invalid("mode"))? & 0o7777);
        let owner = if preserve_ownership {
            let uid = header.uid().map_err(invalid("uid"))?;
            let gid = header.gid().map_err(invalid("gid"))?;
            let out_of_range = || std::io::Error::other("does not fit in 32 bits");
            let uid = u32::try_from(uid).map_err(|_| invalid("uid")(out_of_range()))?;
            let gid = u32::try_from(gid).map_err(|_| invalid("gid")(out_of_range()))?;
            Some((Uid::from_raw(uid), Gid::from_raw(gid)))
        } else {
            None
        };
        let mut mtime = Timespec {
            tv_sec: i64::try_from(header.mtime().map_err(invalid("mtime"))?).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(records) = entry.pax_extensions().map_err(invalid("pax records"))? {
            for record in records {
                let record = record.map_err(invalid("pax record"))?;
                let key = record.key_bytes();
                if key == b"mtime" {
                    if let Some(precise) = parse_pax_time(record.value_bytes()) {
                        mtime = precise;
                    }
                } else if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
                }
            }
        }
        Ok(EntryMetadata {
            mode,
            owner,
            mtime,
            xattrs,
        })
    }

    pub(super) fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

/// Parses a PAX time (`seconds[.fraction]`); `None` (keep the header's whole seconds) for
/// negative or malformed values.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if seconds.is_empty() || !seconds.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let tv_sec = seconds.parse::<i64>().ok()?;
    let mut tv_nsec = 0;
    for position in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(position)
            .map_or(0, |byte| byte - b'0');
        tv_nsec = tv_nsec * 10 + i64::from(digit);
    }
    Some(Timespec { tv_sec, tv_nsec })
}

/// Sets the owner (if preserved) of an opened file or directory.
pub(super) fn set_owner(
    fd: BorrowedFd<'_>,
    metadata: &EntryMetadata,
    path: &LayerPath,
) -> Result<(), UnpackError> {
    match metadata.owner {
        Some((uid, gid)) => {
            fs::fchown(fd, Some(uid), Some(gid)).map_err(UnpackError::os("chown", path.as_bytes()))
        }
        None => Ok(()),
    }
}

/// Sets the owner (if preserved) of `name` in `dir` without following a symlink.
pub(super) fn set_owner_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    metadata: &EntryMetadata,
    path: &LayerPath,
) -> Result<(), UnpackError> {
    match metadata.owner {
        Some((uid, gid)) => fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(UnpackError::os("chown", path.as_bytes())),
        None => Ok(()),
    }
}

/// Sets atime and mtime of `name` in `dir` without following a symlink.
pub(super) fn set_times_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    metadata: &EntryMetadata,
    path: &LayerPath,
) -> Result<(), UnpackError> {
    fs::utimensat(dir, name, &metadata.times(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(UnpackError::os("set times on", path.as_bytes()))
}

/// Applies the archive's xattrs to an opened file or directory. Overlay xattrs are dropped, and
/// file capabilities unless ownership is preserved; a filesystem without xattr support, or a
/// namespace we may not write, costs a warning, not the layer.
pub(super) fn set_xattrs(
    fd: BorrowedFd<'_>,
    metadata: &EntryMetadata,
    path: &LayerPath,
    options: &UnpackOptions,
) -> Result<(), UnpackError> {
    for (name, value) in &metadata.xattrs {
        if OVERLAY_XATTR_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            tracing::warn!(
                path = %path.display(),
                xattr = %display_bytes(name),
                "ignoring an overlayfs xattr from the layer archive"
            );
            continue;
        }
        if name == CAPABILITY_XATTR && metadata.owner.is_none() {
            tracing::debug!(path = %path.display(), "file capabilities need preserved ownership, skipped");
            continue;
        }
        if name.contains(&0) {
            return Err(UnpackError::refused(
                path.as_bytes(),
                "xattr name contains a nul byte",
            ));
        }
        match fs::fsetxattr(fd, &name[..], value, XattrFlags::empty()) {
            Ok(()) => {}
            Err(errno @ (Errno::OPNOTSUPP | Errno::PERM)) => tracing::warn!(
                path = %path.display(),
                xattr = %display_bytes(name),
                preserve_ownership = options.preserve_ownership,
                error = %errno,
                "cannot set xattr, skipped"
            ),
            Err(errno) => return Err(UnpackError::os("set xattr on", path.as_bytes())(errno)),
        }
    }
    Ok(())
}

/// Bytes charged per deferred directory on top of its path: the map entry, mode and time.
const DEFERRED_DIR_OVERHEAD_BYTES: usize = 64;

/// Directory modes and times, applied once every entry is in place.
pub(super) struct DeferredDirs {
    pending: HashMap<LayerPath, (Mode, Timespec)>,
    bytes: usize,
    max_bytes: usize,
}

impl DeferredDirs {
    /// Refuses to hold more than about `max_bytes` of records.
    pub(super) fn new(max_bytes: usize) -> DeferredDirs {
        DeferredDirs {
            pending: HashMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Remembers the mode and mtime of directory `path`; a later record for the same path wins.
    pub(super) fn record(
        &mut self,
        path: &LayerPath,
        metadata: &EntryMetadata,
    ) -> Result<(), UnpackError> {
        let value = (metadata.mode, metadata.mtime);
        if let Some(existing) = self.pending.get_mut(path) {
            *existing = value;
            return Ok(());
        }
        self.bytes += path.as_bytes().len() + DEFERRED_DIR_OVERHEAD_BYTES;
        if self.bytes > self.max_bytes {
            return Err(UnpackError::refused(
                path.as_bytes(),
                "the layer has too many directories",
            ));
        }
        self.pending.insert(path.clone(), value);
        Ok(())
    }

    /// Applies the recorded modes and times, deepest directories first (so a parent's mode is
    /// set after nothing more needs to pass through it). A path that is no longer a directory
    /// (replaced or whited out by a later entry) is skipped.
    pub(super) fn apply(self, root: BorrowedFd<'_>) -> Result<(), UnpackError> {
        let mut pending: Vec<_> = self.pending.into_iter().collect();
        pending.sort_by_key(|(path, _)| std::cmp::Reverse(path.depth()));
        for (path, (mode, mtime)) in pending {
            let Some((parent, name)) = path.split_last() else {
                continue;
            };
            let gone = |errno| matches!(errno, Errno::NOENT | Errno::NOTDIR | Errno::LOOP);
            let parent = match open_dir_in_root(root, parent) {
                Ok(parent) => parent,
                Err(errno) if gone(errno) => continue,
                Err(errno) => return Err(UnpackError::os("resolve directory", parent)(errno)),
            };
            let dir = match fs::openat(
                &parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => dir,
                Err(errno) if gone(errno) => continue,
                Err(errno) => {
                    return Err(UnpackError::os("open directory", path.as_bytes())(errno));
                }
            };
            fs::fchmod(&dir, mode).map_err(UnpackError::os("chmod", path.as_bytes()))?;
            let times = Timestamps {
                last_access: mtime,
                last_modification: mtime,
            };
            fs::futimens(&dir, &times).map_err(UnpackError::os("set times on", path.as_bytes()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time_keeps_nanoseconds_and_rejects_malformed_values() {
        let time = |text: &str| parse_pax_time(text.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(time("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(time("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(time("12.1234567891234"), Some((12, 123_456_789)));
        assert_eq!(time("-5.5"), None);
        assert_eq!(time("1e3"), None);
        assert_eq!(time(""), None);
        assert_eq!(time("99999999999999999999"), None);
    }
}
