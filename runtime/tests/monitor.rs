//! The container monitor against real runc and busybox containers: log records, exit codes,
//! OOM kills, log reopening, attach, and a monitor outliving its daemon. The tests need root and
//! skip loudly without it.
// Helpers outside `#[test]` functions panic on setup failure like the tests do.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crius_runtime::RuntimeError;
use crius_runtime::monitor::attach_protocol::{
    FrameDecoder, FrameKind, TerminalSize, write_frames,
};
use crius_runtime::monitor::supervise::DRAIN_LIMIT;
use crius_runtime::monitor::{
    ATTACH_SOCKET, CONTROL_SOCKET, ContainerArgs, ExitStatus, Started, connect_attach, read_exit,
    reopen_log, start,
};
use oci_spec::runtime::{
    LinuxBuilder, LinuxMemoryBuilder, LinuxNamespaceType, LinuxResourcesBuilder, ProcessBuilder,
    Spec,
};

const MONITOR: &str = env!("CARGO_BIN_EXE_crius-monitor");
const RUNC: &str = "/usr/sbin/runc";
const BUSYBOX: &str = "/bin/busybox";
/// A test container's cgroup in every v1 hierarchy, relative to the hierarchy's root: one at
/// the top per container, so that no test removes a parent another test is creating in.
fn cgroup_of(id: &str) -> String {
    format!("crius-test-{id}")
}

fn is_root_or_skip(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: {test} needs root (runc, namespaces, cgroups); run the tests as root");
    }
    root
}

/// What a test container runs and how.
struct Options {
    args: Vec<String>,
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    log: bool,
    memory_limit: Option<i64>,
    /// No PID namespace of its own, so that processes outlive the init (as in a pod-wide PID
    /// namespace).
    host_pid: bool,
}

impl Options {
    fn sh(script: &str) -> Options {
        Options::exec(&[BUSYBOX, "sh", "-c", script])
    }

    fn exec(args: &[&str]) -> Options {
        Options {
            args: args.iter().map(|arg| arg.to_string()).collect(),
            tty: false,
            stdin: false,
            stdin_once: false,
            log: true,
            memory_limit: None,
            host_pid: false,
        }
    }
}

/// A bundle, run dir and runc state dir in a temp dir; on drop: the container deleted, its
/// monitor killed if still there, its cgroups removed.
struct TestContainer {
    temp: tempfile::TempDir,
    id: String,
    config: ContainerArgs,
    monitor_pid: Option<i32>,
}

