//! Unpacking archives crafted in memory, friendly and hostile. Every test gets a sentinel
//! directory next to the layer (`tmp/outside/secret`) and checks it is untouched afterwards.
//! Tests that need root (ownership, device nodes, whiteouts, trusted xattrs) skip loudly
//! without it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::*;

const SENTINEL_CONTENT: &[u8] = b"sentinel";
const MTIME: u64 = 1_600_000_000;

const UNPRIVILEGED: UnpackOptions = UnpackOptions {
    preserve_ownership: false,
    allow_devices: false,
};
const PRIVILEGED: UnpackOptions = UnpackOptions {
    preserve_ownership: true,
    allow_devices: true,
};

/// Everything root may do when root, else what an unprivileged unpack does.
fn as_privileged_as_we_are() -> UnpackOptions {
    if is_root() { PRIVILEGED } else { UNPRIVILEGED }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Returns from the test, loudly, unless running as root.
macro_rules! require_root {
    ($test:literal) => {
        if !is_root() {
            eprintln!("!!! SKIPPED {}: needs root !!!", $test);
            return;
        }
    };
}

/// `tmp/layer` (the empty destination) and `tmp/outside/secret` (the sentinel).
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("layer")).unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        let secret = outside.join("secret");
        fs::write(&secret, SENTINEL_CONTENT).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        Sandbox { tmp }
    }

    fn dest(&self) -> PathBuf {
        self.tmp.path().join("layer")
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    /// `path` inside the layer.
    fn at(&self, path: &str) -> PathBuf {
        self.dest().join(path)
    }

    fn unpack(&self, archive: &[u8], options: &UnpackOptions) -> Result<UnpackStats, UnpackError> {
        unpack_layer(archive, &self.dest(), options)
    }

    /// The sentinel directory still holds exactly the one file, unchanged, unlinked elsewhere,
    /// with its original modes and owner, and nothing appeared next to it.
    fn assert_outside_untouched(&self) {
        let outside = self.outside();
        let names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["secret"],
            "files appeared in the sentinel directory"
        );
        let dir = fs::symlink_metadata(&outside).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            dir.mode() & 0o7777,
            0o755,
            "sentinel directory mode changed"
        );
        assert_eq!(dir.uid(), rustix::process::geteuid().as_raw());
        let secret = fs::symlink_metadata(outside.join("secret")).unwrap();
        assert!(secret.is_file());
        assert_eq!(secret.nlink(), 1, "sentinel file got hardlinked");
        assert_eq!(secret.mode() & 0o7777, 0o644, "sentinel file mode changed");
        assert_eq!(secret.uid(), rustix::process::geteuid().as_raw());
        assert_eq!(fs::read(outside.join("secret")).unwrap(), SENTINEL_CONTENT);
        let mut siblings: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        siblings.sort();
        assert_eq!(
            siblings,
            ["layer", "outside"],
            "files appeared next to the layer"
        );
    }
}

/// A tar stream built entry by entry, with raw names so hostile paths can be written.
struct TarStream {
    builder: tar::Builder<Vec<u8>>,
}

