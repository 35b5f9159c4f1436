//! Plugin output: results (spec 0.3.0 to 1.0.0, which share one shape) and error objects.

use std::net::IpAddr;

use serde_json::Value;

use crate::SUPPORTED_CNI_VERSIONS;
use crate::exec::PodIp;

/// Parses a plugin's ADD output and rewrites it to `list_version`: the versions crius supports
/// differ only in `ips[].version`, which 1.0.0 dropped. A result without `cniVersion` is taken
/// to be in the version it was asked for, as libcni does.
pub(super) fn normalize_result(stdout: &[u8], list_version: &str) -> Result<Value, String> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Err("no output".into());
    }
    let mut result: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(object) = &mut result else {
        return Err("not a JSON object".into());
    };
    match object.get("cniVersion") {
        None => {}
        Some(Value::String(v)) if SUPPORTED_CNI_VERSIONS.contains(&v.as_str()) => {}
        Some(v) => return Err(format!("result cniVersion {v} is not supported")),
    }
    object.insert("cniVersion".into(), Value::String(list_version.into()));
    for key in ["interfaces", "ips", "routes"] {
        if object.get(key).is_some_and(|v| !v.is_array()) {
            return Err(format!("{key:?} is not an array"));
        }
    }
    if let Some(Value::Array(ips)) = object.get_mut("ips") {
        for ip in ips {
            let (address, _) = parse_ip_entry(ip)?;
            if let Value::Object(ip) = ip {
                if list_version == "1.0.0" {
                    ip.remove("version");
                } else {
                    let family = if address.is_ipv4() { "4" } else { "6" };
                    ip.insert("version".into(), Value::String(family.into()));
                }
            }
        }
    }
    Ok(result)
}