impl TestContainer {
    fn new(name: &str, options: &Options) -> TestContainer {
        let temp = tempfile::tempdir().unwrap();
        let id = format!("crius-monitor-{name}-{}", std::process::id());
        let bundle = temp.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        for dir in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir(rootfs.join(dir)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        write_spec(&bundle, &id, options);
        let dir = temp.path().join("run");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let runtime_root = temp.path().join("runc");
        std::fs::create_dir(&runtime_root).unwrap();
        let oom_cgroup = Path::new("/sys/fs/cgroup/memory").join(cgroup_of(&id));
        let config = ContainerArgs {
            id: id.clone(),
            runtime: RUNC.into(),
            runtime_root,
            bundle,
            dir,
            log_path: options.log.then(|| temp.path().join("logs/0.log")),
            tty: options.tty,
            stdin: options.stdin,
            stdin_once: options.stdin_once,
            oom_cgroup: Some(oom_cgroup),
        };
        std::fs::create_dir(temp.path().join("logs")).unwrap();
        TestContainer {
            temp,
            id,
            config,
            monitor_pid: None,
        }
    }

    fn dir(&self) -> &Path {
        &self.config.dir
    }

    fn log_path(&self) -> &Path {
        self.config.log_path.as_deref().unwrap()
    }

    fn runc(&self, args: &[&str]) -> std::process::Output {
        Command::new(RUNC)
            .arg("--root")
            .arg(&self.config.runtime_root)
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts the monitor (`runc create`), then `runc start`s the container.
    fn start(&mut self) -> Started {
        let started = self.create();
        self.run_start();
        started
    }

    fn create(&mut self) -> Started {
        let started = start(Path::new(MONITOR), &self.config).unwrap();
        self.monitor_pid = Some(started.monitor_pid);
        started
    }

    fn run_start(&self) {
        let output = self.runc(&["start", &self.id]);
        assert!(
            output.status.success(),
            "runc start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits for the exit file and the monitor's end.
    fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = read_exit(self.dir()).unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit file after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let monitor = self.monitor_pid.unwrap();
        while !is_gone(monitor) {
            assert!(Instant::now() < deadline, "monitor {monitor} still running");
            std::thread::sleep(Duration::from_millis(20));
        }
        status
    }

    fn log_records(&self) -> Vec<(String, String, String)> {
        parse_records(&std::fs::read_to_string(self.log_path()).unwrap())
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        if let Some(pid) = self.monitor_pid.filter(|pid| !is_gone(*pid)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.runc(&["delete", "--force", &self.id]);
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(cgroup_of(&self.id)));
        }
        let _ = &self.temp;
    }
}

fn write_spec(bundle: &Path, id: &str, options: &Options) {
    let mut spec = Spec::default();
    let process = ProcessBuilder::default()
        .terminal(options.tty)
        .args(options.args.clone())
        .env(vec!["PATH=/bin".to_string(), "TERM=xterm".to_string()])
        .cwd("/")
        .build()
        .unwrap();
    spec.set_process(Some(process));
    spec.set_hostname(Some("monitor-test".to_string()));
    let mut root = spec.root().clone().unwrap();
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    let mut resources = LinuxResourcesBuilder::default();
    if let Some(limit) = options.memory_limit {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).build().unwrap());
    }
    let default_linux = spec.linux().clone().unwrap();
    let mut namespaces = default_linux.namespaces().clone().unwrap();
    if options.host_pid {
        namespaces.retain(|namespace| namespace.typ() != LinuxNamespaceType::Pid);
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(default_linux.masked_paths().clone().unwrap_or_default())
        .readonly_paths(default_linux.readonly_paths().clone().unwrap_or_default())
        .cgroups_path(PathBuf::from(format!("/{}", cgroup_of(id))))
        .resources(resources.build().unwrap())
        .build()
        .unwrap();
    spec.set_linux(Some(linux));
    spec.save(bundle.join("config.json")).unwrap();
}

/// Whether the process `pid` has exited: no `/proc/<pid>`, or a zombie.
fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state == 'Z' || state == 'X'),
        Err(_) => true,
    }
}

/// Waits until the container's init has exec'd its process (`runc start` only tells it to): until
/// then it is `runc init`, holding runc's own fds.
fn wait_for_exec(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .starts_with("runc")
    {
        assert!(Instant::now() < deadline, "init {pid} did not exec");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Splits log records into (stream, tag, content), checking each timestamp's shape.
fn parse_records(text: &str) -> Vec<(String, String, String)> {
    if text.is_empty() {
        return Vec::new();
    }
    let records = text.strip_suffix('\n').expect("a torn record at the end");
    // Not `lines()`: a record's content may end in '\r' (terminal output).
    records
        .split('\n')
        .map(|line| {
            let mut fields = line.splitn(4, ' ');
            let stamp = fields.next().unwrap();
            assert_eq!(stamp.len(), 30, "{stamp}");
            assert!(
                stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
                "{stamp}"
            );
            let stream = fields.next().unwrap().to_string();
            let tag = fields.next().unwrap().to_string();
            let content = fields.next().unwrap().to_string();
            (stream, tag, content)
        })
        .collect()
}

fn stream_records(records: &[(String, String, String)], stream: &str) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|(s, _, _)| s == stream)
        .map(|(_, tag, content)| (tag.clone(), content.clone()))
        .collect()
}

fn record(tag: &str, content: &str) -> (String, String) {
    (tag.to_string(), content.to_string())
}