impl TarStream {
    fn new() -> TarStream {
        TarStream {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn append(&mut self, header: &Header, data: &[u8]) -> &mut TarStream {
        self.builder.append(header, data).unwrap();
        self
    }

    fn dir(&mut self, path: &str, mode: u32) -> &mut TarStream {
        self.append(&header(EntryType::Directory, path, mode, 0), &[])
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut TarStream {
        self.append(&header(EntryType::Regular, path, mode, data.len()), data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> &mut TarStream {
        self.append(&link_header(EntryType::Symlink, path, target), &[])
    }

    fn hardlink(&mut self, path: &str, target: &str) -> &mut TarStream {
        self.append(&link_header(EntryType::Link, path, target), &[])
    }

    /// PAX records for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut TarStream {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

/// A header with a raw (unchecked) name, owner 0:0 and [`MTIME`].
fn header(entry_type: EntryType, path: &str, mode: u32, size: usize) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size as u64);
    header.set_mtime(MTIME);
    header.set_uid(0);
    header.set_gid(0);
    let name = &mut header.as_old_mut().name;
    assert!(path.len() < name.len(), "test path too long for a raw name");
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_cksum();
    header
}

fn link_header(entry_type: EntryType, path: &str, target: &str) -> Header {
    let mut header = header(entry_type, path, 0o777, 0);
    let link_name = &mut header.as_old_mut().linkname;
    assert!(target.len() < link_name.len(), "test link target too long");
    link_name[..target.len()].copy_from_slice(target.as_bytes());
    header.set_cksum();
    header
}

fn with_owner(mut header: Header, uid: u64, gid: u64) -> Header {
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_cksum();
    header
}

fn with_mtime(mut header: Header, mtime: u64) -> Header {
    header.set_mtime(mtime);
    header.set_cksum();
    header
}

fn device_header(entry_type: EntryType, path: &str, mode: u32, major: u32, minor: u32) -> Header {
    let mut header = header(entry_type, path, mode, 0);
    header.set_device_major(major).unwrap();
    header.set_device_minor(minor).unwrap();
    header.set_cksum();
    header
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The value of xattr `name` on `path` (not following a symlink), `None` if absent.
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut value[..]) {
        Ok(len) => {
            value.truncate(len);
            Some(value)
        }
        Err(rustix::io::Errno::NODATA) => None,
        Err(errno) => panic!("lgetxattr {name} on {}: {errno}", path.display()),
    }
}

fn assert_refused(result: Result<UnpackStats, UnpackError>) -> UnpackError {
    match result {
        Err(error @ UnpackError::Refused { .. }) => {
            assert_eq!(error.kind(), UnpackErrorKind::BadLayer);
            error
        }
        other => panic!("expected the layer to be refused, got {other:?}"),
    }
}

// ---- ordinary content -------------------------------------------------------------------------

#[test]
fn unpacks_files_directories_symlinks_and_hardlinks_with_their_modes() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", 0o640, b"box\n")
        .dir("bin", 0o711)
        .file("bin/tool", 0o755, b"#!/bin/true\n")
        .symlink("bin/sh", "tool")
        .hardlink("bin/tool2", "bin/tool")
        .symlink("abs", "/etc/hostname")
        .finish();
    let stats = sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(
        stats,
        UnpackStats {
            entries: 7,
            bytes: 4 + 12
        }
    );
    assert_eq!(fs::read(sandbox.at("etc/hostname")).unwrap(), b"box\n");
    assert_eq!(mode_of(&sandbox.at("etc")), 0o755);
    assert_eq!(mode_of(&sandbox.at("etc/hostname")), 0o640);
    assert_eq!(mode_of(&sandbox.at("bin")), 0o711);
    assert_eq!(mode_of(&sandbox.at("bin/tool")), 0o755);
    assert_eq!(
        fs::read_link(sandbox.at("bin/sh")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        fs::read_link(sandbox.at("abs")).unwrap(),
        Path::new("/etc/hostname")
    );
    let tool = fs::metadata(sandbox.at("bin/tool")).unwrap();
    let tool2 = fs::metadata(sandbox.at("bin/tool2")).unwrap();
    assert_eq!(tool.ino(), tool2.ino());
    assert_eq!(tool.nlink(), 2);
    sandbox.assert_outside_untouched();
}

#[test]
fn creates_missing_parent_directories_with_mode_0755() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new().file("a/b/c/file", 0o600, b"x").finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    for dir in ["a", "a/b", "a/b/c"] {
        assert_eq!(mode_of(&sandbox.at(dir)), 0o755, "{dir}");
    }
    assert_eq!(fs::read(sandbox.at("a/b/c/file")).unwrap(), b"x");
}

#[test]
fn read_only_directories_still_receive_their_children() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("ro", 0o555)
        .dir("ro/locked", 0o500)
        .file("ro/locked/f", 0o444, b"x")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(mode_of(&sandbox.at("ro")), 0o555);
    assert_eq!(mode_of(&sandbox.at("ro/locked")), 0o500);
    assert_eq!(fs::read(sandbox.at("ro/locked/f")).unwrap(), b"x");
    // Let the temp dir be removed when not root.
    fs::set_permissions(sandbox.at("ro/locked"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(sandbox.at("ro"), fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn keeps_setuid_setgid_and_sticky_bits() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .file("su", 0o4755, b"su")
        .file("wall", 0o2755, b"wall")
        .dir("tmp", 0o1777)
        .dir("shared", 0o2775)
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(mode_of(&sandbox.at("su")), 0o4755);
    assert_eq!(mode_of(&sandbox.at("wall")), 0o2755);
    assert_eq!(mode_of(&sandbox.at("tmp")), 0o1777);
    assert_eq!(mode_of(&sandbox.at("shared")), 0o2775);
}

#[test]
fn setuid_bit_survives_applying_ownership() {
    require_root!("setuid_bit_survives_applying_ownership");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .append(
            &with_owner(header(EntryType::Regular, "passwd", 0o6755, 2), 1000, 1000),
            b"pw",
        )
        .finish();
    sandbox.unpack(&archive, &PRIVILEGED).unwrap();
    let passwd = fs::symlink_metadata(sandbox.at("passwd")).unwrap();
    assert_eq!((passwd.uid(), passwd.gid()), (1000, 1000));
    assert_eq!(passwd.mode() & 0o7777, 0o6755);
}

#[test]
fn applies_ownership_when_preserving_ownership() {
    require_root!("applies_ownership_when_preserving_ownership");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .append(
            &with_owner(header(EntryType::Directory, "home", 0o750, 0), 42, 43),
            &[],
        )
        .append(
            &with_owner(
                header(EntryType::Regular, "home/file", 0o600, 1),
                1234,
                5678,
            ),
            b"f",
        )
        .append(
            &with_owner(link_header(EntryType::Symlink, "home/link", "file"), 7, 8),
            &[],
        )
        .append(
            &with_owner(header(EntryType::Fifo, "home/pipe", 0o600, 0), 9, 10),
            &[],
        )
        .finish();
    sandbox.unpack(&archive, &PRIVILEGED).unwrap();
    let owner = |path: &str| {
        let metadata = fs::symlink_metadata(sandbox.at(path)).unwrap();
        (metadata.uid(), metadata.gid())
    };
    assert_eq!(owner("home"), (42, 43));
    assert_eq!(owner("home/file"), (1234, 5678));
    assert_eq!(owner("home/link"), (7, 8), "symlink itself (lchown)");
    assert_eq!(owner("home/pipe"), (9, 10));
}

#[test]
fn leaves_ownership_to_the_unpacking_user_when_not_preserving() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .append(
            &with_owner(header(EntryType::Regular, "file", 0o644, 1), 1234, 5678),
            b"f",
        )
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    let file = fs::symlink_metadata(sandbox.at("file")).unwrap();
    assert_eq!(file.uid(), rustix::process::geteuid().as_raw());
    assert_eq!(file.gid(), rustix::process::getegid().as_raw());
}

#[test]
fn sets_mtimes_of_files_symlinks_and_directories_after_their_children() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .append(
            &with_mtime(header(EntryType::Directory, "d", 0o755, 0), 1000),
            &[],
        )
        .append(
            &with_mtime(header(EntryType::Directory, "d/sub", 0o755, 0), 1500),
            &[],
        )
        .append(
            &with_mtime(header(EntryType::Regular, "d/sub/f", 0o644, 1), 2000),
            b"f",
        )
        .append(
            &with_mtime(link_header(EntryType::Symlink, "d/l", "sub"), 3000),
            &[],
        )
        .pax(&[("mtime", b"4000.25")])
        .append(
            &with_mtime(header(EntryType::Regular, "d/precise", 0o644, 0), 4000),
            &[],
        )
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    let times = |path: &str| {
        let metadata = fs::symlink_metadata(sandbox.at(path)).unwrap();
        (metadata.mtime(), metadata.mtime_nsec(), metadata.atime())
    };
    assert_eq!(
        times("d"),
        (1000, 0, 1000),
        "parent dir mtime set after its children"
    );
    assert_eq!(times("d/sub"), (1500, 0, 1500));
    assert_eq!(times("d/sub/f"), (2000, 0, 2000));
    assert_eq!(times("d/l"), (3000, 0, 3000), "symlink's own times");
    assert_eq!(times("d/precise"), (4000, 250_000_000, 4000));
}

#[test]
fn root_directory_entry_is_skipped() {
    let sandbox = Sandbox::new();
    fs::set_permissions(sandbox.dest(), fs::Permissions::from_mode(0o700)).unwrap();
    let archive = TarStream::new()
        .dir("./", 0o777)
        .file("./file", 0o644, b"x")
        .finish();
    let stats = sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(mode_of(&sandbox.dest()), 0o700);
    assert_eq!(fs::read(sandbox.at("file")).unwrap(), b"x");
}

#[test]
fn non_directory_entry_naming_the_layer_root_is_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new().file("/", 0o644, b"x").finish();
    assert_refused(sandbox.unpack(&archive, &UNPRIVILEGED));
}

#[test]
fn later_entries_replace_earlier_ones_with_the_same_name() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .file("a", 0o644, b"one")
        .file("a", 0o600, b"two")
        .dir("d", 0o755)
        .dir("d", 0o700)
        .symlink("s", "a")
        .file("s", 0o644, b"no longer a link")
        .file("f", 0o644, b"soon a dir")
        .dir("f", 0o750)
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(fs::read(sandbox.at("a")).unwrap(), b"two");
    assert_eq!(mode_of(&sandbox.at("a")), 0o600);
    assert_eq!(mode_of(&sandbox.at("d")), 0o700);
    assert!(fs::symlink_metadata(sandbox.at("s")).unwrap().is_file());
    assert_eq!(
        fs::read(sandbox.at("a")).unwrap(),
        b"two",
        "not written through the link"
    );
    assert!(fs::symlink_metadata(sandbox.at("f")).unwrap().is_dir());
    assert_eq!(mode_of(&sandbox.at("f")), 0o750);
}

