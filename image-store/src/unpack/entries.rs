//! Creating each kind of archive entry under the layer root.
//!
//! Every entry goes the same way: normalize its path, resolve (or create) its parent directory
//! in-root, make room for it (unlinking a non-directory, never following it), create the last
//! component with a no-follow `*at` call, then apply its metadata.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use tar::EntryType;

use super::metadata::{
    DeferredDirs, EntryMetadata, set_owner, set_owner_at, set_times_at, set_xattrs,
};
use super::path::{LayerPath, check_length_and_nul, display_bytes};
use super::tree::{open_dir_in_root, open_or_create_dir, remove_existing};
use super::whiteout::{apply_whiteout, is_whiteout};
use super::{Limits, UnpackError, UnpackOptions, UnpackStats};

/// Size of the buffer file data is copied through.
const COPY_BUFFER_BYTES: usize = 128 * 1024;

/// Mode a directory entry is created with until its own mode is applied at the end.
const DIR_MODE_WHILE_UNPACKING: u32 = 0o700;

/// Mode a regular file is created with until its own mode is applied.
const FILE_MODE_WHILE_WRITING: u32 = 0o600;

/// The state of one layer unpack.
pub(super) struct Unpacker {
    root: OwnedFd,
    options: UnpackOptions,
    deferred_dirs: DeferredDirs,
    copy_buffer: Vec<u8>,
    pub(super) stats: UnpackStats,
}

/// An entry's place in the layer: its normalized path, and the parent and last component of it.
struct Target<'p> {
    path: &'p LayerPath,
    parent: &'p [u8],
    name: &'p [u8],
}

impl Unpacker {
    pub(super) fn new(root: OwnedFd, options: UnpackOptions, limits: Limits) -> Unpacker {
        Unpacker {
            root,
            options,
            deferred_dirs: DeferredDirs::new(limits.max_deferred_dir_bytes),
            copy_buffer: vec![0; COPY_BUFFER_BYTES],
            stats: UnpackStats::default(),
        }
    }