#[test]
fn log_holds_stdout_and_stderr_lines_and_long_lines_in_pieces_and_exit_code_3() {
    if !is_root_or_skip("log_holds_stdout_and_stderr_lines") {
        return;
    }
    let script = "echo out1; echo err1 >&2; echo out2; printf 'err2\\nerr-end' >&2; \
                  head -c 40960 /dev/zero | tr '\\0' a; exit 3";
    let mut container = TestContainer::new("log", &Options::sh(script));
    container.start();
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!((status.exit_code, status.signal), (3, None));
    assert!(!status.oom_killed);
    let records = container.log_records();
    let a = |count: usize| "a".repeat(count);
    assert_eq!(
        stream_records(&records, "stdout"),
        [
            record("F", "out1"),
            record("F", "out2"),
            record("P", &a(16384)),
            record("P", &a(16384)),
            record("F", &a(8192)),
        ]
    );
    assert_eq!(
        stream_records(&records, "stderr"),
        [
            record("F", "err1"),
            record("F", "err2"),
            record("F", "err-end")
        ]
    );
    assert_eq!(records.len(), 8);
    // The monitor removed its sockets; the daemon removes the rest.
    assert!(!container.dir().join(ATTACH_SOCKET).exists());
    assert!(!container.dir().join(CONTROL_SOCKET).exists());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(now - status.finished_at < 60_000_000_000 && status.finished_at <= now);
}

#[test]
fn init_has_only_stdio_fds_and_a_sigkill_is_exit_137() {
    if !is_root_or_skip("init_has_only_stdio_fds") {
        return;
    }
    let mut container = TestContainer::new("fds", &Options::exec(&[BUSYBOX, "sleep", "60"]));
    let started = container.start();
    wait_for_exec(started.container_pid);
    let fd_dir = format!("/proc/{}/fd", started.container_pid);
    let fds: BTreeSet<String> = std::fs::read_dir(&fd_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(fds, BTreeSet::from(["0".into(), "1".into(), "2".into()]));
    let target = |fd: &str| std::fs::read_link(format!("{fd_dir}/{fd}")).unwrap();
    assert_eq!(target("0"), Path::new("/dev/null"));
    for fd in ["1", "2"] {
        assert!(target(fd).to_string_lossy().starts_with("pipe:"), "{fd}");
    }
    assert_ne!(target("1"), target("2"));
    // The monitor survives what would end a plain process.
    let monitor = nix::unistd::Pid::from_raw(started.monitor_pid);
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        nix::sys::signal::kill(monitor, signal).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!is_gone(started.monitor_pid));
    let status_text =
        std::fs::read_to_string(format!("/proc/{}/status", started.container_pid)).unwrap();
    // Neither blocked nor ignored signals reach the container from the monitor (runc and the
    // C library may ignore signals of their own, e.g. 32).
    let mask = |field: &str| {
        let line = status_text.lines().find(|l| l.starts_with(field)).unwrap();
        u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0);
    let hup_int_term = (1 << (1 - 1)) | (1 << (2 - 1)) | (1 << (15 - 1));
    assert_eq!(mask("SigIgn:") & hup_int_term, 0);
    let output = container.runc(&["kill", &container.id, "KILL"]);
    assert!(output.status.success());
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!((status.exit_code, status.signal), (137, Some(9)));
    assert!(!status.oom_killed);
}

#[test]
fn a_memory_hog_is_oom_killed() {
    if !is_root_or_skip("a_memory_hog_is_oom_killed") {
        return;
    }
    let mut options = Options::sh("x=$(head -c 64m /dev/zero | tr '\\0' a); echo survived");
    options.memory_limit = Some(16 * 1024 * 1024);
    let mut container = TestContainer::new("oom", &options);
    container.start();
    let status = container.wait_exit(Duration::from_secs(30));
    assert_eq!(
        (status.exit_code, status.signal),
        (137, Some(9)),
        "{status:?}"
    );
    assert!(status.oom_killed, "{status:?}");
}

