//! Built specs run under the real runc: the container sees what the spec promises (user,
//! capabilities, seccomp, mounts, devices, hostname, masked paths). Needs root, runc and a static
//! busybox; skips loudly without them.
// Helpers outside `#[test]` functions panic on setup failure like the tests do.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crius_runtime::pinning::{PinRequest, pin, unpin};
use crius_runtime::spec::image_config::ImageConfig;
use crius_runtime::spec::request::{
    ContainerPidMode, ContainerRequest, DeviceRequest, MountRequest, SeccompRequest,
};
use crius_runtime::spec::{PodContext, SpecInputs, build};

const MONITOR: &str = env!("CARGO_BIN_EXE_crius-monitor");
const RUNC: &str = "/usr/sbin/runc";
const BUSYBOX: &str = "/bin/busybox";

fn can_run_or_skip(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: {test} needs root (runc, namespaces); run the tests as root");
        return false;
    }
    for tool in [RUNC, BUSYBOX] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED: {test} needs {tool}");
            return false;
        }
    }
    true
}

/// A pod with pinned net/ipc/uts namespaces and its files, and a busybox rootfs; unpinned on
/// drop.
struct Pod {
    dir: tempfile::TempDir,
    context: PodContext,
}

impl Pod {
    fn new() -> Pod {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let pinned = pin(
            Path::new(MONITOR),
            &path("ns"),
            &PinRequest {
                net: true,
                ipc: true,
                uts: true,
                pid: false,
                hostname: Some("spec-pod".into()),
                sysctls: Vec::new(),
            },
        )
        .unwrap();
        std::fs::write(path("hostname"), "spec-pod\n").unwrap();
        std::fs::write(path("resolv.conf"), "nameserver 127.0.0.53\n").unwrap();
        std::fs::create_dir(path("shm")).unwrap();
        for dir in [
            "rootfs/bin",
            "rootfs/etc",
            "rootfs/proc",
            "rootfs/sys",
            "rootfs/dev",
        ] {
            std::fs::create_dir_all(path(dir)).unwrap();
        }
        std::fs::copy(BUSYBOX, path("rootfs/bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", path("rootfs/bin/sh")).unwrap();
        std::fs::write(
            path("rootfs/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(path("rootfs/etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        let context = PodContext {
            pod_id: "spec-runc-test".into(),
            net_ns: pinned.net.clone(),
            ipc_ns: pinned.ipc.clone(),
            uts_ns: pinned.uts.clone(),
            pid_ns: None,
            host_network: false,
            host_ipc: false,
            host_pid: false,
            hostname: "spec-pod".into(),
            hostname_file: path("hostname"),
            resolv_conf: path("resolv.conf"),
            shm: Some(path("shm")),
        };
        Pod { dir, context }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Builds the spec, writes the bundle and runs it in the foreground (`runc run` deletes the
    /// container and its cgroup when its process exits).
    fn run(&self, id: &str, request: &ContainerRequest) -> Output {
        let rootfs = self.path("rootfs");
        let image = ImageConfig {
            user: "app".into(),
            ..ImageConfig::default()
        };
        let built = build(&SpecInputs {
            id,
            request,
            image: &image,
            rootfs: &rootfs,
            pod: &self.context,
            cgroups_path: format!("/crius-spec-test-{id}"),
            target_pid_ns: None,
        })
        .unwrap();
        let bundle = self.path(&format!("bundle-{id}"));
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&built.spec).unwrap(),
        )
        .unwrap();
        Command::new(RUNC)
            .arg("--root")
            .arg(self.path("runc-state"))
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = unpin(&self.path("ns"));
    }
}

fn shell(script: &str) -> ContainerRequest {
    ContainerRequest {
        name: "probe".into(),
        command: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ],
        envs: vec![("GREETING".into(), "two\nlines".into())],
        annotations: BTreeMap::new(),
        security: crius_runtime::spec::request::SecurityRequest {
            pid_mode: ContainerPidMode::Container,
            ..Default::default()
        },
        ..ContainerRequest::default()
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "runc run failed: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_confined_container_runs_as_its_spec_says() {
    if !can_run_or_skip("a_confined_container_runs_as_its_spec_says") {
        return;
    }
    let pod = Pod::new();
    let data = pod.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("file"), "data\n").unwrap();
    let mut request = shell(
        "set -e
         b=/bin/busybox
         echo uid=$($b id -u) gid=$($b id -g)
         echo host=$($b hostname) env=$HOSTNAME home=$HOME
         echo \"$GREETING\" | $b wc -l
         $b grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | $b tr -s '\\t' ' '
         $b cat /data/file
         if $b touch /data/new 2>/dev/null; then echo data-writable; fi
         if $b touch /sys/x 2>/dev/null; then echo sys-writable; fi
         echo zero > /dev/mynull && echo mynull-ok
         $b test -c /dev/urandom && echo urandom-ok
         $b grep -c ' /proc/keys ' /proc/self/mountinfo
         $b cat /etc/resolv.conf
         $b grep -q ' /dev/shm ' /proc/mounts && echo shm-mounted
         $b cat /proc/self/oom_score_adj
         $b cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares",
    );
    request.security.seccomp = SeccompRequest::RuntimeDefault;
    request.security.no_new_privs = true;
    request.resources.oom_score_adj = 500;
    request.resources.memory_limit_in_bytes = Some(64 << 20);
    request.resources.cpu_shares = Some(256);
    request.mounts = vec![MountRequest {
        container_path: "/data".into(),
        host_path: data.to_string_lossy().into_owned(),
        readonly: true,
        recursive_read_only: true,
        ..MountRequest::default()
    }];
    request.devices = vec![DeviceRequest {
        container_path: "/dev/mynull".into(),
        host_path: "/dev/null".into(),
        permissions: "rw".into(),
    }];
    let output = stdout(&pod.run("confined", &request));
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(
        lines,
        [
            "uid=1000 gid=1000",
            "host=spec-pod env=spec-pod home=/home/app",
            "2",
            "NoNewPrivs: 1",
            "Seccomp: 2",
            "data",
            "mynull-ok",
            "urandom-ok",
            "1",
            "nameserver 127.0.0.53",
            "shm-mounted",
            "500",
            "67108864",
            "256",
        ],
        "{output}"
    );
}

#[test]
fn a_privileged_container_gets_the_host_devices_and_a_writable_sys() {
    if !can_run_or_skip("a_privileged_container_gets_the_host_devices_and_a_writable_sys") {
        return;
    }
    let pod = Pod::new();
    let mut request = shell(
        "b=/bin/busybox
         $b grep -E '^(CapEff|Seccomp):' /proc/self/status | $b tr -s '\\t' ' '
         $b grep ' /sys ' /proc/mounts | $b cut -d' ' -f4 | $b cut -d, -f1
         $b test -c /dev/kmsg && echo kmsg-present",
    );
    request.security.privileged = true;
    request.security.user.run_as_user = Some(0);
    let output = stdout(&pod.run("privileged", &request));
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 4, "{output}");
    assert!(lines[0].starts_with("CapEff: 000001ff"), "{output}");
    assert_eq!(lines[1..], ["Seccomp: 0", "rw", "kmsg-present"], "{output}");
}
