//! Pod sandboxes through the CRI socket, as kubelet and crictl drive them, with real pinned
//! namespaces and Debian's CNI plugins (bridge, host-local, portmap).

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crius_conformance::daemon::Crius;
use crius_conformance::pods::{PodFixture, in_namespaces, linux_with_namespaces, pod_config};
use crius_conformance::require_root;
use k8s_cri::v1 as cri;
use tonic::Code;

/// Waits (bounded) until something listens on `addr`.
fn connect_within(addr: &str, limit: Duration) -> TcpStream {
    let deadline = Instant::now() + limit;
    loop {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)) {
            Ok(stream) => return stream,
            Err(e) if Instant::now() > deadline => panic!("connect {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[tokio::test]
async fn a_pod_gets_its_namespaces_network_and_files_and_leaves_nothing_when_removed() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    // A parent of the test's own, which kubelet would own: the test removes it at the end.
    let kubelet_cgroup = format!("crius-test-{}", &fx.bridge);
    let cgroup_parent = format!("/{kubelet_cgroup}/pod");
    let mut config = pod_config("web");
    config.hostname = "web-0".into();
    config.labels = HashMap::from([("app".into(), "web".into())]);
    config.dns_config = Some(cri::DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["default.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    config.linux = Some(cri::LinuxPodSandboxConfig {
        cgroup_parent: cgroup_parent.clone(),
        sysctls: HashMap::from([("net.ipv4.ip_unprivileged_port_start".into(), "0".into())]),
        ..Default::default()
    });
    let id = fx.run(config).await.unwrap();
    assert_eq!(id.len(), 64);

    let status = fx.status(&id).await.unwrap();
    assert_eq!(status.state(), cri::PodSandboxState::SandboxReady);
    let ip = status.network.unwrap().ip;
    assert!(ip.starts_with(&format!("{}.", fx.subnet_prefix)), "{ip}");
    assert_eq!(status.labels["app"], "web");

    let ns = fx.pod_dir(&id).join("ns");
    let (net, uts, ipc) = (ns.join("net"), ns.join("uts"), ns.join("ipc"));
    assert_eq!(
        in_namespaces(&[("--uts", &uts)], &["hostname"]).trim(),
        "web-0"
    );
    assert_eq!(
        in_namespaces(
            &[("--net", &net)],
            &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]
        )
        .trim(),
        "0"
    );
    assert!(in_namespaces(&[("--net", &net)], &["ip", "-o", "addr", "show", "eth0"]).contains(&ip));
    assert!(in_namespaces(&[("--net", &net)], &["ip", "-o", "link", "show", "lo"]).contains("UP"));
    let _ = ipc;
    let resolv = std::fs::read_to_string(fx.pod_dir(&id).join("resolv.conf")).unwrap();
    assert_eq!(
        resolv,
        "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n"
    );
    assert!(
        fx.mounts().iter().any(|m| m.ends_with("/shm")),
        "a private /dev/shm"
    );
    let memory_cgroup = format!("/sys/fs/cgroup/memory{cgroup_parent}");
    assert!(std::path::Path::new(&memory_cgroup).is_dir());

    // The pod-wide PID namespace (the proto's default) is held by crius's own init.
    let init_pid = std::fs::read_to_string(ns.join("init.pid"))
        .unwrap()
        .trim()
        .to_string();
    let init_status = std::fs::read_to_string(format!("/proc/{init_pid}/status")).unwrap();
    assert!(init_status.contains("crius-pod-init"), "{init_status}");
    let nspid = init_status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap();
    assert!(
        nspid.ends_with("\t1"),
        "PID 1 of the pod's namespace: {nspid}"
    );

    // The pod's address is reachable from the node.
    let mut listener = Command::new("nsenter")
        .arg(format!("--net={}", net.display()))
        .args([
            "/bin/busybox",
            "nc",
            "-l",
            "-p",
            "9090",
            "-e",
            "/bin/busybox",
            "echo",
            "hello",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    connect_within(&format!("{ip}:9090"), Duration::from_secs(10))
        .read_to_string(&mut answer)
        .unwrap();
    assert_eq!(answer.trim(), "hello");
    listener.wait().ok();
    assert_eq!(fx.leases(), std::slice::from_ref(&ip));

    fx.stop(&id).await;
    assert_eq!(
        fx.status(&id).await.unwrap().state(),
        cri::PodSandboxState::SandboxNotready
    );
    assert!(fx.leases().is_empty(), "the IP is released on stop");

    fx.remove(&id).await;
    let err = fx.status(&id).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(!fx.pod_dir(&id).exists());
    assert!(fx.mounts().is_empty(), "mounts left: {:?}", fx.mounts());
    assert!(!std::path::Path::new(&memory_cgroup).exists());
    let init_gone = std::fs::read_to_string(format!("/proc/{init_pid}/status"))
        .map_or(true, |status| status.contains("State:\tZ"));
    assert!(init_gone, "the pod's init outlived the pod");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        std::fs::remove_dir(hierarchy.path().join(&kubelet_cgroup)).ok();
    }
}

#[tokio::test]
async fn a_pod_with_a_pid_namespace_per_container_gets_no_init() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let mut config = pod_config("per-container");
    config.linux = Some(linux_with_namespaces(cri::NamespaceOption {
        pid: cri::NamespaceMode::Container.into(),
        ..Default::default()
    }));
    let id = fx.run(config).await.unwrap();
    let options = fx
        .status(&id)
        .await
        .unwrap()
        .linux
        .unwrap()
        .namespaces
        .unwrap()
        .options
        .unwrap();
    assert_eq!(options.pid(), cri::NamespaceMode::Container);
    assert!(!fx.pod_dir(&id).join("ns/pid").exists());
    assert!(!fx.pod_dir(&id).join("ns/init.pid").exists());
    fx.remove(&id).await;
}

