//! Port-forward over SPDY (`portforward.k8s.io`, what `kubectl port-forward` and crictl speak by
//! default) on crius and on containerd 1.6 from Debian, with the same image (static busybox,
//! pushed to a loopback registry and pulled by each runtime) in a pod of kubelet's namespaces on
//! the same CNI conflist. The pod's container serves a fixed payload on one port and 4 KiB on
//! another (busybox `nc -ll -e cat`, a process per connection).
//!
//! - Throughput: each round asks PortForward for a URL, opens the SPDY session, forwards one
//!   connection to the payload's port, reads the payload whole, ends the connection and waits
//!   for the server's end of it (an empty error stream); MiB/s over the whole round.
//! - Connections: each round opens one session and forwards many short connections one after
//!   another on it, each reading the 4 KiB whole; connections per second.
//!
//! Both daemons run at once and the rounds are interleaved (the order turns each round), after
//! one untimed round, so that what else the machine does weighs on both alike.
//!
//! Run: `cargo build --release --bins && cargo bench -p crius-conformance --bench port_forward`
//! (`BENCH_PF_MIB` sets the payload, 64 MiB by default; `BENCH_PF_ROUNDS` the timed throughput
//! rounds, 10; `BENCH_PF_CONNECTIONS` the connections of a connection round, 200;
//! `BENCH_PF_CONNECTION_ROUNDS` those rounds, 3; `BENCH_PF_WINDOW_KIB` the client's receive
//! window per stream, 16 MiB, see [`DEFAULT_WINDOW_KIB`]; 64 is the SPDY default).

#![allow(clippy::print_stdout)] // the report on stdout is this program's output

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crius_conformance::bench::{
    RunningContainer, SideBySide, count_from_env, remove_pod, report_rates, run_container,
};
use crius_conformance::client::CriClient;
use crius_conformance::kubelet::{CALL_TIMEOUT, bounded};
use crius_conformance::spdy_portforward::SpdyPortForward;
use crius_spdy::SessionConfig;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use k8s_cri::v1 as cri;
use tokio::io::AsyncReadExt as _;

const BRIDGE: &str = "criusbench3";
const SUBNET: &str = "10.234.0.0/16";
/// Every cgroup this benchmark makes, in each v1 hierarchy.
const CGROUP_ROOT: &str = "crius-bench/port-forward";
const POD_NAME: &str = "port-forward";
/// The port that serves the payload, and the one that serves [`SMALL_BYTES`].
const PAYLOAD_PORT: u16 = 8000;
const SMALL_PORT: u16 = 8001;
/// What a connection of a connection round reads.
const SMALL_BYTES: usize = 4096;
const MIB: usize = 1024 * 1024;
/// Untimed rounds first: the daemons' first session, the pod's page cache.
const WARM_UP: usize = 1;
/// How long the pod may take to serve both ports.
const READY_PATIENCE: Duration = Duration::from_secs(30);
/// The client's receive window per stream, in KiB. client-go's spdystream keeps no window (it
/// reads as TCP delivers, and ignores ours): a window this large stands for it. crius's server
/// keeps the window a client announces; containerd's ignores it.
const DEFAULT_WINDOW_KIB: usize = 16 * 1024;
/// The size of the client's reads.
const READ_BUFFER: usize = 64 * 1024;

/// The container's command: writes the payloads, then serves each on its port, a `cat` per
/// connection.
fn server_command(payload_bytes: usize) -> Vec<String> {
    let script = format!(
        "head -c {payload_bytes} /dev/zero > /payload && head -c {SMALL_BYTES} /dev/zero > /small \
         && (nc -ll -p {PAYLOAD_PORT} -e cat /payload &) \
         && exec nc -ll -p {SMALL_PORT} -e cat /small"
    );
    ["/bin/sh", "-c", &script].map(String::from).to_vec()
}

/// A runtime under test, with its serving pod.
struct Subject {
    name: &'static str,
    client: CriClient,
    running: RunningContainer,
    /// The client's SPDY session: its receive window.
    session_config: SessionConfig,
}

