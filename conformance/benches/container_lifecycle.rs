//! Container lifecycle: CreateContainer, StartContainer, StopContainer and RemoveContainer for
//! 50 containers, each in a pod of its own created before the clock starts, on crius and on
//! containerd 1.6 from Debian, in the same run, with the same image (static busybox, pushed to a
//! loopback registry and pulled by each runtime) and the same CNI conflist (bridge + portmap);
//! the floor no runtime can beat, `runc create`, `runc start` and `runc delete -f` of a plain
//! bundle on the same busybox rootfs (a directory, no overlay); and what 20 pods with one running
//! container each cost in memory: the daemon's VmRSS, the RSS, PSS and USS of the per-container
//! processes (`crius-monitor`; `containerd-shim-runc-v2`, which serves a whole pod) and the drop
//! of the node's MemAvailable, per pod.
//!
//! MemAvailable moves with everything else the machine does, so the memory measurement runs in
//! rounds (their median is reported), each after a few idle seconds that show the drift; and
//! beside it an "accounted" cost per pod that other work cannot disturb: the growth of the pods'
//! memory cgroups, plus the per-container processes' PSS, plus the daemon's RSS growth.
//!
//! The two runtimes run one after the other, each with its own daemon (crius at its default log
//! level, info); everything one leaves (pods, containers, cgroups under
//! `/crius-bench/container-lifecycle`, mounts) is removed before the next starts. The containers
//! run `/bin/busybox sleep 3600` and are stopped with timeout 0, which both runtimes turn into
//! SIGKILL at once (sleep, PID 1 of its PID namespace, would ignore SIGTERM).
//!
//! Run: `cargo build --release --bins && cargo bench -p crius-conformance --bench container_lifecycle`
//! (`BENCH_CONTAINERS` sets the number of timed containers, 50 by default; `BENCH_MEMORY_PODS`
//! the pods of a memory round, 20 by default; `BENCH_MEMORY_ROUNDS` the rounds, 3 by default).

#![allow(clippy::print_stdout)] // the report on stdout is this program's output
#![allow(clippy::print_stderr)] // a runtime's failure and its log go to stderr

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crius_conformance::bench::{
    self, bridge_network, count_from_env, median, percentile, push_pause_image, remove_cgroup_tree,
    remove_pod, run_pod, start_container,
};
use crius_conformance::client::CriClient;
use crius_conformance::containerd::Containerd;
use crius_conformance::daemon::{Crius, CriusPaths};
use crius_conformance::image::{OciImage, busybox_image};
use crius_conformance::kubelet::{self, CALL_TIMEOUT, bounded};
use crius_conformance::memory::{ProcessMemory, Procfs};
use crius_conformance::registry::TestRegistry;
use k8s_cri::v1 as cri;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BRIDGE: &str = "criusbench1";
const SUBNET: &str = "10.232.0.0/16";
/// Every cgroup this benchmark makes or has made, in each v1 hierarchy.
const CGROUP_ROOT: &str = "crius-bench/container-lifecycle";
const RUNC: &str = "/usr/sbin/runc";
/// What each container runs.
const COMMAND: [&str; 3] = ["/bin/busybox", "sleep", "3600"];
/// StopContainer's timeout: none, SIGKILL at once.
const STOP_TIMEOUT_SECONDS: i64 = 0;
const CRIUS_MONITOR: &str = "crius-monitor";
const CONTAINERD_SHIM: &str = "containerd-shim-runc-v2";
/// How long the per-container processes of removed containers may take to exit.
const EXIT_PATIENCE: Duration = Duration::from_secs(10);
/// The pause between the last container start and the memory readings.
const SETTLE: Duration = Duration::from_secs(2);
/// How long MemAvailable is watched with nothing started, to show the noise of the machine.
const IDLE_WINDOW: Duration = Duration::from_secs(3);
/// MemAvailable readings per measurement (their median is taken), and the gap between them.
const MEMINFO_SAMPLES: usize = 5;
const MEMINFO_GAP: Duration = Duration::from_millis(100);
/// Lines of a failed runtime's log shown on stderr.
const LOG_TAIL_LINES: usize = 60;

/// One runtime under test, as the benchmark drives it.
struct Subject {
    name: &'static str,
    daemon_pid: u32,
    /// The process each container gets on the host, parent of its init.
    per_container_executable: &'static str,
    client: CriClient,
}

/// The pods and containers a runtime holds for this benchmark right now.
#[derive(Default)]
struct Created {
    pods: Vec<String>,
    containers: Vec<String>,
}

