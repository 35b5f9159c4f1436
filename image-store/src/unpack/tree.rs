//! Directories inside the layer root: resolving them so that nothing leads out of the root,
//! creating missing ones, and making room for a new entry.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::UnpackError;

/// `openat2` with `RESOLVE_IN_ROOT` fails with EAGAIN when a rename races the lookup; nothing
/// else writes the layer while it is unpacked, so a few retries are plenty.
const RESOLVE_RETRIES: usize = 8;

/// Mode of the parent directories an archive does not list itself.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// Opens the layer-relative directory `dir` (empty: the root) as an `O_PATH` fd. Symlinks on the
/// way, absolute ones included, resolve as if `root` were `/`, and `..` stops at `root`.
pub(super) fn open_dir_in_root(root: BorrowedFd<'_>, dir: &[u8]) -> Result<OwnedFd, Errno> {
    let dir = if dir.is_empty() { &b"."[..] } else { dir };
    let mut retries = 0;
    loop {
        let result = fs::openat2(
            root,
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        );
        match result {
            Err(Errno::AGAIN) if retries < RESOLVE_RETRIES => retries += 1,
            result => return result,
        }
    }
}

/// Opens the layer-relative directory `dir` like [`open_dir_in_root`], first creating the
/// components that do not exist, one at a time, each relative to its parent's fd. `entry` is
/// the path of the entry that needs the directory, for messages.
pub(super) fn open_or_create_dir(
    root: BorrowedFd<'_>,
    dir: &[u8],
    entry: &[u8],
) -> Result<OwnedFd, UnpackError> {
    match open_dir_in_root(root, dir) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(errno) => return Err(UnpackError::os("resolve directory", dir)(errno)),
    }
    let mut current =
        open_dir_in_root(root, b"").map_err(UnpackError::os("resolve directory", b"/"))?;
    let mut creating = false;
    let mut prefix_len = 0;
    for component in dir.split(|&byte| byte == b'/') {
        if prefix_len > 0 {
            prefix_len += 1; // the '/' before this component
        }
        prefix_len += component.len();
        let prefix = &dir[..prefix_len];
        if !creating {
            match open_dir_in_root(root, prefix) {
                Ok(fd) => {
                    current = fd;
                    continue;
                }
                // `current` resolved, so this component is what is missing.
                Err(Errno::NOENT) => creating = true,
                Err(errno) => return Err(UnpackError::os("resolve directory", prefix)(errno)),
            }
        }
        current = create_dir(current.as_fd(), component, prefix, entry)?;
    }
    Ok(current)
}

/// Creates directory `name` (layer path `path`) in `parent` with [`IMPLICIT_DIR_MODE`] and
/// returns it opened.
fn create_dir(
    parent: BorrowedFd<'_>,
    name: &[u8],
    path: &[u8],
    entry: &[u8],
) -> Result<OwnedFd, UnpackError> {
    match fs::mkdirat(parent, name, Mode::from_raw_mode(IMPLICIT_DIR_MODE)) {
        Ok(()) => {}
        // The lookup said "no such entry" yet a name is there: a symlink to nowhere.
        Err(Errno::EXIST) => {
            return Err(UnpackError::refused(
                entry,
                "a parent directory is a dangling symlink",
            ));
        }
        Err(errno) => return Err(UnpackError::os("create directory", path)(errno)),
    }
    let created = fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(UnpackError::os("open directory", path))?;
    // mkdirat's mode went through the umask.
    fs::fchmod(&created, Mode::from_raw_mode(IMPLICIT_DIR_MODE))
        .map_err(UnpackError::os("chmod", path))?;
    Ok(created)
}

/// Makes room for a new entry named `name` in `dir`: a non-directory there is unlinked (a
/// symlink itself, never what it points to), an empty directory removed, a non-empty one refused.
/// `path` is the entry's layer path, for messages.
pub(super) fn remove_existing(
    dir: BorrowedFd<'_>,
    name: &[u8],
    path: &[u8],
) -> Result<(), UnpackError> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => match fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(()),
            Err(Errno::NOTEMPTY | Errno::EXIST) => Err(UnpackError::refused(
                path,
                "it would replace a non-empty directory",
            )),
            Err(errno) => Err(UnpackError::os("remove existing directory", path)(errno)),
        },
        Err(errno) => Err(UnpackError::os("remove existing entry", path)(errno)),
    }
}