    /// Unpacks one entry. Its data may be left partly unread.
    pub(super) fn unpack_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let entry_type = entry.header().entry_type();
        if entry_type == EntryType::XGlobalHeader {
            // Never ask the tar crate for its records: it would read them whole.
            tracing::debug!("skipping pax global header");
            return Ok(());
        }
        let path = {
            let raw = entry.path_bytes();
            LayerPath::normalize(&raw)
                .map_err(|problem| UnpackError::refused(&raw, problem.reason()))?
        };
        let Some((parent, name)) = path.split_last() else {
            if entry_type == EntryType::Directory {
                tracing::debug!("skipping the layer root directory entry");
                return Ok(());
            }
            return Err(UnpackError::refused(
                b"/",
                "a non-directory entry names the layer root",
            ));
        };
        if is_whiteout(name) {
            return apply_whiteout(self.root.as_fd(), &path);
        }
        let target = Target {
            path: &path,
            parent,
            name,
        };
        match entry_type {
            EntryType::Directory => self.directory(entry, &target),
            // The tar crate expands GNU sparse files to their full contents.
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular_file(entry, &target)
            }
            EntryType::Symlink => self.symlink(entry, &target),
            EntryType::Link => self.hardlink(entry, &target),
            EntryType::Char => self.special_file(entry, &target, FileType::CharacterDevice),
            EntryType::Block => self.special_file(entry, &target, FileType::BlockDevice),
            EntryType::Fifo => self.special_file(entry, &target, FileType::Fifo),
            other => {
                tracing::warn!(
                    path = %path.display(),
                    entry_type = other.as_byte(),
                    "skipping tar entry of unsupported type"
                );
                Ok(())
            }
        }
    }

    /// Applies the directory modes and times held back until now.
    pub(super) fn finish(self) -> Result<UnpackStats, UnpackError> {
        self.deferred_dirs.apply(self.root.as_fd())?;
        Ok(self.stats)
    }

    fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    fn read_metadata<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        target: &Target<'_>,
    ) -> Result<EntryMetadata, UnpackError> {
        EntryMetadata::read(entry, target.path, self.options.preserve_ownership)
    }

    /// A directory that already exists stays (only its metadata changes); anything else in its
    /// place is replaced. Mode and times wait for the end of the layer.
    fn directory<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        target: &Target<'_>,
    ) -> Result<(), UnpackError> {
        let metadata = self.read_metadata(entry, target)?;
        let path = target.path.as_bytes();
        let parent = open_or_create_dir(self.root(), target.parent, path)?;
        let mkdir = || {
            fs::mkdirat(
                &parent,
                target.name,
                Mode::from_raw_mode(DIR_MODE_WHILE_UNPACKING),
            )
        };
        match mkdir() {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let existing = fs::statat(&parent, target.name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(UnpackError::os("stat", path))?;
                if FileType::from_raw_mode(existing.st_mode) != FileType::Directory {
                    remove_existing(parent.as_fd(), target.name, path)?;
                    mkdir().map_err(UnpackError::os("create directory", path))?;
                }
            }
            Err(errno) => return Err(UnpackError::os("create directory", path)(errno)),
        }
        let dir = fs::openat(
            &parent,
            target.name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(UnpackError::os("open directory", path))?;
        set_owner(dir.as_fd(), &metadata, target.path)?;
        set_xattrs(dir.as_fd(), &metadata, target.path, &self.options)?;
        self.deferred_dirs.record(target.path, &metadata)
    }

    /// A new file (`O_CREAT|O_EXCL|O_NOFOLLOW` after unlinking whatever was there, so nothing is
    /// ever written through a symlink), its data streamed in.
    fn regular_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        target: &Target<'_>,
    ) -> Result<(), UnpackError> {
        let metadata = self.read_metadata(entry, target)?;
        let path = target.path.as_bytes();
        let parent = open_or_create_dir(self.root(), target.parent, path)?;
        remove_existing(parent.as_fd(), target.name, path)?;
        let mut file = File::from(
            fs::openat(
                &parent,
                target.name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(FILE_MODE_WHILE_WRITING),
            )
            .map_err(UnpackError::os("create file", path))?,
        );
        let expected = entry.size();
        let written = copy_data(entry, &mut file, &mut self.copy_buffer, target.path)?;
        if written != expected {
            return Err(UnpackError::Truncated {
                path: target.path.display(),
                written,
                expected,
            });
        }
        self.stats.bytes += written;
        set_owner(file.as_fd(), &metadata, target.path)?;
        fs::fchmod(&file, metadata.mode).map_err(UnpackError::os("chmod", path))?;
        set_xattrs(file.as_fd(), &metadata, target.path, &self.options)?;
        fs::futimens(&file, &metadata.times()).map_err(UnpackError::os("set times on", path))
    }

    /// A symlink, its target stored as is: it is only ever resolved in-root, by the kernel.
    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        target: &Target<'_>,
    ) -> Result<(), UnpackError> {
        let metadata = self.read_metadata(entry, target)?;
        let path = target.path.as_bytes();
        let link_target = link_target(entry, target.path)?;
        let parent = open_or_create_dir(self.root(), target.parent, path)?;
        remove_existing(parent.as_fd(), target.name, path)?;
        fs::symlinkat(&link_target[..], &parent, target.name)
            .map_err(UnpackError::os("create symlink", path))?;
        set_owner_at(parent.as_fd(), target.name, &metadata, target.path)?;
        set_times_at(parent.as_fd(), target.name, &metadata, target.path)
    }

    /// A hardlink to another file of this layer, resolved in-root like any path. The link
    /// shares the target's inode, hence its metadata.
    fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        target: &Target<'_>,
    ) -> Result<(), UnpackError> {
        let path = target.path.as_bytes();
        let raw_link_target = link_target(entry, target.path)?;
        let link_target = LayerPath::normalize(&raw_link_target)
            .map_err(|problem| UnpackError::refused(path, problem.link_target_reason()))?;
        let Some((link_parent, link_name)) = link_target.split_last() else {
            return Err(UnpackError::refused(path, "hardlink to the layer root"));
        };
        let missing = || UnpackError::HardlinkTargetMissing {
            path: target.path.display(),
            target: display_bytes(&raw_link_target),
        };
        let link_dir = match open_dir_in_root(self.root(), link_parent) {
            Ok(dir) => dir,
            Err(Errno::NOENT | Errno::NOTDIR) => return Err(missing()),
            Err(errno) => return Err(UnpackError::os("resolve hardlink target of", path)(errno)),
        };
        let linked = match fs::statat(&link_dir, link_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(linked) => linked,
            Err(Errno::NOENT) => return Err(missing()),
            Err(errno) => return Err(UnpackError::os("stat hardlink target of", path)(errno)),
        };
        if FileType::from_raw_mode(linked.st_mode) == FileType::Directory {
            return Err(UnpackError::refused(path, "hardlink to a directory"));
        }
        let parent = open_or_create_dir(self.root(), target.parent, path)?;
        if let Ok(existing) = fs::statat(&parent, target.name, AtFlags::SYMLINK_NOFOLLOW)
            && (existing.st_dev, existing.st_ino) == (linked.st_dev, linked.st_ino)
        {
            // Already that very file (a repeated entry, or a link to itself).
            return Ok(());
        }
        remove_existing(parent.as_fd(), target.name, path)?;
        fs::linkat(&link_dir, link_name, &parent, target.name, AtFlags::empty())
            .map_err(UnpackError::os("create hardlink", path))
    }

    /// A char/block device (only when devices are allowed) or a fifo.
    fn special_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        target: &Target<'_>,
        file_type: FileType,
    ) -> Result<(), UnpackError> {
        let is_device = file_type != FileType::Fifo;
        if is_device && !self.options.allow_devices {
            return Err(UnpackError::DeviceNotAllowed {
                path: target.path.display(),
            });
        }
        let metadata = self.read_metadata(entry, target)?;
        let device = if is_device {
            let invalid = |source| UnpackError::InvalidHeader {
                path: target.path.display(),
                field: "device number",
                source,
            };
            let header = entry.header();
            let major = header.device_major().map_err(invalid)?.unwrap_or(0);
            let minor = header.device_minor().map_err(invalid)?.unwrap_or(0);
            fs::makedev(major, minor)
        } else {
            0
        };
        let path = target.path.as_bytes();
        let parent = open_or_create_dir(self.root(), target.parent, path)?;
        remove_existing(parent.as_fd(), target.name, path)?;
        fs::mknodat(&parent, target.name, file_type, metadata.mode, device)
            .map_err(UnpackError::os("create special file", path))?;
        set_owner_at(parent.as_fd(), target.name, &metadata, target.path)?;
        // mknodat's mode went through the umask. A device cannot be opened to fchmod it (opening
        // one has side effects) and rustix has no fchmodat2(AT_SYMLINK_NOFOLLOW), so this
        // chmodat follows: `name` is the node mknodat made just above, in a directory only this
        // unpack writes, so there is no symlink to follow.
        fs::chmodat(&parent, target.name, metadata.mode, AtFlags::empty())
            .map_err(UnpackError::os("chmod", path))?;
        set_times_at(parent.as_fd(), target.name, &metadata, target.path)
    }
}

