//! The environment of one plugin call (`CNI_*` variables) and the checks on what goes into it.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::CniError;
use crate::exec::Attachment;

/// `PATH` for plugins: fixed, because plugins such as portmap run `iptables` by name.
pub(super) const PLUGIN_SEARCH_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
const MAX_IFNAME_LEN: usize = 15;

/// The CNI operations crius performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CniCommand {
    Add,
    Del,
}

impl CniCommand {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
        }
    }
}

/// Checks every attachment field that plugins receive, so that none can smuggle extra
/// `CNI_ARGS` keys or break the plugins' own parsing.
pub(super) fn validate_attachment(attachment: &Attachment) -> Result<(), CniError> {
    let invalid =
        |field: &'static str, reason: String| CniError::InvalidAttachment { field, reason };
    let id = &attachment.container_id;
    let id_is_valid = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !id_is_valid {
        return Err(invalid(
            "container id",
            format!(
                "{id:?} must start with a letter or digit and hold only letters, digits, '_', '.' \
                 and '-'"
            ),
        ));
    }
    let ifname = &attachment.ifname;
    if ifname.is_empty()
        || ifname.len() > MAX_IFNAME_LEN
        || ifname == "."
        || ifname == ".."
        || ifname
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "interface name",
            format!(
                "{ifname:?} must be 1 to {MAX_IFNAME_LEN} bytes without '/', ':' or whitespace"
            ),
        ));
    }
    if !attachment.netns.is_absolute() {
        return Err(invalid(
            "network namespace path",
            format!("{} is not absolute", attachment.netns.display()),
        ));
    }
    for (field, value) in [
        ("pod namespace", &attachment.pod_namespace),
        ("pod name", &attachment.pod_name),
        ("pod uid", &attachment.pod_uid),
    ] {
        if value
            .chars()
            .any(|c| c == ';' || c == '=' || c.is_control())
        {
            return Err(invalid(
                field,
                format!("{value:?} holds ';', '=' or a control character"),
            ));
        }
    }
    Ok(())
}

/// `CNI_ARGS` as Kubernetes runtimes pass it. The attachment must have been validated.
pub(super) fn cni_args(attachment: &Attachment) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};\
         K8S_POD_UID={}",
        attachment.pod_namespace, attachment.pod_name, attachment.container_id, attachment.pod_uid
    )
}

/// The complete environment of a plugin call: nothing of the daemon's own environment leaks in.
pub(super) fn plugin_environment(
    command: CniCommand,
    attachment: &Attachment,
    plugin_dirs: &[PathBuf],
) -> Vec<(&'static str, OsString)> {
    let cni_path = std::env::join_paths(plugin_dirs).unwrap_or_else(|_| {
        // A dir holding ':' cannot be expressed in CNI_PATH; leave such dirs out.
        std::env::join_paths(
            plugin_dirs
                .iter()
                .filter(|d| !d.as_os_str().as_encoded_bytes().contains(&b':')),
        )
        .unwrap_or_default()
    });
    vec![
        ("CNI_COMMAND", command.as_str().into()),
        ("CNI_CONTAINERID", attachment.container_id.clone().into()),
        ("CNI_NETNS", attachment.netns.clone().into()),
        ("CNI_IFNAME", attachment.ifname.clone().into()),
        ("CNI_ARGS", cni_args(attachment).into()),
        ("CNI_PATH", cni_path),
        ("PATH", PLUGIN_SEARCH_PATH.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CniErrorKind;
    use crate::exec::tests::attachment;

    #[test]
    fn cni_args_carry_the_kubernetes_keys() {
        assert_eq!(
            cni_args(&attachment()),
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
                 K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID=6a1c0f2e-1b7e-4bb4-9a4e-0d3c2f1b0a99",
                "a".repeat(64)
            )
        );
    }

    #[test]
    fn environment_is_exactly_the_cni_variables() {
        let dirs = [PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")];
        let env = plugin_environment(CniCommand::Del, &attachment(), &dirs);
        let names: Vec<_> = env.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "CNI_COMMAND",
                "CNI_CONTAINERID",
                "CNI_NETNS",
                "CNI_IFNAME",
                "CNI_ARGS",
                "CNI_PATH",
                "PATH"
            ]
        );
        let get = |name: &str| env.iter().find(|(k, _)| *k == name).unwrap().1.clone();
        assert_eq!(get("CNI_COMMAND"), "DEL");
        assert_eq!(get("CNI_NETNS"), "/run/crius/netns/pod");
        assert_eq!(get("CNI_IFNAME"), "eth0");
        assert_eq!(get("CNI_PATH"), "/usr/lib/cni:/opt/cni/bin");
        assert_eq!(get("PATH"), PLUGIN_SEARCH_PATH);
    }

    #[test]
    fn a_valid_attachment_passes() {
        validate_attachment(&attachment()).unwrap();
        let mut empty_uid = attachment();
        empty_uid.pod_uid.clear();
        validate_attachment(&empty_uid).unwrap();
    }

    #[test]
    fn strings_that_would_forge_cni_args_are_refused() {
        type Mutation = fn(&mut Attachment);
        let cases: [(Mutation, &str); 10] = [
            (|a| a.pod_name = "web;K8S_POD_UID=x".into(), "pod name"),
            (|a| a.pod_namespace = "a=b".into(), "pod namespace"),
            (|a| a.pod_uid = "u\n".into(), "pod uid"),
            (|a| a.pod_name = "nul\0".into(), "pod name"),
            (|a| a.container_id = String::new(), "container id"),
            (|a| a.container_id = "../etc".into(), "container id"),
            (|a| a.ifname = "eth0:1".into(), "interface name"),
            (|a| a.ifname = "a-very-long-ifname".into(), "interface name"),
            (|a| a.ifname = "..".into(), "interface name"),
            (|a| a.netns = "netns/pod".into(), "network namespace path"),
        ];
        for (mutate, field) in cases {
            let mut a = attachment();
            mutate(&mut a);
            let err = validate_attachment(&a).unwrap_err();
            assert_eq!(err.kind(), CniErrorKind::InvalidArgument);
            assert!(
                err.to_string().starts_with(&format!("invalid {field}: ")),
                "{err}"
            );
        }
    }
}
