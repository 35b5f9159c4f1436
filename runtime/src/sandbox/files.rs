//! The files a pod's containers will bind-mount: `hostname`, `resolv.conf`, and a private
//! `/dev/shm`. They live in the pod's own directory under the state dir (0700, crius's own), and
//! their contents come from a request only after a grammar check: nothing a request says becomes
//! a line of a file unchecked.

use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::RuntimeError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// kubelet's own bound on search domains.
const MAX_SEARCHES: usize = 32;

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

/// A hostname of DNS labels (`[A-Za-z0-9-]`, not starting or ending with `-`), at most 64 bytes.
pub fn validate_hostname(hostname: &str) -> Result<(), RuntimeError> {
    let labels_ok = hostname.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if hostname.is_empty() || hostname.len() > 64 || !labels_ok {
        return Err(invalid(format!(
            "hostname {hostname:?} is not a valid DNS name of at most 64 bytes"
        )));
    }
    Ok(())
}

/// The resolv.conf for a pod: from its DNS config, else the host's.
pub fn resolv_conf(
    dns: Option<&DnsConfig>,
    host_resolv_conf: &Path,
) -> Result<String, RuntimeError> {
    let Some(dns) = dns else {
        return std::fs::read_to_string(host_resolv_conf)
            .map_err(RuntimeError::io("read", host_resolv_conf));
    };
    let mut text = String::new();
    for server in &dns.servers {
        let address: IpAddr = server
            .parse()
            .map_err(|_| invalid(format!("DNS server {server:?} is not an IP address")))?;
        text.push_str(&format!("nameserver {address}\n"));
    }
    if dns.searches.len() > MAX_SEARCHES {
        return Err(invalid(format!(
            "more than {MAX_SEARCHES} DNS search domains"
        )));
    }
    let word = |w: &str| !w.is_empty() && w.len() <= 253 && w.bytes().all(|b| b.is_ascii_graphic());
    if let Some(bad) = dns.searches.iter().find(|s| !word(s)) {
        return Err(invalid(format!(
            "DNS search domain {bad:?} must be one word of printable characters"
        )));
    }
    if let Some(bad) = dns.options.iter().find(|o| !word(o)) {
        return Err(invalid(format!(
            "DNS option {bad:?} must be one word of printable characters"
        )));
    }
    if !dns.searches.is_empty() {
        text.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    if !dns.options.is_empty() {
        text.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Ok(text)
}

/// Writes `hostname` and `resolv.conf` into the pod's directory; returns their paths.
pub fn write_pod_files(
    pod_dir: &Path,
    hostname: &str,
    resolv_conf: &str,
) -> Result<(PathBuf, PathBuf), RuntimeError> {
    let hostname_path = pod_dir.join("hostname");
    std::fs::write(&hostname_path, format!("{hostname}\n"))
        .map_err(RuntimeError::io("write", &hostname_path))?;
    let resolv_path = pod_dir.join("resolv.conf");
    std::fs::write(&resolv_path, resolv_conf).map_err(RuntimeError::io("write", &resolv_path))?;
    Ok((hostname_path, resolv_path))
}

/// Mounts a tmpfs of `size_bytes` at `<pod_dir>/shm` (nosuid, nodev, noexec, mode 1777).
pub fn mount_shm(pod_dir: &Path, size_bytes: u64) -> Result<PathBuf, RuntimeError> {
    let shm = pod_dir.join("shm");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&shm)
        .map_err(RuntimeError::io("create directory", &shm))?;
    nix::mount::mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size={size_bytes}").as_str()),
    )
    .map_err(|errno| RuntimeError::io("mount tmpfs on", &shm)(errno.into()))?;
    Ok(shm)
}

/// Unmounts a pod's /dev/shm and removes its directory; a missing one is fine.
pub fn unmount_shm(shm: &Path) -> Result<(), RuntimeError> {
    match nix::mount::umount2(shm, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(errno) => return Err(RuntimeError::io("unmount", shm)(errno.into())),
    }
    match std::fs::remove_dir(shm) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io("remove", shm)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_is_built_from_the_dns_config() {
        let dns = DnsConfig {
            servers: vec!["10.96.0.10".into(), "fd00::a".into()],
            searches: vec![
                "default.svc.cluster.local".into(),
                "svc.cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        };
        let text = resolv_conf(Some(&dns), Path::new("/nonexistent")).unwrap();
        assert_eq!(
            text,
            "nameserver 10.96.0.10\nnameserver fd00::a\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn smuggled_lines_in_dns_config_are_refused() {
        let cases = [
            DnsConfig {
                servers: vec!["10.0.0.1\nnameserver 6.6.6.6".into()],
                ..Default::default()
            },
            DnsConfig {
                searches: vec!["a\nnameserver 6.6.6.6".into()],
                ..Default::default()
            },
            DnsConfig {
                options: vec!["ndots:5 x".into()],
                ..Default::default()
            },
            DnsConfig {
                searches: vec!["x".into(); 33],
                ..Default::default()
            },
        ];
        for dns in cases {
            assert!(
                resolv_conf(Some(&dns), Path::new("/nonexistent")).is_err(),
                "{dns:?}"
            );
        }
    }

    #[test]
    fn without_dns_config_the_hosts_resolv_conf_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("resolv.conf");
        std::fs::write(&host, "nameserver 1.2.3.4\n").unwrap();
        assert_eq!(resolv_conf(None, &host).unwrap(), "nameserver 1.2.3.4\n");
    }

    #[test]
    fn hostnames_are_dns_names() {
        for good in ["pod", "my-pod-1", "a.b.c", &"a".repeat(63)] {
            validate_hostname(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a b",
            "a\nb",
            "a_b",
            &"a".repeat(65),
        ] {
            assert!(validate_hostname(bad).is_err(), "{bad:?}");
        }
    }
}
