//! The user a container runs as: uid, primary gid, supplemental gids and home directory, from the
//! image config's `User` and the request's security context, with names looked up in the image's
//! `/etc/passwd` and `/etc/group`.
//!
//! The image is untrusted: both files are opened relative to the rootfs with
//! `openat2(RESOLVE_IN_ROOT)`, so symlinks (absolute ones included) resolve inside the rootfs and
//! `..` stops at it. Only regular files are read (opened `O_NONBLOCK`, so a FIFO cannot block the
//! open), and at most [`MAX_ACCOUNT_FILE_SIZE`] bytes of each. A missing file means no entries;
//! anything else that is not a regular file (a device node, a FIFO, a directory) is refused.
//!
//! For a uid without a passwd entry the gid is 0 and there is no home directory, as runc's
//! `GetExecUser` (used by cri-o) and containerd do; the caller sets `HOME=/` then.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::RuntimeError;

/// The most bytes read of the image's `/etc/passwd` or `/etc/group`.
pub const MAX_ACCOUNT_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// The highest uid or gid accepted, as runc and the kubelet do (2^31 - 1).
const MAX_ID: i64 = i32::MAX as i64;

/// `openat2` with `RESOLVE_IN_ROOT` fails with EAGAIN when a rename races the lookup; a few
/// retries are plenty.
const RESOLVE_RETRIES: usize = 8;

/// Which supplemental groups the container's process gets (the pod's
/// `supplementalGroupsPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupplementalGroupsPolicy {
    /// The groups of the image's `/etc/group` that list the user, plus the requested ones.
    #[default]
    Merge,
    /// Only the requested groups.
    Strict,
}

/// What the request's security context says about the user, as the CRI sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRequest {
    /// The uid to run as (CRI `Int64Value`, unvalidated).
    pub run_as_user: Option<i64>,
    /// A user name to look up in the image's `/etc/passwd`.
    pub run_as_username: Option<String>,
    /// The primary gid, overriding the user's own (needs a user as well).
    pub run_as_group: Option<i64>,
    /// Supplemental gids (unvalidated).
    pub supplemental_groups: Vec<i64>,
    /// Whether the image's group memberships are added to `supplemental_groups`.
    pub policy: SupplementalGroupsPolicy,
}

/// The user the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplemental groups, deduplicated, sorted (the primary gid not repeated).
    pub additional_gids: Vec<u32>,
    /// The user's home directory from /etc/passwd, for HOME (None when not found).
    pub home: Option<String>,
}