#[test]
fn a_file_does_not_replace_a_non_empty_directory() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .file("d/child", 0o644, b"x")
        .file("d", 0o644, b"file")
        .finish();
    assert_refused(sandbox.unpack(&archive, &UNPRIVILEGED));
    assert_eq!(fs::read(sandbox.at("d/child")).unwrap(), b"x");
}

#[test]
fn hardlink_target_resolves_through_in_layer_symlinks() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .file("real/f", 0o644, b"data")
        .symlink("alias", "/real")
        .hardlink("hl", "alias/f")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(
        fs::metadata(sandbox.at("hl")).unwrap().ino(),
        fs::metadata(sandbox.at("real/f")).unwrap().ino()
    );
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_itself() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .symlink("link", "../outside/secret")
        .hardlink("hl", "link")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    let hl = fs::symlink_metadata(sandbox.at("hl")).unwrap();
    assert!(hl.file_type().is_symlink());
    assert_eq!(
        hl.ino(),
        fs::symlink_metadata(sandbox.at("link")).unwrap().ino()
    );
    sandbox.assert_outside_untouched();
}

#[test]
fn hardlink_whose_target_is_not_in_the_layer_is_an_error() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new().hardlink("hl", "missing").finish();
    let error = sandbox.unpack(&archive, &UNPRIVILEGED).unwrap_err();
    assert!(
        matches!(error, UnpackError::HardlinkTargetMissing { .. }),
        "{error:?}"
    );
}

