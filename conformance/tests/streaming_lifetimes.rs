//! How streaming sessions end: a thousand exec, attach and port-forward sessions, over
//! WebSocket and SPDY, whose clients go away abruptly (the TCP connection closed mid-session,
//! no close message) leave nothing behind: the daemon's open fds and threads, the container
//! monitor's fds and the daemon's child processes come back to where they were, and no exec'd
//! process lives on. The idle timeout (`--stream-idle-timeout`) ends a session that passes
//! nothing, killing its process, and one whose client stopped reading, and spares one whose
//! client keeps sending.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::time::{Duration, Instant};

use crius_conformance::containers::ContainerFixture;
use crius_conformance::portforward::ForwardedConnection;
use crius_conformance::remotecommand::{RemoteCommand, STDOUT};
use crius_conformance::require_root;
use crius_conformance::spdy_portforward::SpdyPortForward;
use crius_conformance::spdy_remotecommand::{self as spdy, SpdyRemoteCommand};
use crius_conformance::spdy_upgrade;
use crius_conformance::streaming::{
    ECHO_PORT, HTTP_PORT, V5, attach_url, children, exec_streams, exec_url, open_fds, parent_of,
    port_forward_url, processes, serving_pod, sleeper, threads, wait_for_processes, with_deadline,
};
use crius_conformance::websocket_portforward::{self as ws_portforward, WebSocketPortForward};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;

/// Sessions in the abrupt run, spread evenly over the [`KINDS`].
const SESSIONS: usize = 1000;
/// Sessions under way at once.
const CONCURRENCY: usize = 16;
/// How long the run may take before the test calls it hung: the sessions take some 10 s on 2
/// cores, several times that while the suite's other tests run.
const RUN_PATIENCE: Duration = Duration::from_secs(300);
/// How long tokio's blocking pool keeps an idle thread (its default, which crius keeps).
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long the daemon's holdings must stay unchanged to count as at rest: longer than an
/// idle blocking thread lives.
const REST: Duration = Duration::from_secs(BLOCKING_KEEP_ALIVE.as_secs() + 1);
/// How long the daemon has to come to rest, and to come back to it after the run: the last
/// sessions end (an exec's end waits up to a few seconds for runc), then the blocking pool's
/// idle threads expire.
const SETTLE_PATIENCE: Duration = Duration::from_secs(BLOCKING_KEEP_ALIVE.as_secs() + 15);
/// The argument of the exec'd sleeps, which no other test uses: how they are found.
const EXEC_SLEEP: &str = "7937";

/// The sessions of the run, by what they ask for and how they travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    WebSocketExec,
    SpdyExec,
    WebSocketAttach,
    SpdyAttach,
    SpdyPortForward,
    WebSocketPortForward,
}

const KINDS: [Kind; 6] = [
    Kind::WebSocketExec,
    Kind::SpdyExec,
    Kind::WebSocketAttach,
    Kind::SpdyAttach,
    Kind::SpdyPortForward,
    Kind::WebSocketPortForward,
];

impl Kind {
    /// What a session's stdout shows once it is under way, after the client sent `ping`: the
    /// exec'd shell says it started, the attached cat echoes.
    fn sign_of_life(self) -> &'static str {
        match self {
            Kind::WebSocketExec | Kind::SpdyExec => "started",
            _ => "ping",
        }
    }
}

/// When the client goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// Right after the upgrade: over SPDY before any stream is open; the server may still be
    /// starting the process or connecting to the port.
    AfterUpgrade,
    /// With the session under way: the process runs (it said so), stdin was sent, a forwarded
    /// connection has data in flight both ways.
    MidSession,
}

/// What the sessions reach: a pod serving [`HTTP_PORT`] and [`ECHO_PORT`], and in it a
/// container running `cat` with its stdin open, which is exec'd into and attached to.
struct Targets {
    pod: String,
    container: String,
}

impl Targets {
    async fn new(fx: &mut ContainerFixture) -> Self {
        let pod = serving_pod(fx).await;
        let mut config = fx.config("cat", &["/bin/cat"]);
        // Open for every attach in turn: no client's end closes it.
        config.stdin = true;
        config.stdin_once = false;
        let container = fx.run(&pod, config).await;
        Targets { pod, container }
    }

    /// The URL of a new session of `kind`.
    async fn url(&self, fx: &mut ContainerFixture, kind: Kind) -> String {
        match kind {
            Kind::WebSocketExec | Kind::SpdyExec => {
                let script = format!("echo started && exec sleep {EXEC_SLEEP}");
                let command = vec!["/bin/sh".into(), "-c".into(), script];
                exec_url(fx, &self.container, command, true).await
            }
            Kind::WebSocketAttach | Kind::SpdyAttach => attach_url(fx, &self.container, true).await,
            Kind::SpdyPortForward => port_forward_url(fx, &self.pod, &[HTTP_PORT]).await,
            Kind::WebSocketPortForward => {
                port_forward_url(fx, &self.pod, &[HTTP_PORT, ECHO_PORT]).await
            }
        }
    }
}

