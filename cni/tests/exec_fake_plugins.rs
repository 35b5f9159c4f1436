//! Plugin execution against fake plugins (shell scripts that record how they were called):
//! ordering, chaining, environment, rollback, failures and timeouts. No root needed.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crius_cni::exec::Attachment;
use crius_cni::{CniErrorKind, NetworkConfigList};
use serde_json::{Value, json};
use support::{TIMEOUT, attachment, lines, load_conflist, write_executable};

/// Records every call (`calls`), its stdin and its exact environment, then runs `behaviour`.
/// The default answer to ADD is a result naming the plugin.
const RECORDER: &str = r#"#!/bin/sh
dir=$(dirname "$0")
name=$(basename "$0")
echo "$CNI_COMMAND $name" >> "$dir/calls"
cat > "$dir/$name.$CNI_COMMAND.stdin"
tr '\0' '\n' < /proc/$$/environ > "$dir/$name.$CNI_COMMAND.env"
"#;

const ANSWER_ADD: &str = r#"
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"10.1.2.3/24","gateway":"10.1.2.1","interface":0}]}' "$name" "$CNI_NETNS"
fi
"#;

struct FakeNetwork {
    dir: tempfile::TempDir,
    list: NetworkConfigList,
    attachment: Attachment,
}

impl FakeNetwork {
    /// A list of fake plugins, each `(name, behaviour)`: a shell snippet run after recording.
    fn new(cni_version: &str, plugins: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugin_dir).unwrap();
        for (name, behaviour) in plugins {
            write_executable(&plugin_dir.join(name), &format!("{RECORDER}{behaviour}"));
        }
        let entries: Vec<Value> = plugins
            .iter()
            .map(|(name, _)| json!({"type": name, "capabilities": {"portMappings": true}}))
            .collect();
        let conflist = json!({"cniVersion": cni_version, "name": "fake", "plugins": entries});
        let list = load_conflist(dir.path(), &conflist.to_string(), &[plugin_dir]);
        let attachment = attachment(Path::new("/run/netns/fake"));
        FakeNetwork {
            dir,
            list,
            attachment,
        }
    }

    fn plugin_dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.path().join("plugins")]
    }

    fn calls(&self) -> Vec<String> {
        lines(&self.dir.path().join("plugins/calls"))
    }

    fn stdin(&self, plugin: &str, command: &str) -> Value {
        let path = self
            .dir
            .path()
            .join(format!("plugins/{plugin}.{command}.stdin"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn env(&self, plugin: &str, command: &str) -> Vec<String> {
        let mut env = lines(
            &self
                .dir
                .path()
                .join(format!("plugins/{plugin}.{command}.env")),
        );
        env.sort();
        env
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("plugins").join(name)
    }

    async fn add(
        &self,
        timeout: Duration,
    ) -> Result<crius_cni::exec::AttachResult, crius_cni::CniError> {
        self.list
            .add(&self.attachment, &self.plugin_dirs(), timeout)
            .await
    }

    async fn del(&self, prev_result: Option<&Value>) -> Result<(), crius_cni::CniError> {
        self.list
            .del(&self.attachment, prev_result, &self.plugin_dirs(), TIMEOUT)
            .await
    }
}

#[tokio::test]
async fn add_runs_plugins_in_order_each_getting_the_previous_result() {
    let net = FakeNetwork::new(
        "1.0.0",
        &[("a", ANSWER_ADD), ("b", ANSWER_ADD), ("c", ANSWER_ADD)],
    );
    let attached = net.add(TIMEOUT).await.unwrap();
    assert_eq!(net.calls(), ["ADD a", "ADD b", "ADD c"]);

    let first = net.stdin("a", "ADD");
    assert_eq!(first["name"], "fake");
    assert_eq!(first["cniVersion"], "1.0.0");
    assert_eq!(first["type"], "a");
    assert!(first.get("prevResult").is_none(), "{first}");
    assert_eq!(
        net.stdin("b", "ADD")["prevResult"]["interfaces"][0]["name"],
        "a"
    );
    assert_eq!(
        net.stdin("c", "ADD")["prevResult"]["interfaces"][0]["name"],
        "b"
    );

    assert_eq!(attached.result["interfaces"][0]["name"], "c");
    assert_eq!(attached.ips.len(), 1);
    assert_eq!(attached.ips[0].address.to_string(), "10.1.2.3");
    assert_eq!(attached.ips[0].prefix_len, 24);
    assert_eq!(attached.ips[0].gateway.unwrap().to_string(), "10.1.2.1");
}

#[tokio::test]
async fn plugins_see_only_the_cni_environment() {
    let net = FakeNetwork::new("1.0.0", &[("a", ANSWER_ADD)]);
    net.add(TIMEOUT).await.unwrap();
    let id = &net.attachment.container_id;
    let plugin_dir = net.plugin_dirs()[0].display().to_string();
    let mut expected = vec![
        "CNI_COMMAND=ADD".to_string(),
        format!("CNI_CONTAINERID={id}"),
        "CNI_NETNS=/run/netns/fake".into(),
        "CNI_IFNAME=eth0".into(),
        format!(
            "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
             K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID=6a1c0f2e-1b7e-4bb4-9a4e-0d3c2f1b0a99"
        ),
        format!("CNI_PATH={plugin_dir}"),
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ];
    expected.sort();
    assert_eq!(net.env("a", "ADD"), expected);
}

#[tokio::test]
async fn port_mappings_reach_plugins_that_declare_the_capability() {
    let net = FakeNetwork::new("1.0.0", &[("a", ANSWER_ADD)]);
    let mut attachment = net.attachment.clone();
    attachment.port_mappings = vec![crius_cni::exec::PortMapping {
        host_port: 18080,
        container_port: 8080,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    net.list
        .add(&attachment, &net.plugin_dirs(), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        net.stdin("a", "ADD")["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]})
    );
}

#[tokio::test]
async fn del_runs_in_reverse_and_calls_every_plugin_though_one_fails() {
    let fail_del = r#"[ "$CNI_COMMAND" = DEL ] && { echo "cannot tear down" >&2; exit 2; }"#;
    let net = FakeNetwork::new("1.0.0", &[("a", ""), ("b", fail_del), ("c", "")]);
    let err = net.del(None).await.unwrap_err();
    assert_eq!(net.calls(), ["DEL c", "DEL b", "DEL a"]);
    assert_eq!(err.kind(), CniErrorKind::PluginFailed);
    assert_eq!(
        err.to_string(),
        "CNI plugin b DEL failed: exit status 2: cannot tear down"
    );
}

#[tokio::test]
async fn del_passes_the_cached_result_as_prev_result() {
    let cached = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}]});
    let net = FakeNetwork::new("1.0.0", &[("a", ""), ("b", "")]);
    net.del(Some(&cached)).await.unwrap();
    assert_eq!(net.stdin("a", "DEL")["prevResult"], cached);
    assert_eq!(net.stdin("b", "DEL")["prevResult"], cached);
    net.del(None).await.unwrap();
    assert!(net.stdin("a", "DEL").get("prevResult").is_none());
}

#[tokio::test]
async fn del_of_a_0_3_1_list_passes_no_prev_result() {
    let cached = json!({"cniVersion": "0.3.1", "ips": []});
    let net = FakeNetwork::new("0.3.1", &[("a", "")]);
    net.del(Some(&cached)).await.unwrap();
    assert!(net.stdin("a", "DEL").get("prevResult").is_none());
}

#[tokio::test]
async fn failed_add_returns_the_plugin_error_and_deletes_the_whole_list() {
    let fail_add = r#"
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"on purpose"}'
  exit 1
fi"#;
    let net = FakeNetwork::new(
        "1.0.0",
        &[("a", ANSWER_ADD), ("b", fail_add), ("c", ANSWER_ADD)],
    );
    let err = net.add(TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::PluginFailed);
    assert_eq!(
        err.to_string(),
        "CNI plugin b ADD failed (code 7): boom: on purpose"
    );
    assert_eq!(net.calls(), ["ADD a", "ADD b", "DEL c", "DEL b", "DEL a"]);
    // The rollback tells plugins what was attached so far.
    assert_eq!(
        net.stdin("a", "DEL")["prevResult"]["interfaces"][0]["name"],
        "a"
    );
}