#[test]
fn fifo_is_created_without_privileges() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .append(&header(EntryType::Fifo, "run/pipe", 0o620, 0), &[])
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    let pipe = fs::symlink_metadata(sandbox.at("run/pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o7777, 0o620);
}

#[test]
fn device_node_is_created_when_devices_are_allowed() {
    require_root!("device_node_is_created_when_devices_are_allowed");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .append(
            &device_header(EntryType::Char, "dev/null", 0o666, 1, 3),
            &[],
        )
        .append(
            &device_header(EntryType::Block, "dev/loop9", 0o660, 7, 9),
            &[],
        )
        .finish();
    sandbox.unpack(&archive, &PRIVILEGED).unwrap();
    let null = fs::symlink_metadata(sandbox.at("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let loop9 = fs::symlink_metadata(sandbox.at("dev/loop9")).unwrap();
    assert!(loop9.file_type().is_block_device());
    assert_eq!(loop9.rdev(), rustix::fs::makedev(7, 9));
}

// ---- xattrs -----------------------------------------------------------------------------------

#[test]
fn applies_xattrs_from_pax_records() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .pax(&[("SCHILY.xattr.user.dir", b"on a dir")])
        .dir("d", 0o755)
        .pax(&[
            ("SCHILY.xattr.user.one", b"hello"),
            ("SCHILY.xattr.user.two", b"\x00binary\xff"),
        ])
        .file("d/f", 0o644, b"x")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(xattr(&sandbox.at("d"), "user.dir").unwrap(), b"on a dir");
    assert_eq!(xattr(&sandbox.at("d/f"), "user.one").unwrap(), b"hello");
    assert_eq!(
        xattr(&sandbox.at("d/f"), "user.two").unwrap(),
        b"\x00binary\xff"
    );
}

#[test]
fn overlay_xattrs_from_the_archive_are_ignored() {
    require_root!("overlay_xattrs_from_the_archive_are_ignored");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .pax(&[
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.other", b"kept"),
        ])
        .dir("d", 0o755)
        .pax(&[("SCHILY.xattr.trusted.overlay.metacopy", b"")])
        .file("f", 0o644, b"x")
        .finish();
    sandbox.unpack(&archive, &PRIVILEGED).unwrap();
    let d = sandbox.at("d");
    assert_eq!(xattr(&d, "trusted.overlay.opaque"), None);
    assert_eq!(xattr(&d, "trusted.overlay.redirect"), None);
    assert_eq!(xattr(&d, "user.overlay.opaque"), None);
    assert_eq!(xattr(&d, "trusted.other").unwrap(), b"kept");
    assert_eq!(xattr(&sandbox.at("f"), "trusted.overlay.metacopy"), None);
}

/// `security.capability` v2 granting CAP_NET_BIND_SERVICE (permitted, effective).
const NET_BIND_CAPABILITY: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn file_capabilities_are_kept_when_preserving_ownership() {
    require_root!("file_capabilities_are_kept_when_preserving_ownership");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .pax(&[("SCHILY.xattr.security.capability", &NET_BIND_CAPABILITY)])
        .append(
            &with_owner(header(EntryType::Regular, "ping", 0o755, 1), 0, 0),
            b"p",
        )
        .finish();
    sandbox.unpack(&archive, &PRIVILEGED).unwrap();
    assert_eq!(
        xattr(&sandbox.at("ping"), "security.capability").unwrap(),
        NET_BIND_CAPABILITY
    );
}

#[test]
fn file_capabilities_are_skipped_without_preserved_ownership() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .pax(&[("SCHILY.xattr.security.capability", &NET_BIND_CAPABILITY)])
        .file("ping", 0o755, b"p")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(xattr(&sandbox.at("ping"), "security.capability"), None);
}

// ---- whiteouts --------------------------------------------------------------------------------

fn assert_whiteout_device(path: &Path) {
    let metadata = fs::symlink_metadata(path).unwrap();
    assert!(
        metadata.file_type().is_char_device(),
        "{} not a char device",
        path.display()
    );
    assert_eq!(metadata.rdev(), 0);
}

#[test]
fn whiteout_file_becomes_a_0_0_char_device() {
    require_root!("whiteout_file_becomes_a_0_0_char_device");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("etc", 0o755)
        .file("etc/.wh.passwd", 0o644, b"")
        .file(".wh.top", 0o644, b"")
        .finish();
    // Devices not allowed: whiteouts are ours, not the archive's devices.
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_whiteout_device(&sandbox.at("etc/passwd"));
    assert_whiteout_device(&sandbox.at("top"));
    assert!(fs::symlink_metadata(sandbox.at("etc/.wh.passwd")).is_err());
    assert!(fs::symlink_metadata(sandbox.at(".wh.top")).is_err());
}

#[test]
fn whiteout_replaces_an_entry_of_the_same_layer() {
    require_root!("whiteout_replaces_an_entry_of_the_same_layer");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .file("gone", 0o644, b"x")
        .symlink("link", "../outside/secret")
        .file(".wh.gone", 0o644, b"")
        .file(".wh.link", 0o644, b"")
        .finish();
    sandbox.unpack(&archive, &PRIVILEGED).unwrap();
    assert_whiteout_device(&sandbox.at("gone"));
    assert_whiteout_device(&sandbox.at("link"));
    sandbox.assert_outside_untouched();
}

#[test]
fn opaque_marker_sets_overlay_opaque_xattr() {
    require_root!("opaque_marker_sets_overlay_opaque_xattr");
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("d", 0o755)
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("d/kept", 0o644, b"x")
        .file("implicit/.wh..wh..opq", 0o644, b"")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(
        xattr(&sandbox.at("d"), "trusted.overlay.opaque").unwrap(),
        b"y"
    );
    assert_eq!(
        xattr(&sandbox.at("implicit"), "trusted.overlay.opaque").unwrap(),
        b"y"
    );
    assert!(fs::symlink_metadata(sandbox.at("d/.wh..wh..opq")).is_err());
    assert_eq!(fs::read(sandbox.at("d/kept")).unwrap(), b"x");
}

#[test]
fn opaque_marker_without_root_says_it_needs_root() {
    if is_root() {
        eprintln!(
            "!!! SKIPPED opaque_marker_without_root_says_it_needs_root: needs a non-root user !!!"
        );
        return;
    }
    let sandbox = Sandbox::new();
    let archive = TarStream::new().file("d/.wh..wh..opq", 0o644, b"").finish();
    let error = sandbox.unpack(&archive, &UNPRIVILEGED).unwrap_err();
    assert!(
        matches!(error, UnpackError::WhiteoutNeedsRoot { .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), UnpackErrorKind::NotPermitted);
    // A 0/0 whiteout device needs no privilege since Linux 5.8; before, it needs root too.
    let archive = TarStream::new().file(".wh.gone", 0o644, b"").finish();
    match sandbox.unpack(&archive, &UNPRIVILEGED) {
        Ok(_) => assert_whiteout_device(&sandbox.at("gone")),
        Err(error) => assert!(
            matches!(error, UnpackError::WhiteoutNeedsRoot { .. }),
            "{error:?}"
        ),
    }
}

#[test]
fn whiteouts_of_empty_dot_and_dot_dot_names_are_refused() {
    for name in [".wh.", ".wh..", ".wh...", "d/.wh...", "d/.wh."] {
        let sandbox = Sandbox::new();
        let archive = TarStream::new().file(name, 0o644, b"").finish();
        assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
        sandbox.assert_outside_untouched();
    }
}

// ---- hostile archives -------------------------------------------------------------------------

#[test]
fn absolute_path_is_rerooted_inside_the_layer() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside().join("secret");
    let archive = TarStream::new()
        .file("/etc/evil", 0o644, b"evil")
        .file(secret.to_str().unwrap(), 0o644, b"pwned")
        .finish();
    sandbox.unpack(&archive, &UNPRIVILEGED).unwrap();
    assert_eq!(fs::read(sandbox.at("etc/evil")).unwrap(), b"evil");
    assert!(!Path::new("/etc/evil").exists());
    let rerooted = sandbox.dest().join(secret.strip_prefix("/").unwrap());
    assert_eq!(fs::read(rerooted).unwrap(), b"pwned");
    sandbox.assert_outside_untouched();
}

#[test]
fn dot_dot_path_is_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new().file("../escape", 0o644, b"evil").finish();
    let error = assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
    assert!(error.to_string().contains("../escape"), "{error}");
    sandbox.assert_outside_untouched();
}

