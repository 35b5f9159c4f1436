//! Bind mounts and detaching unmounts.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

pub(crate) trait MountOps {
    /// Bind-mounts `source` onto `target` (a non-recursive `MS_BIND`).
    fn bind(&self, source: &Path, target: &Path) -> Result<(), Errno>;
    /// Lazily unmounts whatever is mounted on `target` (`MNT_DETACH`), without following a
    /// symlink at `target`. `EINVAL` means nothing is mounted there.
    fn unmount_detach(&self, target: &Path) -> Result<(), Errno>;
}

pub(crate) struct LinuxMounts;

impl MountOps for LinuxMounts {
    fn bind(&self, source: &Path, target: &Path) -> Result<(), Errno> {
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }

    fn unmount_detach(&self, target: &Path) -> Result<(), Errno> {
        nix::mount::umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
    }
}