#[test]
fn reopening_while_the_container_writes_keeps_every_line_once_in_order() {
    if !is_root_or_skip("reopening_while_the_container_writes") {
        return;
    }
    const LINES: usize = 20_000;
    let script = format!(
        "i=0; while [ $i -lt {LINES} ]; do echo line-$i; i=$((i+1)); \
         [ $((i % 500)) = 0 ] && usleep 5000; done; exit 0"
    );
    let mut container = TestContainer::new("reopen", &Options::sh(&script));
    container.start();
    let log = container.log_path().to_path_buf();
    let mut rotated = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(15));
        let target = log.with_extension(format!("log.{}", rotated.len() + 1));
        std::fs::rename(&log, &target).unwrap();
        rotated.push(target);
        match reopen_log(container.dir()) {
            Ok(()) => assert!(log.exists(), "reopen returned before the new file was open"),
            Err(RuntimeError::MonitorGone { .. }) => break,
            Err(err) => panic!("reopen: {err}"),
        }
    }
    assert!(rotated.len() > 3, "only {} rotations", rotated.len());
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 0);
    let mut text = String::new();
    for file in rotated.iter().chain([&log]) {
        if let Ok(part) = std::fs::read_to_string(file) {
            text.push_str(&part);
        }
    }
    let records = parse_records(&text);
    let expected: Vec<(String, String, String)> = (0..LINES)
        .map(|i| ("stdout".into(), "F".into(), format!("line-{i}")))
        .collect();
    assert_eq!(records.len(), expected.len());
    assert!(
        records == expected,
        "lines lost, duplicated or out of order"
    );
}

#[test]
fn reopen_of_a_container_without_a_log_is_refused() {
    if !is_root_or_skip("reopen_of_a_container_without_a_log_is_refused") {
        return;
    }
    let mut options = Options::exec(&[BUSYBOX, "sleep", "60"]);
    options.log = false;
    let mut container = TestContainer::new("nolog", &options);
    container.start();
    // Idle connections do not lock the daemon out.
    let idle: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(container.dir().join(CONTROL_SOCKET)).unwrap())
        .collect();
    let err = reopen_log(container.dir()).unwrap_err();
    assert!(matches!(err, RuntimeError::MonitorRequest { .. }), "{err}");
    drop(idle);
    assert!(err.to_string().contains("no log file"), "{err}");
    // An unknown request gets its own answer.
    let mut ctl = UnixStream::connect(container.dir().join(CONTROL_SOCKET)).unwrap();
    std::io::Write::write_all(&mut ctl, b"frobnicate\n").unwrap();
    let mut reply = String::new();
    ctl.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "error unknown command\n");
    container.runc(&["kill", &container.id, "KILL"]);
    container.wait_exit(Duration::from_secs(20));
    let err = reopen_log(container.dir()).unwrap_err();
    assert!(matches!(err, RuntimeError::MonitorGone { .. }), "{err}");
}

/// Reads frames from an attach connection until `done` says so or EOF; returns (kind, bytes) of
/// all output read.
fn read_output(
    stream: &mut UnixStream,
    decoder: &mut FrameDecoder,
    mut done: impl FnMut(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut output = Vec::new();
    loop {
        while let Some(frame) = decoder.next_frame().unwrap() {
            assert!(matches!(frame.kind, FrameKind::Stdout | FrameKind::Stderr));
            output.extend_from_slice(frame.payload);
        }
        if done(&output) {
            return (output, false);
        }
        let count = stream.read(decoder.unfilled()).unwrap();
        if count == 0 {
            return (output, true);
        }
        decoder.filled(count);
    }
}

#[test]
fn attach_gets_output_and_feeds_stdin_to_cat_until_stdin_is_closed() {
    if !is_root_or_skip("attach_gets_output_and_feeds_stdin") {
        return;
    }
    let mut options = Options::exec(&[BUSYBOX, "cat"]);
    options.stdin = true;
    let mut container = TestContainer::new("attach", &options);
    container.create();
    let mut client = connect_attach(container.dir()).unwrap();
    let mut watcher = connect_attach(container.dir()).unwrap();
    container.run_start();
    write_frames(&mut client, FrameKind::Stdin, b"hello\n").unwrap();
    let mut decoder = FrameDecoder::new();
    let (output, _) = read_output(&mut client, &mut decoder, |out| out == b"hello\n");
    assert_eq!(output, b"hello\n");
    write_frames(&mut client, FrameKind::Stdin, b"bye\n").unwrap();
    write_frames(&mut client, FrameKind::CloseStdin, b"").unwrap();
    let (output, eof) = read_output(&mut client, &mut decoder, |_| false);
    assert_eq!((output.as_slice(), eof), (&b"bye\n"[..], true));
    // Every client gets all output.
    let (output, eof) = read_output(&mut watcher, &mut FrameDecoder::new(), |_| false);
    assert_eq!((output.as_slice(), eof), (&b"hello\nbye\n"[..], true));
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 0);
    let records = container.log_records();
    assert_eq!(
        stream_records(&records, "stdout"),
        [record("F", "hello"), record("F", "bye")]
    );
}