#[test]
fn nested_dot_dot_path_is_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("a", 0o755)
        .file("a/../../escape", 0o644, b"evil")
        .finish();
    assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
    sandbox.assert_outside_untouched();
}

#[test]
fn file_under_a_symlink_to_root_lands_inside_the_layer() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .symlink("link", "/")
        .file("link/evil", 0o644, b"evil")
        .symlink("abs", sandbox.tmp.path().to_str().unwrap())
        .finish();
    sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap();
    assert_eq!(fs::read(sandbox.at("evil")).unwrap(), b"evil");
    assert!(!Path::new("/evil").exists());
    sandbox.assert_outside_untouched();
}

#[test]
fn file_under_a_symlink_to_outside_never_reaches_outside() {
    let sandbox = Sandbox::new();
    let absolute_outside = sandbox.outside();
    for link_target in [
        "../outside",
        "../../outside",
        absolute_outside.to_str().unwrap(),
    ] {
        let archive = TarStream::new()
            .symlink("link", link_target)
            .file("link/secret", 0o644, b"pwned")
            .file("link/new", 0o644, b"pwned")
            .finish();
        // The link resolves in-root to a directory the layer lacks: refused.
        assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
        sandbox.assert_outside_untouched();
        fs::remove_file(sandbox.at("link")).unwrap();
    }
}

