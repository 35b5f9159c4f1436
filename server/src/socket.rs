//! The CRI socket: one daemon per socket path, a stale file replaced, a live server left alone.
//!
//! Ownership of the path is an exclusive `flock` on `<socket>.lock`, held for the daemon's
//! lifetime: the kernel drops it when the process dies however it dies, so the lock is never stale
//! and two daemons starting at once cannot both win. With the lock held, a socket file still on
//! the path was left by a dead daemon and is replaced. A path that answers connections anyway (a
//! server that does not take the lock) or that is not a socket is refused, never deleted.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::net::UnixListener;

/// Ownership of the CRI socket path: while it lives, the lock is held; when it is dropped, the
/// socket file is removed and then the lock released.
#[derive(Debug)]
pub struct SocketOwnership {
    path: PathBuf,
    _lock: File,
}

impl Drop for SocketOwnership {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the CRI socket");
        }
    }
}

/// Takes the path's lock and binds the socket with mode 0660. A missing parent directory is
/// created with mode 0700; an existing one is left as it is.
pub fn bind(path: &Path) -> anyhow::Result<(UnixListener, SocketOwnership)> {
    if let Some(parent) = path.parent().filter(|p| !p.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("create socket directory {}", parent.display()))?;
    }
    let lock = take_lock(path)?;
    remove_stale(path)?;
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    let ownership = SocketOwnership {
        path: path.to_path_buf(),
        _lock: lock,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", path.display()))?;
    Ok((listener, ownership))
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn take_lock(socket: &Path) -> anyhow::Result<File> {
    let path = lock_path(socket);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "another crius is serving {} (it holds {})",
            socket.display(),
            path.display()
        ),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("lock {}", path.display())),
    }
}

fn remove_stale(socket: &Path) -> anyhow::Result<()> {
    let metadata = match std::fs::symlink_metadata(socket) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("stat {}", socket.display())),
    };
    if !metadata.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            socket.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!(
            "{} is served by a live process that is not a crius daemon",
            socket.display()
        );
    }
    tracing::info!(path = %socket.display(), "replacing a stale CRI socket");
    std::fs::remove_file(socket)
        .with_context(|| format!("remove stale socket {}", socket.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_bind_on_the_same_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crius.sock");
        let _first = bind(&path).unwrap();
        let err = bind(&path).unwrap_err().to_string();
        assert!(err.contains("another crius is serving"), "{err}");
    }

    #[tokio::test]
    async fn stale_socket_is_replaced_and_gets_mode_0660() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crius.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let socket = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(socket);
        assert!(!path.exists(), "dropping the ownership removes the socket");
    }

    #[tokio::test]
    async fn live_socket_without_the_lock_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crius.sock");
        let _other_server = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = bind(&path).unwrap_err().to_string();
        assert!(err.contains("live process"), "{err}");
        assert!(path.exists());
    }

    #[tokio::test]
    async fn regular_file_on_the_path_is_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crius.sock");
        std::fs::write(&path, "precious").unwrap();
        let err = bind(&path).unwrap_err().to_string();
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }

    #[tokio::test]
    async fn missing_socket_directory_is_created_0700() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/crius/crius.sock");
        let _socket = bind(&path).unwrap();
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
