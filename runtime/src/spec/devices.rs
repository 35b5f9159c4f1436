//! The device nodes a container gets (`linux.devices`) and what the device cgroup lets it use
//! (`linux.resources.devices`): everything denied, then the usual character devices (as runc and
//! containerd allow them), then the devices the request names. A privileged container gets every
//! device of the host and an unrestricted device cgroup.

use std::fs::Metadata;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::process::clean_path;
use super::request::DeviceRequest;
use crate::RuntimeError;

/// The device nodes and the device cgroup rules of a container.
#[derive(Debug, Default)]
pub struct Devices {
    pub nodes: Vec<LinuxDevice>,
    pub cgroup_rules: Vec<LinuxDeviceCgroup>,
}

/// Directories of `/dev` that hold no device a container should get a copy of (runc's list).
const SKIPPED_DEV_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// How deep a device directory is walked.
const MAX_DEPTH: usize = 8;

/// The character devices every container gets: path, major, minor.
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    rule
}

fn node(path: &Path, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDevice {
    let mut device = LinuxDevice::default();
    device
        .set_path(path.to_path_buf())
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor);
    device
}

/// Everything denied, then: creating any node (`mknod`, not opening it), the default devices,
/// `/dev/ptmx` and the pseudo-terminals of `/dev/pts`.
fn default_rules() -> Vec<LinuxDeviceCgroup> {
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![
        rule(false, None, None, None, "rwm"),
        rule(true, c, None, None, "m"),
        rule(true, Some(LinuxDeviceType::B), None, None, "m"),
    ];
    for (_, major, minor) in DEFAULT_DEVICES {
        rules.push(rule(true, c, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, c, Some(5), Some(2), "rwm"));
    rules.push(rule(true, c, Some(136), None, "rwm"));
    rules
}

fn default_nodes() -> Vec<LinuxDevice> {
    DEFAULT_DEVICES
        .iter()
        .map(|(path, major, minor)| {
            let mut device = node(Path::new(path), LinuxDeviceType::C, *major, *minor);
            device
                .set_file_mode(Some(0o666))
                .set_uid(Some(0))
                .set_gid(Some(0));
            device
        })
        .collect()
}

/// The node for a host device, at `container_path`; `None` when `metadata` is not a device.
fn host_node(container_path: &Path, metadata: &Metadata) -> Option<LinuxDevice> {
    let file_type = metadata.file_type();
    let typ = if file_type.is_char_device() {
        LinuxDeviceType::C
    } else if file_type.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = metadata.rdev();
    let mut device = node(
        container_path,
        typ,
        i64::from(rustix::fs::major(rdev)),
        i64::from(rustix::fs::minor(rdev)),
    );
    device
        .set_file_mode(Some(metadata.mode() & 0o777))
        .set_uid(Some(metadata.uid()))
        .set_gid(Some(metadata.gid()));
    Some(device)
}

/// The devices under `host_dir`, each at the same relative path under `container_dir`. Symlinks
/// are not followed and what cannot be read is skipped: the host's `/dev` changes under us.
fn walk_devices(
    host_dir: &Path,
    container_dir: &Path,
    depth: usize,
    skip_runtime_dirs: bool,
    found: &mut Vec<LinuxDevice>,
) {
    let Ok(entries) = std::fs::read_dir(host_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(metadata) = entry.path().symlink_metadata() else {
            continue;
        };
        let container_path = container_dir.join(&name);
        if metadata.is_dir() {
            let skipped = skip_runtime_dirs
                && SKIPPED_DEV_DIRS
                    .iter()
                    .any(|skip| name.as_encoded_bytes() == skip.as_bytes());
            if !skipped && depth < MAX_DEPTH {
                walk_devices(
                    &entry.path(),
                    &container_path,
                    depth + 1,
                    skip_runtime_dirs,
                    found,
                );
            }
        } else if skip_runtime_dirs && name == "console" {
            // The runtime sets up the console.
        } else if let Some(device) = host_node(&container_path, &metadata) {
            found.push(device);
        }
    }
}

/// `rwm` or a subset; empty means all three.
fn access(permissions: &str, container_path: &str) -> Result<String, RuntimeError> {
    if permissions.is_empty() {
        return Ok("rwm".to_string());
    }
    let mut seen = String::new();
    for c in permissions.chars() {
        if !matches!(c, 'r' | 'w' | 'm') || seen.contains(c) {
            return Err(invalid(format!(
                "device {container_path}: permissions {permissions:?} are not a subset of \"rwm\""
            )));
        }
        seen.push(c);
    }
    Ok(seen)
}

/// The nodes a request's device stands for: the device itself, or every device in the directory
/// it names.
fn requested_nodes(request: &DeviceRequest) -> Result<Vec<LinuxDevice>, RuntimeError> {
    let container_path = &request.container_path;
    if !container_path.starts_with('/') || container_path.contains('\0') {
        return Err(invalid(format!(
            "device container_path {container_path:?} is not an absolute path"
        )));
    }
    let host_path = Path::new(&request.host_path);
    if !request.host_path.starts_with('/') || request.host_path.contains('\0') {
        return Err(invalid(format!(
            "device {container_path}: host_path {:?} is not an absolute path",
            request.host_path
        )));
    }
    let metadata = std::fs::metadata(host_path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            invalid(format!(
                "device {container_path}: host path {} does not exist",
                host_path.display()
            ))
        } else {
            RuntimeError::io("stat device", host_path)(e)
        }
    })?;
    let container_path = clean_path(Path::new(container_path));
    if metadata.is_dir() {
        let mut found = Vec::new();
        walk_devices(host_path, &container_path, 0, false, &mut found);
        return Ok(found);
    }
    host_node(&container_path, &metadata)
        .map(|device| vec![device])
        .ok_or_else(|| {
            invalid(format!(
                "device {}: host path {} is not a device",
                container_path.display(),
                host_path.display()
            ))
        })
}