#[tokio::test]
async fn a_host_port_reaches_a_listener_in_the_pod() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let mut config = pod_config("ports");
    let host_port = 20000 + (u16::from_str_radix(&fx.bridge[3..], 16).unwrap() % 20000);
    config.port_mappings = vec![cri::PortMapping {
        protocol: cri::Protocol::Tcp.into(),
        container_port: 8080,
        host_port: i32::from(host_port),
        host_ip: String::new(),
    }];
    let id = fx.run(config).await.unwrap();
    let ip = fx.status(&id).await.unwrap().network.unwrap().ip;
    let net = fx.pod_dir(&id).join("ns/net");
    let mut listener = Command::new("nsenter")
        .arg(format!("--net={}", net.display()))
        .args([
            "/bin/busybox",
            "nc",
            "-l",
            "-p",
            "8080",
            "-e",
            "/bin/busybox",
            "echo",
            "through-hostport",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the listener on the pod address, then go through the host port.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !in_namespaces(&[("--net", &net)], &["/bin/busybox", "netstat", "-ltn"]).contains(":8080")
    {
        assert!(
            Instant::now() < deadline,
            "listener in the pod did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = ip;
    let mut answer = String::new();
    let host_ip = fx.subnet_prefix.clone() + ".1";
    connect_within(&format!("{host_ip}:{host_port}"), Duration::from_secs(10))
        .read_to_string(&mut answer)
        .unwrap();
    assert_eq!(answer.trim(), "through-hostport");
    listener.wait().ok();
    fx.remove(&id).await;
}

#[tokio::test]
async fn invalid_requests_are_refused_and_leave_nothing_behind() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let with_linux = |linux: cri::LinuxPodSandboxConfig| {
        let mut config = pod_config("bad");
        config.linux = Some(linux);
        config
    };
    let sysctl = |name: &str, value: &str| {
        with_linux(cri::LinuxPodSandboxConfig {
            sysctls: HashMap::from([(name.to_string(), value.to_string())]),
            ..Default::default()
        })
    };
    let host_network = |name: &str| {
        with_linux(cri::LinuxPodSandboxConfig {
            sysctls: HashMap::from([(name.to_string(), "1".to_string())]),
            ..linux_with_namespaces(cri::NamespaceOption {
                network: cri::NamespaceMode::Node.into(),
                ..Default::default()
            })
        })
    };
    let mut cases: Vec<(&str, cri::PodSandboxConfig)> = vec![
        ("no metadata", cri::PodSandboxConfig::default()),
        ("relative log dir", {
            let mut c = pod_config("bad");
            c.log_directory = "var/log/pods".into();
            c
        }),
        ("name with a slash", pod_config("a/b")),
        ("bad hostname", {
            let mut c = pod_config("bad");
            c.hostname = "bad host".into();
            c
        }),
        ("bad dns server", {
            let mut c = pod_config("bad");
            c.dns_config = Some(cri::DnsConfig {
                servers: vec!["1.2.3.4\nnameserver 6.6.6.6".into()],
                ..Default::default()
            });
            c
        }),
        ("node-wide sysctl", sysctl("kernel.panic", "1")),
        (
            "smuggled sysctl name",
            sysctl("net.ipv4.ip_forward=1 kernel.panic", "1"),
        ),
        (
            "smuggled sysctl value",
            sysctl("net.ipv4.ip_unprivileged_port_start", "0\nkernel.panic=1"),
        ),
        (
            "net sysctl on the host network",
            host_network("net.ipv4.ip_unprivileged_port_start"),
        ),
        (
            "cgroup parent escaping",
            with_linux(cri::LinuxPodSandboxConfig {
                cgroup_parent: "/kubepods/../../etc".into(),
                ..Default::default()
            }),
        ),
    ];
    for (what, config) in cases.drain(..) {
        let err = fx.run(config).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    }
    let err = fx
        .client
        .runtime
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod_config("handler")),
            runtime_handler: "no-such-handler".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("no-such-handler"), "{err:?}");
    assert!(fx.list(None).await.is_empty());
    let pods_dir = fx.paths().state_dir.join("pods");
    assert!(
        std::fs::read_dir(&pods_dir).map(|d| d.count()).unwrap_or(0) == 0,
        "pod dirs left"
    );
    assert!(fx.mounts().is_empty());
    assert!(fx.leases().is_empty());
}