/// Runs one session of `kind` at `url` until `moment`, and drops its connection.
async fn go_away_abruptly(kind: Kind, url: String, moment: Moment) {
    let early = moment == Moment::AfterUpgrade;
    match kind {
        Kind::WebSocketExec | Kind::WebSocketAttach => {
            let mut session = RemoteCommand::connect(&url, V5).await.unwrap();
            if !early {
                session.stdin(b"ping\n").await.unwrap();
                let mut stdout = Vec::new();
                while !String::from_utf8_lossy(&stdout).contains(kind.sign_of_life()) {
                    let (channel, data) = session.next().await.unwrap();
                    if channel == STDOUT {
                        stdout.extend_from_slice(&data);
                    }
                }
            }
            // No close message: dropping the session closes its TCP connection.
            drop(session);
        }
        Kind::SpdyExec | Kind::SpdyAttach if early => {
            spdy_upgrade::connect(&url, spdy::PROTOCOLS)
                .await
                .unwrap()
                .session
                .abort();
        }
        Kind::SpdyExec | Kind::SpdyAttach => {
            let streams = exec_streams(true);
            let mut session = SpdyRemoteCommand::connect(&url, spdy::PROTOCOLS, streams)
                .await
                .unwrap();
            session.stdin(b"ping\n").await.unwrap();
            let mut stdout = Vec::new();
            let mut buf = [0; 256];
            while !String::from_utf8_lossy(&stdout).contains(kind.sign_of_life()) {
                let n = session.read_stdout(&mut buf).await.unwrap();
                assert_ne!(n, 0, "stdout ended after {stdout:?}");
                stdout.extend_from_slice(&buf[..n]);
            }
            session.abort();
        }
        Kind::SpdyPortForward => {
            let forward = SpdyPortForward::connect(&url).await.unwrap();
            if !early {
                let (web, echoer) =
                    tokio::join!(forward.forward(HTTP_PORT), forward.forward(ECHO_PORT));
                put_data_in_flight(&mut web.unwrap(), &mut echoer.unwrap()).await;
            }
            forward.abort();
        }
        Kind::WebSocketPortForward => {
            let mut forward = WebSocketPortForward::connect(
                &url,
                &[HTTP_PORT, ECHO_PORT],
                ws_portforward::V4_BINARY,
            )
            .await
            .unwrap();
            if !early {
                let [web, echoer] = forward.connections.as_mut_slice() else {
                    panic!(
                        "two ports asked for, {} connections",
                        forward.connections.len()
                    );
                };
                put_data_in_flight(web, echoer).await;
            }
            forward.abort();
        }
    }
}

/// Sends `echoer` more than it reads back, then asks `web` for the pod's 3.4 MB file and reads
/// only its start: both directions of both connections hold data when the client goes away.
/// (In this order: once `web` is not read, the client reads nothing more of its session.)
async fn put_data_in_flight(web: &mut ForwardedConnection, echoer: &mut ForwardedConnection) {
    let mut start = [0; 1024];
    echoer.write_all(&[b'x'; 16 * 1024]).await.unwrap();
    echoer.read_exact(&mut start).await.unwrap();
    web.write_all(b"GET /blob HTTP/1.0\r\nHost: pod\r\n\r\n")
        .await
        .unwrap();
    web.read_exact(&mut start).await.unwrap();
    assert!(
        start.starts_with(b"HTTP/1."),
        "{:?}",
        String::from_utf8_lossy(&start)
    );
}

/// What the daemon (and the attached container's monitor) hold at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holdings {
    daemon_fds: usize,
    daemon_threads: usize,
    /// The daemon's child processes (`runc exec` while an exec runs).
    daemon_children: usize,
    monitor_fds: usize,
}

impl Holdings {
    fn of(daemon: u32, monitor: u32) -> Self {
        Holdings {
            daemon_fds: open_fds(daemon),
            daemon_threads: threads(daemon),
            daemon_children: children(daemon).len(),
            monitor_fds: open_fds(monitor),
        }
    }

    /// Whether nothing is held beyond `baseline`.
    fn within(self, baseline: Holdings) -> bool {
        self.daemon_fds <= baseline.daemon_fds
            && self.daemon_threads <= baseline.daemon_threads
            && self.daemon_children <= baseline.daemon_children
            && self.monitor_fds <= baseline.monitor_fds
    }
}