/// Resolves the user of a container whose root filesystem is `rootfs`.
///
/// `image_user` is the image config's `User` ("", "name", "uid", "name:group", "uid:gid",
/// "name:gid", "uid:group"). The request's fields override it: `run_as_user` (which wins over
/// `run_as_username`) or `run_as_username` replaces the whole image user, group included, and
/// `run_as_group` replaces the gid. The result's `home` is None when the user has no passwd
/// entry; the caller sets `HOME=/` then, as runc does.
pub fn resolve(
    rootfs: &Path,
    image_user: &str,
    request: &UserRequest,
) -> Result<ResolvedUser, RuntimeError> {
    let run_as_user = request
        .run_as_user
        .map(|uid| checked_id("run_as_user", uid))
        .transpose()?;
    let run_as_group = request
        .run_as_group
        .map(|gid| checked_id("run_as_group", gid))
        .transpose()?;
    let requested_groups = request
        .supplemental_groups
        .iter()
        .map(|&gid| checked_id("supplemental group", gid))
        .collect::<Result<Vec<_>, _>>()?;
    let run_as_username = request
        .run_as_username
        .as_deref()
        .filter(|name| !name.is_empty());
    if run_as_group.is_some() && run_as_user.is_none() && run_as_username.is_none() {
        return Err(RuntimeError::InvalidArgument(
            "run_as_group needs run_as_user or run_as_username".to_string(),
        ));
    }

    let accounts = AccountFiles::open(rootfs)?;
    let passwd = accounts.passwd()?;

    // The user: the request's, else the image's.
    let (user, image_group) = if let Some(uid) = run_as_user {
        (UserSpec::Id(uid), None)
    } else if let Some(name) = run_as_username {
        (UserSpec::Name(name), None)
    } else {
        let (user, group) = match image_user.split_once(':') {
            // "name:" has no group: the user's own
            Some((user, group)) => (user, Some(group).filter(|group| !group.is_empty())),
            None => (image_user, None),
        };
        (
            UserSpec::parse("image user", user)?,
            group
                .map(|group| UserSpec::parse("image group", group))
                .transpose()?,
        )
    };
    let (uid, user_entry) = match user {
        UserSpec::Id(uid) => (uid, passwd.iter().find(|entry| entry.uid == uid)),
        UserSpec::Name(name) => match passwd.iter().find(|entry| entry.name == name) {
            Some(entry) => (entry.uid, Some(entry)),
            None => {
                return Err(RuntimeError::InvalidArgument(format!(
                    "user {name:?} not found in the image's /etc/passwd"
                )));
            }
        },
    };

    // /etc/group is read only when a group name or the user's memberships are asked for.
    let needs_groups = matches!(image_group, Some(UserSpec::Name(_)))
        || (request.policy == SupplementalGroupsPolicy::Merge && user_entry.is_some());
    let groups = if needs_groups {
        accounts.group()?
    } else {
        Vec::new()
    };
    let gid = match (run_as_group, image_group) {
        (Some(gid), _) => gid,
        (None, Some(UserSpec::Id(gid))) => gid,
        (None, Some(UserSpec::Name(name))) => match groups.iter().find(|g| g.name == name) {
            Some(group) => group.gid,
            None => {
                return Err(RuntimeError::InvalidArgument(format!(
                    "group {name:?} not found in the image's /etc/group"
                )));
            }
        },
        (None, None) => user_entry.map_or(0, |entry| entry.gid),
    };

    let mut additional_gids = requested_groups;
    if request.policy == SupplementalGroupsPolicy::Merge
        && let Some(entry) = user_entry
    {
        additional_gids.extend(
            groups
                .iter()
                .filter(|group| group.members.contains(&entry.name))
                .map(|group| group.gid),
        );
    }
    additional_gids.retain(|&additional| additional != gid);
    additional_gids.sort_unstable();
    additional_gids.dedup();

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: user_entry
            .map(|entry| entry.home.clone())
            .filter(|home| !home.is_empty()),
    })
}

/// A uid or gid from the request, checked to be in `0..2^31`.
fn checked_id(what: &str, id: i64) -> Result<u32, RuntimeError> {
    u32::try_from(id)
        .ok()
        .filter(|&valid| i64::from(valid) <= MAX_ID)
        .ok_or_else(|| out_of_range(what, &id.to_string()))
}

fn out_of_range(what: &str, id: &str) -> RuntimeError {
    RuntimeError::InvalidArgument(format!("{what} {id} is out of range 0..={MAX_ID}"))
}

/// One side of the image's `User`: a numeric id or a name to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserSpec<'a> {
    Id(u32),
    Name(&'a str),
}

impl<'a> UserSpec<'a> {
    /// `what` names the part for messages. Empty means root.
    fn parse(what: &str, text: &'a str) -> Result<Self, RuntimeError> {
        if text.is_empty() {
            return Ok(UserSpec::Id(0));
        }
        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            return match text.parse::<i64>() {
                Ok(id) => checked_id(what, id).map(UserSpec::Id),
                Err(_) => Err(out_of_range(what, text)),
            };
        }
        Ok(UserSpec::Name(text))
    }
}

/// An `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// An `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The image's rootfs, opened once, to read account files from.
struct AccountFiles<'a> {
    rootfs: &'a Path,
    root: OwnedFd,
}

impl<'a> AccountFiles<'a> {
    fn open(rootfs: &'a Path) -> Result<Self, RuntimeError> {
        let root = fs::open(
            rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| RuntimeError::io("open rootfs", rootfs)(errno.into()))?;
        Ok(AccountFiles { rootfs, root })
    }

    fn passwd(&self) -> Result<Vec<PasswdEntry>, RuntimeError> {
        Ok(self
            .read("etc/passwd")?
            .map(|bytes| parse_lines(&bytes, parse_passwd_line))
            .unwrap_or_default())
    }