#[test]
fn stdin_once_closes_stdin_when_its_writer_leaves() {
    if !is_root_or_skip("stdin_once_closes_stdin_when_its_writer_leaves") {
        return;
    }
    let mut options = Options::sh("cat; echo cat-done");
    options.stdin = true;
    options.stdin_once = true;
    let mut container = TestContainer::new("once", &options);
    container.start();
    // A client that only watches does not close stdin when it leaves.
    drop(connect_attach(container.dir()).unwrap());
    let mut client = connect_attach(container.dir()).unwrap();
    write_frames(&mut client, FrameKind::Stdin, b"only\n").unwrap();
    let mut decoder = FrameDecoder::new();
    read_output(&mut client, &mut decoder, |out| out == b"only\n");
    drop(client);
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 0);
    assert_eq!(
        stream_records(&container.log_records(), "stdout"),
        [record("F", "only"), record("F", "cat-done")]
    );
}

#[test]
fn a_terminal_container_is_attached_through_its_pty() {
    if !is_root_or_skip("a_terminal_container_is_attached_through_its_pty") {
        return;
    }
    let mut options = Options::sh("read line; stty size; echo got-$line; exit 5");
    options.tty = true;
    options.stdin = true;
    let mut container = TestContainer::new("tty", &options);
    let started = container.start();
    wait_for_exec(started.container_pid);
    assert!(!container.dir().join("console.sock").exists());
    let fds: BTreeSet<String> = std::fs::read_dir(format!("/proc/{}/fd", started.container_pid))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(fds, BTreeSet::from(["0".into(), "1".into(), "2".into()]));
    let mut client = connect_attach(container.dir()).unwrap();
    let size = TerminalSize { rows: 33, cols: 77 };
    write_frames(&mut client, FrameKind::Resize, &size.encode()).unwrap();
    write_frames(&mut client, FrameKind::Stdin, b"word\n").unwrap();
    let (output, eof) = read_output(&mut client, &mut FrameDecoder::new(), |_| false);
    let output = String::from_utf8(output).unwrap();
    assert!(eof);
    assert!(output.contains("33 77\r\n"), "{output:?}");
    assert!(output.contains("got-word\r\n"), "{output:?}");
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 5);
    let records = container.log_records();
    assert!(records.iter().all(|(stream, _, _)| stream == "stdout"));
    assert!(
        records
            .iter()
            .any(|(_, tag, content)| tag == "F" && content == "got-word\r"),
        "{records:?}"
    );
}

