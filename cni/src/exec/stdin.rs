//! The JSON a plugin reads on stdin: its own config, the list's name and version, the previous
//! result, and the runtime values of the capabilities it declares.

use serde_json::{Map, Value, json};

use crate::exec::Attachment;
use crate::{NetworkConfigList, PluginConfig};

/// Builds the stdin config of `plugin`, as libcni does: `name` and `cniVersion` come from the
/// list, `prevResult` is set exactly when there is one, and `runtimeConfig` replaces whatever
/// the file holds when at least one declared capability has a value.
pub(super) fn plugin_stdin(
    list: &NetworkConfigList,
    plugin: &PluginConfig,
    attachment: &Attachment,
    prev_result: Option<&Value>,
) -> Value {
    let mut config = plugin.raw.clone();
    config.insert("name".into(), Value::String(list.name.clone()));
    config.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    match prev_result {
        Some(result) => {
            config.insert("prevResult".into(), result.clone());
        }
        None => {
            config.remove("prevResult");
        }
    }
    let runtime_config = runtime_config(&plugin.raw, attachment);
    if !runtime_config.is_empty() {
        config.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    Value::Object(config)
}

/// The values of the capabilities the plugin declares (`"capabilities": {"portMappings": true}`)
/// for which the attachment has something to say.
fn runtime_config(raw: &Map<String, Value>, attachment: &Attachment) -> Map<String, Value> {
    let declares = |capability: &str| {
        raw.get("capabilities")
            .and_then(|c| c.get(capability))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let mut runtime_config = Map::new();
    if declares("portMappings") && !attachment.port_mappings.is_empty() {
        let mappings = attachment
            .port_mappings
            .iter()
            .map(|m| {
                let mut mapping = json!({
                    "hostPort": m.host_port,
                    "containerPort": m.container_port,
                    "protocol": m.protocol,
                });
                if !m.host_ip.is_empty() {
                    mapping["hostIP"] = Value::String(m.host_ip.clone());
                }
                mapping
            })
            .collect();
        runtime_config.insert("portMappings".into(), Value::Array(mappings));
    }
    if declares("bandwidth")
        && let Some(b) = &attachment.bandwidth
    {
        runtime_config.insert(
            "bandwidth".into(),
            json!({
                "ingressRate": b.ingress_rate,
                "ingressBurst": b.ingress_burst,
                "egressRate": b.egress_rate,
                "egressBurst": b.egress_burst,
            }),
        );
    }
    if declares("dns")
        && let Some(dns) = &attachment.dns
    {
        runtime_config.insert(
            "dns".into(),
            json!({
                "servers": dns.servers,
                "searches": dns.searches,
                "options": dns.options,
            }),
        );
    }
    runtime_config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::tests::attachment;
    use crate::exec::{Bandwidth, Dns, PortMapping};
    use std::path::PathBuf;

    fn list(plugins: &Value) -> NetworkConfigList {
        let plugins = plugins
            .as_array()
            .unwrap()
            .iter()
            .map(|raw| PluginConfig {
                plugin_type: raw["type"].as_str().unwrap().into(),
                binary: PathBuf::from("/usr/lib/cni").join(raw["type"].as_str().unwrap()),
                raw: raw.as_object().unwrap().clone(),
            })
            .collect();
        NetworkConfigList {
            name: "crius".into(),
            cni_version: "1.0.0".into(),
            plugins,
            source: "/etc/cni/net.d/10-crius.conflist".into(),
        }
    }

    fn full_attachment() -> Attachment {
        Attachment {
            port_mappings: vec![
                PortMapping {
                    host_port: 18080,
                    container_port: 8080,
                    protocol: "tcp".into(),
                    host_ip: String::new(),
                },
                PortMapping {
                    host_port: 5353,
                    container_port: 53,
                    protocol: "udp".into(),
                    host_ip: "127.0.0.1".into(),
                },
            ],
            bandwidth: Some(Bandwidth {
                ingress_rate: 1_000_000,
                ingress_burst: 2_000_000,
                egress_rate: 3_000_000,
                egress_burst: 4_000_000,
            }),
            dns: Some(Dns {
                servers: vec!["10.96.0.10".into()],
                searches: vec!["default.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            ..attachment()
        }
    }

    #[test]
    fn first_plugin_gets_its_config_with_the_list_name_and_version() {
        let list = list(
            &json!([{"type": "bridge", "bridge": "crius0", "name": "other",
            "cniVersion": "0.3.1", "prevResult": {"stale": true}}]),
        );
        let stdin = plugin_stdin(&list, &list.plugins[0], &full_attachment(), None);
        assert_eq!(
            stdin,
            json!({"type": "bridge", "bridge": "crius0", "name": "crius", "cniVersion": "1.0.0"})
        );
    }

    #[test]
    fn prev_result_is_passed_on() {
        let list = list(&json!([{"type": "bridge"}, {"type": "tuning"}]));
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.85.0.2/16"}]});
        let stdin = plugin_stdin(&list, &list.plugins[1], &attachment(), Some(&prev));
        assert_eq!(stdin["prevResult"], prev);
        assert!(stdin.get("runtimeConfig").is_none());
    }

    #[test]
    fn runtime_config_holds_only_declared_capabilities() {
        let list = list(&json!([
            {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}},
            {"type": "dnsplug", "capabilities": {"dns": true, "ips": true}},
            {"type": "plain", "runtimeConfig": {"static": 1}},
        ]));
        let a = full_attachment();
        let stdin = |i: usize| plugin_stdin(&list, &list.plugins[i], &a, None);
        assert_eq!(
            stdin(0)["runtimeConfig"],
            json!({"portMappings": [
                {"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
            ]})
        );
        assert_eq!(
            stdin(1)["runtimeConfig"],
            json!({"bandwidth": {"ingressRate": 1_000_000, "ingressBurst": 2_000_000,
                "egressRate": 3_000_000, "egressBurst": 4_000_000}})
        );
        assert_eq!(
            stdin(2)["runtimeConfig"],
            json!({"dns": {"servers": ["10.96.0.10"],
                "searches": ["default.svc.cluster.local"], "options": ["ndots:5"]}})
        );
        // Nothing declared: the file's own runtimeConfig is left as it is.
        assert_eq!(stdin(3)["runtimeConfig"], json!({"static": 1}));
    }

    #[test]
    fn declared_capability_without_a_value_is_left_out() {
        let list = list(&json!([{"type": "portmap", "capabilities": {"portMappings": true}}]));
        let stdin = plugin_stdin(&list, &list.plugins[0], &attachment(), None);
        assert!(stdin.get("runtimeConfig").is_none(), "{stdin}");
    }
}
