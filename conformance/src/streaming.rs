//! What the streaming tests share: the URLs that Exec, Attach and PortForward return, a pod that
//! serves ports to forward, bounded waits, and procfs readings of what a session may leave
//! behind (processes, a process's open fds and threads).

#![allow(clippy::unwrap_used)] // fixture helpers panic as the tests' failure report

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use crate::containers::ContainerFixture;
use crate::spdy_remotecommand::Streams;

/// What client-go offers over a WebSocket for remotecommand: v5, then v4.
pub const V5: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// The port the [`serving_pod`] serves files on (busybox httpd).
pub const HTTP_PORT: u16 = 8080;
/// The port the [`serving_pod`] echoes on (busybox nc running cat per connection).
pub const ECHO_PORT: u16 = 9000;
/// The lines of the served file: `seq 1 500000`, about 3.4 MB.
pub const BLOB_LINES: u32 = 500_000;
/// How long a step of a streaming test may take before the test calls it hung.
const STEP_PATIENCE: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it takes longer than a step may.
pub async fn with_deadline<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in time"))
}

/// A running container of a new pod that sleeps for an hour; its id.
pub async fn sleeper(fx: &mut ContainerFixture) -> String {
    let pod = fx.pod().await;
    let config = fx.config("sleeper", &["/bin/sleep", "3600"]);
    fx.run(&pod, config).await
}

/// The URL of an exec of `cmd` in container `id` without a terminal: stdout and stderr, stdin
/// if asked.
pub async fn exec_url(
    fx: &mut ContainerFixture,
    id: &str,
    cmd: Vec<String>,
    stdin: bool,
) -> String {
    fx.client()
        .runtime
        .exec(cri::ExecRequest {
            container_id: id.into(),
            cmd,
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url
}

/// The URL of an attach to container `id` without a terminal: stdout and stderr, stdin if asked.
pub async fn attach_url(fx: &mut ContainerFixture, id: &str, stdin: bool) -> String {
    let url = fx
        .client()
        .runtime
        .attach(cri::AttachRequest {
            container_id: id.into(),
            stdin,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.contains("/attach/"), "{url}");
    url
}

/// What an exec or attach without a terminal opens over SPDY: stdout and stderr, stdin when
/// asked.
pub fn exec_streams(stdin: bool) -> Streams {
    Streams {
        stdin,
        stdout: true,
        stderr: true,
        tty: false,
    }
}

/// The URL of a port-forward to `ports` of pod `pod`.
pub async fn port_forward_url(fx: &mut ContainerFixture, pod: &str, ports: &[u16]) -> String {
    let url = fx
        .client()
        .runtime
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: pod.into(),
            port: ports.iter().map(|&p| i32::from(p)).collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains("/portforward/"), "{url}");
    url
}

/// The file the [`serving_pod`]'s httpd serves.
pub fn blob() -> Vec<u8> {
    (1..=BLOB_LINES)
        .flat_map(|n| format!("{n}\n").into_bytes())
        .collect()
}

/// A pod whose container serves [`blob`] over HTTP on [`HTTP_PORT`] and echoes on
/// [`ECHO_PORT`]; its id, once both ports listen.
pub async fn serving_pod(fx: &mut ContainerFixture) -> String {
    let pod = fx.pod().await;
    let script = format!(
        "mkdir -p /tmp/www && seq 1 {BLOB_LINES} > /tmp/www/blob && \
         (nc -ll -p {ECHO_PORT} -e /bin/cat &) && exec httpd -f -p {HTTP_PORT} -h /tmp/www"
    );
    let config = fx.config("server", &["/bin/sh", "-c", &script]);
    let id = fx.run(&pod, config).await;
    let listening = |table: &str, port: u16| {
        table.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&format!(":{port:04X}")) && fields[3] == "0A"
        })
    };
    let deadline = Instant::now() + STEP_PATIENCE;
    loop {
        let table = fx
            .client()
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec![
                    "cat".into(),
                    "/proc/net/tcp".into(),
                    "/proc/net/tcp6".into(),
                ],
                timeout: 10,
            })
            .await
            .unwrap()
            .into_inner()
            .stdout;
        let table = String::from_utf8_lossy(&table);
        if listening(&table, HTTP_PORT) && listening(&table, ECHO_PORT) {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "the pod never listened:\n{table}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pids whose arguments are exactly `argv`.
pub fn processes(argv: &[&str]) -> Vec<i32> {
    let cmdline: Vec<u8> = argv
        .iter()
        .flat_map(|arg| [arg.as_bytes(), b"\0"])
        .flatten()
        .copied()
        .collect();
    pids()
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline))
        .collect()
}