#[tokio::test]
async fn add_result_of_an_older_version_is_normalized_to_the_list_version() {
    let old_result = r#"
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.9.0.4/16"}]}'
exit 0"#;
    let net = FakeNetwork::new("1.0.0", &[("a", old_result)]);
    let attached = net.add(TIMEOUT).await.unwrap();
    assert_eq!(
        attached.result,
        json!({"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.4/16"}]})
    );
    assert_eq!(attached.ips[0].address.to_string(), "10.9.0.4");
}

#[tokio::test]
async fn add_without_a_result_fails_and_is_rolled_back() {
    let net = FakeNetwork::new("1.0.0", &[("a", ANSWER_ADD), ("b", "")]);
    let err = net.add(TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::PluginFailed);
    assert_eq!(
        err.to_string(),
        "CNI plugin b ADD returned an invalid result: no output"
    );
    assert_eq!(net.calls(), ["ADD a", "ADD b", "DEL b", "DEL a"]);
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let flood = r#"[ "$CNI_COMMAND" = ADD ] && head -c 3000000 /dev/zero; exit 0"#;
    let net = FakeNetwork::new("1.0.0", &[("a", flood)]);
    let err = net.add(TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::PluginFailed);
    assert!(
        err.to_string().contains("output larger than 1048576 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn hanging_plugin_is_killed_at_the_timeout() {
    let hang = r#"[ "$CNI_COMMAND" = ADD ] && { echo $$ > "$dir/pid"; exec sleep 60; }; exit 0"#;
    let net = FakeNetwork::new("1.0.0", &[("a", hang)]);
    let started = Instant::now();
    // Long enough for the plugin's shell to start and write its pid on a loaded machine.
    let err = net.add(Duration::from_secs(3)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), CniErrorKind::Timeout);
    assert_eq!(
        err.to_string(),
        "CNI plugin a ADD timed out after 3s and was killed"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let pid = std::fs::read_to_string(net.file("pid")).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "plugin {pid} still exists"
    );
    assert_eq!(net.calls(), ["ADD a", "DEL a"]);
}

#[tokio::test]
async fn plugin_whose_child_keeps_stdout_open_still_times_out() {
    let hang = r#"
if [ "$CNI_COMMAND" = ADD ]; then
  sleep 60 &
  echo $! > "$dir/grandchild"
  wait
fi"#;
    let net = FakeNetwork::new("1.0.0", &[("a", hang)]);
    let started = Instant::now();
    let err = net.add(Duration::from_secs(1)).await.unwrap_err();
    let elapsed = started.elapsed();
    let grandchild = std::fs::read_to_string(net.file("grandchild")).unwrap();
    let _ = std::process::Command::new("kill")
        .arg(grandchild.trim())
        .status();
    assert_eq!(err.kind(), CniErrorKind::Timeout);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
async fn invalid_attachment_runs_no_plugin() {
    let net = FakeNetwork::new("1.0.0", &[("a", ANSWER_ADD)]);
    let mut attachment = net.attachment.clone();
    attachment.pod_name = "web;K8S_POD_NAMESPACE=kube-system".into();
    let err = net
        .list
        .add(&attachment, &net.plugin_dirs(), TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::InvalidArgument);
    let err = net
        .list
        .del(&attachment, None, &net.plugin_dirs(), TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::InvalidArgument);
    assert!(net.calls().is_empty());
}

#[tokio::test]
async fn plugin_binary_gone_since_loading_is_an_io_error() {
    let net = FakeNetwork::new("1.0.0", &[("a", ANSWER_ADD)]);
    std::fs::remove_file(net.file("a")).unwrap();
    let err = net.add(TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::Io);
    assert!(err.to_string().starts_with("execute plugin "), "{err}");
}