#[test]
fn file_under_a_symlink_to_outside_lands_in_the_layers_namesake() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("outside", 0o755)
        .symlink("link", "../../outside")
        .file("link/secret", 0o644, b"inside")
        .finish();
    sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap();
    assert_eq!(fs::read(sandbox.at("outside/secret")).unwrap(), b"inside");
    sandbox.assert_outside_untouched();
}

#[test]
fn hardlink_through_a_symlink_to_outside_does_not_link_outside_files() {
    let sandbox = Sandbox::new();
    let absolute_outside = sandbox.outside();
    for link_target in [
        "../outside",
        "../../outside",
        absolute_outside.to_str().unwrap(),
    ] {
        let archive = TarStream::new()
            .symlink("link", link_target)
            .hardlink("stolen", "link/secret")
            .finish();
        let error = sandbox
            .unpack(&archive, &as_privileged_as_we_are())
            .unwrap_err();
        assert!(
            matches!(error, UnpackError::HardlinkTargetMissing { .. }),
            "{error:?}"
        );
        sandbox.assert_outside_untouched();
        fs::remove_file(sandbox.at("link")).unwrap();
    }
}

#[test]
fn hardlink_with_dot_dot_target_is_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .hardlink("hl", "../outside/secret")
        .finish();
    let error = assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
    assert!(error.to_string().contains("hardlink target"), "{error}");
    sandbox.assert_outside_untouched();
}