/// Waits (bounded) until a process whose arguments are exactly `argv` runs (`running`), or
/// until none does.
pub async fn wait_for_processes(argv: &[&str], running: bool) {
    let deadline = Instant::now() + STEP_PATIENCE;
    while processes(argv).is_empty() == running {
        assert!(
            Instant::now() < deadline,
            "{argv:?} still {} after {STEP_PATIENCE:?}",
            if running { "does not run" } else { "runs" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pids whose parent is `parent`.
pub fn children(parent: u32) -> Vec<i32> {
    pids()
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The parent of process `pid`, from `/proc/<pid>/stat`; None once it is gone.
pub fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold anything: the fields follow its last `)`.
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

/// The processes there are now.
fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
}

/// How many fds process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// How many threads process `pid` has.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// The two transports of remotecommand, for tests that must pass the same over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket, offering [`V5`].
    WebSocket,
    /// SPDY/3.1, offering client-go's versions.
    Spdy,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::WebSocket, Transport::Spdy];

    /// Opens `url` with `streams` (the ones the Exec or Attach request asked for).
    pub async fn connect(self, url: &str, streams: Streams) -> Session {
        match self {
            Transport::WebSocket => Session::WebSocket(
                crate::remotecommand::RemoteCommand::connect(url, V5)
                    .await
                    .unwrap(),
            ),
            Transport::Spdy => Session::Spdy(
                crate::spdy_remotecommand::SpdyRemoteCommand::connect(
                    url,
                    crate::spdy_remotecommand::PROTOCOLS,
                    streams,
                )
                .await
                .unwrap(),
            ),
        }
    }
}

/// A remotecommand session over either transport.
pub enum Session {
    WebSocket(crate::remotecommand::RemoteCommand),
    Spdy(crate::spdy_remotecommand::SpdyRemoteCommand),
}

impl Session {
    pub async fn stdin(&mut self, data: &[u8]) {
        match self {
            Session::WebSocket(session) => session.stdin(data).await.unwrap(),
            Session::Spdy(session) => session.stdin(data).await.unwrap(),
        }
    }

    /// Ends the session's stdin (WebSocket v5's close message, SPDY's half-close).
    pub async fn close_stdin(&mut self) {
        match self {
            Session::WebSocket(session) => session.close_stdin().await.unwrap(),
            Session::Spdy(session) => session.close_stdin().await.unwrap(),
        }
    }

    /// Reads stdout until `len` bytes came; what came.
    pub async fn read_stdout(&mut self, len: usize) -> Vec<u8> {
        let mut stdout = Vec::new();
        with_deadline("stdout", async {
            while stdout.len() < len {
                match self {
                    Session::WebSocket(session) => {
                        let (channel, data) = session.next().await.unwrap();
                        if channel == crate::remotecommand::STDOUT {
                            stdout.extend_from_slice(&data);
                        }
                    }
                    Session::Spdy(session) => {
                        let mut buf = [0; 4096];
                        let read = session.read_stdout(&mut buf).await.unwrap();
                        assert_ne!(read, 0, "stdout ended after {stdout:?}");
                        stdout.extend_from_slice(&buf[..read]);
                    }
                }
            }
        })
        .await;
        stdout
    }

    /// Everything until the server ends the session.
    pub async fn collect(self) -> crate::remotecommand::Output {
        match self {
            Session::WebSocket(session) => {
                with_deadline("the session's end", session.collect()).await
            }
            Session::Spdy(session) => with_deadline("the session's end", session.collect()).await,
        }
    }
}
