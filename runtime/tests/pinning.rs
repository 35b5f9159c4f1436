//! Namespace pinning against the real kernel, through the built `crius-monitor pin-ns` helper.
//! Most tests need root and skip loudly without it.
// Helpers outside `#[test]` functions panic on setup failure like the tests do.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crius_runtime::RuntimeErrorKind;
use crius_runtime::pinning::{PinRequest, PinnedNamespaces, pin, unpin};

const MONITOR: &str = env!("CARGO_BIN_EXE_crius-monitor");

fn is_root_or_skip(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: {test} needs root (namespaces, mounts); run the tests as root");
    }
    root
}

/// Unpins on drop, so a failing assertion leaves no mounts behind.
struct PinDir {
    _parent: tempfile::TempDir,
    dir: PathBuf,
}

impl PinDir {
    fn new() -> Self {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("ns");
        PinDir {
            _parent: parent,
            dir,
        }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = unpin(&self.dir);
    }
}

fn full_request() -> PinRequest {
    PinRequest {
        net: true,
        ipc: true,
        uts: true,
        pid: false,
        hostname: Some("pinned-pod".to_string()),
        sysctls: vec![
            ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
            ("kernel.shm_rmid_forced".into(), "1".into()),
        ],
    }
}

/// Runs `sh -c script` inside the pinned namespaces.
fn in_pinned(pinned: &PinnedNamespaces, script: &str) -> String {
    let mut nsenter = Command::new("nsenter");
    for (flag, path) in [
        ("--net", &pinned.net),
        ("--ipc", &pinned.ipc),
        ("--uts", &pinned.uts),
    ] {
        if let Some(path) = path {
            nsenter.arg(format!("{flag}={}", path.display()));
        }
    }
    let output = nsenter.args(["sh", "-c", script]).output().unwrap();
    assert!(
        output.status.success(),
        "nsenter {script:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// The inode of a namespace link such as `net:[4026531840]`.
fn ns_inode(link: &str) -> u64 {
    let inner = link
        .trim()
        .split_once(":[")
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a namespace link: {link:?}"));
    inner.parse().unwrap()
}

fn host_ns_inode(name: &str) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
    ns_inode(link.to_str().unwrap())
}

/// Mount points at or under `dir` in this mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    read_trimmed("/proc/self/mountinfo")
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| *point == dir || point.starts_with(&format!("{dir}/")))
        .map(str::to_string)
        .collect()
}

fn has_ip_command() -> bool {
    Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_monitor(args: &[&str]) -> (i32, String) {
    let output = Command::new(MONITOR).args(args).output().unwrap();
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn pin_sets_hostname_sysctls_and_loopback_inside_the_new_namespaces_only() {
    if !is_root_or_skip("pin_sets_hostname_sysctls_and_loopback_inside_the_new_namespaces_only") {
        return;
    }
    let host_port_start = read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start");
    let host_shm_rmid = read_trimmed("/proc/sys/kernel/shm_rmid_forced");
    let host_hostname = read_trimmed("/proc/sys/kernel/hostname");

    let pin_dir = PinDir::new();
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &full_request()).unwrap();
    assert_eq!(
        pinned,
        PinnedNamespaces {
            dir: pin_dir.dir.clone(),
            net: Some(pin_dir.dir.join("net")),
            ipc: Some(pin_dir.dir.join("ipc")),
            uts: Some(pin_dir.dir.join("uts")),
            pid: None,
            init_pid: None,
        }
    );

    let inside = in_pinned(
        &pinned,
        "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
         cat /proc/sys/kernel/shm_rmid_forced",
    );
    let lines: Vec<&str> = inside.lines().collect();
    assert_eq!(lines, ["pinned-pod", "0", "1"], "{inside}");

    if has_ip_command() {
        let lo = in_pinned(&pinned, "ip -o link show lo");
        let flags = lo
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'));
        let flags = flags.unwrap_or_else(|| panic!("no flags in {lo:?}")).0;
        assert!(flags.split(',').any(|f| f == "UP"), "lo is not up: {lo}");
    } else {
        eprintln!("SKIPPED: the lo check needs the `ip` command (iproute2)");
    }

    assert_eq!(
        read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
        host_port_start
    );
    assert_eq!(
        read_trimmed("/proc/sys/kernel/shm_rmid_forced"),
        host_shm_rmid
    );
    assert_eq!(read_trimmed("/proc/sys/kernel/hostname"), host_hostname);
}

#[test]
fn pinned_files_are_new_namespaces_not_the_hosts() {
    if !is_root_or_skip("pinned_files_are_new_namespaces_not_the_hosts") {
        return;
    }
    let pin_dir = PinDir::new();
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &full_request()).unwrap();
    let inside = in_pinned(
        &pinned,
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts",
    );
    let links: Vec<&str> = inside.lines().collect();
    assert_eq!(links.len(), 3, "{inside}");
    for (name, link) in ["net", "ipc", "uts"].into_iter().zip(links) {
        let file = pin_dir.dir.join(name);
        let pinned_inode = std::fs::metadata(&file).unwrap().ino();
        assert_eq!(ns_inode(link), pinned_inode, "{name}");
        assert_ne!(pinned_inode, host_ns_inode(name), "{name} is the host's");
        assert!(link.starts_with(&format!("{name}:[")), "{link}");
    }
    let mut mounted = mounts_under(&pin_dir.dir);
    mounted.sort();
    let expected: Vec<String> = ["ipc", "net", "uts"]
        .iter()
        .map(|ns| pin_dir.dir.join(ns).display().to_string())
        .collect();
    assert_eq!(mounted, expected);
}

