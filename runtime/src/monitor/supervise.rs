//! The monitor process (`crius-monitor container`): start-up, `runc create`, the event loop and
//! the end of the container.
//!
//! Start-up: the process forks; the parent exits at once, the child makes itself a session
//! leader and a child subreaper, opens the log, binds the attach and control sockets, and runs
//! `runc create` with pipes (or a console socket) for the container's stdio. It then writes one
//! JSON line to its stdout, the daemon's pipe: `{"pid": <init>, "monitor_pid": <its own pid>}`
//! or `{"error": "<message>"}`, and puts `/dev/null` in place of its stdio so the daemon reads
//! EOF.
//!
//! The event loop (`poll(2)`, one thread) drains the container's output into the log and to the
//! attach clients, feeds stdin from them, answers control requests, and reaps children from a
//! signalfd. SIGTERM, SIGINT and SIGHUP are blocked and read from the signalfd too, so they never
//! end the monitor; it lives as long as the container's init. When the init is reaped, the rest
//! of the output is drained (until the pipes are at EOF, or quiet for [`DRAIN_QUIET`], at most
//! [`DRAIN_LIMIT`]), the exit file is written, the attach clients get their remaining output and
//! EOF, and the sockets are removed.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, setsid};

use super::args::ContainerArgs;
use super::attach::{AttachClient, Request};
use super::attach_protocol::{FrameKind, MAX_PAYLOAD};
use super::control::{Command as ControlCommand, ControlClient};
use super::exit_file::{ExitStatus, write_exit};
use super::log_writer::{LogWriter, Stream};
use super::{
    ATTACH_SOCKET, CONSOLE_SOCKET, CONTAINER_PID_FILE, CONTROL_SOCKET, RUNTIME_LOG_FILE, Report,
    oom,
};
use crate::sys::monitor::{Side, fork_detached, set_cloexec_above_stdio};
use crate::sys::terminal::{receive_fd, set_window_size};

/// After the init died: the output counts as drained once no data came for this long.
pub const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// After the init died: the most time spent draining output that a grandchild keeps coming.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// After the exit file: the most time spent sending attach clients their remaining output.
const CLIENT_FLUSH_LIMIT: Duration = Duration::from_secs(1);

/// Stdin data queued for the container past which attach clients are not read from until the
/// container has taken some.
const STDIN_HIGH_WATER: usize = 64 * 1024;

/// More attach clients than this at once are turned away (closed on accept).
const MAX_ATTACH_CLIENTS: usize = 128;
/// More control clients than this at once close the oldest.
const MAX_CONTROL_CLIENTS: usize = 16;

/// How much of the end of the runtime's log is searched for its error.
const MAX_RUNTIME_LOG_TAIL: u64 = 64 * 1024;

/// The longest error message reported.
const MAX_ERROR_MESSAGE: usize = 4096;

/// Runs `crius-monitor container`: forks, and in the child creates and supervises the container
/// until it has exited. The parent returns at once with success (or failure if it could not
/// fork, after reporting it).
pub fn run(args: &ContainerArgs) -> ExitCode {
    // Blocked before the fork so that no window is left where they could end the child.
    let signals = match block_signals() {
        Ok(signals) => signals,
        Err(errno) => return fail(&format!("block signals: {}", errno_text(errno))),
    };
    match fork_detached() {
        Err(errno) => return fail(&format!("fork: {}", errno_text(errno))),
        Ok(Side::Parent) => return ExitCode::SUCCESS,
        Ok(Side::Child) => {}
    }
    let supervisor = match start_container(args, signals) {
        Ok(supervisor) => supervisor,
        Err(message) => return fail(&message),
    };
    report(&Report::started(
        supervisor.init_pid.as_raw(),
        getpid().as_raw(),
    ));
    silence_stdio();
    supervisor.run();
    ExitCode::SUCCESS
}

/// Reports `message` as the error, closes stdio and returns failure.
fn fail(message: &str) -> ExitCode {
    report(&Report::failed(message));
    silence_stdio();
    ExitCode::FAILURE
}

/// Writes the one report line to stdout, the daemon's pipe.
fn report(report: &Report) {
    if let Ok(mut line) = serde_json::to_vec(report) {
        line.push(b'\n');
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&line);
        let _ = stdout.flush();
    }
}

