//! A container's root filesystem: an overlay of the image's layer dirs (read-only) under a
//! writable layer of its own (`<layer dir>/upper` and `work`), mounted on the bundle's `rootfs`.
//!
//! mount(2) takes the options in one page, which a long list of layer paths overflows; such a
//! list goes through the new mount API instead, one `lowerdir+` per layer (Linux 6.8).

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fd::AsFd;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::RuntimeError;

/// The size limit of mount(2)'s option string, its terminating NUL included.
const MOUNT_OPTIONS_LIMIT: usize = 4096;

/// The directories of a container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableLayer {
    pub upper: PathBuf,
    pub work: PathBuf,
    /// A lower layer for an image without layers (overlay needs one).
    empty: PathBuf,
}

impl WritableLayer {
    pub fn at(layer_dir: &Path) -> Self {
        WritableLayer {
            upper: layer_dir.join("upper"),
            work: layer_dir.join("work"),
            empty: layer_dir.join("empty"),
        }
    }
}

/// Mounts the overlay of `layers` (base first, as images list them) and the writable layer under
/// `layer_dir` (created) on `target` (created).
pub fn mount(layers: &[PathBuf], layer_dir: &Path, target: &Path) -> Result<(), RuntimeError> {
    let writable = WritableLayer::at(layer_dir);
    create_dir(layer_dir, 0o700)?;
    // The upper dir's attributes are those of the container's `/`.
    create_dir(&writable.upper, 0o755)?;
    create_dir(&writable.work, 0o700)?;
    create_dir(target, 0o755)?;
    let mut lowers: Vec<&Path> = layers.iter().rev().map(PathBuf::as_path).collect();
    if lowers.is_empty() {
        create_dir(&writable.empty, 0o755)?;
        lowers.push(&writable.empty);
    }
    for path in lowers
        .iter()
        .copied()
        .chain([writable.upper.as_path(), &writable.work])
    {
        let text = path.to_string_lossy();
        if text.contains([',', ':', '\n']) || text.contains('\\') {
            return Err(RuntimeError::InvalidArgument(format!(
                "overlay layer path {text:?} contains a separator character"
            )));
        }
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers
            .iter()
            .map(|p| p.to_string_lossy())
            .collect::<Vec<_>>()
            .join(":"),
        writable.upper.display(),
        writable.work.display()
    );
    if options.len() < MOUNT_OPTIONS_LIMIT {
        let options = std::ffi::CString::new(options).map_err(|_| {
            RuntimeError::InvalidArgument("overlay layer paths contain a NUL byte".into())
        })?;
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            Some(options.as_c_str()),
        )
        .map_err(|e| RuntimeError::io("mount overlay on", target)(e.into()))
    } else {
        mount_layer_by_layer(&lowers, &writable, target)
    }
}

/// The new mount API: every lower layer its own `lowerdir+`, so no length limit.
fn mount_layer_by_layer(
    lowers: &[&Path],
    writable: &WritableLayer,
    target: &Path,
) -> Result<(), RuntimeError> {
    let fail =
        |op: &'static str| move |e: rustix::io::Errno| RuntimeError::io(op, target)(e.into());
    let context = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(fail("open an overlay context for"))?;
    for lower in lowers {
        rustix::mount::fsconfig_set_string(context.as_fd(), "lowerdir+", *lower)
            .map_err(fail("add a lower layer (lowerdir+ needs Linux 6.8) for"))?;
    }
    rustix::mount::fsconfig_set_string(context.as_fd(), "upperdir", &writable.upper)
        .map_err(fail("set the upper dir of"))?;
    rustix::mount::fsconfig_set_string(context.as_fd(), "workdir", &writable.work)
        .map_err(fail("set the work dir of"))?;
    rustix::mount::fsconfig_create(context.as_fd()).map_err(fail("create the overlay for"))?;
    let mount = rustix::mount::fsmount(
        context.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::empty(),
    )
    .map_err(fail("make a mount of the overlay for"))?;
    rustix::mount::move_mount(
        mount.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(fail("attach the overlay on"))
}

/// Unmounts the rootfs at `target`, if mounted; a missing target is fine.
pub fn unmount(target: &Path) -> Result<(), RuntimeError> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(RuntimeError::io("unmount", target)(e.into())),
    }
}

/// Bytes and inodes the writable layer holds (what the container wrote), walking `upper`.
pub fn writable_usage(layer_dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut inodes = 0;
    let mut pending = vec![WritableLayer::at(layer_dir).upper];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            inodes += 1;
            bytes += metadata.blocks() * 512;
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

/// Deletes a directory tree (a writable layer, a run dir once unmounted); a missing one is fine.
pub fn remove_tree(dir: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io("remove", dir)(e)),
    }
}

fn create_dir(path: &Path, mode: u32) -> Result<(), RuntimeError> {
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(RuntimeError::io("create directory", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn layer(base: &Path, name: &str, file: &str, content: &str) -> PathBuf {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), content).unwrap();
        dir
    }

    #[test]
    fn upper_layers_hide_lower_ones_and_writes_go_to_the_writable_layer() {
        if !is_root() {
            eprintln!("skipping: overlay mounts need root");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let layers = vec![
            layer(base.path(), "l0", "f", "base"),
            layer(base.path(), "l1", "f", "top"),
        ];
        let target = base.path().join("rootfs");
        let layer_dir = base.path().join("container");
        mount(&layers, &layer_dir, &target).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("f")).unwrap(), "top");
        std::fs::write(target.join("new"), "x").unwrap();
        assert!(layer_dir.join("upper/new").exists());
        assert!(writable_usage(&layer_dir).1 >= 1);
        unmount(&target).unwrap();
        assert!(!target.join("f").exists());
        unmount(&target).unwrap();
        remove_tree(&layer_dir).unwrap();
        assert!(!layer_dir.exists());
    }

    #[test]
    fn a_layer_list_longer_than_a_page_still_mounts() {
        if !is_root() {
            eprintln!("skipping: overlay mounts need root");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let long = "d".repeat(100);
        let layers: Vec<PathBuf> = (0..60)
            .map(|i| layer(base.path(), &format!("{long}{i}"), &format!("f{i}"), "x"))
            .collect();
        let target = base.path().join("rootfs");
        let layer_dir = base.path().join("container");
        mount(&layers, &layer_dir, &target).unwrap();
        assert!(target.join("f0").exists() && target.join("f59").exists());
        unmount(&target).unwrap();
    }

    #[test]
    fn an_image_without_layers_gets_an_empty_root() {
        if !is_root() {
            eprintln!("skipping: overlay mounts need root");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("rootfs");
        mount(&[], &base.path().join("container"), &target).unwrap();
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        unmount(&target).unwrap();
    }
}