#[tokio::test]
async fn a_thousand_abruptly_dropped_sessions_leave_nothing_behind() {
    require_root!("streaming sessions");
    let mut fx = ContainerFixture::new().await;
    let targets = Targets::new(&mut fx).await;
    let daemon = fx.pods.crius.pid().unwrap();
    let container_pid = fx.info(&targets.container).await["pid"].as_i64().unwrap();
    let monitor = parent_of(i32::try_from(container_pid).unwrap()).unwrap();

    // Warm-up: a couple of sessions of each kind, one at a time, so that what the daemon
    // allocates once (buffers, lazily started parts) is in the baseline.
    for kind in KINDS.iter().chain(&KINDS) {
        let url = targets.url(&mut fx, *kind).await;
        let session = go_away_abruptly(*kind, url, Moment::MidSession);
        with_deadline(&format!("warm-up {kind:?}"), session).await;
    }
    wait_for_processes(&["sleep", EXEC_SLEEP], false).await;
    // The baseline is the daemon at rest: no session under way, and none of the blocking pool's
    // threads left idle by the warm-up (each lives [`BLOCKING_KEEP_ALIVE`] after its last
    // task). The run's idle pool threads expire the same way, so afterwards the daemon must
    // come back to exactly as many threads, not to a bound with slack: a leaked thread, or a
    // blocking task that never returns (its pool thread never idles), shows.
    let baseline = at_rest(daemon, monitor).await;
    eprintln!("baseline, at rest after the warm-up: {baseline:?}");

    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut by_kind = [0usize; KINDS.len()];
    for n in 0..SESSIONS {
        if running.len() >= CONCURRENCY {
            running.join_next().await.unwrap().unwrap();
        }
        let kind = KINDS[n % KINDS.len()];
        by_kind[n % KINDS.len()] += 1;
        // One session in four of each kind goes away right after the upgrade.
        let moment = if (n / KINDS.len()).is_multiple_of(4) {
            Moment::AfterUpgrade
        } else {
            Moment::MidSession
        };
        let url = targets.url(&mut fx, kind).await;
        running.spawn(async move {
            with_deadline(
                &format!("{kind:?} session {n}"),
                go_away_abruptly(kind, url, moment),
            )
            .await;
        });
        assert!(
            started.elapsed() < RUN_PATIENCE,
            "{n} sessions took {:?}",
            started.elapsed()
        );
    }
    while let Some(joined) = running.join_next().await {
        joined.unwrap();
    }
    let ran = started.elapsed();
    assert!(ran < RUN_PATIENCE, "{SESSIONS} sessions took {ran:?}");
    let peak = Holdings::of(daemon, monitor);

    let settle_started = Instant::now();
    let after = settled(daemon, monitor, baseline).await;
    eprintln!(
        "{SESSIONS} sessions ({:?}) in {ran:?}, {CONCURRENCY} at a time; at their end {peak:?}; \
         back to {after:?} after {:?}",
        KINDS.iter().zip(by_kind).collect::<Vec<_>>(),
        settle_started.elapsed()
    );
    let left = processes(&["sleep", EXEC_SLEEP]);
    assert!(left.is_empty(), "exec'd sleeps live on: {left:?}");
    // The container itself is untouched: its cat still echoes for an attach.
    let url = targets.url(&mut fx, Kind::WebSocketAttach).await;
    with_deadline(
        "a last attach",
        go_away_abruptly(Kind::WebSocketAttach, url, Moment::MidSession),
    )
    .await;
}