impl Created {
    fn forget_container(&mut self, id: &str) {
        self.containers.retain(|c| c != id);
    }

    /// Stops and removes the pods, which hold no containers any more.
    async fn remove_pods(&mut self, client: &mut CriClient) -> anyhow::Result<()> {
        for id in self.pods.clone() {
            remove_pod(client, &id).await?;
            self.pods.retain(|p| *p != id);
        }
        Ok(())
    }

    /// Stops and removes what is left, best effort: for a run that failed half way.
    async fn remove_all(&mut self, client: &mut CriClient) {
        for id in std::mem::take(&mut self.containers) {
            stop_container(client, &id).await.ok();
            remove_container(client, &id).await.ok();
        }
        for id in std::mem::take(&mut self.pods) {
            remove_pod(client, &id).await.ok();
        }
    }
}

#[derive(Default)]
struct LifecycleTimes {
    create: Vec<Duration>,
    start: Vec<Duration>,
    create_start: Vec<Duration>,
    stop: Vec<Duration>,
    remove: Vec<Duration>,
}

struct MemoryFigures {
    pods: usize,
    daemon_rss_bytes: u64,
    /// The daemon's VmRSS with the pods running minus before them.
    daemon_rss_growth_bytes: i64,
    per_container_processes: usize,
    per_container_total: ProcessMemory,
    /// MemAvailable before the pods minus after them (negative if it grew).
    mem_available_drop_bytes: i64,
    /// MemAvailable's drop over [`IDLE_WINDOW`] with nothing started, just before.
    idle_drift_bytes: i64,
    /// How much the memory cgroups of the pods (their containers, and containerd's pause) are
    /// charged with the pods running, minus before them.
    pod_cgroups_growth_bytes: i64,
    /// Per-container processes still running [`EXIT_PATIENCE`] after their pods were removed.
    left_running: usize,
}

/// A per-container process's average, in bytes.
struct AverageMemory {
    rss: f64,
    pss: f64,
    uss: f64,
}

impl MemoryFigures {
    fn per_container(&self) -> AverageMemory {
        let processes = self.per_container_processes.max(1) as f64;
        AverageMemory {
            rss: self.per_container_total.rss_bytes as f64 / processes,
            pss: self.per_container_total.pss_bytes as f64 / processes,
            uss: self.per_container_total.uss_bytes as f64 / processes,
        }
    }

    fn mem_available_drop_per_pod(&self) -> f64 {
        self.mem_available_drop_bytes as f64 / self.pods.max(1) as f64
    }

    /// What the pods cost where it can be attributed without the noise of other work on the
    /// machine: their cgroups' growth, the per-container processes' PSS and the daemon's growth;
    /// per pod. Kernel memory charged to no pod cgroup (network namespaces, veths) is missing.
    fn accounted_per_pod(&self) -> f64 {
        (self.pod_cgroups_growth_bytes as f64
            + self.per_container_total.pss_bytes as f64
            + self.daemon_rss_growth_bytes as f64)
            / self.pods.max(1) as f64
    }
}

/// The medians over the memory rounds, in bytes.
struct MemorySummary {
    rss: f64,
    pss: f64,
    uss: f64,
    mem_available_drop_per_pod: f64,
    accounted_per_pod: f64,
}

impl MemorySummary {
    fn of(rounds: &[MemoryFigures]) -> Self {
        fn median_of(rounds: &[MemoryFigures], value: impl Fn(&MemoryFigures) -> f64) -> f64 {
            let mut values: Vec<f64> = rounds.iter().map(value).collect();
            values.sort_by(f64::total_cmp);
            match values.len() {
                0 => f64::NAN,
                n if n % 2 == 1 => values[n / 2],
                n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
            }
        }
        MemorySummary {
            rss: median_of(rounds, |r| r.per_container().rss),
            pss: median_of(rounds, |r| r.per_container().pss),
            uss: median_of(rounds, |r| r.per_container().uss),
            mem_available_drop_per_pod: median_of(
                rounds,
                MemoryFigures::mem_available_drop_per_pod,
            ),
            accounted_per_pod: median_of(rounds, MemoryFigures::accounted_per_pod),
        }
    }
}

struct Measurements {
    lifecycle: LifecycleTimes,
    /// One per round of the memory measurement.
    memory: Vec<MemoryFigures>,
}

/// How much of everything: containers timed, pods per memory round, rounds.
#[derive(Clone, Copy)]
struct Plan {
    containers: usize,
    memory_pods: usize,
    memory_rounds: usize,
}