#[test]
fn hardlink_to_an_absolute_host_path_does_not_link_the_host_file() {
    let sandbox = Sandbox::new();
    let secret = sandbox.outside().join("secret");
    for host_path in ["/etc/passwd", secret.to_str().unwrap()] {
        let archive = TarStream::new().hardlink("hl", host_path).finish();
        let error = sandbox
            .unpack(&archive, &as_privileged_as_we_are())
            .unwrap_err();
        assert!(
            matches!(error, UnpackError::HardlinkTargetMissing { .. }),
            "{error:?}"
        );
        assert!(fs::symlink_metadata(sandbox.at("hl")).is_err());
    }
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), 1);
    sandbox.assert_outside_untouched();
}

#[test]
fn device_node_is_refused_without_allow_devices() {
    for entry_type in [EntryType::Char, EntryType::Block] {
        let sandbox = Sandbox::new();
        let archive = TarStream::new()
            .append(&device_header(entry_type, "dev/sda", 0o666, 8, 0), &[])
            .finish();
        let error = sandbox.unpack(&archive, &UNPRIVILEGED).unwrap_err();
        assert!(
            matches!(error, UnpackError::DeviceNotAllowed { .. }),
            "{error:?}"
        );
        assert_eq!(error.kind(), UnpackErrorKind::NotPermitted);
        assert!(fs::symlink_metadata(sandbox.at("dev/sda")).is_err());
    }
}

#[test]
fn file_replaces_an_existing_symlink_instead_of_writing_through_it() {
    let sandbox = Sandbox::new();
    // Planted by an earlier entry and already on disk: both must behave the same.
    std::os::unix::fs::symlink("../outside/secret", sandbox.at("planted")).unwrap();
    let archive = TarStream::new()
        .symlink("f", "../outside/secret")
        .file("f", 0o777, b"pwned")
        .file("planted", 0o777, b"pwned")
        .finish();
    sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap();
    for name in ["f", "planted"] {
        let file = fs::symlink_metadata(sandbox.at(name)).unwrap();
        assert!(file.is_file(), "{name} still a symlink");
        assert_eq!(fs::read(sandbox.at(name)).unwrap(), b"pwned");
    }
    sandbox.assert_outside_untouched();
}

#[test]
fn directory_over_an_existing_symlink_does_not_touch_its_target() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .symlink("d", "../outside")
        .append(
            &with_owner(header(EntryType::Directory, "d", 0o777, 0), 1234, 1234),
            &[],
        )
        .pax(&[("SCHILY.xattr.user.evil", b"1")])
        .append(
            &with_owner(header(EntryType::Directory, "d", 0o777, 0), 1234, 1234),
            &[],
        )
        .finish();
    sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap();
    let d = fs::symlink_metadata(sandbox.at("d")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o777);
    assert_eq!(xattr(&sandbox.outside(), "user.evil"), None);
    sandbox.assert_outside_untouched();
}