/// The devices of a container. `host_dev` is the host's `/dev`, walked for a privileged one.
pub fn devices(
    requests: &[DeviceRequest],
    privileged: bool,
    host_dev: &Path,
) -> Result<Devices, RuntimeError> {
    let mut devices = if privileged {
        let mut nodes = Vec::new();
        walk_devices(host_dev, Path::new("/dev"), 0, true, &mut nodes);
        Devices {
            nodes,
            cgroup_rules: vec![rule(true, None, None, None, "rwm")],
        }
    } else {
        Devices {
            nodes: default_nodes(),
            cgroup_rules: default_rules(),
        }
    };
    for request in requests {
        let access = access(&request.permissions, &request.container_path)?;
        for device in requested_nodes(request)? {
            if !privileged {
                devices.cgroup_rules.push(rule(
                    true,
                    Some(device.typ()),
                    Some(device.major()),
                    Some(device.minor()),
                    &access,
                ));
            }
            devices.nodes.retain(|n| n.path() != device.path());
            devices.nodes.push(device);
        }
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn request(container_path: &str, host_path: &str, permissions: &str) -> DeviceRequest {
        DeviceRequest {
            container_path: container_path.into(),
            host_path: host_path.into(),
            permissions: permissions.into(),
        }
    }

    fn container_paths(devices: &Devices) -> Vec<PathBuf> {
        devices.nodes.iter().map(|d| d.path().clone()).collect()
    }

    fn rule_strings(devices: &Devices) -> Vec<String> {
        devices
            .cgroup_rules
            .iter()
            .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
            .collect()
    }

    #[test]
    fn default_devices_deny_everything_else() {
        let devices = devices(&[], false, Path::new("/nonexistent")).unwrap();
        assert_eq!(
            rule_strings(&devices),
            [
                "deny a *:* rwm",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:5 rwm",
                "allow c 1:7 rwm",
                "allow c 1:8 rwm",
                "allow c 1:9 rwm",
                "allow c 5:0 rwm",
                "allow c 5:2 rwm",
                "allow c 136:* rwm",
            ]
        );
        let paths = container_paths(&devices);
        assert_eq!(paths.len(), 6);
        assert!(paths.contains(&PathBuf::from("/dev/null")));
    }

    #[test]
    fn a_requested_device_is_stat_ed_and_allowed_with_its_permissions() {
        let devices = devices(
            &[request("/dev/mynull", "/dev/null", "rw")],
            false,
            Path::new("/nonexistent"),
        )
        .unwrap();
        let added = devices.nodes.last().unwrap();
        assert_eq!(added.path(), Path::new("/dev/mynull"));
        assert_eq!(
            (added.typ(), added.major(), added.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(rule_strings(&devices).last().unwrap(), "allow c 1:3 rw");
    }

    #[test]
    fn a_device_directory_adds_the_devices_in_it() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("link-is-skipped")).unwrap();
        std::fs::write(dir.path().join("file-is-skipped"), "").unwrap();
        let devices = devices(
            &[request("/dev/x", &dir.path().to_string_lossy(), "")],
            false,
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(devices.nodes.len(), 6);
        // /dev/pts is a directory of devices on any Linux machine.
        let devices = super::devices(
            &[request("/dev/hostpts", "/dev/pts", "")],
            false,
            Path::new("/"),
        )
        .unwrap();
        assert!(
            devices
                .nodes
                .iter()
                .any(|d| d.path() == Path::new("/dev/hostpts/ptmx")),
            "{:?}",
            container_paths(&devices)
        );
    }

    #[test]
    fn bad_device_requests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        for bad in [
            request("/dev/x", &file.to_string_lossy(), "rwm"),
            request("/dev/x", "/nonexistent/device", "rwm"),
            request("/dev/x", "/dev/null", "rwx"),
            request("/dev/x", "/dev/null", "rr"),
            request("dev/x", "/dev/null", "r"),
            request("/dev/x", "null", "r"),
        ] {
            let err = devices(std::slice::from_ref(&bad), false, Path::new("/")).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn privileged_gets_the_host_devices_and_no_cgroup_restriction() {
        let devices = devices(&[], true, Path::new("/dev")).unwrap();
        assert_eq!(rule_strings(&devices), ["allow a *:* rwm"]);
        let paths = container_paths(&devices);
        assert!(paths.contains(&PathBuf::from("/dev/null")), "{paths:?}");
        assert!(
            !paths.iter().any(|p| p.starts_with("/dev/pts")),
            "{paths:?}"
        );
    }
}