#[derive(Default)]
struct FloorTimes {
    create: Vec<Duration>,
    start: Vec<Duration>,
    delete: Vec<Duration>,
}

/// The resources kubelet gives a BestEffort pod's container.
fn best_effort_resources() -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_shares: 2,
        oom_score_adj: 1000,
        ..Default::default()
    }
}

/// CreateContainer of the measured container (busybox sleeping, best-effort resources).
async fn create_container(
    client: &mut CriClient,
    pod_id: &str,
    pod: &cri::PodSandboxConfig,
    image_ref: &str,
) -> anyhow::Result<String> {
    let config = kubelet::container_config(image_ref, &COMMAND, Some(best_effort_resources()));
    bench::create_container(client, pod_id, pod, config).await
}

/// Fails unless the runtime reports the container in `state`: a call that returned early would
/// make its time meaningless.
async fn expect_state(
    client: &mut CriClient,
    id: &str,
    state: cri::ContainerState,
) -> anyhow::Result<()> {
    let status = bounded(
        "ContainerStatus",
        client
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            }),
    )
    .await?
    .status
    .context("ContainerStatus without a status")?;
    if status.state != state as i32 {
        bail!(
            "container {id} is {:?}, not {state:?}",
            cri::ContainerState::try_from(status.state)
        );
    }
    Ok(())
}

async fn stop_container(client: &mut CriClient, id: &str) -> anyhow::Result<()> {
    bounded(
        "StopContainer",
        client.runtime.stop_container(cri::StopContainerRequest {
            container_id: id.to_string(),
            timeout: STOP_TIMEOUT_SECONDS,
        }),
    )
    .await?;
    Ok(())
}

async fn remove_container(client: &mut CriClient, id: &str) -> anyhow::Result<()> {
    bounded(
        "RemoveContainer",
        client
            .runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.to_string(),
            }),
    )
    .await?;
    Ok(())
}

/// Creates `containers` pods untimed, then times Create and Start of one container in each, one
/// after another, then Stop and Remove of each; removes the pods.
async fn time_lifecycle(
    subject: &mut Subject,
    created: &mut Created,
    image_ref: &str,
    logs: &Path,
    containers: usize,
) -> anyhow::Result<LifecycleTimes> {
    let client = &mut subject.client;
    let mut pods = Vec::with_capacity(containers);
    for n in 0..containers {
        let config = {
            let name = format!("lifecycle-{n}");
            kubelet::pod_config(
                &name,
                &logs.join(subject.name).join(&name),
                format!("/{CGROUP_ROOT}/{}-{name}", subject.name),
            )?
        };
        let id = run_pod(client, config.clone()).await?;
        created.pods.push(id.clone());
        pods.push((id, config));
    }
    let mut times = LifecycleTimes::default();
    for (pod_id, config) in &pods {
        let started = Instant::now();
        let id = create_container(client, pod_id, config, image_ref).await?;
        let create = started.elapsed();
        created.containers.push(id.clone());
        let started = Instant::now();
        start_container(client, &id).await?;
        let start = started.elapsed();
        expect_state(client, &id, cri::ContainerState::ContainerRunning).await?;
        times.create.push(create);
        times.start.push(start);
        times.create_start.push(create + start);
    }
    for id in created.containers.clone() {
        let started = Instant::now();
        stop_container(client, &id).await?;
        times.stop.push(started.elapsed());
        expect_state(client, &id, cri::ContainerState::ContainerExited).await?;
        let started = Instant::now();
        remove_container(client, &id).await?;
        times.remove.push(started.elapsed());
        created.forget_container(&id);
    }
    created.remove_pods(client).await?;
    Ok(times)
}

/// MemAvailable, the median of a few readings.
async fn mem_available(proc: &Procfs) -> anyhow::Result<u64> {
    let mut readings = Vec::with_capacity(MEMINFO_SAMPLES);
    for _ in 0..MEMINFO_SAMPLES {
        readings.push(proc.mem_available_bytes()?);
        tokio::time::sleep(MEMINFO_GAP).await;
    }
    readings.sort_unstable();
    Ok(readings[readings.len() / 2])
}

fn signed_difference(before: u64, after: u64) -> i64 {
    i64::try_from(i128::from(before) - i128::from(after)).unwrap_or(i64::MAX)
}