/// Polls until the daemon's holdings have not changed for [`REST`], within
/// [`SETTLE_PATIENCE`]; what it holds then.
async fn at_rest(daemon: u32, monitor: u32) -> Holdings {
    let deadline = Instant::now() + SETTLE_PATIENCE + REST;
    let mut last = Holdings::of(daemon, monitor);
    let mut since = Instant::now();
    while since.elapsed() < REST {
        assert!(
            Instant::now() < deadline,
            "the daemon did not come to rest: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Holdings::of(daemon, monitor);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// Polls until the daemon holds no more than `baseline` and no exec'd sleep is left, within
/// [`SETTLE_PATIENCE`]; what it holds then.
async fn settled(daemon: u32, monitor: u32, baseline: Holdings) -> Holdings {
    let deadline = Instant::now() + SETTLE_PATIENCE;
    loop {
        let now = Holdings::of(daemon, monitor);
        let sleeps = processes(&["sleep", EXEC_SLEEP]);
        if sleeps.is_empty() && now.within(baseline) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "after {SETTLE_PATIENCE:?} the daemon holds {now:?}, {baseline:?} before; \
             exec'd sleeps left: {sleeps:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The idle timeout of the idle test's daemon: its clock starts at the upgrade, so it must
/// leave time for runc to start the exec'd process on a loaded machine.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a silent session may last before the test calls the timeout missed.
const IDLE_PATIENCE: Duration = Duration::from_secs(30);
/// How often the sending session sends, well within the idle timeout.
const TICK: Duration = Duration::from_secs(1);

/// A daemon started with `--stream-idle-timeout` [`IDLE_TIMEOUT`], and a sleeping container.
async fn idle_timeout_fixture() -> (ContainerFixture, String) {
    let timeout = format!("--stream-idle-timeout={}s", IDLE_TIMEOUT.as_secs());
    let mut fx = ContainerFixture::with_daemon_args("", &[&timeout]).await;
    let id = sleeper(&mut fx).await;
    (fx, id)
}

/// `argv` as a command to exec.
fn command(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|arg| (*arg).to_owned()).collect()
}

#[tokio::test]
async fn the_idle_timeout_ends_a_silent_session_and_spares_one_that_sends() {
    require_root!("streaming sessions");
    let (mut fx, id) = idle_timeout_fixture().await;
    let (silent_ws, silent_spdy, sending) = (
        exec_url(&mut fx, &id, command(&["sleep", "7949"]), true).await,
        exec_url(&mut fx, &id, command(&["sleep", "7951"]), true).await,
        exec_url(&mut fx, &id, command(&["sleep", "7953"]), true).await,
    );
    // The server's idle clock starts at the upgrade, before the client has its answer.
    let connecting = Instant::now();
    let silent_ws = RemoteCommand::connect(&silent_ws, V5).await.unwrap();
    let silent_spdy = SpdyRemoteCommand::connect(&silent_spdy, spdy::PROTOCOLS, exec_streams(true))
        .await
        .unwrap();
    let mut sending = RemoteCommand::connect(&sending, V5).await.unwrap();
    let ended_in_time = |what: &str| {
        let lasted = connecting.elapsed();
        assert!(
            lasted >= IDLE_TIMEOUT && lasted < IDLE_PATIENCE,
            "{what}: the server closed the silent session after {lasted:?}"
        );
    };
    tokio::join!(
        async {
            tokio::join!(
                wait_for_processes(&["sleep", "7949"], true),
                wait_for_processes(&["sleep", "7951"], true),
                wait_for_processes(&["sleep", "7953"], true),
            )
        },
        async {
            let output = tokio::time::timeout(IDLE_PATIENCE, silent_ws.collect()).await;
            assert!(output.is_ok(), "the silent WebSocket session lives on");
            ended_in_time("WebSocket");
        },
        async {
            let output = tokio::time::timeout(IDLE_PATIENCE, silent_spdy.collect()).await;
            assert!(output.is_ok(), "the silent SPDY session lives on");
            ended_in_time("SPDY");
        },
        async {
            // Stdin every tick for three timeouts, from the start: the session stays, the
            // server sends nothing (sleep writes nothing) and does not close it.
            for _ in 0..3 * (IDLE_TIMEOUT.as_secs() / TICK.as_secs()) {
                sending.stdin(b"tick\n").await.unwrap();
                let next = tokio::time::timeout(TICK, sending.next()).await;
                assert!(next.is_err(), "the sending session got {next:?}");
            }
        },
    );
    for seconds in ["7949", "7951"] {
        wait_for_processes(&["sleep", seconds], false).await;
    }
    let spared = ["sleep", "7953"];
    assert!(
        !processes(&spared).is_empty(),
        "the sending session's sleep ended"
    );
    drop(sending);
    wait_for_processes(&spared, false).await;
}

#[tokio::test]
async fn the_idle_timeout_ends_a_session_whose_client_stopped_reading() {
    require_root!("streaming sessions");
    let (mut fx, id) = idle_timeout_fixture().await;
    // `yes` writes for ever: the server fills the connection and waits to write more, with no
    // read pending, while the client reads nothing.
    let ws_url = exec_url(&mut fx, &id, command(&["yes", "7957"]), false).await;
    let spdy_url = exec_url(&mut fx, &id, command(&["yes", "7959"]), false).await;
    let ws = RemoteCommand::connect(&ws_url, V5).await.unwrap();
    let spdy_session = SpdyRemoteCommand::connect(&spdy_url, spdy::PROTOCOLS, exec_streams(false))
        .await
        .unwrap();
    tokio::join!(
        wait_for_processes(&["yes", "7957"], true),
        wait_for_processes(&["yes", "7959"], true),
    );
    for word in ["7957", "7959"] {
        wait_for_processes(&["yes", word], false).await;
    }
    drop((ws, spdy_session));
}