/// Puts /dev/null on stdin, stdout and stderr: the daemon reads EOF, and nothing the monitor does
/// later can write to its pipes.
fn silence_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// The signals the monitor takes from its signalfd: SIGCHLD to reap, and the ones that would
/// end it, to ignore them. Blocked rather than ignored: programs it runs (runc, and through it the
/// container) get a clear signal mask, whereas ignored dispositions would be inherited.
fn block_signals() -> Result<SignalFd, Errno> {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(signal);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

fn errno_text(errno: Errno) -> String {
    format!("{errno:?} ({})", errno.desc().to_ascii_lowercase())
}

fn io_text(step: &str, err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => format!("{step}: {}", errno_text(Errno::from_raw(code))),
        None => format!("{step}: {err}"),
    }
}

/// A listening unix socket whose file is removed when it is dropped.
struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    /// Binds `path` (mode 0600), non-blocking.
    fn bind(path: PathBuf) -> Result<BoundSocket, String> {
        let listener = UnixListener::bind(&path)
            .map_err(|err| io_text(&format!("bind {}", path.display()), &err))?;
        let socket = BoundSocket { listener, path };
        std::fs::set_permissions(&socket.path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| io_text(&format!("chmod {}", socket.path.display()), &err))?;
        socket
            .listener
            .set_nonblocking(true)
            .map_err(|err| io_text(&format!("set {} non-blocking", socket.path.display()), &err))?;
        Ok(socket)
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The kubelet log file and its writer.
struct ContainerLog {
    path: PathBuf,
    writer: LogWriter<File>,
}

/// Opens the log file for appending: created 0640 if missing, never through a symlink.
fn open_log_file(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| io_text(&format!("open log file {}", path.display()), &err))
}

fn set_nonblocking(fd: impl AsFd, what: &str) -> Result<(), String> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL)
        .map_err(|errno| format!("get flags of {what}: {}", errno_text(errno)))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(|errno| format!("set {what} non-blocking: {}", errno_text(errno)))
}