/// Starts `pods` pods with one running container each and reads what they cost; removes them.
async fn measure_memory(
    subject: &mut Subject,
    created: &mut Created,
    image_ref: &str,
    logs: &Path,
    pods: usize,
) -> anyhow::Result<MemoryFigures> {
    let proc = Procfs::host();
    let idle_start = mem_available(&proc).await?;
    tokio::time::sleep(IDLE_WINDOW).await;
    let before = mem_available(&proc).await?;
    let daemon_rss_before = proc.vm_rss_bytes(subject.daemon_pid)?;
    let pod_cgroups_before = pod_cgroups_memory_usage()?;
    let client = &mut subject.client;
    for n in 0..pods {
        let config = {
            let name = format!("memory-{n}");
            kubelet::pod_config(
                &name,
                &logs.join(subject.name).join(&name),
                format!("/{CGROUP_ROOT}/{}-{name}", subject.name),
            )?
        };
        let pod_id = run_pod(client, config.clone()).await?;
        created.pods.push(pod_id.clone());
        let id = create_container(client, &pod_id, &config, image_ref).await?;
        created.containers.push(id.clone());
        start_container(client, &id).await?;
        expect_state(client, &id, cri::ContainerState::ContainerRunning).await?;
    }
    tokio::time::sleep(SETTLE).await;
    let after = mem_available(&proc).await?;
    let daemon_rss_bytes = proc.vm_rss_bytes(subject.daemon_pid)?;
    let pod_cgroups_after = pod_cgroups_memory_usage()?;
    let processes = per_container_processes(&proc, subject.per_container_executable);
    let mut per_container_total = ProcessMemory::default();
    for pid in &processes {
        let memory = proc.memory(*pid)?;
        per_container_total.rss_bytes += memory.rss_bytes;
        per_container_total.pss_bytes += memory.pss_bytes;
        per_container_total.uss_bytes += memory.uss_bytes;
    }
    for id in created.containers.clone() {
        stop_container(client, &id).await?;
        remove_container(client, &id).await?;
        created.forget_container(&id);
    }
    created.remove_pods(client).await?;
    let left_running = wait_for_exits(&proc, &processes, subject.per_container_executable).await;
    Ok(MemoryFigures {
        pods,
        daemon_rss_bytes,
        daemon_rss_growth_bytes: signed_difference(daemon_rss_bytes, daemon_rss_before),
        per_container_processes: processes.len(),
        per_container_total,
        mem_available_drop_bytes: signed_difference(before, after),
        idle_drift_bytes: signed_difference(idle_start, before),
        pod_cgroups_growth_bytes: signed_difference(pod_cgroups_after, pod_cgroups_before),
        left_running: left_running.len(),
    })
}

/// What the v1 memory cgroup holding every pod of this benchmark is charged with (the pages
/// and kernel objects of the processes in it and below), 0 before it exists.
fn pod_cgroups_memory_usage() -> anyhow::Result<u64> {
    let path = Path::new("/sys/fs/cgroup/memory")
        .join(CGROUP_ROOT)
        .join("memory.usage_in_bytes");
    match std::fs::read_to_string(&path) {
        Ok(usage) => usage
            .trim()
            .parse()
            .with_context(|| format!("{}: {usage:?}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// The directories of this benchmark's cgroup tree, one per v1 hierarchy that has it.
fn cgroup_roots() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|hierarchy| hierarchy.path().join(CGROUP_ROOT))
        .filter(|root| root.is_dir())
        .collect()
}

/// Every process in `dir` and the cgroups below it.
fn cgroup_members(dir: &Path, members: &mut BTreeSet<u32>) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        members.extend(
            procs
                .lines()
                .filter_map(|line| line.trim().parse::<u32>().ok()),
        );
    }
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if child.file_type().is_ok_and(|t| t.is_dir()) {
            cgroup_members(&child.path(), members);
        }
    }
}

/// The processes running `executable` that are in this benchmark's cgroups or parents of a
/// process there: the container monitors (or shims) of the containers running now.
fn per_container_processes(proc: &Procfs, executable: &str) -> Vec<u32> {
    let mut members = BTreeSet::new();
    for root in cgroup_roots() {
        cgroup_members(&root, &mut members);
    }
    let candidates: BTreeSet<u32> = members
        .iter()
        .flat_map(|pid| [Some(*pid), proc.parent(*pid).ok()])
        .flatten()
        .collect();
    candidates
        .into_iter()
        .filter(|pid| {
            proc.executable_name(*pid)
                .is_ok_and(|name| name == executable)
        })
        .collect()
}

