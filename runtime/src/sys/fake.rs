//! Hand-written fakes of the `sys` traits: they record what was asked and fail on request.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::mount::MountOps;
use super::namespace::NamespaceOps;
use super::process::ProcessOps;

/// Records namespace operations; `fail` names one operation ("unshare", "set_hostname",
/// "set_loopback_up", "start_pid_init", "stop_pid_init") that returns the given errno instead.
/// `start_pid_init` "starts" [`FakeNamespaces::INIT_PID`].
#[derive(Debug, Default)]
pub(crate) struct FakeNamespaces {
    pub unshared: Vec<CloneFlags>,
    pub hostname: Option<String>,
    pub loopback_up: bool,
    pub init_running: Option<u32>,
    pub stopped: Vec<u32>,
    pub fail: Option<(&'static str, Errno)>,
}

impl FakeNamespaces {
    pub const INIT_PID: u32 = 4242;

    fn check(&self, op: &str) -> Result<(), Errno> {
        match self.fail {
            Some((failing, errno)) if failing == op => Err(errno),
            _ => Ok(()),
        }
    }
}

impl NamespaceOps for FakeNamespaces {
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        self.check("unshare")?;
        self.unshared.push(flags);
        Ok(())
    }

    fn set_hostname(&mut self, name: &str) -> Result<(), Errno> {
        self.check("set_hostname")?;
        self.hostname = Some(name.to_string());
        Ok(())
    }

    fn set_loopback_up(&mut self) -> Result<(), Errno> {
        self.check("set_loopback_up")?;
        self.loopback_up = true;
        Ok(())
    }

    fn start_pid_init(&mut self) -> Result<u32, Errno> {
        self.check("start_pid_init")?;
        self.init_running = Some(Self::INIT_PID);
        Ok(Self::INIT_PID)
    }

    fn stop_pid_init(&mut self, pid: u32) -> Result<(), Errno> {
        self.check("stop_pid_init")?;
        self.stopped.push(pid);
        if self.init_running == Some(pid) {
            self.init_running = None;
        }
        Ok(())
    }
}

/// Records SIGKILLs; killing a pid removes `<proc_root>/<pid>` (the process is gone), unless
/// `survives` is set.
#[derive(Debug, Default)]
pub(crate) struct FakeProcesses {
    pub proc_root: PathBuf,
    pub killed: RefCell<Vec<u32>>,
    pub survives: bool,
}

impl ProcessOps for FakeProcesses {
    fn kill(&self, pid: u32) -> Result<(), Errno> {
        let dir = self.proc_root.join(pid.to_string());
        if !dir.exists() {
            return Err(Errno::ESRCH);
        }
        self.killed.borrow_mut().push(pid);
        if !self.survives {
            std::fs::remove_dir_all(dir).map_err(|_| Errno::EIO)?;
        }
        Ok(())
    }
}

/// A mount table of (source, target) pairs; binding onto `fail_bind_onto` fails with `EPERM`.
#[derive(Debug, Default)]
pub(crate) struct FakeMounts {
    pub mounted: RefCell<Vec<(PathBuf, PathBuf)>>,
    pub fail_bind_onto: Option<PathBuf>,
}

impl FakeMounts {
    pub(crate) fn targets(&self) -> Vec<PathBuf> {
        self.mounted
            .borrow()
            .iter()
            .map(|(_, target)| target.clone())
            .collect()
    }
}

impl MountOps for FakeMounts {
    fn bind(&self, source: &Path, target: &Path) -> Result<(), Errno> {
        if self.fail_bind_onto.as_deref() == Some(target) {
            return Err(Errno::EPERM);
        }
        if !target.exists() {
            return Err(Errno::ENOENT);
        }
        self.mounted
            .borrow_mut()
            .push((source.to_path_buf(), target.to_path_buf()));
        Ok(())
    }

    fn unmount_detach(&self, target: &Path) -> Result<(), Errno> {
        let mut mounted = self.mounted.borrow_mut();
        match mounted.iter().rposition(|(_, t)| t == target) {
            Some(index) => {
                mounted.remove(index);
                Ok(())
            }
            None if target.symlink_metadata().is_err() => Err(Errno::ENOENT),
            None => Err(Errno::EINVAL),
        }
    }
}