/// Sets the process up and creates the container; returns the supervisor of the running (created)
/// container, or the error message to report.
fn start_container(args: &ContainerArgs, signals: SignalFd) -> Result<Supervisor, String> {
    set_cloexec_above_stdio()
        .map_err(|errno| format!("mark inherited fds close-on-exec: {}", errno_text(errno)))?;
    setsid().map_err(|errno| format!("setsid: {}", errno_text(errno)))?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|errno| format!("become a child subreaper: {}", errno_text(errno)))?;
    // The sockets are bound by name in the run dir: a long state dir path would not fit in a
    // socket address.
    std::env::set_current_dir(&args.dir)
        .map_err(|err| io_text(&format!("chdir {}", args.dir.display()), &err))?;

    let log = match &args.log_path {
        Some(path) => Some(ContainerLog {
            path: path.clone(),
            writer: LogWriter::new(open_log_file(path)?),
        }),
        None => None,
    };
    let attach = BoundSocket::bind(PathBuf::from(ATTACH_SOCKET))?;
    let control = BoundSocket::bind(PathBuf::from(CONTROL_SOCKET))?;

    let null = || {
        File::open("/dev/null")
            .map(Stdio::from)
            .map_err(|err| io_text("open /dev/null", &err))
    };
    let pipe = |name: &str| std::io::pipe().map_err(|err| io_text(&format!("{name} pipe"), &err));
    let mut runtime = runtime_create_command(args);
    let (outputs, stdin, console) = if args.tty {
        let console = BoundSocket::bind(PathBuf::from(CONSOLE_SOCKET))?;
        runtime.stdin(null()?).stdout(null()?).stderr(null()?);
        ([None, None], None, Some(console))
    } else {
        let (stdout_reader, stdout_writer) = pipe("stdout")?;
        let (stderr_reader, stderr_writer) = pipe("stderr")?;
        runtime.stdout(stdout_writer).stderr(stderr_writer);
        let stdin = if args.stdin {
            let (reader, writer) = pipe("stdin")?;
            runtime.stdin(reader);
            Some(File::from(OwnedFd::from(writer)))
        } else {
            runtime.stdin(null()?);
            None
        };
        let outputs = [
            Some(File::from(OwnedFd::from(stdout_reader))),
            Some(File::from(OwnedFd::from(stderr_reader))),
        ];
        (outputs, stdin, None)
    };
    let status = runtime
        .status()
        .map_err(|err| io_text(&format!("run {}", args.runtime.display()), &err))?;
    // The pipe ends given to the runtime are the container's now: closing ours lets EOF through
    // when the container is done with them.
    drop(runtime);
    if !status.success() {
        let message = runtime_error(&args.dir.join(RUNTIME_LOG_FILE))
            .unwrap_or_else(|| format!("{} create: {status}", args.runtime.display()));
        return Err(message);
    }

    let (outputs, stdin) = match console {
        Some(console) => {
            let master = receive_terminal(&console)?;
            drop(console);
            let stdin = if args.stdin {
                Some(
                    master
                        .try_clone()
                        .map_err(|err| io_text("duplicate the terminal", &err))?,
                )
            } else {
                None
            };
            ([Some(master), None], stdin)
        }
        None => (outputs, stdin),
    };
    for output in outputs.iter().flatten() {
        set_nonblocking(output, "the container's output")?;
    }
    if let Some(stdin) = &stdin {
        set_nonblocking(stdin, "the container's stdin")?;
    }

    let init_pid = read_container_pid(&args.dir.join(CONTAINER_PID_FILE))?;
    let oom_kills_before = args.oom_cgroup.as_deref().and_then(oom::oom_kill_count);
    Ok(Supervisor {
        dir: args.dir.clone(),
        init_pid,
        tty: args.tty,
        stdin_once: args.stdin_once,
        signals,
        outputs,
        stdin: stdin.map(StdinSink::new),
        log,
        attach,
        attach_clients: Vec::new(),
        control,
        control_clients: Vec::new(),
        buf: vec![0; MAX_PAYLOAD].into_boxed_slice(),
        oom_cgroup: args.oom_cgroup.clone(),
        oom_kills_before,
        exit: None,
    })
}

/// `runc --root R --log <dir>/runc.log --log-format json create --bundle B
/// --pid-file <dir>/container.pid [--console-socket <dir>/console.sock] <id>`
fn runtime_create_command(args: &ContainerArgs) -> Command {
    let mut command = Command::new(&args.runtime);
    command
        .arg("--root")
        .arg(&args.runtime_root)
        .arg("--log")
        .arg(args.dir.join(RUNTIME_LOG_FILE))
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(args.dir.join(CONTAINER_PID_FILE));
    if args.tty {
        // The runtime changes to the bundle dir: the socket is named through the monitor's
        // working directory (the run dir), which keeps the address short.
        command
            .arg("--console-socket")
            .arg(format!("/proc/{}/cwd/{CONSOLE_SOCKET}", std::process::id()));
    }
    command.arg(OsString::from(&args.id));
    command
}

/// The message of the last `"level":"error"` line of the runtime's JSON log, bounded.
fn runtime_error(log: &Path) -> Option<String> {
    let mut file = File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(MAX_RUNTIME_LOG_TAIL)))
        .ok()?;
    let mut tail = Vec::new();
    file.take(MAX_RUNTIME_LOG_TAIL)
        .read_to_end(&mut tail)
        .ok()?;
    last_error_message(&tail)
}

fn last_error_message(log: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    log.rsplit(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Line>(line).ok())
        .find(|line| line.level == "error")
        .map(|line| truncate(line.msg))
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// Takes the pty master that the runtime sent to the console socket (it did so before it
/// exited, so the connection is waiting, or there is none).
fn receive_terminal(console: &BoundSocket) -> Result<File, String> {
    let (connection, _) = console.listener.accept().map_err(|err| {
        if err.kind() == ErrorKind::WouldBlock {
            "the runtime sent no terminal to the console socket".to_string()
        } else {
            io_text("accept on the console socket", &err)
        }
    })?;
    // Accepted sockets do not inherit O_NONBLOCK: the message is there, or the peer is gone.
    receive_fd(&connection)
        .map(File::from)
        .map_err(|errno| format!("receive the terminal: {}", errno_text(errno)))
}

/// The container init's host pid from the runtime's pid file.
fn read_container_pid(path: &Path) -> Result<Pid, String> {
    let mut text = String::new();
    File::open(path)
        .and_then(|file| file.take(32).read_to_string(&mut text))
        .map_err(|err| io_text(&format!("read {}", path.display()), &err))?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|pid| *pid > 1)
        .map(Pid::from_raw)
        .ok_or_else(|| format!("{} holds no pid: {:?}", path.display(), truncate(text)))
}