    fn group(&self) -> Result<Vec<GroupEntry>, RuntimeError> {
        Ok(self
            .read("etc/group")?
            .map(|bytes| parse_lines(&bytes, parse_group_line))
            .unwrap_or_default())
    }

    /// The contents of the rootfs-relative regular file `path`; None when it does not exist.
    /// Symlinks on the way resolve inside the rootfs.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        let host_path = self.rootfs.join(path);
        let mut retries = 0;
        let fd = loop {
            let result = fs::openat2(
                self.root.as_fd(),
                path,
                OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            );
            match result {
                Err(Errno::AGAIN) if retries < RESOLVE_RETRIES => retries += 1,
                Ok(fd) => break fd,
                // ENOTDIR: `etc` is not a directory, so there is no `etc/passwd` either.
                Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
                Err(Errno::LOOP) => {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "the image's /{path} is a symlink loop"
                    )));
                }
                Err(errno) => {
                    return Err(RuntimeError::io("open", host_path)(errno.into()));
                }
            }
        };
        read_regular_file(fd, MAX_ACCOUNT_FILE_SIZE)
            .map(Some)
            .map_err(|err| match err {
                BoundedReadError::NotRegularFile => RuntimeError::InvalidArgument(format!(
                    "the image's /{path} is not a regular file"
                )),
                BoundedReadError::TooLarge => RuntimeError::InvalidArgument(format!(
                    "the image's /{path} is larger than {} MiB",
                    MAX_ACCOUNT_FILE_SIZE / (1024 * 1024)
                )),
                BoundedReadError::Io { op, source } => RuntimeError::Io {
                    op,
                    path: host_path,
                    source,
                },
            })
    }
}

/// Why [`read_regular_file`] read nothing.
#[derive(Debug)]
pub(super) enum BoundedReadError {
    /// The file is a directory, a FIFO, a device node or a socket.
    NotRegularFile,
    /// The file has more bytes than the limit.
    TooLarge,
    /// A system call failed.
    Io {
        op: &'static str,
        source: std::io::Error,
    },
}

/// The contents of the open file `fd`, when it is a regular file of at most `limit` bytes. At
/// most `limit` + 1 bytes are ever read or allocated, whatever the file claims its size is.
pub(super) fn read_regular_file(fd: OwnedFd, limit: u64) -> Result<Vec<u8>, BoundedReadError> {
    let stat = fs::fstat(&fd).map_err(|errno| BoundedReadError::Io {
        op: "stat",
        source: errno.into(),
    })?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(BoundedReadError::NotRegularFile);
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > limit {
        return Err(BoundedReadError::TooLarge);
    }
    // The size is only a hint (the file may grow meanwhile); the read itself is bounded.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| BoundedReadError::Io { op: "read", source })?;
    if bytes.len() as u64 > limit {
        return Err(BoundedReadError::TooLarge);
    }
    Ok(bytes)
}

/// The entries of the valid lines of an account file; comments, blank lines, NIS `+`/`-`
/// lines, lines that are not UTF-8 and malformed lines are skipped.
fn parse_lines<T>(bytes: &[u8], parse_line: fn(&str) -> Option<T>) -> Vec<T> {
    bytes
        .split(|&byte| byte == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| {
            !line.trim().is_empty()
                && !line.starts_with('#')
                && !line.starts_with('+')
                && !line.starts_with('-')
        })
        .filter_map(parse_line)
        .collect()
}

/// An account file's numeric id field, in `0..2^31`.
fn parse_id(field: &str) -> Option<u32> {
    let id = field.parse::<u32>().ok()?;
    (i64::from(id) <= MAX_ID).then_some(id)
}

/// `name:password:uid:gid:gecos:home:shell`; the fields after gid may be missing.
fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    let mut fields = line.split(':');
    let name = fields.next().filter(|name| !name.is_empty())?;
    let _password = fields.next()?;
    let uid = parse_id(fields.next()?)?;
    let gid = parse_id(fields.next()?)?;
    let _gecos = fields.next();
    let home = fields.next().unwrap_or_default();
    Some(PasswdEntry {
        name: name.to_string(),
        uid,
        gid,
        home: home.to_string(),
    })
}