#[test]
fn symlink_loop_in_a_parent_is_an_error() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", 0o644, b"x")
        .finish();
    let error = sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap_err();
    assert!(matches!(error, UnpackError::Io { .. }), "{error:?}");
    sandbox.assert_outside_untouched();
}

#[test]
fn overlong_path_is_refused() {
    let sandbox = Sandbox::new();
    let long = "a/".repeat(2100) + "file";
    let archive = TarStream::new()
        .pax(&[("path", long.as_bytes())])
        .file("placeholder", 0o644, b"x")
        .finish();
    let error = assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
    assert!(error.to_string().contains("longer than 4096"), "{error}");
}

#[test]
fn path_with_a_nul_byte_is_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .pax(&[("path", b"evil\0name")])
        .file("placeholder", 0o644, b"x")
        .finish();
    let error = assert_refused(sandbox.unpack(&archive, &as_privileged_as_we_are()));
    assert!(error.to_string().contains("nul"), "{error}");
}

#[test]
fn oversized_pax_records_are_refused_before_being_buffered() {
    let sandbox = Sandbox::new();
    let huge = vec![b'v'; 2 * 1024 * 1024];
    let archive = TarStream::new()
        .pax(&[("SCHILY.xattr.user.huge", &huge)])
        .file("f", 0o644, b"x")
        .finish();
    let error = sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap_err();
    assert!(matches!(error, UnpackError::Archive { .. }), "{error:?}");
    assert!(error.to_string().contains("exceed"), "{error}");
}

#[test]
fn too_many_entries_are_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .file("1", 0o644, b"")
        .file("2", 0o644, b"")
        .file("3", 0o644, b"")
        .finish();
    let limits = Limits {
        max_entries: 2,
        ..Limits::DEFAULT
    };
    let error = unpack_with_limits(
        &archive[..],
        &sandbox.dest(),
        &as_privileged_as_we_are(),
        limits,
    )
    .unwrap_err();
    assert!(
        matches!(error, UnpackError::TooManyEntries { max: 2 }),
        "{error:?}"
    );
    assert!(fs::symlink_metadata(sandbox.at("3")).is_err());
}

#[test]
fn too_many_directory_bytes_are_refused() {
    let sandbox = Sandbox::new();
    let archive = TarStream::new()
        .dir("first", 0o755)
        .dir("second", 0o755)
        .finish();
    let limits = Limits {
        max_deferred_dir_bytes: 100,
        ..Limits::DEFAULT
    };
    let error = unpack_with_limits(
        &archive[..],
        &sandbox.dest(),
        &as_privileged_as_we_are(),
        limits,
    )
    .unwrap_err();
    assert!(matches!(error, UnpackError::Refused { .. }), "{error:?}");
}

#[test]
fn truncated_file_data_is_an_error() {
    let sandbox = Sandbox::new();
    let mut archive = TarStream::new().file("f", 0o644, &[b'x'; 1000]).finish();
    archive.truncate(512 + 600);
    let error = sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap_err();
    assert!(
        matches!(
            error,
            UnpackError::Truncated {
                written: 600,
                expected: 1000,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_layer_ending_right_after_its_last_files_data_unpacks() {
    // No padding to the block boundary and no end-of-archive blocks, as umoci writes some layers.
    let sandbox = Sandbox::new();
    let mut archive = TarStream::new().file("f", 0o644, &[b'x'; 1000]).finish();
    archive.truncate(512 + 1000);
    let stats = sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap();
    assert_eq!(stats.bytes, 1000);
}

#[test]
fn corrupt_header_is_an_archive_error() {
    let sandbox = Sandbox::new();
    let mut archive = TarStream::new().file("f", 0o644, b"x").finish();
    archive[0] ^= 0xff; // breaks the checksum
    let error = sandbox
        .unpack(&archive, &as_privileged_as_we_are())
        .unwrap_err();
    assert!(matches!(error, UnpackError::Archive { .. }), "{error:?}");
}