/// The link target of a symlink or hardlink entry, length- and NUL-checked.
fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    path: &LayerPath,
) -> Result<Vec<u8>, UnpackError> {
    let Some(link_target) = entry.link_name_bytes() else {
        return Err(UnpackError::refused(
            path.as_bytes(),
            "link without a target",
        ));
    };
    if link_target.is_empty() {
        return Err(UnpackError::refused(
            path.as_bytes(),
            "link without a target",
        ));
    }
    check_length_and_nul(&link_target)
        .map_err(|problem| UnpackError::refused(path.as_bytes(), problem.link_target_reason()))?;
    Ok(link_target.into_owned())
}

/// Streams the entry's data into `file`; returns how many bytes it had.
fn copy_data<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    file: &mut File,
    buffer: &mut [u8],
    path: &LayerPath,
) -> Result<u64, UnpackError> {
    let mut written = 0u64;
    loop {
        let read = match entry.read(buffer) {
            Ok(0) => return Ok(written),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            // The stream failed, not the disk: the layer (or its download) is at fault.
            Err(source) => {
                return Err(UnpackError::Archive {
                    after: path.display(),
                    source,
                });
            }
        };
        file.write_all(&buffer[..read])
            .map_err(|source| UnpackError::Io {
                op: "write file",
                path: path.display(),
                source,
            })?;
        written += read as u64;
    }
}