/// The pod's addresses in a (normalized) result: every entry of `ips` except those that name a
/// host-side interface (one without a `sandbox`).
pub(super) fn pod_ips(result: &Value) -> Result<Vec<PodIp>, String> {
    let interfaces = result.get("interfaces").and_then(Value::as_array);
    let in_pod = |ip: &Value| {
        let Some(index) = ip.get("interface").and_then(Value::as_u64) else {
            return true;
        };
        let interface = usize::try_from(index)
            .ok()
            .and_then(|i| interfaces.and_then(|list| list.get(i)));
        interface.is_none_or(|iface| {
            iface
                .get("sandbox")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
    };
    let Some(ips) = result.get("ips").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut pod_ips = Vec::new();
    for ip in ips.iter().filter(|ip| in_pod(ip)) {
        let (address, prefix_len) = parse_ip_entry(ip)?;
        let gateway = match ip.get("gateway") {
            None | Some(Value::Null) => None,
            Some(Value::String(g)) if g.is_empty() => None,
            Some(Value::String(g)) => Some(
                g.parse::<IpAddr>()
                    .map_err(|_| format!("gateway {g:?} is not an IP address"))?,
            ),
            Some(other) => return Err(format!("gateway {other} is not a string")),
        };
        pod_ips.push(PodIp {
            address,
            prefix_len,
            gateway,
        });
    }
    Ok(pod_ips)
}

/// Address and prefix length of one `ips` entry, from its CIDR `address`.
fn parse_ip_entry(ip: &Value) -> Result<(IpAddr, u8), String> {
    let Some(cidr) = ip.get("address").and_then(Value::as_str) else {
        return Err(format!("ips entry {ip} has no \"address\" string"));
    };
    let invalid = || format!("address {cidr:?} is not an IP address with a prefix length");
    let (address, prefix_len) = cidr.split_once('/').ok_or_else(invalid)?;
    let address: IpAddr = address.parse().map_err(|_| invalid())?;
    let prefix_len: u8 = prefix_len.parse().map_err(|_| invalid())?;
    let max_len = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max_len {
        return Err(invalid());
    }
    Ok((address, prefix_len))
}

/// A CNI error object (`{"code": 7, "msg": "...", "details": "..."}`) from a failed plugin's
/// stdout: its code and `msg: details`. `None` when the output is not one.
pub(super) fn parse_error_output(stdout: &[u8]) -> Option<(Option<u64>, String)> {
    let Ok(Value::Object(error)) = serde_json::from_slice::<Value>(stdout) else {
        return None;
    };
    let code = error.get("code").and_then(Value::as_u64);
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let message = match (text("msg"), text("details")) {
        (Some(msg), Some(details)) => format!("{msg}: {details}"),
        (Some(text), None) | (None, Some(text)) => text.to_string(),
        (None, None) if code.is_some() => String::new(),
        (None, None) => return None,
    };
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bridge plugin's answer, as in the CNI 1.0.0 spec.
    const RESULT_1_0_0: &str = r#"{
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "cni0", "mac": "00:11:22:33:44:55"},
            {"name": "veth3243", "mac": "55:44:33:22:11:11"},
            {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
        ],
        "ips": [
            {"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2},
            {"address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 2}
        ],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["10.1.0.1"]}
    }"#;

    const RESULT_0_4_0: &str = r#"{
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/blue"}],
        "ips": [{"version": "4", "address": "10.88.0.5/16", "gateway": "10.88.0.1",
                 "interface": 0}],
        "dns": {}
    }"#;

    fn ip(address: &str, prefix_len: u8, gateway: Option<&str>) -> PodIp {
        PodIp {
            address: address.parse().unwrap(),
            prefix_len,
            gateway: gateway.map(|g| g.parse().unwrap()),
        }
    }

    #[test]
    fn result_1_0_0_gives_the_pod_ips() {
        let result = normalize_result(RESULT_1_0_0.as_bytes(), "1.0.0").unwrap();
        assert_eq!(
            pod_ips(&result).unwrap(),
            [
                ip("10.1.0.5", 16, Some("10.1.0.1")),
                ip("fd00:1::5", 64, Some("fd00:1::1"))
            ]
        );
    }

    #[test]
    fn result_0_4_0_gives_the_pod_ips() {
        let result = normalize_result(RESULT_0_4_0.as_bytes(), "0.4.0").unwrap();
        assert_eq!(result["ips"][0]["version"], "4");
        assert_eq!(
            pod_ips(&result).unwrap(),
            [ip("10.88.0.5", 16, Some("10.88.0.1"))]
        );
    }

    #[test]
    fn results_are_rewritten_to_the_list_version() {
        let up = normalize_result(RESULT_0_4_0.as_bytes(), "1.0.0").unwrap();
        assert_eq!(up["cniVersion"], "1.0.0");
        assert!(up["ips"][0].get("version").is_none());
        let down = normalize_result(RESULT_1_0_0.as_bytes(), "0.3.1").unwrap();
        assert_eq!(down["cniVersion"], "0.3.1");
        assert_eq!(down["ips"][0]["version"], "4");
        assert_eq!(down["ips"][1]["version"], "6");
        let unversioned = normalize_result(br#"{"ips": []}"#, "0.4.0").unwrap();
        assert_eq!(unversioned, json!({"cniVersion": "0.4.0", "ips": []}));
    }

    #[test]
    fn ips_on_host_interfaces_are_not_pod_ips() {
        let result = json!({
            "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
            "ips": [
                {"address": "10.1.0.1/16", "interface": 0},
                {"address": "10.1.0.7/16", "interface": 1},
                {"address": "10.2.0.7/24"}
            ]
        });
        assert_eq!(
            pod_ips(&result).unwrap(),
            [ip("10.1.0.7", 16, None), ip("10.2.0.7", 24, None)]
        );
        assert_eq!(pod_ips(&json!({"cniVersion": "1.0.0"})).unwrap(), []);
    }

    #[test]
    fn malformed_results_are_named() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "no output"),
            (b"{", "invalid JSON"),
            (b"[]", "not a JSON object"),
            (br#"{"cniVersion":"0.2.0","ip4":{}}"#, "not supported"),
            (br#"{"ips":{}}"#, "\"ips\" is not an array"),
            (br#"{"ips":[{"gateway":"10.0.0.1"}]}"#, "no \"address\""),
            (br#"{"ips":[{"address":"10.0.0.5"}]}"#, "prefix length"),
            (br#"{"ips":[{"address":"10.0.0.5/33"}]}"#, "prefix length"),
            (br#"{"ips":[{"address":"host/24"}]}"#, "prefix length"),
        ];
        for (output, expected) in cases {
            let why = normalize_result(output, "1.0.0").unwrap_err();
            assert!(
                why.contains(expected),
                "{output:?}: {why:?} lacks {expected:?}"
            );
        }
        let bad_gateway = json!({"ips": [{"address": "10.0.0.5/24", "gateway": "x"}]});
        assert!(pod_ips(&bad_gateway).unwrap_err().contains("gateway"));
    }

    #[test]
    fn error_objects_give_code_and_message() {
        let error =
            br#"{"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"no bridge"}"#;
        assert_eq!(
            parse_error_output(error),
            Some((Some(7), "invalid config: no bridge".into()))
        );
        assert_eq!(
            parse_error_output(br#"{"code":11,"msg":"try again"}"#),
            Some((Some(11), "try again".into()))
        );
        assert_eq!(
            parse_error_output(br#"{"code":3}"#),
            Some((Some(3), String::new()))
        );
        assert_eq!(parse_error_output(b"panic: runtime error"), None);
        assert_eq!(parse_error_output(br#"{"other":1}"#), None);
    }
}