impl Subject {
    /// Asks PortForward for the pod's URL and opens a SPDY session on it.
    async fn session(&mut self) -> anyhow::Result<SpdyPortForward> {
        let url = bounded(
            "PortForward",
            self.client.runtime.port_forward(cri::PortForwardRequest {
                pod_sandbox_id: self.running.pod_id.clone(),
                port: vec![i32::from(PAYLOAD_PORT), i32::from(SMALL_PORT)],
            }),
        )
        .await?
        .url;
        SpdyPortForward::connect_with(&url, self.session_config)
            .await
            .with_context(|| format!("open {url}"))
    }
}

/// Forwards a connection to `port` and reads `expected` bytes from it; then ends it as client-go
/// does once its local connection is done (the data stream closed, or reset if the server has
/// not ended it yet) and waits for the server to end the error stream, which must stay empty.
/// (containerd ends a forward once both directions have, or a second after the first; crius
/// once the pod's output has.)
async fn fetch(forward: &SpdyPortForward, port: u16, expected: usize) -> anyhow::Result<()> {
    let mut connection = forward.forward(port).await?;
    let mut buf = vec![0; READ_BUFFER.min(expected)];
    let mut read = 0;
    while read < expected {
        let room = buf.len().min(expected - read);
        match connection.read(&mut buf[..room]).await {
            Ok(0) => bail!("port {port} ended after {read} bytes, not {expected}"),
            Ok(n) => read += n,
            Err(e) => bail!("reading port {port} after {read} bytes: {e}"),
        }
    }
    if let Some(message) = connection.error_message().await? {
        bail!("port {port}: {message}");
    }
    Ok(())
}

/// One throughput round: PortForward, the session, the payload read whole; timed.
async fn time_payload(subject: &mut Subject, payload_bytes: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let forward = subject.session().await?;
    fetch(&forward, PAYLOAD_PORT, payload_bytes).await?;
    Ok(started.elapsed())
}

/// One connection round: on one session, `connections` connections one after another; timed
/// from the first connection to the end of the last.
async fn time_connections(subject: &mut Subject, connections: usize) -> anyhow::Result<Duration> {
    let forward = subject.session().await?;
    let started = Instant::now();
    for _ in 0..connections {
        fetch(&forward, SMALL_PORT, SMALL_BYTES).await?;
    }
    Ok(started.elapsed())
}

