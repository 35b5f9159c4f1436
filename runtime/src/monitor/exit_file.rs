//! The exit file `<dir>/exit`: how the container ended, written once by the monitor, atomically.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::libc;
use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// The name of the exit file in the container run dir.
pub const EXIT_FILE: &str = "exit";

/// The temporary name it is written under before the rename.
const EXIT_TEMP_FILE: &str = "exit.tmp";

/// More than any exit file the monitor writes.
const MAX_EXIT_FILE_BYTES: u64 = 4096;

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number for a death by signal.
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When the monitor reaped it, in nanoseconds since the Unix epoch.
    pub finished_at: i64,
    /// Whether the memory cgroup's OOM killer killed a process of the container while it ran.
    pub oom_killed: bool,
}

impl ExitStatus {
    /// The status of a process that exited with `code`.
    pub fn exited(code: i32, finished_at: i64, oom_killed: bool) -> Self {
        ExitStatus {
            exit_code: code,
            signal: None,
            finished_at,
            oom_killed,
        }
    }

    /// The status of a process killed by `signal`: exit code 128 + signal, like a shell says.
    pub fn signaled(signal: i32, finished_at: i64, oom_killed: bool) -> Self {
        ExitStatus {
            exit_code: 128 + signal,
            signal: Some(signal),
            finished_at,
            oom_killed,
        }
    }
}

/// Writes `<dir>/exit`: to `exit.tmp` first, fsynced, renamed over `exit`, then the dir fsynced,
/// so a reader sees no file or a whole one.
pub(crate) fn write_exit(dir: &Path, status: &ExitStatus) -> Result<(), RuntimeError> {
    let temp = dir.join(EXIT_TEMP_FILE);
    let path = dir.join(EXIT_FILE);
    let json = serde_json::to_vec(status).map_err(|err| RuntimeError::Io {
        op: "encode",
        path: path.clone(),
        source: err.into(),
    })?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&temp)
        .map_err(RuntimeError::io("create", &temp))?;
    file.write_all(&json)
        .map_err(RuntimeError::io("write", &temp))?;
    file.sync_all().map_err(RuntimeError::io("fsync", &temp))?;
    drop(file);
    std::fs::rename(&temp, &path).map_err(RuntimeError::io("rename", &temp))?;
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(RuntimeError::io("fsync", dir))
}

/// Reads `<dir>/exit`: `None` if the monitor has not written it (yet).
pub fn read_exit(dir: &Path) -> Result<Option<ExitStatus>, RuntimeError> {
    let path = dir.join(EXIT_FILE);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RuntimeError::Io {
                op: "open",
                path,
                source,
            });
        }
    };
    let mut json = Vec::new();
    file.take(MAX_EXIT_FILE_BYTES)
        .read_to_end(&mut json)
        .map_err(RuntimeError::io("read", &path))?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|err| RuntimeError::Io {
            op: "parse",
            path,
            source: err.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeErrorKind;

    #[test]
    fn exit_file_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        let status = ExitStatus::signaled(9, 1_795_342_272_123_456_789, true);
        write_exit(dir.path(), &status).unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(status));
        assert!(!dir.path().join(EXIT_TEMP_FILE).exists());
    }

    #[test]
    fn exit_file_has_the_documented_fields() {
        let dir = tempfile::tempdir().unwrap();
        write_exit(dir.path(), &ExitStatus::exited(3, 17, false)).unwrap();
        let text = std::fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap();
        assert_eq!(
            text,
            r#"{"exit_code":3,"signal":null,"finished_at":17,"oom_killed":false}"#
        );
        write_exit(dir.path(), &ExitStatus::signaled(15, 18, false)).unwrap();
        let status = read_exit(dir.path()).unwrap().unwrap();
        assert_eq!((status.exit_code, status.signal), (143, Some(15)));
    }

    #[test]
    fn a_corrupt_exit_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EXIT_FILE), "{\"exit_code\":").unwrap();
        let err = read_exit(dir.path()).unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::Internal);
        assert!(err.to_string().starts_with("parse "), "{err}");
        assert!(err.to_string().contains("exit"), "{err}");
    }
}