#[test]
fn a_create_failure_is_reported_with_the_runtime_error() {
    if !is_root_or_skip("a_create_failure_is_reported_with_the_runtime_error") {
        return;
    }
    let mut container = TestContainer::new("fail", &Options::exec(&["/bin/does-not-exist", "x"]));
    let err = start(Path::new(MONITOR), &container.config).unwrap_err();
    assert!(matches!(err, RuntimeError::ContainerCreate { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("does-not-exist"), "{message}");
    for socket in [ATTACH_SOCKET, CONTROL_SOCKET, "console.sock"] {
        assert!(
            !container.dir().join(socket).exists(),
            "{socket} left behind"
        );
    }
    container.monitor_pid = None;
}

/// The memory a process has to itself (heap, stack, written data), from `smaps_rollup`. (Its
/// `Private_*` lines would also count the pages of the binary that no other process maps.)
fn anonymous_kib(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with("Anonymous:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_monitor_outlives_a_killed_daemon_and_keeps_logging() {
    if !is_root_or_skip("the_monitor_outlives_a_killed_daemon") {
        return;
    }
    let script = "i=0; while [ $i -lt 30 ]; do echo tick-$i; i=$((i+1)); usleep 20000; done";
    let mut container = TestContainer::new("orphan", &Options::sh(script));
    // A stand-in daemon that starts the monitor, reads its report and lives on until killed.
    let monitor_args = container.config.clone();
    let mut daemon = Command::new(BUSYBOX)
        .args(["sh", "-c", "\"$0\" \"$@\"; exec sleep 600", MONITOR])
        .args(monitor_args.command_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&line).unwrap();
    let monitor_pid = report["monitor_pid"].as_i64().unwrap() as i32;
    container.monitor_pid = Some(monitor_pid);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    container.run_start();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!is_gone(monitor_pid));
    let anonymous = anonymous_kib(monitor_pid);
    eprintln!("monitor anonymous memory: {anonymous} KiB");
    assert!(
        anonymous < 1024,
        "monitor uses {anonymous} KiB of anonymous memory"
    );
    let status = container.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 0);
    let expected: Vec<_> = (0..30).map(|i| record("F", &format!("tick-{i}"))).collect();
    assert_eq!(stream_records(&container.log_records(), "stdout"), expected);
}

#[test]
fn the_run_dir_and_sockets_are_private() {
    if !is_root_or_skip("the_run_dir_and_sockets_are_private") {
        return;
    }
    let mut container = TestContainer::new("perm", &Options::exec(&[BUSYBOX, "sleep", "60"]));
    container.start();
    for socket in [ATTACH_SOCKET, CONTROL_SOCKET] {
        let mode = std::fs::metadata(container.dir().join(socket))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{socket}");
    }
    let mode = std::fs::metadata(container.log_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777 & !0o022, 0o640 & !0o022);
    container.runc(&["kill", &container.id, "KILL"]);
    container.wait_exit(Duration::from_secs(20));
}

#[test]
fn a_grandchild_holding_the_output_open_does_not_hold_the_exit_up() {
    if !is_root_or_skip("a_grandchild_holding_the_output_open") {
        return;
    }
    // A quiet one: the drain ends once no output came for a moment.
    let mut options = Options::sh("busybox sleep 30 & echo bye; exit 4");
    options.host_pid = true;
    let mut quiet = TestContainer::new("quiet", &options);
    quiet.start();
    let begin = Instant::now();
    let status = quiet.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 4);
    let elapsed = begin.elapsed();
    assert!(elapsed < DRAIN_LIMIT, "{elapsed:?}");
    assert_eq!(
        stream_records(&quiet.log_records(), "stdout"),
        [record("F", "bye")]
    );
    // A chatty one: the drain ends at its time limit.
    let mut options = Options::sh(
        "(while true; do echo spam; busybox usleep 10000; done) & usleep 100000; exit 5",
    );
    options.host_pid = true;
    let mut chatty = TestContainer::new("chatty", &options);
    chatty.create();
    // Before the process starts, so that the drain, which counts from its exit, cannot have
    // begun earlier; the upper bound only tells the limit from no limit, on a loaded machine.
    let begin = Instant::now();
    chatty.run_start();
    let status = chatty.wait_exit(Duration::from_secs(20));
    assert_eq!(status.exit_code, 5);
    let elapsed = begin.elapsed();
    assert!(elapsed >= DRAIN_LIMIT, "{elapsed:?}");
    assert!(
        elapsed < DRAIN_LIMIT + Duration::from_secs(5),
        "{elapsed:?}"
    );
    let records = chatty.log_records();
    assert!(records.len() > 20, "{}", records.len());
    assert!(
        records
            .iter()
            .all(|(_, tag, content)| tag == "F" && content == "spam")
    );
}

#[test]
fn a_client_that_does_not_read_is_dropped_and_the_log_gets_everything() {
    if !is_root_or_skip("a_client_that_does_not_read_is_dropped") {
        return;
    }
    // 3000 lines of 1000 bytes: more than a client may have queued plus a socket buffer.
    let script = "head -c 3000000 /dev/zero | tr '\\0' a | fold -w 1000";
    let mut container = TestContainer::new("slow", &Options::sh(script));
    container.create();
    let mut sleeper = connect_attach(container.dir()).unwrap();
    container.run_start();
    let status = container.wait_exit(Duration::from_secs(30));
    assert_eq!(status.exit_code, 0);
    let records = container.log_records();
    assert_eq!(records.len(), 3000);
    let line = "a".repeat(1000);
    assert!(
        records
            .iter()
            .all(|(stream, tag, content)| { stream == "stdout" && tag == "F" && *content == line })
    );
    // It got what fit, then was cut off.
    let mut received = Vec::new();
    let _ = sleeper.read_to_end(&mut received);
    assert!(received.len() < 2_000_000, "{}", received.len());
}