/// Waits until the pod serves both ports whole.
async fn wait_until_serving(subject: &mut Subject, payload_bytes: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_PATIENCE;
    for (port, expected) in [(SMALL_PORT, SMALL_BYTES), (PAYLOAD_PORT, payload_bytes)] {
        loop {
            let served = match subject.session().await {
                Ok(forward) => fetch(&forward, port, expected).await,
                Err(e) => Err(e),
            };
            match served {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!(
                        "{}'s pod did not serve port {port} within {READY_PATIENCE:?}",
                        subject.name
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// Each runtime's timed rounds.
#[derive(Default)]
struct Times {
    crius: Vec<Duration>,
    containerd: Vec<Duration>,
}

/// [`WARM_UP`] untimed rounds, then `rounds` timed ones: `measure` on each runtime, in an order
/// that turns each round; each bounded by [`CALL_TIMEOUT`].
async fn interleaved(
    subjects: &mut [&mut Subject; 2],
    rounds: usize,
    mut measure: impl for<'a> FnMut(&'a mut Subject) -> BoxFuture<'a, anyhow::Result<Duration>>,
) -> anyhow::Result<Times> {
    let mut times = Times::default();
    for round in 0..WARM_UP + rounds {
        let mut took = [Duration::ZERO; 2];
        for turn in 0..2 {
            let which = (round + turn) % 2;
            let subject = &mut *subjects[which];
            let name = subject.name;
            took[which] = match tokio::time::timeout(CALL_TIMEOUT, measure(subject)).await {
                Ok(measured) => measured.with_context(|| format!("{name}, round {round}"))?,
                Err(_) => bail!("{name}, round {round}: not done within {CALL_TIMEOUT:?}"),
            };
        }
        if round >= WARM_UP {
            times.crius.push(took[0]);
            times.containerd.push(took[1]);
        }
    }
    Ok(times)
}

async fn subject(
    name: &'static str,
    mut client: CriClient,
    pod: cri::PodSandboxConfig,
    image: &str,
    payload_bytes: usize,
    session_config: SessionConfig,
) -> anyhow::Result<Subject> {
    let command = server_command(payload_bytes);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let running = run_container(&mut client, pod, image, &command).await?;
    Ok(Subject {
        name,
        client,
        running,
        session_config,
    })
}

/// Both measurements, once both pods serve.
async fn measure(
    mut subjects: [&mut Subject; 2],
    payload_bytes: usize,
    rounds: usize,
    connections: usize,
    connection_rounds: usize,
) -> anyhow::Result<(Times, Times)> {
    for subject in subjects.iter_mut() {
        wait_until_serving(subject, payload_bytes).await?;
    }
    let throughput = interleaved(&mut subjects, rounds, |subject| {
        time_payload(subject, payload_bytes).boxed()
    })
    .await
    .context("throughput")?;
    let connection_times = interleaved(&mut subjects, connection_rounds, |subject| {
        time_connections(subject, connections).boxed()
    })
    .await
    .context("connections")?;
    Ok((throughput, connection_times))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let payload_mib = count_from_env("BENCH_PF_MIB", 64).max(1);
    let payload_bytes = payload_mib * MIB;
    let rounds = count_from_env("BENCH_PF_ROUNDS", 10).max(1);
    let connections = count_from_env("BENCH_PF_CONNECTIONS", 200).max(1);
    let connection_rounds = count_from_env("BENCH_PF_CONNECTION_ROUNDS", 3).max(1);
    let window_kib = count_from_env("BENCH_PF_WINDOW_KIB", DEFAULT_WINDOW_KIB);
    let session_config = SessionConfig {
        initial_window: u32::try_from(window_kib * 1024).unwrap_or(u32::MAX),
        ..SessionConfig::default()
    };

    let both = SideBySide::start(BRIDGE, SUBNET, CGROUP_ROOT).await?;
    let mut on_crius = subject(
        "crius",
        both.crius.client().await?,
        both.pod_config(POD_NAME, "crius")?,
        &both.image,
        payload_bytes,
        session_config,
    )
    .await;
    let mut on_containerd = subject(
        "containerd",
        both.containerd.client().await?,
        both.pod_config(POD_NAME, "containerd")?,
        &both.image,
        payload_bytes,
        session_config,
    )
    .await;
    let times = match (&mut on_crius, &mut on_containerd) {
        (Ok(crius), Ok(containerd)) => {
            measure(
                [crius, containerd],
                payload_bytes,
                rounds,
                connections,
                connection_rounds,
            )
            .await
        }
        _ => Err(anyhow::anyhow!("a runtime could not run the pod")),
    };
    for subject in [&mut on_crius, &mut on_containerd].into_iter().flatten() {
        remove_pod(&mut subject.client, &subject.running.pod_id).await?;
    }
    both.tear_down();
    on_crius.context("crius")?;
    on_containerd.context("containerd")?;
    let (throughput, connection_times) = times?;

    println!(
        "Port-forward over SPDY from a busybox pod (nc -e cat), interleaved, after {WARM_UP} \
         untimed round; the client's window {} KiB per stream",
        session_config.initial_window / 1024
    );
    print!(
        "{}",
        report_rates(
            &format!(
                "{payload_mib} MiB through one forwarded connection (PortForward, session, \
                 connection, read to the end), {rounds} rounds"
            ),
            payload_mib as f64,
            "MiB",
            &throughput.crius,
            "containerd",
            &throughput.containerd,
        )
    );
    print!(
        "{}",
        report_rates(
            &format!(
                "{connections} connections one after another on one session, {SMALL_BYTES} bytes \
                 each, {connection_rounds} rounds"
            ),
            connections as f64,
            "conn",
            &connection_times.crius,
            "containerd",
            &connection_times.containerd,
        )
    );
    Ok(())
}