#[tokio::test]
async fn the_same_request_again_returns_the_same_pod_and_a_changed_one_is_refused() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let config = pod_config("retry");
    let first = fx.run(config.clone()).await.unwrap();
    assert_eq!(fx.run(config.clone()).await.unwrap(), first);
    let mut changed = config;
    changed.hostname = "other".into();
    let err = fx.run(changed).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(fx.list(None).await.len(), 1);
    fx.remove(&first).await;
}

#[tokio::test]
async fn list_filters_by_id_prefix_state_and_labels() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let mut a = pod_config("a");
    a.labels = HashMap::from([("tier".into(), "front".into())]);
    let mut b = pod_config("b");
    b.labels = HashMap::from([("tier".into(), "back".into())]);
    let a = fx.run(a).await.unwrap();
    let b = fx.run(b).await.unwrap();
    fx.stop(&b).await;
    let ids = |items: Vec<cri::PodSandbox>| items.into_iter().map(|p| p.id).collect::<Vec<_>>();

    assert_eq!(ids(fx.list(None).await).len(), 2);
    let by_prefix = cri::PodSandboxFilter {
        id: a[..12].to_string(),
        ..Default::default()
    };
    assert_eq!(
        ids(fx.list(Some(by_prefix)).await),
        std::slice::from_ref(&a)
    );
    let ready = cri::PodSandboxFilter {
        state: Some(cri::PodSandboxStateValue {
            state: cri::PodSandboxState::SandboxReady.into(),
        }),
        ..Default::default()
    };
    assert_eq!(ids(fx.list(Some(ready)).await), std::slice::from_ref(&a));
    let back = cri::PodSandboxFilter {
        label_selector: HashMap::from([("tier".into(), "back".into())]),
        ..Default::default()
    };
    assert_eq!(ids(fx.list(Some(back)).await), std::slice::from_ref(&b));
    fx.remove(&a).await;
    fx.remove(&b).await;
}