/// The container's stdin: the write end of its pipe, or a duplicate of its pty master.
struct StdinSink {
    file: File,
    /// Data not yet taken by the container; `pending[sent..]` is still to go.
    pending: Vec<u8>,
    sent: usize,
    close_requested: bool,
}

impl StdinSink {
    fn new(file: File) -> Self {
        StdinSink {
            file,
            pending: Vec::new(),
            sent: 0,
            close_requested: false,
        }
    }

    fn queued(&self) -> usize {
        self.pending.len() - self.sent
    }

    fn push(&mut self, data: &[u8]) {
        if !self.close_requested {
            self.pending.extend_from_slice(data);
        }
    }

    /// Writes what the container takes now. Err: stdin is gone (the container closed it).
    fn flush(&mut self) -> Result<(), ()> {
        while self.sent < self.pending.len() {
            match self.file.write(&self.pending[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Err(()),
            }
        }
        if self.sent == self.pending.len() {
            self.pending.clear();
            self.sent = 0;
            self.pending.shrink_to(MAX_PAYLOAD);
        }
        Ok(())
    }

    /// Whether it should be closed now: asked to, with nothing left to write.
    fn done(&self) -> bool {
        self.close_requested && self.queued() == 0
    }
}

/// What a poll entry stands for.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Output(usize),
    Stdin,
    AttachListener,
    ControlListener,
    Attach(usize),
    Control(usize),
}

/// The streams of the `outputs` slots.
const OUTPUT_STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// How the container's init ended and when.
struct Exit {
    /// Its exit code, or the signal that killed it.
    ended: Ended,
    finished_at: SystemTime,
    reaped: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Ended {
    Exited(i32),
    Killed(Signal),
}

/// The state of the event loop.
struct Supervisor {
    dir: PathBuf,
    init_pid: Pid,
    tty: bool,
    stdin_once: bool,
    /// SIGCHLD, SIGTERM, SIGINT and SIGHUP; read only to empty it, the reaping is `waitpid`'s.
    signals: SignalFd,
    /// Stdout and stderr pipes, or the pty master and nothing; `None` once at EOF.
    outputs: [Option<File>; 2],
    /// `None` without `--stdin`, or once closed.
    stdin: Option<StdinSink>,
    log: Option<ContainerLog>,
    attach: BoundSocket,
    attach_clients: Vec<AttachClient>,
    control: BoundSocket,
    control_clients: Vec<ControlClient>,
    /// The read buffer for output, one attach frame's payload.
    buf: Box<[u8]>,
    oom_cgroup: Option<PathBuf>,
    oom_kills_before: Option<u64>,
    exit: Option<Exit>,
}

impl Supervisor {
    /// Runs until the init has exited and its output is drained, then finishes up.
    fn run(mut self) {
        let mut last_output = Instant::now();
        self.reap();
        loop {
            let timeout = match &self.exit {
                None => PollTimeout::NONE,
                Some(exit) => {
                    let now = Instant::now();
                    let quiet_end = last_output.max(exit.reaped) + DRAIN_QUIET;
                    let end = quiet_end.min(exit.reaped + DRAIN_LIMIT);
                    if self.outputs.iter().all(Option::is_none) || now >= end {
                        break;
                    }
                    PollTimeout::try_from(end - now).unwrap_or(PollTimeout::MAX)
                }
            };
            let ready = match self.poll(timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                // Nothing sensible is left to do but to wait for the init in a plain way.
                Err(_) => {
                    self.wait_for_init();
                    break;
                }
            };
            for (token, events) in ready {
                if self.handle(token, events) {
                    last_output = Instant::now();
                }
            }
            self.after_events();
        }
        self.finish();
    }

