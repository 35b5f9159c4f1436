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
/// "name:gid", "uid:group"). The request's fields override it.
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
            Some((user, group)) => (user, Some(group)),
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

    let groups = accounts.group()?;
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
    if (0..=MAX_ID).contains(&id) {
        u32::try_from(id).map_err(|_| out_of_range(what, &id.to_string()))
    } else {
        Err(out_of_range(what, &id.to_string()))
    }
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
                Err(Errno::NOENT) => return Ok(None),
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