#[tokio::test]
async fn stop_and_remove_of_unknown_or_removed_pods_succeed() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let unknown = "0".repeat(64);
    fx.stop(&unknown).await;
    fx.remove(&unknown).await;
    let id = fx.run(pod_config("twice")).await.unwrap();
    fx.stop(&id).await;
    fx.stop(&id).await;
    fx.remove(&id).await;
    fx.remove(&id).await;
    fx.stop(&id).await;
    assert_eq!(
        fx.status(&unknown).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn a_host_network_pod_shares_the_nodes_network_and_name() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let mut config = pod_config("host");
    config.linux = Some(linux_with_namespaces(cri::NamespaceOption {
        network: cri::NamespaceMode::Node.into(),
        ..Default::default()
    }));
    let id = fx.run(config).await.unwrap();
    let status = fx.status(&id).await.unwrap();
    assert_eq!(status.network.unwrap().ip, "");
    let options = status.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(options.network(), cri::NamespaceMode::Node);
    assert!(!fx.pod_dir(&id).join("ns/net").exists());
    let node = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let hostname = std::fs::read_to_string(fx.pod_dir(&id).join("hostname")).unwrap();
    assert_eq!(hostname.trim(), node);
    assert!(fx.leases().is_empty());
    fx.remove(&id).await;
}

#[tokio::test]
async fn pods_survive_a_daemon_restart() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let id = fx.run(pod_config("durable")).await.unwrap();
    let before = fx.status(&id).await.unwrap();
    fx.crius
        .signal_and_wait(nix::sys::signal::Signal::SIGKILL)
        .await
        .unwrap();
    let restarted = Crius::start_at(fx.crius.paths.clone(), &[]).await.unwrap();
    fx.client = restarted.client().await.unwrap();
    let after = fx.status(&id).await.unwrap();
    assert_eq!(after.network, before.network);
    assert_eq!(after.state(), cri::PodSandboxState::SandboxReady);
    assert_eq!(after.created_at, before.created_at);
    fx.remove(&id).await;
    assert!(fx.leases().is_empty());
    assert!(fx.mounts().is_empty());
}

#[tokio::test]
async fn create_and_remove_cycles_leave_no_ip_mount_netns_or_file() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    for n in 0..100 {
        let id = fx.run(pod_config(&format!("cycle-{n}"))).await.unwrap();
        fx.stop(&id).await;
        fx.remove(&id).await;
    }
    assert!(fx.list(None).await.is_empty());
    assert!(fx.leases().is_empty(), "leases left: {:?}", fx.leases());
    assert!(fx.mounts().is_empty(), "mounts left: {:?}", fx.mounts());
    let pods_dir = fx.paths().state_dir.join("pods");
    assert_eq!(
        std::fs::read_dir(&pods_dir).map(|d| d.count()).unwrap_or(0),
        0
    );
    let records = fx.paths().root.join("pods");
    assert_eq!(
        std::fs::read_dir(&records).map(|d| d.count()).unwrap_or(0),
        0
    );
}

/// A CNI plugin that, on ADD, leaves a marker and sleeps as many seconds as the file `delay`
/// beside the marker says (default 30), then answers a result without addresses; DEL succeeds
/// at once.
fn sleeper_plugin(fixture_dir: &std::path::Path) -> String {
    let dir = fixture_dir.display();
    format!(
        "#!/bin/sh\n\
         cat >/dev/null\n\
         if [ \"$CNI_COMMAND\" = ADD ]; then\n\
         \x20 touch {dir}/sleeper-started\n\
         \x20 sleep $(cat {dir}/delay 2>/dev/null || echo 30)\n\
         \x20 echo '{{\"cniVersion\":\"1.0.0\"}}'\n\
         fi\n"
    )
}