/// `name:password:gid:member,member`; the member list may be missing.
fn parse_group_line(line: &str) -> Option<GroupEntry> {
    let mut fields = line.split(':');
    let name = fields.next().filter(|name| !name.is_empty())?;
    let _password = fields.next()?;
    let gid = parse_id(fields.next()?)?;
    let members = fields
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|member| !member.is_empty())
        .map(str::to_string)
        .collect();
    Some(GroupEntry {
        name: name.to_string(),
        gid,
        members,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use tempfile::TempDir;

    use super::*;
    use crate::RuntimeErrorKind;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
";

    const GROUP: &str = "\
root:x:0:
wheel:x:10:alice,bob
audio:x:29:alice
staff:x:50:
alice:x:1000:
bob:x:1001:
";

    fn rootfs_with(passwd: Option<&str>, group: Option<&str>) -> TempDir {
        let rootfs = tempfile::tempdir().unwrap();
        fs::create_dir(rootfs.path().join("etc")).unwrap();
        if let Some(passwd) = passwd {
            fs::write(rootfs.path().join("etc/passwd"), passwd).unwrap();
        }
        if let Some(group) = group {
            fs::write(rootfs.path().join("etc/group"), group).unwrap();
        }
        rootfs
    }

    fn rootfs() -> TempDir {
        rootfs_with(Some(PASSWD), Some(GROUP))
    }

    fn user(uid: u32, gid: u32, additional_gids: &[u32], home: Option<&str>) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: additional_gids.to_vec(),
            home: home.map(str::to_string),
        }
    }

    fn uid_request(uid: i64) -> UserRequest {
        UserRequest {
            run_as_user: Some(uid),
            ..UserRequest::default()
        }
    }

    fn invalid_argument(result: Result<ResolvedUser, RuntimeError>) -> String {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument, "{err}");
        err.to_string()
    }

    /// Runs `resolve` on another thread and fails if it takes more than a few seconds.
    fn resolve_quickly(
        rootfs: &Path,
        image_user: &str,
        request: &UserRequest,
    ) -> Result<ResolvedUser, RuntimeError> {
        let (sender, receiver) = mpsc::channel();
        let rootfs = rootfs.to_path_buf();
        let image_user = image_user.to_string();
        let request = request.clone();
        std::thread::spawn(move || {
            let _ = sender.send(resolve(&rootfs, &image_user, &request));
        });
        receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("resolve hung")
    }

    #[test]
    fn no_user_anywhere_is_root() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(0, 0, &[], Some("/root")));
    }

    #[test]
    fn empty_rootfs_without_etc_is_root_without_home() {
        let rootfs = tempfile::tempdir().unwrap();
        let resolved = resolve(rootfs.path(), "", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(0, 0, &[], None));
    }

    #[test]
    fn uid_without_passwd_entry_gets_gid_0_and_no_home() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "", &uid_request(4242)).unwrap();
        assert_eq!(resolved, user(4242, 0, &[], None));
    }

    #[test]
    fn uid_with_passwd_entry_gets_its_gid_home_and_memberships() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "bob", &uid_request(1000)).unwrap();
        assert_eq!(resolved, user(1000, 1000, &[10, 29], Some("/home/alice")));
    }

    #[test]
    fn username_is_looked_up() {
        let rootfs = rootfs();
        let request = UserRequest {
            run_as_username: Some("bob".to_string()),
            ..UserRequest::default()
        };
        let resolved = resolve(rootfs.path(), "alice", &request).unwrap();
        assert_eq!(resolved, user(1001, 1001, &[10], Some("/home/bob")));
    }

    #[test]
    fn run_as_user_wins_over_run_as_username() {
        let rootfs = rootfs();
        let request = UserRequest {
            run_as_user: Some(1000),
            run_as_username: Some("bob".to_string()),
            ..UserRequest::default()
        };
        assert_eq!(resolve(rootfs.path(), "", &request).unwrap().uid, 1000);
    }

    #[test]
    fn missing_username_is_refused_by_name() {
        let rootfs = rootfs();
        let request = UserRequest {
            run_as_username: Some("mallory".to_string()),
            ..UserRequest::default()
        };
        let message = invalid_argument(resolve(rootfs.path(), "", &request));
        assert!(message.contains("\"mallory\""), "{message}");
        assert!(message.contains("/etc/passwd"), "{message}");
    }

    #[test]
    fn image_user_by_name() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "alice", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(1000, 1000, &[10, 29], Some("/home/alice")));
    }

    #[test]
    fn image_user_name_and_group_name() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "alice:staff", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(1000, 50, &[10, 29], Some("/home/alice")));
    }

    #[test]
    fn image_user_uid_and_group_name() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "4242:audio", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(4242, 29, &[], None));
    }

    #[test]
    fn image_user_name_and_gid() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "alice:29", &UserRequest::default()).unwrap();
        // the primary gid is not repeated among the supplemental ones
        assert_eq!(resolved, user(1000, 29, &[10], Some("/home/alice")));
    }

    #[test]
    fn image_user_numeric_ids_need_no_entries() {
        let rootfs = rootfs_with(None, None);
        let resolved = resolve(rootfs.path(), "5000:6000", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(5000, 6000, &[], None));
    }

    #[test]
    fn image_user_with_empty_group_keeps_the_users_gid() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "bob:", &UserRequest::default()).unwrap();
        assert_eq!(resolved.gid, 1001);
    }

    #[test]
    fn image_user_names_missing_from_the_files_are_refused_by_name() {
        let rootfs = rootfs();
        let message = invalid_argument(resolve(rootfs.path(), "nobody", &UserRequest::default()));
        assert!(
            message.contains("\"nobody\"") && message.contains("/etc/passwd"),
            "{message}"
        );
        let message = invalid_argument(resolve(
            rootfs.path(),
            "alice:nogroup",
            &UserRequest::default(),
        ));
        assert!(
            message.contains("\"nogroup\"") && message.contains("/etc/group"),
            "{message}"
        );
    }

    #[test]
    fn request_user_replaces_the_image_user_and_group() {
        let rootfs = rootfs();
        let resolved = resolve(rootfs.path(), "alice:staff", &uid_request(1001)).unwrap();
        assert_eq!(resolved, user(1001, 1001, &[10], Some("/home/bob")));
    }

    #[test]
    fn run_as_group_overrides_the_gid() {
        let rootfs = rootfs();
        let request = UserRequest {
            run_as_group: Some(29),
            ..uid_request(1000)
        };
        let resolved = resolve(rootfs.path(), "", &request).unwrap();
        assert_eq!(resolved, user(1000, 29, &[10], Some("/home/alice")));
    }

    #[test]
    fn run_as_group_without_user_is_refused() {
        let rootfs = rootfs();
        let request = UserRequest {
            run_as_group: Some(29),
            ..UserRequest::default()
        };
        let message = invalid_argument(resolve(rootfs.path(), "alice", &request));
        assert_eq!(message, "run_as_group needs run_as_user or run_as_username");
    }

    #[test]
    fn ids_outside_0_to_2_pow_31_are_refused() {
        let rootfs = rootfs();
        for uid in [1 << 31, -1, i64::MAX, i64::MIN] {
            invalid_argument(resolve(rootfs.path(), "", &uid_request(uid)));
        }
        let request = UserRequest {
            run_as_group: Some(1 << 31),
            ..uid_request(0)
        };
        invalid_argument(resolve(rootfs.path(), "", &request));
        let request = UserRequest {
            supplemental_groups: vec![5, -5],
            ..uid_request(0)
        };
        invalid_argument(resolve(rootfs.path(), "", &request));
        for image_user in ["2147483648", "0:2147483648", "99999999999999999999999"] {
            invalid_argument(resolve(rootfs.path(), image_user, &UserRequest::default()));
        }
        let highest = resolve(rootfs.path(), "", &uid_request(i64::from(i32::MAX))).unwrap();
        assert_eq!(highest.uid, 2_147_483_647);
    }

    #[test]
    fn merge_adds_image_memberships_and_strict_only_the_requested_groups() {
        let rootfs = rootfs();
        let merge = UserRequest {
            supplemental_groups: vec![5000, 1000, 5000, 10],
            ..uid_request(1000)
        };
        let resolved = resolve(rootfs.path(), "", &merge).unwrap();
        assert_eq!(resolved.additional_gids, [10, 29, 5000]);

        let strict = UserRequest {
            policy: SupplementalGroupsPolicy::Strict,
            ..merge
        };
        let resolved = resolve(rootfs.path(), "", &strict).unwrap();
        assert_eq!(resolved.additional_gids, [10, 5000]);
    }

    #[test]
    fn strict_policy_with_numeric_ids_does_not_read_etc_group() {
        // an /etc/group that cannot be read is not a problem when it is not needed
        let rootfs = rootfs_with(Some(PASSWD), None);
        fs::create_dir(rootfs.path().join("etc/group")).unwrap();
        let request = UserRequest {
            policy: SupplementalGroupsPolicy::Strict,
            supplemental_groups: vec![7],
            ..uid_request(1000)
        };
        let resolved = resolve(rootfs.path(), "", &request).unwrap();
        assert_eq!(resolved, user(1000, 1000, &[7], Some("/home/alice")));
        invalid_argument(resolve(rootfs.path(), "", &uid_request(1000)));
    }

    #[test]
    fn absolute_etc_symlink_resolves_inside_the_rootfs() {
        // The host-side target holds a passwd that must never be read.
        let outside = tempfile::tempdir().unwrap();
        let outside_etc = outside.path().join("etc");
        fs::create_dir(&outside_etc).unwrap();
        fs::write(
            outside_etc.join("passwd"),
            "alice:x:1000:4444:host:/host-home:/bin/sh\n",
        )
        .unwrap();
        fs::write(outside_etc.join("group"), "hostgroup:x:4444:alice\n").unwrap();

        let rootfs = tempfile::tempdir().unwrap();
        symlink(&outside_etc, rootfs.path().join("etc")).unwrap();
        let resolved = resolve(rootfs.path(), "", &uid_request(1000)).unwrap();
        assert_eq!(resolved, user(1000, 0, &[], None));
        invalid_argument(resolve(rootfs.path(), "alice", &UserRequest::default()));
        invalid_argument(resolve(
            rootfs.path(),
            "0:hostgroup",
            &UserRequest::default(),
        ));

        // the same path inside the rootfs is the one read
        let inside_etc = rootfs.path().join(outside_etc.strip_prefix("/").unwrap());
        fs::create_dir_all(&inside_etc).unwrap();
        fs::write(
            inside_etc.join("passwd"),
            "alice:x:1000:7777:image:/image-home:/bin/sh\n",
        )
        .unwrap();
        let resolved = resolve(rootfs.path(), "alice", &UserRequest::default()).unwrap();
        assert_eq!(resolved, user(1000, 7777, &[], Some("/image-home")));
    }

    #[test]
    fn dotdot_passwd_symlink_stays_in_the_rootfs() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(
            outside.path().join("passwd"),
            "alice:x:1000:4444:host:/host-home:/bin/sh\n",
        )
        .unwrap();
        let rootfs = rootfs_with(None, None);
        let escape = format!("../../../../../../../..{}/passwd", outside.path().display());
        symlink(escape, rootfs.path().join("etc/passwd")).unwrap();
        let resolved = resolve(rootfs.path(), "", &uid_request(1000)).unwrap();
        assert_eq!(resolved, user(1000, 0, &[], None));
    }

    #[test]
    fn passwd_symlink_to_dev_zero_does_not_read_the_host_device() {
        let rootfs = rootfs_with(None, None);
        symlink("/dev/zero", rootfs.path().join("etc/passwd")).unwrap();
        // /dev/zero of the rootfs does not exist: no entries
        let resolved = resolve_quickly(rootfs.path(), "", &uid_request(1000)).unwrap();
        assert_eq!(resolved, user(1000, 0, &[], None));
    }

    #[test]
    fn passwd_that_is_a_character_device_is_refused() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED passwd_that_is_a_character_device_is_refused: needs root");
            return;
        }
        let rootfs = rootfs_with(None, None);
        fs::create_dir(rootfs.path().join("dev")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            rootfs.path().join("dev/zero"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 5),
        )
        .unwrap();
        symlink("/dev/zero", rootfs.path().join("etc/passwd")).unwrap();
        let message = invalid_argument(resolve_quickly(rootfs.path(), "", &uid_request(1000)));
        assert!(message.contains("not a regular file"), "{message}");
    }

    #[test]
    fn passwd_that_is_a_fifo_is_refused_without_blocking() {
        let rootfs = rootfs_with(None, None);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            rootfs.path().join("etc/passwd"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let message = invalid_argument(resolve_quickly(rootfs.path(), "", &uid_request(1000)));
        assert!(message.contains("not a regular file"), "{message}");
    }

    #[test]
    fn huge_sparse_passwd_is_refused_quickly() {
        let rootfs = rootfs_with(None, None);
        let file = File::create(rootfs.path().join("etc/passwd")).unwrap();
        file.set_len(1 << 30).unwrap();
        let started = Instant::now();
        let message = invalid_argument(resolve_quickly(rootfs.path(), "", &uid_request(1000)));
        assert!(message.contains("larger than 10 MiB"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn passwd_just_over_the_limit_is_refused_and_at_the_limit_read() {
        let rootfs = rootfs_with(None, None);
        let path = rootfs.path().join("etc/passwd");
        let mut contents = b"alice:x:1000:1000::/home/alice:/bin/sh\n".to_vec();
        contents.resize(usize::try_from(MAX_ACCOUNT_FILE_SIZE).unwrap(), b'#');
        fs::write(&path, &contents).unwrap();
        let resolved = resolve(rootfs.path(), "alice", &UserRequest::default()).unwrap();
        assert_eq!(resolved.uid, 1000);
        contents.push(b'\n');
        fs::write(&path, &contents).unwrap();
        invalid_argument(resolve(rootfs.path(), "alice", &UserRequest::default()));
    }

    #[test]
    fn passwd_symlink_loop_is_refused() {
        let rootfs = rootfs_with(None, None);
        symlink("passwd", rootfs.path().join("etc/passwd")).unwrap();
        let message = invalid_argument(resolve(rootfs.path(), "", &uid_request(1)));
        assert!(message.contains("symlink loop"), "{message}");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let mut passwd = b"\
# a comment

+nisuser
-nisuser:x:0:0::/:/bin/sh
broken
noid:x:notanumber:1::/:/bin/sh
short:x:1002
:x:1003:1003::/nameless:/bin/sh
huge:x:4294967295:0::/huge:/bin/sh
dave:x:1004:1004
eve:x:1005:1005:Eve:/home/eve:/bin/sh\r
"
        .to_vec();
        passwd.extend_from_slice(b"bin\xff\xfe:x:1006:1006::/bin:/bin/sh\n");
        passwd.extend_from_slice(b"frank:x:1007:1007::/home/frank:/bin/sh");
        let group = "\
# groups
+nisgroup
wheel:x:10: dave , eve ,,
bad:x:-1:dave
nogid:x::dave
users:x:100:frank
";
        let rootfs = rootfs_with(None, Some(group));
        fs::write(rootfs.path().join("etc/passwd"), passwd).unwrap();

        let none = UserRequest::default();
        assert_eq!(
            resolve(rootfs.path(), "dave", &none).unwrap(),
            user(1004, 1004, &[10], None)
        );
        assert_eq!(
            resolve(rootfs.path(), "eve", &none).unwrap(),
            user(1005, 1005, &[10], Some("/home/eve"))
        );
        assert_eq!(
            resolve(rootfs.path(), "frank", &none).unwrap(),
            user(1007, 1007, &[100], Some("/home/frank"))
        );
        for skipped in ["+nisuser", "nisuser", "broken", "noid", "short", "huge"] {
            invalid_argument(resolve(rootfs.path(), skipped, &none));
        }
        assert_eq!(
            resolve(rootfs.path(), "", &uid_request(1003)).unwrap(),
            user(1003, 0, &[], None)
        );
        invalid_argument(resolve(rootfs.path(), "0:bad", &none));
    }
}
