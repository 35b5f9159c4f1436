//! Which sysctls a pod may set, and the grammar their names and values must follow before they
//! are written anywhere: only namespaced sysctls (they change the pod's namespaces, not the
//! node), names of dotted lowercase words, values of one line of printable characters.

/// Why a sysctl is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    #[error("sysctl name {0:?} is not a dotted name of [a-z0-9_-] words")]
    BadName(String),
    #[error(
        "sysctl {name}: value {value:?} must be one line of printable characters, at most 4096"
    )]
    BadValue { name: String, value: String },
    #[error("sysctl {0} is not namespaced: a pod may not change the node")]
    NotNamespaced(String),
    #[error("sysctl {0} needs the pod's own network namespace, and the pod uses the host's")]
    NeedsPodNetwork(String),
    #[error("sysctl {0} needs the pod's own IPC namespace, and the pod uses the host's")]
    NeedsPodIpc(String),
}

/// The namespaces a pod has of its own, which decide what it may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnNamespaces {
    pub network: bool,
    pub ipc: bool,
}

const MAX_VALUE_BYTES: usize = 4096;

/// Checks one sysctl and returns its name in dotted form. `net.ipv4.conf.eth0.forwarding` and
/// `kernel/shm_rmid_forced` (slashes are accepted as separators, as sysctl(8) does) are the forms
/// taken.
pub fn validate(name: &str, value: &str, own: OwnNamespaces) -> Result<String, SysctlError> {
    let dotted = name.replace('/', ".");
    let well_formed = !dotted.is_empty()
        && dotted.len() <= 256
        && dotted.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
    if !well_formed {
        return Err(SysctlError::BadName(name.to_string()));
    }
    let printable_line = value.len() <= MAX_VALUE_BYTES
        && !value.is_empty()
        && value.chars().all(|c| !c.is_control() || c == '\t');
    if !printable_line {
        return Err(SysctlError::BadValue {
            name: name.to_string(),
            value: value.chars().take(64).collect(),
        });
    }
    if dotted.starts_with("net.") {
        return if own.network {
            Ok(dotted)
        } else {
            Err(SysctlError::NeedsPodNetwork(dotted))
        };
    }
    let ipc = dotted == "kernel.sem"
        || dotted.starts_with("kernel.shm")
        || dotted.starts_with("kernel.msg")
        || dotted.starts_with("fs.mqueue.");
    if ipc {
        return if own.ipc {
            Ok(dotted)
        } else {
            Err(SysctlError::NeedsPodIpc(dotted))
        };
    }
    Err(SysctlError::NotNamespaced(dotted))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: OwnNamespaces = OwnNamespaces {
        network: true,
        ipc: true,
    };

    #[test]
    fn namespaced_sysctls_are_accepted() {
        for (name, value) in [
            ("net.ipv4.ip_unprivileged_port_start", "0"),
            ("net/ipv4/conf/eth0/forwarding", "1"),
            ("kernel.shm_rmid_forced", "1"),
            ("kernel.msgmax", "65536"),
            ("kernel.sem", "250 32000 100 128"),
            ("fs.mqueue.msg_max", "10"),
        ] {
            validate(name, value, OWN).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(
            validate("net/ipv4/conf/eth0/forwarding", "1", OWN).unwrap(),
            "net.ipv4.conf.eth0.forwarding"
        );
    }

    #[test]
    fn node_wide_sysctls_are_refused() {
        for name in [
            "kernel.panic",
            "vm.overcommit_memory",
            "fs.file-max",
            "kernel.hostname",
        ] {
            assert!(
                matches!(validate(name, "1", OWN), Err(SysctlError::NotNamespaced(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn smuggled_names_and_values_are_refused() {
        for name in [
            "",
            "net..ipv4",
            "net.ipv4.ip_forward=1",
            "net.ipv4 x",
            "../../etc",
            "NET.ipv4",
            "net.ipv4\n",
        ] {
            assert!(
                matches!(validate(name, "1", OWN), Err(SysctlError::BadName(_))),
                "{name:?}"
            );
        }
        for value in ["", "1\nkernel.panic=1", "1\0", "a".repeat(5000).as_str()] {
            assert!(
                matches!(
                    validate("net.ipv4.ip_unprivileged_port_start", value, OWN),
                    Err(SysctlError::BadValue { .. })
                ),
                "{value:?}"
            );
        }
    }

    #[test]
    fn host_namespaces_forbid_their_sysctls() {
        let host = OwnNamespaces {
            network: false,
            ipc: false,
        };
        assert!(matches!(
            validate("net.ipv4.ip_unprivileged_port_start", "0", host),
            Err(SysctlError::NeedsPodNetwork(_))
        ));
        assert!(matches!(
            validate("kernel.shm_rmid_forced", "1", host),
            Err(SysctlError::NeedsPodIpc(_))
        ));
    }
}