    /// Polls every fd with the events it waits for; returns the ready ones.
    fn poll<'a>(&'a self, timeout: PollTimeout) -> Result<Vec<(Token, PollFlags)>, Errno> {
        let mut tokens =
            Vec::with_capacity(6 + self.attach_clients.len() + self.control_clients.len());
        let mut fds = Vec::with_capacity(tokens.capacity());
        let mut add = |token: Token, fd: BorrowedFd<'a>, events: PollFlags| {
            tokens.push(token);
            fds.push(PollFd::new(fd, events));
        };
        add(Token::Signals, self.signals.as_fd(), PollFlags::POLLIN);
        for (index, output) in self.outputs.iter().enumerate() {
            if let Some(output) = output {
                add(Token::Output(index), output.as_fd(), PollFlags::POLLIN);
            }
        }
        let stdin_backlog = self.stdin.as_ref().map_or(0, StdinSink::queued);
        if let Some(stdin) = self.stdin.as_ref().filter(|stdin| stdin.queued() > 0) {
            add(Token::Stdin, stdin.file.as_fd(), PollFlags::POLLOUT);
        }
        add(
            Token::AttachListener,
            self.attach.listener.as_fd(),
            PollFlags::POLLIN,
        );
        add(
            Token::ControlListener,
            self.control.listener.as_fd(),
            PollFlags::POLLIN,
        );
        for (index, client) in self.attach_clients.iter().enumerate() {
            let mut events = PollFlags::empty();
            if stdin_backlog < STDIN_HIGH_WATER {
                events |= PollFlags::POLLIN;
            }
            if client.has_queued_output() {
                events |= PollFlags::POLLOUT;
            }
            add(Token::Attach(index), client.stream().as_fd(), events);
        }
        for (index, client) in self.control_clients.iter().enumerate() {
            add(
                Token::Control(index),
                client.stream().as_fd(),
                PollFlags::POLLIN,
            );
        }
        poll(&mut fds, timeout)?;
        Ok(tokens
            .into_iter()
            .zip(
                fds.iter()
                    .map(|fd| fd.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, events)| !events.is_empty())
            .collect())
    }

    /// Handles one ready fd; returns whether container output was read.
    fn handle(&mut self, token: Token, events: PollFlags) -> bool {
        let error = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
        match token {
            Token::Signals => {
                while let Ok(Some(_)) = self.signals.read_signal() {}
                self.reap();
            }
            Token::Output(index) => return self.read_output(index),
            Token::Stdin => self.flush_stdin(),
            Token::AttachListener => self.accept_attach(),
            Token::ControlListener => self.accept_control(),
            Token::Attach(index) => {
                let Self {
                    attach_clients,
                    stdin,
                    outputs,
                    tty,
                    ..
                } = self;
                let client = &mut attach_clients[index];
                if events.contains(PollFlags::POLLOUT) {
                    client.flush();
                }
                if events.intersects(PollFlags::POLLIN | error) {
                    client.read_requests(|request| match request {
                        Request::Stdin(data) => {
                            if let Some(stdin) = stdin {
                                stdin.push(data);
                            }
                        }
                        Request::CloseStdin => {
                            if let Some(stdin) = stdin {
                                stdin.close_requested = true;
                            }
                        }
                        Request::Resize(size) => {
                            if let (true, Some(terminal)) = (*tty, &outputs[0]) {
                                let _ = set_window_size(terminal, size.rows, size.cols);
                            }
                        }
                    });
                }
                self.flush_stdin();
            }
            Token::Control(index) => {
                if let Some(command) = self.control_clients[index].read_command() {
                    let result = match command {
                        ControlCommand::ReopenLog => self.reopen_log(),
                        ControlCommand::Unknown => Err("unknown command".to_string()),
                    };
                    self.control_clients[index].reply(&result);
                }
            }
        }
        false
    }

    /// Reads once from an output; returns whether data came.
    fn read_output(&mut self, index: usize) -> bool {
        let Some(output) = &mut self.outputs[index] else {
            return false;
        };
        let stream = OUTPUT_STREAMS[index];
        let count = match output.read(&mut self.buf) {
            Ok(count) => count,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return false;
            }
            // EIO from a pty master: the terminal's last holder closed it; the same as EOF.
            Err(_) => 0,
        };
        let now = SystemTime::now();
        if count == 0 {
            self.outputs[index] = None;
            if let Some(log) = &mut self.log {
                let _ = log.writer.finish(stream, now);
            }
            return false;
        }
        let data = &self.buf[..count];
        if let Some(log) = &mut self.log {
            // A failing log (disk full) loses records; the output keeps flowing regardless.
            let _ = log.writer.write(stream, data, now);
        }
        let kind = match stream {
            Stream::Stdout => FrameKind::Stdout,
            Stream::Stderr => FrameKind::Stderr,
        };
        for client in &mut self.attach_clients {
            client.send_output(kind, data);
        }
        true
    }

    fn flush_stdin(&mut self) {
        if let Some(stdin) = &mut self.stdin
            && (stdin.flush().is_err() || stdin.done())
        {
            self.stdin = None;
        }
    }

    fn accept_attach(&mut self) {
        while let Ok((stream, _)) = self.attach.listener.accept() {
            if self.attach_clients.len() < MAX_ATTACH_CLIENTS
                && let Ok(client) = AttachClient::new(stream)
            {
                self.attach_clients.push(client);
            }
        }
    }

    /// Accepts control connections. At the limit, the oldest one goes: a client that connected
    /// and never asked anything must not lock the daemon out.
    fn accept_control(&mut self) {
        while let Ok((stream, _)) = self.control.listener.accept() {
            if let Ok(client) = ControlClient::new(stream) {
                // Marked, not removed: the poll tokens of this round index the clients.
                let open = self.control_clients.iter().filter(|c| !c.closed).count();
                if open >= MAX_CONTROL_CLIENTS
                    && let Some(oldest) = self.control_clients.iter_mut().find(|c| !c.closed)
                {
                    oldest.closed = true;
                }
                self.control_clients.push(client);
            }
        }
    }

    /// Opens the log file afresh at its path (kubelet renamed the old one); the old file is
    /// closed only once the new one is open.
    fn reopen_log(&mut self) -> Result<(), String> {
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| "the container has no log file".to_string())?;
        let file = open_log_file(&log.path)?;
        drop(log.writer.replace_output(file));
        Ok(())
    }

    /// Drops closed clients; closes stdin for `--stdin-once` when its writer left.
    fn after_events(&mut self) {
        let mut stdin_writer_left = false;
        self.attach_clients.retain(|client| {
            if client.closed && client.wrote_stdin {
                stdin_writer_left = true;
            }
            !client.closed
        });
        self.control_clients.retain(|client| !client.closed);
        if stdin_writer_left
            && self.stdin_once
            && let Some(stdin) = &mut self.stdin
        {
            stdin.close_requested = true;
        }
        self.flush_stdin();
    }

    /// Reaps every child that has exited, noting the init's end.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(status) => self.note_exit(status),
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Waits (blocking) until the init has exited; the fallback when poll itself fails.
    fn wait_for_init(&mut self) {
        while self.exit.is_none() {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(status) => self.note_exit(status),
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn note_exit(&mut self, status: WaitStatus) {
        let ended = match status {
            WaitStatus::Exited(pid, code) if pid == self.init_pid => Ended::Exited(code),
            WaitStatus::Signaled(pid, signal, _) if pid == self.init_pid => Ended::Killed(signal),
            _ => return,
        };
        self.exit = Some(Exit {
            ended,
            finished_at: SystemTime::now(),
            reaped: Instant::now(),
        });
        // Nobody is left to read stdin.
        self.stdin = None;
    }

    /// Flushes the log, writes the exit file, sends the attach clients the rest of the output
    /// and EOF, and removes the sockets.
    fn finish(mut self) {
        let now = SystemTime::now();
        if let Some(log) = &mut self.log {
            for (output, stream) in self.outputs.iter().zip(OUTPUT_STREAMS) {
                if output.is_some() {
                    let _ = log.writer.finish(stream, now);
                }
            }
        }
        self.outputs = [None, None];
        let oom_killed = oom::oom_killed(
            self.oom_kills_before,
            self.oom_cgroup.as_deref().and_then(oom::oom_kill_count),
        );
        if let Some(exit) = &self.exit {
            let finished_at = exit
                .finished_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| {
                    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
                });
            let status = match exit.ended {
                Ended::Exited(code) => ExitStatus::exited(code, finished_at, oom_killed),
                Ended::Killed(signal) => {
                    ExitStatus::signaled(signal as i32, finished_at, oom_killed)
                }
            };
            // Nobody to tell if this fails: the daemon finds no exit file and says so.
            let _ = write_exit(&self.dir, &status);
        }
        self.flush_clients();
        drop(self.attach_clients);
        drop(self.control_clients);
    }

    /// Sends queued output to attach clients that take it, for at most [`CLIENT_FLUSH_LIMIT`].
    fn flush_clients(&mut self) {
        let deadline = Instant::now() + CLIENT_FLUSH_LIMIT;
        loop {
            self.attach_clients
                .retain(|client| !client.closed && client.has_queued_output());
            let now = Instant::now();
            if self.attach_clients.is_empty() || now >= deadline {
                return;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .attach_clients
                .iter()
                .map(|client| PollFd::new(client.stream().as_fd(), PollFlags::POLLOUT))
                .collect();
            let timeout = PollTimeout::try_from(deadline - now).unwrap_or(PollTimeout::MAX);
            if matches!(poll(&mut fds, timeout), Err(errno) if errno != Errno::EINTR) {
                return;
            }
            drop(fds);
            for client in &mut self.attach_clients {
                client.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_error_is_its_last_error_line() {
        let log = br#"{"level":"warning","msg":"cgroup v1 is deprecated","time":"t"}
{"level":"error","msg":"first","time":"t"}
not json
{"level":"error","msg":"container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH","time":"t"}
{"level":"info","msg":"after","time":"t"}
"#;
        assert_eq!(
            last_error_message(log).unwrap(),
            "container_linux.go:380: starting container process caused: exec: \"nope\": \
             executable file not found in $PATH"
        );
        assert_eq!(
            last_error_message(b"{\"level\":\"info\",\"msg\":\"x\"}\n"),
            None
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let message = truncate("é".repeat(MAX_ERROR_MESSAGE));
        assert!(message.len() <= MAX_ERROR_MESSAGE);
        assert!(message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn container_pid_must_be_a_pid_above_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.pid");
        std::fs::write(&path, "4242").unwrap();
        assert_eq!(read_container_pid(&path).unwrap(), Pid::from_raw(4242));
        for text in ["1", "0", "-5", "", "x"] {
            std::fs::write(&path, text).unwrap();
            assert!(
                read_container_pid(&path)
                    .unwrap_err()
                    .contains("holds no pid")
            );
        }
        let missing = read_container_pid(&dir.path().join("none")).unwrap_err();
        assert!(missing.contains("ENOENT"), "{missing}");
    }

    #[test]
    fn stdin_sink_queues_what_the_pipe_does_not_take() {
        let (reader, writer) = std::io::pipe().unwrap();
        let writer = File::from(OwnedFd::from(writer));
        set_nonblocking(&writer, "pipe").unwrap();
        let mut sink = StdinSink::new(writer);
        sink.push(&vec![b'a'; 200 * 1024]);
        sink.flush().unwrap();
        assert!(sink.queued() > 0, "a pipe holds less than 200 KiB");
        let mut reader = File::from(OwnedFd::from(reader));
        let mut received = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        while sink.queued() > 0 {
            let count = reader.read(&mut chunk).unwrap();
            received.extend_from_slice(&chunk[..count]);
            sink.flush().unwrap();
        }
        sink.close_requested = true;
        assert!(sink.done());
        drop(sink);
        reader.read_to_end(&mut received).unwrap();
        assert_eq!(received, vec![b'a'; 200 * 1024]);
    }

    #[test]
    fn stdin_sink_fails_once_the_container_closed_stdin() {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut sink = StdinSink::new(File::from(OwnedFd::from(writer)));
        drop(reader);
        sink.push(b"lost");
        assert!(sink.flush().is_err());
    }
}
