//! OCI whiteouts turned into their overlayfs form.
//!
//! `D/.wh.<name>` (delete `<name>` of the layers below) becomes a 0/0 char device `D/<name>`;
//! `D/.wh..wh..opq` (hide everything below in `D`) becomes `trusted.overlay.opaque=y` on `D`.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self, FileType, Mode, OFlags, XattrFlags};
use rustix::io::Errno;

use super::UnpackError;
use super::path::{LayerPath, display_bytes};
use super::tree::{open_or_create_dir, remove_existing};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// aufs keeps its own metadata under this prefix; it means nothing to overlayfs.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether `name` (a last path component) marks a whiteout rather than a file.
pub(super) fn is_whiteout(name: &[u8]) -> bool {
    name.starts_with(WHITEOUT_PREFIX)
}

/// Applies the whiteout entry `path` (its last component starts with `.wh.`).
pub(super) fn apply_whiteout(root: BorrowedFd<'_>, path: &LayerPath) -> Result<(), UnpackError> {
    let Some((parent, name)) = path.split_last() else {
        return Ok(());
    };
    if name == OPAQUE_MARKER {
        return mark_opaque(root, parent, path);
    }
    if name.starts_with(AUFS_META_PREFIX) {
        tracing::warn!(path = %path.display(), "skipping aufs metadata entry");
        return Ok(());
    }
    let hidden = &name[WHITEOUT_PREFIX.len()..];
    if matches!(hidden, b"" | b"." | b"..") {
        return Err(UnpackError::refused(
            path.as_bytes(),
            "whiteout of an empty, `.` or `..` name",
        ));
    }
    let dir = open_or_create_dir(root, parent, path.as_bytes())?;
    // A same-layer entry under that name is hidden too.
    remove_existing(dir.as_fd(), hidden, path.as_bytes())?;
    match fs::mknodat(
        &dir,
        hidden,
        FileType::CharacterDevice,
        Mode::empty(),
        fs::makedev(0, 0),
    ) {
        Ok(()) => Ok(()),
        Err(Errno::PERM) => Err(UnpackError::WhiteoutNeedsRoot {
            path: path.display(),
        }),
        Err(errno) => Err(UnpackError::os("create whiteout for", path.as_bytes())(
            errno,
        )),
    }
}

/// Marks directory `dir` (layer-relative) opaque.
fn mark_opaque(root: BorrowedFd<'_>, dir: &[u8], path: &LayerPath) -> Result<(), UnpackError> {
    let resolved = open_or_create_dir(root, dir, path.as_bytes())?;
    // The resolved fd is O_PATH; xattrs need a real one on the same directory.
    let opened = fs::openat(
        &resolved,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(UnpackError::os("open directory", dir))?;
    match fs::fsetxattr(&opened, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::PERM) => Err(UnpackError::WhiteoutNeedsRoot {
            path: path.display(),
        }),
        Err(errno) => Err(UnpackError::Io {
            op: "mark opaque",
            path: display_bytes(if dir.is_empty() { b"/" } else { dir }),
            source: errno.into(),
        }),
    }
}
