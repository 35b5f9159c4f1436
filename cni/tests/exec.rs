//! Plugin execution with Debian's real plugins (bridge, host-local, portmap) in a network
//! namespace made for each test. Needs root; skips loudly without it.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crius_cni::exec::{Attachment, PortMapping};
use crius_cni::{CniErrorKind, NetworkConfigList};
use serde_json::{Value, json};
use support::{TIMEOUT, attachment, load_conflist, random_u64, write_executable};

const DEBIAN_PLUGIN_DIR: &str = "/usr/lib/cni";

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

macro_rules! require_root {
    () => {
        if !is_root() {
            let test = std::thread::current().name().unwrap_or("?").to_string();
            eprintln!("SKIPPED: {test} needs root (real CNI plugins in a network namespace)");
            return;
        }
    };
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        let name = format!("crius-cni-test-{:016x}", random_u64());
        run_ok("ip", &["netns", "add", &name]);
        Netns { name }
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    fn delete(&self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

/// A bridge the plugin creates; deleted on drop.
struct Bridge {
    name: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.name]);
    }
}

/// A third octet for 10.199.x.0/24 that no other test of this process uses.
fn unique_subnet_octet() -> u8 {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let start = (random_u64() % 200) as u8;
    let _ = NEXT.compare_exchange(0, start + 1, Ordering::SeqCst, Ordering::SeqCst);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// bridge + host-local + portmap (+ `extra` plugins) on a bridge, subnet, netns and IPAM dir of
/// its own. Fields drop in order: the namespace first, then the bridge, then the temp dir.
struct BridgeNetwork {
    netns: Netns,
    bridge: Bridge,
    dir: tempfile::TempDir,
    subnet_octet: u8,
    list: NetworkConfigList,
    attachment: Attachment,
}

impl BridgeNetwork {
    fn new() -> Self {
        Self::with_extra_plugins(&[])
    }

    /// `extra`: `(name, script)` fake plugins appended to the list.
    fn with_extra_plugins(extra: &[(&str, &str)]) -> Self {
        let netns = Netns::new();
        let bridge = Bridge {
            name: format!("cnitest{:04x}", random_u64() & 0xffff),
        };
        let dir = tempfile::tempdir().unwrap();
        let subnet_octet = unique_subnet_octet();
        let fake_plugin_dir = dir.path().join("plugins");
        std::fs::create_dir(&fake_plugin_dir).unwrap();
        let mut plugins = vec![
            json!({
                "type": "bridge",
                "bridge": bridge.name,
                "isGateway": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("10.199.{subnet_octet}.0/24")}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": dir.path().join("ipam"),
                },
            }),
            json!({"type": "portmap", "capabilities": {"portMappings": true}}),
        ];
        for (name, script) in extra {
            write_executable(&fake_plugin_dir.join(name), script);
            plugins.push(json!({"type": name}));
        }
        let conflist = json!({"cniVersion": "1.0.0", "name": "crius-test", "plugins": plugins});
        let plugin_dirs = [PathBuf::from(DEBIAN_PLUGIN_DIR), fake_plugin_dir];
        let list = load_conflist(dir.path(), &conflist.to_string(), &plugin_dirs);
        let attachment = attachment(&netns.path());
        BridgeNetwork {
            netns,
            bridge,
            dir,
            subnet_octet,
            list,
            attachment,
        }
    }

    fn plugin_dirs(&self) -> Vec<PathBuf> {
        vec![
            PathBuf::from(DEBIAN_PLUGIN_DIR),
            self.dir.path().join("plugins"),
        ]
    }

    async fn add(&self) -> Result<crius_cni::exec::AttachResult, crius_cni::CniError> {
        self.list
            .add(&self.attachment, &self.plugin_dirs(), TIMEOUT)
            .await
    }

    async fn del(&self, prev_result: Option<&Value>) -> Result<(), crius_cni::CniError> {
        self.list
            .del(&self.attachment, prev_result, &self.plugin_dirs(), TIMEOUT)
            .await
    }

    /// Addresses host-local holds for this network: one file per address.
    fn reserved_ips(&self) -> Vec<String> {
        let dir = self.dir.path().join("ipam/crius-test");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.parse::<IpAddr>().is_ok())
            .collect()
    }

    fn pod_addresses(&self) -> Option<String> {
        let output = self.netns.exec(&["ip", "-o", "addr", "show", "eth0"]);
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

fn ping(address: &str) -> bool {
    (0..3).any(|_| {
        run("busybox", &["ping", "-c1", "-W1", address])
            .status
            .success()
    })
}

/// Sends a line to 127.0.0.1:`host_port` and returns what a listener on `pod_port` inside the
/// pod received.
fn echo_through_host_port(netns: &Netns, host_port: u16, pod_port: u16) -> String {
    use std::io::{Read, Write};
    let mut listener = Listener(
        Command::new("ip")
            .args(["netns", "exec", &netns.name, "busybox", "nc", "-l", "-p"])
            .arg(pod_port.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", host_port)) {
            Ok(stream) => break stream,
            // The listener may not be listening yet.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("connect to 127.0.0.1:{host_port}: {e}"),
        }
    };
    stream.write_all(b"through the host port\n").unwrap();
    drop(stream);
    let mut received = String::new();
    let mut stdout = listener.0.stdout.take().unwrap();
    stdout.read_to_string(&mut received).unwrap();
    received.trim().to_string()
}

/// A process in a test namespace, killed on drop.
struct Listener(std::process::Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nat_rules() -> String {
    run_ok("iptables", &["-t", "nat", "-S"])
}

#[tokio::test]
async fn add_gives_the_pod_a_reachable_address_and_del_releases_it() {
    require_root!();
    let net = BridgeNetwork::new();
    let attached = net.add().await.unwrap();

    assert_eq!(attached.ips.len(), 1, "{:?}", attached.result);
    let ip = &attached.ips[0];
    let IpAddr::V4(v4) = ip.address else {
        panic!("not IPv4: {ip:?}")
    };
    assert_eq!(v4.octets()[..3], [10, 199, net.subnet_octet]);
    assert_eq!(ip.prefix_len, 24);
    assert_eq!(
        ip.gateway,
        Some(format!("10.199.{}.1", net.subnet_octet).parse().unwrap())
    );
    assert_eq!(attached.result["cniVersion"], "1.0.0");
    let address = ip.address.to_string();
    let in_pod = net.pod_addresses().expect("eth0 in the pod");
    assert!(in_pod.contains(&format!("inet {address}/24")), "{in_pod}");
    assert!(ping(&address), "{address} does not answer");
    assert_eq!(net.reserved_ips(), std::slice::from_ref(&address));

    net.del(Some(&attached.result)).await.unwrap();
    assert!(net.reserved_ips().is_empty(), "{:?}", net.reserved_ips());
    assert!(net.pod_addresses().is_none(), "eth0 is still there");
}

#[tokio::test]
async fn del_succeeds_after_the_netns_is_gone() {
    require_root!();
    let net = BridgeNetwork::new();
    let attached = net.add().await.unwrap();
    net.netns.delete();
    assert!(!net.attachment.netns.exists());
    net.del(Some(&attached.result)).await.unwrap();
    assert!(net.reserved_ips().is_empty(), "{:?}", net.reserved_ips());
}

#[tokio::test]
async fn del_twice_succeeds() {
    require_root!();
    let net = BridgeNetwork::new();
    let attached = net.add().await.unwrap();
    net.del(Some(&attached.result)).await.unwrap();
    net.del(Some(&attached.result)).await.unwrap();
    net.del(None).await.unwrap();
    assert!(net.reserved_ips().is_empty());
}

#[tokio::test]
async fn failed_add_reports_the_plugin_error_and_releases_the_address() {
    require_root!();
    let failing = r#"#!/bin/sh
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"on purpose"}'
  exit 1
fi
"#;
    let net = BridgeNetwork::with_extra_plugins(&[("failing", failing)]);
    let err = net.add().await.unwrap_err();
    assert_eq!(err.kind(), CniErrorKind::PluginFailed);
    assert_eq!(
        err.to_string(),
        "CNI plugin failing ADD failed (code 7): boom: on purpose"
    );
    assert!(net.reserved_ips().is_empty(), "{:?}", net.reserved_ips());
    assert!(net.pod_addresses().is_none(), "eth0 is still there");
}

#[tokio::test]
async fn port_mapping_forwards_the_host_port_and_del_removes_its_rules() {
    require_root!();
    let mut net = BridgeNetwork::new();
    net.attachment.port_mappings = vec![PortMapping {
        host_port: 18080,
        container_port: 8080,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    let attached = net.add().await.unwrap();
    let address = attached.ips[0].address.to_string();
    let destination = format!("--to-destination {address}:8080");
    let rules = nat_rules();
    let ours: Vec<_> = rules
        .lines()
        .filter(|r| r.contains(&net.attachment.container_id) || r.contains(&destination))
        .collect();
    assert!(
        ours.iter()
            .any(|r| r.contains("18080") && r.contains(&destination)),
        "no DNAT to {address}:8080 in:\n{rules}"
    );
    assert!(
        ours.iter()
            .any(|r| r.contains("CNI-HOSTPORT-DNAT") && r.contains("18080")),
        "no CNI-HOSTPORT-DNAT rule for 18080 in:\n{rules}"
    );

    assert_eq!(
        echo_through_host_port(&net.netns, 18080, 8080),
        "through the host port"
    );

    net.del(Some(&attached.result)).await.unwrap();
    let rules = nat_rules();
    let left: Vec<_> = rules
        .lines()
        .filter(|r| r.contains(&net.attachment.container_id) || r.contains(&destination))
        .collect();
    assert!(left.is_empty(), "rules left after DEL: {left:#?}");
}

/// Not a benchmark that asserts: prints the median wall time of ADD and DEL with bridge +
/// portmap, and checks that repeated cycles leak no address.
#[tokio::test]
async fn repeated_add_and_del_leak_nothing_and_report_wall_time() {
    require_root!();
    let mut net = BridgeNetwork::new();
    for port_mappings in [
        Vec::new(),
        vec![PortMapping {
            host_port: 18081,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: String::new(),
        }],
    ] {
        let with = port_mappings.len();
        net.attachment.port_mappings = port_mappings;
        let (mut adds, mut dels) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let started = Instant::now();
            let attached = net.add().await.unwrap();
            adds.push(started.elapsed());
            let started = Instant::now();
            net.del(Some(&attached.result)).await.unwrap();
            dels.push(started.elapsed());
            assert!(net.reserved_ips().is_empty());
        }
        let median = |times: &mut Vec<Duration>| {
            times.sort();
            times[times.len() / 2]
        };
        eprintln!(
            "bridge+portmap, {with} port mapping(s): ADD median {:?}, DEL median {:?}",
            median(&mut adds),
            median(&mut dels)
        );
    }
    assert!(net.bridge.name.starts_with("cnitest"));
}
