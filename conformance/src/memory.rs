//! Memory as procfs reports it, for the benchmarks: a process's resident set (`VmRSS`), its
//! resident, proportional and unique set sizes (`smaps_rollup`), the node's `MemAvailable`, and the
//! process facts needed to tell which processes to count (parent, executable).
//!
//! Every read goes through a [`Procfs`] rooted at `/proc` on the host, or at a directory of fake
//! files in tests.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// A process's resident set, its proportional share of it and the part only it maps, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessMemory {
    /// `Rss`: every page mapped and resident, shared pages counted in full.
    pub rss_bytes: u64,
    /// `Pss`: shared pages divided among the processes that map them.
    pub pss_bytes: u64,
    /// USS, `Private_Clean` + `Private_Dirty`: what the process alone maps, freed when it exits.
    pub uss_bytes: u64,
}

/// The procfs the readings come from.
#[derive(Debug, Clone)]
pub struct Procfs {
    root: PathBuf,
}

impl Procfs {
    /// The host's `/proc`.
    pub fn host() -> Self {
        Self::at(Path::new("/proc"))
    }

    /// A procfs mounted (or faked) at `root`.
    pub fn at(root: &Path) -> Self {
        Procfs {
            root: root.to_path_buf(),
        }
    }

    fn read(&self, relative: &str) -> anyhow::Result<String> {
        let path = self.root.join(relative);
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    }

    /// `MemAvailable` of `/proc/meminfo`: what the kernel estimates could be allocated without
    /// swapping, page cache that can be dropped included.
    pub fn mem_available_bytes(&self) -> anyhow::Result<u64> {
        kib_field(&self.read("meminfo")?, "MemAvailable:").context("MemAvailable in meminfo")
    }

    /// `VmRSS` of `/proc/<pid>/status`.
    pub fn vm_rss_bytes(&self, pid: u32) -> anyhow::Result<u64> {
        kib_field(&self.read(&format!("{pid}/status"))?, "VmRSS:")
            .with_context(|| format!("VmRSS of process {pid}"))
    }

    /// `Rss`, `Pss` and `Private_Clean` + `Private_Dirty` of `/proc/<pid>/smaps_rollup`.
    pub fn memory(&self, pid: u32) -> anyhow::Result<ProcessMemory> {
        let rollup = self.read(&format!("{pid}/smaps_rollup"))?;
        let field = |name: &str| {
            kib_field(&rollup, name).with_context(|| format!("{name} of process {pid}"))
        };
        Ok(ProcessMemory {
            rss_bytes: field("Rss:")?,
            pss_bytes: field("Pss:")?,
            uss_bytes: field("Private_Clean:")? + field("Private_Dirty:")?,
        })
    }

    /// The parent process (`PPid` of `/proc/<pid>/status`).
    pub fn parent(&self, pid: u32) -> anyhow::Result<u32> {
        let status = self.read(&format!("{pid}/status"))?;
        let value = field(&status, "PPid:").with_context(|| format!("PPid of process {pid}"))?;
        value
            .parse()
            .with_context(|| format!("PPid of process {pid}: {value:?}"))
    }

    /// The file name of the program the process runs (`/proc/<pid>/exe`), e.g.
    /// `containerd-shim-runc-v2`, which `comm` would cut to 15 bytes.
    pub fn executable_name(&self, pid: u32) -> anyhow::Result<String> {
        let link = self.root.join(format!("{pid}/exe"));
        let target =
            std::fs::read_link(&link).with_context(|| format!("read link {}", link.display()))?;
        let Some(name) = target.file_name() else {
            bail!("{} points at {}", link.display(), target.display());
        };
        // A binary replaced while running shows as "<name> (deleted)".
        let name = name.to_string_lossy();
        Ok(name.trim_end_matches(" (deleted)").to_string())
    }
}

/// The value after `name` on the line that starts with it, trimmed.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .map(str::trim)
}

/// A `<name>   <n> kB` line's value, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let kib: u64 = field(text, name)?.strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fake_proc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       24681588 kB\nMemFree:        19597440 kB\n\
             MemAvailable:   24166760 kB\nBuffers:          123 kB\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("42")).unwrap();
        std::fs::write(
            dir.path().join("42/status"),
            "Name:\tcrius-monitor\nPid:\t42\nPPid:\t1\nVmPeak:\t    1300 kB\nVmRSS:\t     812 kB\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("42/smaps_rollup"),
            "5581d5a3e000-7ffd1a9f6000 ---p 00000000 00:00 0                          [rollup]\n\
             Rss:                 812 kB\nPss:                 301 kB\nPss_Dirty:   100 kB\n\
             Shared_Clean:        600 kB\nShared_Dirty:          0 kB\n\
             Private_Clean:        12 kB\nPrivate_Dirty:       200 kB\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "/usr/bin/containerd-shim-runc-v2 (deleted)",
            dir.path().join("42/exe"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn reads_meminfo_status_and_smaps_rollup_in_bytes() {
        let dir = fake_proc();
        let proc = Procfs::at(dir.path());
        assert_eq!(proc.mem_available_bytes().unwrap(), 24_166_760 * 1024);
        assert_eq!(proc.vm_rss_bytes(42).unwrap(), 812 * 1024);
        assert_eq!(proc.parent(42).unwrap(), 1);
        assert_eq!(
            proc.memory(42).unwrap(),
            ProcessMemory {
                rss_bytes: 812 * 1024,
                pss_bytes: 301 * 1024,
                uss_bytes: 212 * 1024,
            }
        );
    }

    #[test]
    fn executable_name_is_the_whole_file_name_even_when_deleted() {
        let dir = fake_proc();
        assert_eq!(
            Procfs::at(dir.path()).executable_name(42).unwrap(),
            "containerd-shim-runc-v2"
        );
    }

    #[test]
    fn a_missing_process_or_field_is_an_error() {
        let dir = fake_proc();
        let proc = Procfs::at(dir.path());
        assert!(proc.vm_rss_bytes(7).is_err());
        std::fs::write(dir.path().join("42/status"), "Name:\tkthreadd\nPPid:\t2\n").unwrap();
        assert!(proc.vm_rss_bytes(42).is_err());
    }

    #[test]
    fn reads_this_process_on_the_host() {
        let proc = Procfs::host();
        let pid = std::process::id();
        assert!(proc.vm_rss_bytes(pid).unwrap() > 0);
        assert!(proc.memory(pid).unwrap().pss_bytes > 0);
        assert!(proc.mem_available_bytes().unwrap() > 0);
    }
}
