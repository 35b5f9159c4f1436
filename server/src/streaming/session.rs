//! One remotecommand session: an exec'd command or an attach to a container, its streams passed
//! between the client (over WebSocket or SPDY, see [`RemoteClient`]) and the process (or the
//! container's monitor).
//!
//! Data the client sends for stdin goes through a small bounded queue to a writer task, so that
//! a process that does not read its stdin never stops its output from flowing. A client that
//! goes away ends the session: an exec'd process is killed with what it started; an attach
//! connection is closed (the container keeps running).

use std::process::ExitStatus;

use crius_runtime::container::exec::exec_failure_message;
use crius_runtime::monitor::attach_protocol::{
    FrameDecoder, FrameKind, MAX_PAYLOAD, TerminalSize, encode,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::remotecommand::{Ending, Resize, STDERR, STDOUT};
use super::{CommandRequest, Streams};
use crate::blocking::run_blocking;
use crate::containers::ContainerManager;
use crate::containers::exec::{
    ExecStreams, SpawnedExec, end_exec, exit_code, resize_exec_terminal,
};

/// The size of each read from the process's output.
const READ_CHUNK: usize = 32 * 1024;
/// Stdin messages queued for the writer task; the client waits while it is full.
const STDIN_QUEUE: usize = 8;
/// How much of runc's stderr is kept to tell why it could not start a process.
const FAILURE_MESSAGE_LIMIT: usize = 4096;

/// The client's end of a session, whatever carries it: WebSocket channels or SPDY streams.
pub trait RemoteClient {
    /// The next thing the client asks for.
    async fn next(&mut self) -> FromClient;
    /// Sends `data` on [`STDOUT`] or [`STDERR`]; false if the client is gone.
    async fn send(&mut self, channel: u8, data: &[u8]) -> bool;
    /// Tells the client how the session ended and closes the connection.
    async fn finish(self, ending: &Ending);
}

/// What the client did.
pub enum FromClient {
    /// Data for stdin.
    Stdin(Vec<u8>),
    /// The client closed its stdin.
    CloseStdin,
    Resize(TerminalSize),
    /// A message with nothing to do (ping, unknown channel, malformed resize).
    Nothing,
    /// The client closed the connection or it broke.
    Gone,
}

impl FromClient {
    /// A resize message (`{"Width":..,"Height":..}`).
    pub fn resize(json: &[u8]) -> Self {
        match serde_json::from_slice::<Resize>(json) {
            Ok(size) => FromClient::Resize(TerminalSize {
                rows: size.height,
                cols: size.width,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "malformed resize message");
                FromClient::Nothing
            }
        }
    }
}

/// Runs `request` with `client` to its end.
pub async fn run(
    mut client: impl RemoteClient,
    request: CommandRequest,
    containers: &ContainerManager,
) {
    let ending = match request {
        CommandRequest::Exec {
            container_id,
            command,
            streams,
        } => exec(&mut client, containers, &container_id, command, streams).await,
        CommandRequest::Attach {
            container_id,
            streams,
        } => attach(&mut client, containers, &container_id, streams).await,
    };
    match ending {
        Some(ending) => client.finish(&ending).await,
        None => tracing::debug!("the streaming client went away"),
    }
}

/// A writer task's queue: data waiting for the process's stdin (or the monitor's socket).
struct StdinQueue {
    sender: Option<mpsc::Sender<Vec<u8>>>,
    /// Data received from the client, waiting for room in the queue.
    pending: Option<Vec<u8>>,
}

impl StdinQueue {
    /// A queue to a task that writes into `pipe`; none without a pipe. The task ends, closing
    /// the pipe, when the queue is closed.
    fn to(pipe: Option<impl AsyncWrite + Unpin + Send + 'static>) -> Self {
        let sender = pipe.map(|mut pipe| {
            let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(STDIN_QUEUE);
            tokio::spawn(async move {
                while let Some(data) = receiver.recv().await {
                    if pipe.write_all(&data).await.is_err() {
                        return;
                    }
                }
                pipe.shutdown().await.ok();
            });
            sender
        });
        StdinQueue {
            sender,
            pending: None,
        }
    }

    /// Whether data waits for room (the client is not read meanwhile).
    fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes `data` from the client; dropped if there is no stdin.
    fn push(&mut self, data: Vec<u8>) {
        if self.sender.is_some() {
            self.pending = Some(data);
        }
    }

    /// Moves the pending data into the queue once there is room.
    async fn flush(&mut self) {
        let (Some(sender), Some(data)) = (&self.sender, self.pending.take()) else {
            return;
        };
        let writer_ended = match sender.reserve().await {
            Ok(permit) => {
                permit.send(data);
                false
            }
            Err(_) => true,
        };
        if writer_ended {
            // The process closed its stdin (or the writer failed): no more stdin.
            self.sender = None;
        }
    }

    /// Closes stdin once what is queued is written.
    fn close(&mut self) {
        self.sender = None;
        self.pending = None;
    }
}

/// Reads one chunk of `pipe` into `buf`; 0 at EOF or on an error.
async fn read_chunk(pipe: &mut Option<impl AsyncRead + Unpin>, buf: &mut [u8]) -> usize {
    match pipe {
        Some(pipe) => pipe.read(buf).await.unwrap_or(0),
        None => 0,
    }
}

/// Runs `command` in the container with the client's streams; None if the client went away
/// (the process is then killed). With a terminal, stdout is the terminal's output, stdin goes to
/// it, and resize messages resize it; runc's stderr is only its own messages.
async fn exec(
    client: &mut impl RemoteClient,
    containers: &ContainerManager,
    container_id: &str,
    command: Vec<String>,
    streams: Streams,
) -> Option<Ending> {
    let spawned = containers
        .spawn_exec(
            container_id,
            command,
            ExecStreams {
                stdin: streams.stdin,
                stdout: streams.stdout,
                // runc's own errors come on stderr: read it even when the client does not want
                // the process's, to tell why a start failed.
                stderr: true,
                tty: streams.tty,
            },
        )
        .await;
    let SpawnedExec {
        mut child,
        exec,
        terminal,
        ..
    } = match spawned {
        Ok(spawned) => spawned,
        Err(status) => return Some(Ending::Failed(status.message().to_owned())),
    };
    // The process's stdout: runc's pipe, or the terminal runc relays the process's to.
    let (mut stdin, mut stdout): (_, Option<Box<dyn AsyncRead + Unpin + Send + '_>>) =
        match &terminal {
            Some(terminal) => {
                let input = match streams.stdin.then(|| terminal.try_clone()).transpose() {
                    Ok(input) => input,
                    Err(e) => {
                        end_exec(&mut child, &exec).await.ok();
                        return Some(Ending::Failed(format!("set up the terminal's input: {e}")));
                    }
                };
                // The terminal is read even when the client does not want stdout, so that runc
                // never blocks writing to it.
                (StdinQueue::to(input), Some(Box::new(terminal)))
            }
            None => (
                StdinQueue::to(child.stdin.take()),
                child.stdout.take().map(|pipe| Box::new(pipe) as _),
            ),
        };
    let mut stderr = child.stderr.take();
    let mut stderr_head = Vec::new();
    let mut out_buf = vec![0u8; READ_CHUNK];
    let mut err_buf = vec![0u8; READ_CHUNK];
    let mut status: Option<ExitStatus> = None;
    loop {
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            () = stdin.flush(), if stdin.is_waiting() => {}
            request = client.next(), if !stdin.is_waiting() => match request {
                FromClient::Stdin(data) => stdin.push(data),
                FromClient::CloseStdin => stdin.close(),
                FromClient::Resize(size) => {
                    if let Some(terminal) = &terminal
                        && let Err(e) = resize_exec_terminal(&child, terminal, size)
                    {
                        tracing::debug!(error = %e, "resizing an exec's terminal");
                    }
                }
                FromClient::Nothing => {}
                FromClient::Gone => {
                    if let Err(e) = end_exec(&mut child, &exec).await {
                        tracing::warn!(error = %e, "ending an exec whose client went away");
                    }
                    return None;
                }
            },
            read = read_chunk(&mut stdout, &mut out_buf), if stdout.is_some() => {
                if read == 0 {
                    stdout = None;
                } else if streams.stdout && !client.send(STDOUT, &out_buf[..read]).await {
                    end_exec(&mut child, &exec).await.ok();
                    return None;
                }
            }
            read = read_chunk(&mut stderr, &mut err_buf), if stderr.is_some() => {
                if read == 0 {
                    stderr = None;
                } else {
                    let room = FAILURE_MESSAGE_LIMIT.saturating_sub(stderr_head.len());
                    stderr_head.extend_from_slice(&err_buf[..read.min(room)]);
                    if streams.stderr && !client.send(STDERR, &err_buf[..read]).await {
                        end_exec(&mut child, &exec).await.ok();
                        return None;
                    }
                }
            }
            waited = child.wait(), if status.is_none() => match waited {
                Ok(waited) => status = Some(waited),
                Err(e) => return Some(Ending::Failed(format!("wait for runc exec: {e}"))),
            },
        }
    }
    let code = status.map_or(-1, exit_code);
    if code != 0 && exec.exec_pid().is_none() {
        return Some(Ending::Failed(format!(
            "exec in container {container_id} failed: {}",
            exec_failure_message(&stderr_head)
        )));
    }
    Some(Ending::Exited(code))
}

/// Attaches the client to the container's stdio through its monitor; None if the client went
/// away (the container keeps running).
async fn attach(
    client: &mut impl RemoteClient,
    containers: &ContainerManager,
    container_id: &str,
    streams: Streams,
) -> Option<Ending> {
    let record = match containers.running(container_id) {
        Ok(record) => record,
        Err(status) => return Some(Ending::Failed(status.message().to_owned())),
    };
    let dir = record.dir.clone();
    let connected = run_blocking(move || {
        let stream = crius_runtime::monitor::connect_attach(&dir)?;
        stream
            .set_nonblocking(true)
            .map_err(crius_runtime::RuntimeError::io("set non-blocking", &dir))?;
        Ok(stream)
    })
    .await
    .and_then(|stream| {
        tokio::net::UnixStream::from_std(stream)
            .map_err(crius_runtime::RuntimeError::io("register", &record.dir))
    });
    let monitor = match connected {
        Ok(monitor) => monitor,
        Err(e) => return Some(Ending::Failed(format!("attach to {}: {e}", record.id))),
    };
    let (mut from_monitor, to_monitor) = monitor.into_split();
    let mut to_monitor = StdinQueue::to(Some(to_monitor));
    let mut decoder = FrameDecoder::new();
    loop {
        tokio::select! {
            () = to_monitor.flush(), if to_monitor.is_waiting() => {}
            request = client.next(), if !to_monitor.is_waiting() => {
                let mut frames = Vec::new();
                match request {
                    FromClient::Stdin(data) if streams.stdin => {
                        for chunk in data.chunks(MAX_PAYLOAD) {
                            encode(FrameKind::Stdin, chunk, &mut frames).ok();
                        }
                    }
                    // The container's stdin ends with the client's only for a container whose
                    // stdin is for one attach (stdin_once), and never for a terminal, as cri-o
                    // and containerd do.
                    FromClient::CloseStdin if streams.stdin && record.stdin_once && !record.tty => {
                        encode(FrameKind::CloseStdin, &[], &mut frames).ok();
                    }
                    FromClient::Resize(size) if streams.tty => {
                        encode(FrameKind::Resize, &size.encode(), &mut frames).ok();
                    }
                    FromClient::Gone => return None,
                    _ => {}
                }
                if !frames.is_empty() {
                    to_monitor.push(frames);
                }
            }
            read = from_monitor.read(decoder.unfilled()) => {
                let read = match read {
                    Ok(0) => return Some(attach_ended(&record.dir).await),
                    Ok(read) => read,
                    Err(e) => return Some(Ending::Failed(format!("read from the monitor: {e}"))),
                };
                decoder.filled(read);
                loop {
                    let frame = match decoder.next_frame() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(e) => return Some(Ending::Failed(format!("attach socket: {e}"))),
                    };
                    let (channel, wanted) = match frame.kind {
                        FrameKind::Stdout => (STDOUT, streams.stdout),
                        FrameKind::Stderr => (STDERR, streams.stderr),
                        _ => continue,
                    };
                    if wanted && !client.send(channel, frame.payload).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// How an attach session ends when the monitor closes its connection: the container's exit code
/// (the monitor writes it before it closes its clients).
async fn attach_ended(dir: &std::path::Path) -> Ending {
    let dir = dir.to_owned();
    match run_blocking(move || crius_runtime::monitor::read_exit(&dir)).await {
        Ok(Some(exit)) => Ending::Exited(exit.exit_code),
        Ok(None) => Ending::Failed("the container's monitor closed the attach connection".into()),
        Err(e) => Ending::Failed(format!("read the container's exit: {e}")),
    }
}