#[test]
fn unpin_removes_files_mounts_and_dir_and_is_idempotent() {
    if !is_root_or_skip("unpin_removes_files_mounts_and_dir_and_is_idempotent") {
        return;
    }
    let pin_dir = PinDir::new();
    pin(Path::new(MONITOR), &pin_dir.dir, &full_request()).unwrap();
    assert_eq!(mounts_under(&pin_dir.dir).len(), 3);

    unpin(&pin_dir.dir).unwrap();
    assert!(!pin_dir.dir.exists());
    assert_eq!(mounts_under(&pin_dir.dir), Vec::<String>::new());
    unpin(&pin_dir.dir).unwrap();
}

#[test]
fn unpin_accepts_files_that_are_not_mount_points() {
    if !is_root_or_skip("unpin_accepts_files_that_are_not_mount_points") {
        return;
    }
    let pin_dir = PinDir::new();
    std::fs::create_dir(&pin_dir.dir).unwrap();
    std::fs::write(pin_dir.dir.join("net"), "").unwrap();
    unpin(&pin_dir.dir).unwrap();
    assert!(!pin_dir.dir.exists());
}

#[test]
fn non_namespaced_sysctl_is_refused_by_name_and_leaves_nothing() {
    if !is_root_or_skip("non_namespaced_sysctl_is_refused_by_name_and_leaves_nothing") {
        return;
    }
    let pin_dir = PinDir::new();
    let mut request = full_request();
    request
        .sysctls
        .push(("kernel.nonexistent".into(), "1".into()));
    let err = pin(Path::new(MONITOR), &pin_dir.dir, &request).unwrap_err();
    assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
    assert!(err.to_string().contains("kernel.nonexistent"), "{err}");

    // The helper refuses it too, should a caller skip the check.
    let dir = pin_dir.dir.to_str().unwrap();
    let (code, stderr) = run_monitor(&[
        "pin-ns",
        "--dir",
        dir,
        "--net",
        "--sysctl",
        "kernel.nonexistent=1",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("kernel.nonexistent"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!pin_dir.dir.exists());
    assert_eq!(mounts_under(&pin_dir.dir), Vec::<String>::new());
}

#[test]
fn sysctl_name_with_path_traversal_is_refused_and_leaves_nothing() {
    if !is_root_or_skip("sysctl_name_with_path_traversal_is_refused_and_leaves_nothing") {
        return;
    }
    let pin_dir = PinDir::new();
    let request = PinRequest {
        net: true,
        sysctls: vec![("net/../x".into(), "1".into())],
        ..PinRequest::default()
    };
    let err = pin(Path::new(MONITOR), &pin_dir.dir, &request).unwrap_err();
    assert_eq!(err.kind(), RuntimeErrorKind::InvalidArgument);
    assert!(err.to_string().contains("net/../x"), "{err}");

    let dir = pin_dir.dir.to_str().unwrap();
    for sysctl in ["net/../x=1", "net.ipv4..x=1", "net.ipv4.ip_forward=1\n"] {
        let (code, stderr) = run_monitor(&["pin-ns", "--dir", dir, "--net", "--sysctl", sysctl]);
        assert_eq!(code, 1, "{sysctl:?}: {stderr}");
        assert!(
            stderr.starts_with("crius-monitor pin-ns: check request: sysctl"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(!pin_dir.dir.exists());
    assert_eq!(mounts_under(&pin_dir.dir), Vec::<String>::new());
}

#[test]
fn missing_sysctl_fails_in_the_helper_naming_it_and_leaves_nothing() {
    if !is_root_or_skip("missing_sysctl_fails_in_the_helper_naming_it_and_leaves_nothing") {
        return;
    }
    let pin_dir = PinDir::new();
    let mut request = full_request();
    request
        .sysctls
        .push(("net.ipv4.nonexistent".into(), "1".into()));
    let err = pin(Path::new(MONITOR), &pin_dir.dir, &request).unwrap_err();
    assert_eq!(err.kind(), RuntimeErrorKind::Internal);
    let message = err.to_string();
    assert!(
        message.contains("write sysctl net.ipv4.nonexistent"),
        "{message}"
    );
    assert!(message.contains("ENOENT"), "{message}");
    assert!(!pin_dir.dir.exists());
    assert_eq!(mounts_under(&pin_dir.dir), Vec::<String>::new());
}

#[test]
fn net_alone_pins_only_net() {
    if !is_root_or_skip("net_alone_pins_only_net") {
        return;
    }
    let pin_dir = PinDir::new();
    let request = PinRequest {
        net: true,
        sysctls: vec![("net.ipv4.ip_unprivileged_port_start".into(), "80".into())],
        ..PinRequest::default()
    };
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &request).unwrap();
    assert_eq!(pinned.net, Some(pin_dir.dir.join("net")));
    assert_eq!((&pinned.ipc, &pinned.uts), (&None, &None));
    let entries: Vec<_> = std::fs::read_dir(&pin_dir.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["net"]);
    assert_eq!(
        mounts_under(&pin_dir.dir),
        [pin_dir.dir.join("net").display().to_string()]
    );
    let port_start = in_pinned(&pinned, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start");
    assert_eq!(port_start.trim(), "80");
}

#[test]
fn pinning_a_pinned_dir_again_fails_and_keeps_the_first_pin() {
    if !is_root_or_skip("pinning_a_pinned_dir_again_fails_and_keeps_the_first_pin") {
        return;
    }
    let pin_dir = PinDir::new();
    let first = pin(Path::new(MONITOR), &pin_dir.dir, &full_request()).unwrap();
    let inode = std::fs::metadata(pin_dir.dir.join("net")).unwrap().ino();
    let err = pin(Path::new(MONITOR), &pin_dir.dir, &full_request()).unwrap_err();
    assert!(err.to_string().contains("EEXIST"), "{err}");
    assert_eq!(mounts_under(&pin_dir.dir).len(), 3);
    assert_eq!(
        std::fs::metadata(pin_dir.dir.join("net")).unwrap().ino(),
        inode
    );
    assert_eq!(in_pinned(&first, "hostname").trim(), "pinned-pod");
}

#[test]
fn monitor_refuses_unknown_subcommands_with_usage() {
    for args in [
        &[][..],
        &["run"],
        &["pin-ns", "--net"],
        &["pin-ns", "--bogus"],
    ] {
        let (code, stderr) = run_monitor(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("usage: crius-monitor pin-ns --dir DIR"),
            "{stderr}"
        );
    }
}

fn net_and_pid() -> PinRequest {
    PinRequest {
        net: true,
        pid: true,
        ..PinRequest::default()
    }
}

/// A field of `/proc/<pid>/status`, `None` once the process is gone.
fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|value| value.trim().to_string())
    })
}

/// Gone, or a zombie (reaped by whoever adopted it).
fn is_gone_or_zombie(pid: u32) -> bool {
    status_field(pid, "State").is_none_or(|state| state.starts_with('Z') || state.starts_with('X'))
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `nsenter ARGS... /bin/busybox sh -c SCRIPT` and returns its stdout.
fn nsenter_sh(args: &[&str], script: &str) -> String {
    let output = Command::new("nsenter")
        .args(args)
        .args(["/bin/busybox", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "nsenter {args:?} {script:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn sigkill(pid: u32) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn pid_namespace_is_held_by_an_orphaned_pod_init_that_reaps() {
    if !is_root_or_skip("pid_namespace_is_held_by_an_orphaned_pod_init_that_reaps") {
        return;
    }
    let pin_dir = PinDir::new();
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &net_and_pid()).unwrap();
    let init = pinned.init_pid.expect("no init pid");
    assert_eq!(pinned.pid, Some(pin_dir.dir.join("pid")));
    assert_eq!(pinned.net, Some(pin_dir.dir.join("net")));
    assert_eq!(
        std::fs::read_to_string(pin_dir.dir.join("init.pid")).unwrap(),
        format!("{init}\n")
    );

    // PID 1 of its own namespace, named, orphaned, in the pod's network namespace.
    assert_eq!(
        status_field(init, "Name").as_deref(),
        Some("crius-pod-init")
    );
    assert_eq!(
        status_field(init, "NSpid").unwrap(),
        format!("{init}\t1"),
        "NSpid"
    );
    let parent: u32 = status_field(init, "PPid").unwrap().parse().unwrap();
    assert_ne!(parent, std::process::id(), "the init was not orphaned");
    let ns_of = |name: &str| {
        std::fs::metadata(format!("/proc/{init}/ns/{name}"))
            .unwrap()
            .ino()
    };
    let pinned_pid_ns = std::fs::metadata(pin_dir.dir.join("pid")).unwrap().ino();
    assert_eq!(ns_of("pid"), pinned_pid_ns);
    assert_ne!(pinned_pid_ns, host_ns_inode("pid"));
    let pinned_net_ns = std::fs::metadata(pin_dir.dir.join("net")).unwrap().ino();
    assert_eq!(ns_of("net"), pinned_net_ns);
    assert_eq!(
        mounts_under(&pin_dir.dir).len(),
        2,
        "{:?}",
        mounts_under(&pin_dir.dir)
    );
    // Nothing of the pod dir (or anything else but /dev/null) open in the init.
    for fd in std::fs::read_dir(format!("/proc/{init}/fd")).unwrap() {
        let target = std::fs::read_link(fd.unwrap().path()).unwrap();
        assert_eq!(target, Path::new("/dev/null"));
    }

    // New processes join through the pinned file, below PID 1.
    let dir = pin_dir.dir.display().to_string();
    let inner: u32 = nsenter_sh(&[&format!("--pid={dir}/pid")], "echo $$")
        .trim()
        .parse()
        .unwrap();
    assert!(inner > 1, "{inner}");
    let status = nsenter_sh(
        &["--target", &init.to_string(), "--pid"],
        "cat /proc/self/status",
    );
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap();
    let levels: Vec<u32> = nspid
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(levels.len(), 2, "{nspid}");
    assert!(levels[1] > 1, "{nspid}");

    // An orphan is adopted by the init and reaped when it dies.
    nsenter_sh(
        &["--target", &init.to_string(), "--pid"],
        "/bin/busybox sleep 30 </dev/null >/dev/null 2>&1 & exit 0",
    );
    let mut orphan = None;
    wait_until(
        "the orphaned sleep to show up",
        Duration::from_secs(20),
        || {
            orphan = std::fs::read_dir("/proc").unwrap().find_map(|entry| {
                let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                // The init starts nothing: any child of it is an adopted orphan.
                (status_field(pid, "PPid")? == init.to_string()).then_some(pid)
            });
            orphan.is_some()
        },
    );
    let orphan = orphan.unwrap();
    let cmdline = std::fs::read(format!("/proc/{orphan}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("sleep"),
        "{cmdline:?}"
    );
    let orphan_nspid = status_field(orphan, "NSpid").unwrap();
    assert_eq!(orphan_nspid.split_whitespace().count(), 2, "{orphan_nspid}");
    sigkill(orphan);
    wait_until("the orphan to be reaped", Duration::from_secs(20), || {
        !Path::new(&format!("/proc/{orphan}")).exists()
    });
    assert!(!is_gone_or_zombie(init), "the init died with its child");
}

#[test]
fn unpin_kills_the_pod_init_removes_its_files_and_is_idempotent() {
    if !is_root_or_skip("unpin_kills_the_pod_init_removes_its_files_and_is_idempotent") {
        return;
    }
    let pin_dir = PinDir::new();
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &net_and_pid()).unwrap();
    let init = pinned.init_pid.unwrap();
    assert!(!is_gone_or_zombie(init));

    unpin(&pin_dir.dir).unwrap();
    assert!(
        is_gone_or_zombie(init),
        "the pod init {init} survived unpin"
    );
    assert!(!pin_dir.dir.exists());
    assert_eq!(mounts_under(&pin_dir.dir), Vec::<String>::new());
    unpin(&pin_dir.dir).unwrap();
}

#[test]
fn unpin_never_kills_a_process_outside_the_pinned_pid_namespace() {
    if !is_root_or_skip("unpin_never_kills_a_process_outside_the_pinned_pid_namespace") {
        return;
    }
    let pin_dir = PinDir::new();
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &net_and_pid()).unwrap();
    let init = pinned.init_pid.unwrap();
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(
        pin_dir.dir.join("init.pid"),
        format!("{}\n", bystander.id()),
    )
    .unwrap();

    let result = unpin(&pin_dir.dir);
    let still_running = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    // The real init was not named, so it is left running: take it down here.
    let init_survived = !is_gone_or_zombie(init);
    sigkill(init);
    result.unwrap();
    assert!(still_running, "unpin killed a process it did not start");
    assert!(init_survived, "unpin killed an init it was not told about");
    assert!(!pin_dir.dir.exists());
    assert_eq!(mounts_under(&pin_dir.dir), Vec::<String>::new());
}

#[test]
fn pid_only_request_pins_pid_and_records_the_init() {
    if !is_root_or_skip("pid_only_request_pins_pid_and_records_the_init") {
        return;
    }
    let pin_dir = PinDir::new();
    let request = PinRequest {
        pid: true,
        ..PinRequest::default()
    };
    let pinned = pin(Path::new(MONITOR), &pin_dir.dir, &request).unwrap();
    let init = pinned.init_pid.unwrap();
    assert_eq!(
        (&pinned.net, &pinned.ipc, &pinned.uts),
        (&None, &None, &None)
    );
    // Only the PID namespace is new: the init shares the node's network namespace.
    let net = std::fs::metadata(format!("/proc/{init}/ns/net"))
        .unwrap()
        .ino();
    assert_eq!(net, host_ns_inode("net"));
    let mut entries: Vec<_> = std::fs::read_dir(&pin_dir.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.sort();
    assert_eq!(entries, ["init.pid", "pid"]);
    unpin(&pin_dir.dir).unwrap();
    assert!(is_gone_or_zombie(init));
}

/// Measures `pin` (net+ipc+uts, hostname, two sysctls): `cargo test -p crius-runtime --test
/// pinning -- --ignored --nocapture pin_wall_time`.
#[test]
#[ignore = "measurement, not a check"]
fn pin_wall_time() {
    if !is_root_or_skip("pin_wall_time") {
        return;
    }
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let pin_dir = PinDir::new();
            let start = Instant::now();
            pin(Path::new(MONITOR), &pin_dir.dir, &full_request()).unwrap();
            let elapsed = start.elapsed();
            unpin(&pin_dir.dir).unwrap();
            elapsed
        })
        .collect();
    times.sort();
    println!(
        "pin() net+ipc+uts over {} runs: min {:?}, median {:?}, max {:?}",
        times.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