async fn wait_for(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fixture with the sleeper at the end of its network.
async fn slow_network(config_toml: &str) -> PodFixture {
    // The script names the fixture's dir, known once the fixture exists: it starts as a
    // placeholder and is rewritten before any pod runs.
    let fx = PodFixture::with(Some(("sleeper", "#!/bin/sh\nexit 1\n")), config_toml).await;
    std::fs::write(fx.dir().join("plugins/sleeper"), sleeper_plugin(fx.dir())).unwrap();
    fx
}

#[tokio::test]
async fn a_crash_in_the_middle_of_run_pod_sandbox_is_cleaned_up_at_the_next_start() {
    require_root!("pod sandboxes");
    let mut fx = slow_network("").await;
    let mut client = fx.client.clone();
    let request = cri::RunPodSandboxRequest {
        config: Some(pod_config("crash")),
        runtime_handler: String::new(),
    };
    let run = tokio::spawn(async move { client.runtime.run_pod_sandbox(request).await });
    wait_for(&fx.dir().join("sleeper-started")).await;
    assert_eq!(
        fx.leases().len(),
        1,
        "the bridge plugin ran before the crash"
    );
    assert!(
        !fx.mounts().is_empty(),
        "namespaces are pinned before the crash"
    );
    fx.crius
        .signal_and_wait(nix::sys::signal::Signal::SIGKILL)
        .await
        .unwrap();
    assert!(run.await.unwrap().is_err());

    std::fs::write(fx.dir().join("delay"), "0").unwrap();
    let restarted = Crius::start_at(fx.crius.paths.clone(), &[]).await.unwrap();
    fx.client = restarted.client().await.unwrap();
    assert!(fx.list(None).await.is_empty());
    assert!(fx.leases().is_empty(), "leases left: {:?}", fx.leases());
    assert!(fx.mounts().is_empty(), "mounts left: {:?}", fx.mounts());
    let pods_dir = fx.paths().state_dir.join("pods");
    assert_eq!(
        std::fs::read_dir(&pods_dir).map(|d| d.count()).unwrap_or(0),
        0
    );
    assert_eq!(
        std::fs::read_dir(fx.paths().root.join("pods"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn a_run_pod_sandbox_that_outlives_its_deadline_completes_and_its_retry_gets_the_pod() {
    require_root!("pod sandboxes");
    let mut fx = slow_network("").await;
    std::fs::write(fx.dir().join("delay"), "2").unwrap();
    let config = pod_config("slow");
    let mut first = tonic::Request::new(cri::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    });
    first.set_timeout(Duration::from_millis(300));
    let err = fx.client.runtime.run_pod_sandbox(first).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    // The retry arrives while the first is still creating the pod, and waits for it.
    let id = fx.run(config.clone()).await.unwrap();
    assert_eq!(fx.list(None).await.len(), 1);
    assert_eq!(
        fx.run(config).await.unwrap(),
        id,
        "and again once it exists"
    );
    assert_eq!(
        fx.status(&id).await.unwrap().state(),
        cri::PodSandboxState::SandboxReady
    );
    fx.remove(&id).await;
    assert!(fx.leases().is_empty());
}

#[tokio::test]
async fn after_a_node_reboot_pods_are_not_ready_and_their_network_is_released() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::new().await;
    let id = fx.run(pod_config("rebooted")).await.unwrap();
    assert_eq!(fx.leases().len(), 1);
    fx.crius
        .signal_and_wait(nix::sys::signal::Signal::SIGKILL)
        .await
        .unwrap();
    // A reboot ends every process (the pod's init too) and empties the state dir's tmpfs.
    let init_pid = std::fs::read_to_string(fx.pod_dir(&id).join("ns/init.pid")).unwrap();
    Command::new("kill")
        .args(["-9", init_pid.trim()])
        .status()
        .unwrap();
    let mut mounts = fx.mounts();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount in mounts {
        Command::new("umount")
            .arg("-l")
            .arg(&mount)
            .status()
            .unwrap();
    }
    std::fs::remove_dir_all(&fx.paths().state_dir).unwrap();

    let restarted = Crius::start_at(fx.crius.paths.clone(), &[]).await.unwrap();
    fx.client = restarted.client().await.unwrap();
    assert_eq!(
        fx.status(&id).await.unwrap().state(),
        cri::PodSandboxState::SandboxNotready
    );
    assert!(
        fx.leases().is_empty(),
        "the IP is released: {:?}",
        fx.leases()
    );
    fx.remove(&id).await;
    assert!(fx.list(None).await.is_empty());
}

#[tokio::test]
async fn a_pod_created_after_its_caller_gave_up_is_removed_unless_a_retry_claims_it() {
    require_root!("pod sandboxes");
    // The orphan timeout leaves the test time to act on an unclaimed pod on a loaded machine.
    let mut fx = slow_network("[runtime]\norphan_pod_timeout = \"5s\"\n").await;
    std::fs::write(fx.dir().join("delay"), "1").unwrap();
    let give_up = |config: cri::PodSandboxConfig| {
        let mut request = tonic::Request::new(cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        });
        request.set_timeout(Duration::from_millis(200));
        request
    };

    // Nobody retries: the pod is created, then removed once the orphan timeout passes.
    assert!(
        fx.client
            .runtime
            .run_pod_sandbox(give_up(pod_config("orphan")))
            .await
            .is_err()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = false;
    loop {
        let pods = fx.list(None).await.len();
        seen |= pods == 1;
        if seen && pods == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan was never created and removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fx.leases().is_empty());
    assert!(fx.mounts().is_empty(), "{:?}", fx.mounts());

    // A changed request for the same name replaces an unclaimed pod at once.
    let config = pod_config("replaced");
    assert!(
        fx.client
            .runtime
            .run_pod_sandbox(give_up(config.clone()))
            .await
            .is_err()
    );
    // It is an orphan once the creation found nobody waiting for it.
    while fx
        .crius
        .log()
        .matches("waiting for a retry to claim it")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline + Duration::from_secs(20),
            "the first pod never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = fx.list(None).await[0].id.clone();
    let mut changed = config;
    changed.hostname = "changed".into();
    let second = fx.run(changed).await.unwrap();
    assert_ne!(first, second);
    let ids: Vec<_> = fx.list(None).await.into_iter().map(|p| p.id).collect();
    assert_eq!(ids, std::slice::from_ref(&second));
    // Claimed by its own caller, the new pod outlives the orphan timeout.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(fx.list(None).await.len(), 1);
    fx.remove(&second).await;
}

#[tokio::test]
async fn bandwidth_annotations_shape_the_pods_traffic() {
    require_root!("pod sandboxes");
    let mut fx = PodFixture::with_bandwidth().await;
    let mut config = pod_config("shaped");
    config.annotations = HashMap::from([
        ("kubernetes.io/ingress-bandwidth".into(), "1M".into()),
        ("kubernetes.io/egress-bandwidth".into(), "2M".into()),
    ]);
    let id = fx.run(config).await.unwrap();
    let qdiscs = String::from_utf8(
        Command::new("tc")
            .args(["qdisc", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        qdiscs.contains("tbf") && qdiscs.contains("rate 1Mbit"),
        "{qdiscs}"
    );
    assert!(qdiscs.contains("rate 2Mbit"), "{qdiscs}");
    fx.remove(&id).await;
    let after = String::from_utf8(
        Command::new("tc")
            .args(["qdisc", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        !after.contains("rate 2Mbit"),
        "shaping left behind: {after}"
    );

    let mut bad = pod_config("badly-shaped");
    bad.annotations = HashMap::from([("kubernetes.io/ingress-bandwidth".into(), "fast".into())]);
    assert_eq!(fx.run(bad).await.unwrap_err().code(), Code::InvalidArgument);
}