/// Waits (up to [`EXIT_PATIENCE`]) until none of `pids` runs `executable` any more; returns
/// those that still do.
async fn wait_for_exits(proc: &Procfs, pids: &[u32], executable: &str) -> Vec<u32> {
    let deadline = Instant::now() + EXIT_PATIENCE;
    loop {
        let running: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| {
                proc.executable_name(*pid)
                    .is_ok_and(|name| name == executable)
            })
            .collect();
        if running.is_empty() || Instant::now() > deadline {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill_process(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        kill(Pid::from_raw(pid), Signal::SIGKILL).ok();
    }
}

/// After a runtime's daemon is gone: kills what it left in this benchmark's cgroups (and the
/// monitors or shims above them), waits for the cgroups to empty, removes them. Returns how many
/// processes it had to kill.
async fn clear_cgroups(per_container_executable: &str) -> usize {
    let proc = Procfs::host();
    let mut killed = 0;
    for pid in per_container_processes(&proc, per_container_executable) {
        kill_process(pid);
        killed += 1;
    }
    let deadline = Instant::now() + EXIT_PATIENCE;
    loop {
        let mut members = BTreeSet::new();
        for root in cgroup_roots() {
            cgroup_members(&root, &mut members);
        }
        if members.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in members {
            kill_process(pid);
            killed += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    remove_cgroup_tree(CGROUP_ROOT);
    killed
}

/// Lazily unmounts everything mounted below `dir` (deepest first): what a killed daemon left.
fn unmount_below(dir: &Path) -> usize {
    let root = format!("{}/", dir.display());
    let mut mount_points: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|mount_point| mount_point.starts_with(&root))
        .map(str::to_string)
        .collect();
    mount_points.sort_by_key(|mount_point| std::cmp::Reverse(mount_point.len()));
    for mount_point in &mount_points {
        nix::mount::umount2(mount_point.as_str(), nix::mount::MntFlags::MNT_DETACH).ok();
    }
    mount_points.len()
}

/// Pulls the image, times the lifecycle, measures memory; whatever happens, removes what the
/// runtime still holds.
async fn measure(
    subject: &mut Subject,
    image: &str,
    logs: &Path,
    plan: Plan,
) -> anyhow::Result<Measurements> {
    let image_ref = kubelet::pull(&mut subject.client, image).await?;
    let mut created = Created::default();
    let measured = async {
        let lifecycle =
            time_lifecycle(subject, &mut created, &image_ref, logs, plan.containers).await?;
        let mut memory = Vec::with_capacity(plan.memory_rounds);
        for round in 0..plan.memory_rounds {
            let logs = logs.join(format!("round-{round}"));
            memory.push(
                measure_memory(subject, &mut created, &image_ref, &logs, plan.memory_pods).await?,
            );
        }
        anyhow::Ok(Measurements { lifecycle, memory })
    }
    .await;
    created.remove_all(&mut subject.client).await;
    measured
}

/// Reports a runtime's failure on stderr with the end of its log, and keeps the whole log.
fn report_failure(runtime: &str, error: &anyhow::Error, log: &str) {
    let kept = std::env::temp_dir().join(format!(
        "container_lifecycle-{runtime}-{}.log",
        std::process::id()
    ));
    let kept = match std::fs::write(&kept, log) {
        Ok(()) => format!("whole log kept in {}", kept.display()),
        Err(error) => format!("could not keep the log in {}: {error}", kept.display()),
    };
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    eprintln!(
        "{runtime} failed: {error:#}\n--- {runtime} log, last {LOG_TAIL_LINES} lines ({kept}) ---\n{tail}\n---"
    );
}

/// After a runtime is done (or failed): what it left is removed, and said.
async fn clean_up_after(runtime: &str, per_container_executable: &str, dir: &Path) {
    let killed = clear_cgroups(per_container_executable).await;
    let unmounted = unmount_below(dir);
    if killed > 0 || unmounted > 0 {
        eprintln!(
            "{runtime} left {killed} processes (killed) and {unmounted} mounts (unmounted) behind"
        );
    }
}

async fn run_crius(
    dir: &Path,
    cni_dir: &Path,
    registry_host: &str,
    image: &str,
    plan: Plan,
) -> anyhow::Result<Measurements> {
    // Right in the temp dir: the monitors' socket paths under the state dir are near the limit.
    let paths = CriusPaths {
        cni_config_dir: cni_dir.to_path_buf(),
        log_level: "info",
        ..CriusPaths::under(dir)
    };
    std::fs::write(&paths.config_file, "")?;
    let registries_conf = dir.join("registries.conf");
    std::fs::write(
        &registries_conf,
        format!("[[registry]]\nlocation = \"{registry_host}\"\ninsecure = true\n"),
    )?;
    let registries_arg = format!("--registries-conf={}", registries_conf.display());
    let crius = Crius::start_at(paths, &[registries_arg.as_str()]).await?;
    let mut subject = Subject {
        name: "crius",
        daemon_pid: crius.pid().context("crius pid")?,
        per_container_executable: CRIUS_MONITOR,
        client: crius.client().await?,
    };
    let measured = measure(&mut subject, image, &dir.join("logs"), plan).await;
    if let Err(error) = &measured {
        report_failure("crius", error, &crius.log());
    }
    drop(crius);
    clean_up_after("crius", CRIUS_MONITOR, dir).await;
    measured
}

async fn run_containerd(
    dir: &Path,
    cni_dir: &Path,
    registry: &TestRegistry,
    image: &str,
    plan: Plan,
) -> anyhow::Result<Measurements> {
    let containerd = Containerd::start(&registry.host(), Some(cni_dir)).await?;
    let mut subject = Subject {
        name: "containerd",
        daemon_pid: containerd.pid(),
        per_container_executable: CONTAINERD_SHIM,
        client: containerd.client().await?,
    };
    let pause = format!("{}/pause:3.10", registry.host());
    let measured = match kubelet::pull(&mut subject.client, &pause)
        .await
        .context("pre-pull containerd's pause image")
    {
        Ok(_) => measure(&mut subject, image, &dir.join("logs"), plan).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &measured {
        report_failure("containerd", error, &containerd.log());
    }
    drop(containerd);
    clean_up_after("containerd", CONTAINERD_SHIM, dir).await;
    measured
}

/// Runs `runc` with `args` (its state under `state_root`), for at most [`CALL_TIMEOUT`]. The
/// container inherits the standard streams; none of them is a pipe, so nothing waits on it.
async fn runc(state_root: &Path, args: &[&str], errors: &Path) -> anyhow::Result<Duration> {
    let stderr = std::fs::File::create(errors)?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(RUNC)
        .arg("--root")
        .arg(state_root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {RUNC}"))?;
    let status = match tokio::time::timeout(CALL_TIMEOUT, child.wait()).await {
        Ok(status) => status?,
        Err(_) => bail!("runc {args:?}: not done within {CALL_TIMEOUT:?}"),
    };
    let took = started.elapsed();
    if !status.success() {
        bail!(
            "runc {args:?}: {status}: {}",
            std::fs::read_to_string(errors).unwrap_or_default().trim()
        );
    }
    Ok(took)
}

/// The bundle of the floor: the busybox image's layer unpacked as the rootfs, and `runc spec`'s
/// config with the same command, no terminal, and a cgroup under this benchmark's tree.
fn floor_bundle(image: &OciImage, bundle: &Path) -> anyhow::Result<serde_json::Value> {
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    for layer in &image.layers {
        tar::Archive::new(flate2::read::GzDecoder::new(&layer.bytes[..]))
            .unpack(&rootfs)
            .context("unpack the busybox layer")?;
    }
    let status = std::process::Command::new(RUNC)
        .arg("spec")
        .arg("--bundle")
        .arg(bundle)
        .status()
        .context("runc spec")?;
    if !status.success() {
        bail!("runc spec: {status}");
    }
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path)?)?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = COMMAND.to_vec().into();
    Ok(config)
}

/// `runc create`, `runc start`, `runc delete -f`, `runs` times, timed each.
async fn runc_floor(image: &OciImage, dir: &Path, runs: usize) -> anyhow::Result<FloorTimes> {
    let bundle = dir.join("floor-bundle");
    let state_root = dir.join("floor-runc-state");
    let errors = dir.join("floor-runc.err");
    let mut config = floor_bundle(image, &bundle)?;
    let bundle_arg = bundle.display().to_string();
    let mut times = FloorTimes::default();
    for n in 0..runs {
        let id = format!("crius-bench-floor-{n}");
        config["linux"]["cgroupsPath"] = format!("/{CGROUP_ROOT}/{id}").into();
        std::fs::write(bundle.join("config.json"), serde_json::to_vec(&config)?)?;
        times.create.push(
            runc(
                &state_root,
                &["create", "--bundle", &bundle_arg, &id],
                &errors,
            )
            .await?,
        );
        let started = runc(&state_root, &["start", &id], &errors).await;
        // The container is deleted even when start failed.
        let deleted = runc(&state_root, &["delete", "--force", &id], &errors).await;
        times.start.push(started?);
        times.delete.push(deleted?);
    }
    Ok(times)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// One row: each runtime's median and p90, and the ratio of the medians.
fn latency_row(what: &str, crius: Option<&[Duration]>, containerd: Option<&[Duration]>) {
    let show = |samples: Option<&[Duration]>| match samples {
        Some(samples) => format!(
            "{:8.2} {:8.2}",
            ms(median(samples)),
            ms(percentile(samples, 90))
        ),
        None => format!("{:>8} {:>8}", "-", "-"),
    };
    let ratio = match (crius, containerd) {
        (Some(ours), Some(theirs)) => format!(
            "{:6.2}",
            median(ours).as_secs_f64() / median(theirs).as_secs_f64()
        ),
        _ => format!("{:>6}", "-"),
    };
    println!(
        "  {what:<26} {}   {}   {ratio}",
        show(crius),
        show(containerd)
    );
}

/// One kind of sample of a runtime's lifecycle, if it was measured.
fn lifecycle(
    measured: Option<&Measurements>,
    pick: fn(&LifecycleTimes) -> &[Duration],
) -> Option<&[Duration]> {
    measured.map(|m| pick(&m.lifecycle))
}

fn report(
    plan: Plan,
    crius: Option<&Measurements>,
    containerd: Option<&Measurements>,
    floor: Option<&FloorTimes>,
) {
    println!(
        "{} containers, each in a pod of its own (pods made before timing), one after \
         another;\nimage: static busybox from a loopback registry; command {COMMAND:?}; \
         StopContainer timeout {STOP_TIMEOUT_SECONDS} (SIGKILL)",
        plan.containers
    );
    println!(
        "  {:<26} {:>17}   {:>17}   {:>6}",
        "ms", "crius median p90", "containerd med p90", "ratio"
    );
    latency_row(
        "CreateContainer",
        lifecycle(crius, |t| &t.create),
        lifecycle(containerd, |t| &t.create),
    );
    latency_row(
        "StartContainer",
        lifecycle(crius, |t| &t.start),
        lifecycle(containerd, |t| &t.start),
    );
    latency_row(
        "Create+Start",
        lifecycle(crius, |t| &t.create_start),
        lifecycle(containerd, |t| &t.create_start),
    );
    latency_row(
        "StopContainer",
        lifecycle(crius, |t| &t.stop),
        lifecycle(containerd, |t| &t.stop),
    );
    latency_row(
        "RemoveContainer",
        lifecycle(crius, |t| &t.remove),
        lifecycle(containerd, |t| &t.remove),
    );
    if let Some(floor) = floor {
        let sum = median(&floor.create) + median(&floor.start);
        println!(
            "floor, {} runs of a plain bundle (rootfs a directory) with runc 1.1.5: median create \
             {:.2} ms, start {:.2} ms, delete -f {:.2} ms; create + start {:.2} ms, all three \
             {:.2} ms",
            floor.create.len(),
            ms(median(&floor.create)),
            ms(median(&floor.start)),
            ms(median(&floor.delete)),
            ms(sum),
            ms(sum + median(&floor.delete))
        );
        for (name, measured) in [("crius", crius), ("containerd", containerd)] {
            if let Some(measured) = measured {
                let theirs = median(&measured.lifecycle.create_start);
                println!(
                    "  {name} Create+Start vs floor create + start: {:.2}x ({:+.2} ms)",
                    theirs.as_secs_f64() / sum.as_secs_f64(),
                    ms(theirs) - ms(sum)
                );
            }
        }
    }
    for (name, measured) in [("crius", crius), ("containerd", containerd)] {
        let Some(rounds) = measured.map(|m| &m.memory) else {
            continue;
        };
        println!(
            "{name}: {} pods with one running container each, {} rounds; per-container process \
             {}",
            plan.memory_pods,
            rounds.len(),
            if name == "crius" {
                CRIUS_MONITOR
            } else {
                CONTAINERD_SHIM
            },
        );
        for (round, memory) in rounds.iter().enumerate() {
            println!(
                "  round {}: daemon VmRSS {:.1} MiB ({:+.1} over the pods); {} per-container \
                 processes, RSS {:.0} KiB, PSS {:.0} KiB, USS {:.0} KiB each, {} running {EXIT_PATIENCE:?} after \
                 removal; MemAvailable drop {:.2} MiB per pod (idle drift {IDLE_WINDOW:?} before: \
                 {:.1} MiB); accounted {:.2} MiB per pod (pod cgroups {:+.1} MiB in all)",
                round + 1,
                mib(memory.daemon_rss_bytes as f64),
                mib(memory.daemon_rss_growth_bytes as f64),
                memory.per_container_processes,
                memory.per_container().rss / 1024.0,
                memory.per_container().pss / 1024.0,
                memory.per_container().uss / 1024.0,
                memory.left_running,
                mib(memory.mem_available_drop_per_pod()),
                mib(memory.idle_drift_bytes as f64),
                mib(memory.accounted_per_pod()),
                mib(memory.pod_cgroups_growth_bytes as f64),
            );
        }
        let summary = MemorySummary::of(rounds);
        println!(
            "  median of rounds: per-container process RSS {:.0} KiB, PSS {:.0} KiB, USS {:.0} \
             KiB; per pod: MemAvailable drop {:.2} MiB, accounted {:.2} MiB",
            summary.rss / 1024.0,
            summary.pss / 1024.0,
            summary.uss / 1024.0,
            mib(summary.mem_available_drop_per_pod),
            mib(summary.accounted_per_pod)
        );
    }
    if let (Some(ours), Some(theirs)) = (crius, containerd) {
        let (ours_m, theirs_m) = (
            MemorySummary::of(&ours.memory),
            MemorySummary::of(&theirs.memory),
        );
        let create_start = median(&ours.lifecycle.create_start).as_secs_f64()
            / median(&theirs.lifecycle.create_start).as_secs_f64();
        let rss = ours_m.rss / theirs_m.rss;
        let pss = ours_m.pss / theirs_m.pss;
        let uss = ours_m.uss / theirs_m.uss;
        // A MemAvailable that grew over the pods says only that other work freed more.
        let node = if ours_m.mem_available_drop_per_pod > 0.0
            && theirs_m.mem_available_drop_per_pod > 0.0
        {
            ours_m.mem_available_drop_per_pod / theirs_m.mem_available_drop_per_pod
        } else {
            f64::NAN
        };
        let accounted = ours_m.accounted_per_pod / theirs_m.accounted_per_pod;
        let monitor_rss_kib = ours_m.rss / 1024.0;
        println!(
            "ratios crius/containerd: per-container process RSS {rss:.3}, PSS {pss:.3}, USS \
             {uss:.3}; per pod: \
             MemAvailable drop {node:.2}, accounted {accounted:.2}"
        );
        println!(
            "goals: Create+Start median <= 0.6x containerd: {create_start:.2}x ({}); monitor <= \
             1 MiB RSS: {monitor_rss_kib:.0} KiB ({}); per-pod node memory <= 0.4x containerd: \
             MemAvailable {node:.2}x ({}), accounted {accounted:.2}x ({})",
            met(create_start, 0.6),
            met(monitor_rss_kib, 1024.0),
            met(node, 0.4),
            met(accounted, 0.4)
        );
    }
}

/// Whether a goal `value <= limit` is met; NaN (not measurable) is said as such.
fn met(value: f64, limit: f64) -> &'static str {
    if value.is_nan() {
        "not measurable: MemAvailable grew"
    } else if value <= limit {
        "met"
    } else {
        "not met"
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plan = Plan {
        containers: count_from_env("BENCH_CONTAINERS", 50),
        memory_pods: count_from_env("BENCH_MEMORY_PODS", 20),
        memory_rounds: count_from_env("BENCH_MEMORY_ROUNDS", 3).max(1),
    };
    let dir = tempfile::tempdir()?;
    let cni_dir = bridge_network(dir.path(), BRIDGE, SUBNET)?;
    let registry = TestRegistry::start().await?;
    let busybox = busybox_image()?;
    registry.push("bench/busybox", "1", &busybox).await?;
    let image = format!("{}/bench/busybox:1", registry.host());
    push_pause_image(&registry).await?;

    let crius = run_crius(dir.path(), &cni_dir, &registry.host(), &image, plan).await;
    let containerd = run_containerd(dir.path(), &cni_dir, &registry, &image, plan).await;
    let floor = runc_floor(&busybox, dir.path(), plan.containers).await;
    if let Err(error) = &floor {
        eprintln!("runc floor failed: {error:#}");
    }
    clean_up_after("runc floor", "runc", dir.path()).await;
    std::process::Command::new("ip")
        .args(["link", "del", BRIDGE])
        .output()
        .ok();

    report(
        plan,
        crius.as_ref().ok(),
        containerd.as_ref().ok(),
        floor.as_ref().ok(),
    );
    match (crius, containerd, floor) {
        (Ok(_), Ok(_), Ok(_)) => Ok(()),
        _ => bail!("a measurement failed (see above)"),
    }
}
