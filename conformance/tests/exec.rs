//! ExecSync through the CRI socket, as kubelet's exec probes and `crictl exec --sync` call it:
//! real runc, the container's own user and environment, timeouts that leave nothing behind in the
//! container, bounded output, and no leaks over many calls.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crius_conformance::containers::ContainerFixture;
use crius_conformance::require_root;
use k8s_cri::v1 as cri;
use tonic::Code;

/// ExecSync's output limit per stream.
const OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

fn words(command: &[&str]) -> Vec<String> {
    command.iter().map(|s| s.to_string()).collect()
}

async fn exec(
    fx: &mut ContainerFixture,
    id: &str,
    cmd: Vec<String>,
    timeout: i64,
) -> Result<cri::ExecSyncResponse, tonic::Status> {
    fx.client()
        .runtime
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A running container in a new pod that sleeps; `configure` may change its config first.
async fn sleeper(
    fx: &mut ContainerFixture,
    configure: impl FnOnce(&mut cri::ContainerConfig),
) -> String {
    let pod = fx.pod().await;
    let mut config = fx.config("sleeper", &["/bin/sleep", "3600"]);
    configure(&mut config);
    fx.run(&pod, config).await
}

/// The pids in the container's (v1 memory) cgroup.
async fn cgroup_procs(fx: &mut ContainerFixture, id: &str) -> Vec<i32> {
    let info = fx.info(id).await;
    let path = Path::new("/sys/fs/cgroup/memory")
        .join(
            info["cgroupsPath"]
                .as_str()
                .unwrap()
                .trim_start_matches('/'),
        )
        .join("cgroup.procs");
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect()
}

/// Waits (bounded) until the container's cgroup holds its init alone.
async fn wait_for_init_alone(fx: &mut ContainerFixture, id: &str) {
    let init = i32::try_from(fx.info(id).await["pid"].as_i64().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let procs = cgroup_procs(fx, id).await;
        if procs == [init] {
            return;
        }
        let commands: Vec<String> = procs
            .iter()
            .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .collect();
        assert!(
            Instant::now() < deadline,
            "the container's cgroup holds {procs:?} ({commands:?}), not its init {init} alone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The children of `pid` that are zombies.
fn zombie_children(pid: u32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_str().unwrap().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .collect();
            fields[0] == "Z" && fields[1] == pid.to_string()
        })
        .collect()
}

/// The exec dirs left in the container's run dir.
fn exec_dirs(fx: &ContainerFixture, id: &str) -> Vec<PathBuf> {
    let dir = fx.pods.paths().state_dir.join("containers").join(id);
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("exec-")
        })
        .collect()
}

#[tokio::test]
async fn exec_sync_answers_output_and_exit_code_as_the_containers_user_with_its_env() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx, |config| {
        config.envs = vec![cri::KeyValue {
            key: "GREETING".into(),
            value: "hello there".into(),
        }];
        config.working_dir = "/tmp".into();
        config.linux.as_mut().unwrap().security_context =
            Some(cri::LinuxContainerSecurityContext {
                run_as_user: Some(cri::Int64Value { value: 1234 }),
                ..Default::default()
            });
    })
    .await;

    let answer = exec(&mut fx, &id, sh("echo out; echo err >&2; exit 3"), 10)
        .await
        .unwrap();
    assert_eq!(answer.stdout, b"out\n");
    assert_eq!(answer.stderr, b"err\n");
    assert_eq!(answer.exit_code, 3);

    let answer = exec(&mut fx, &id, words(&["id", "-u"]), 0).await.unwrap();
    assert_eq!(
        (answer.stdout.as_slice(), answer.exit_code),
        (&b"1234\n"[..], 0)
    );
    let answer = exec(&mut fx, &id, sh("echo \"$GREETING\"; pwd"), 0)
        .await
        .unwrap();
    assert_eq!(answer.stdout, b"hello there\n/tmp\n");
    // Arguments reach the command as they are, through no shell.
    let answer = exec(
        &mut fx,
        &id,
        words(&["echo", "a  b", "$GREETING", ";", "*"]),
        0,
    )
    .await
    .unwrap();
    assert_eq!(answer.stdout, b"a  b $GREETING ; *\n");
    // Killed by a signal: 128 + the signal.
    let answer = exec(&mut fx, &id, sh("kill -9 $$"), 0).await.unwrap();
    assert_eq!(answer.exit_code, 137);
    // A command that does not exist is an error, as cri-o and containerd answer.
    let missing = exec(&mut fx, &id, words(&["/no/such/command"]), 0)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unknown, "{missing:?}");
    assert!(
        missing.message().contains("/no/such/command"),
        "{missing:?}"
    );

    assert!(exec_dirs(&fx, &id).is_empty());
    wait_for_init_alone(&mut fx, &id).await;
}

#[tokio::test]
async fn exec_sync_times_out_kills_what_the_command_started_and_the_container_runs_on() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx, |_| {}).await;
    for command in [
        words(&["sleep", "600"]),
        sh("sleep 600 & sleep 600"),
        // A child that outlives its parent, left in the exec's process group.
        sh("(sleep 600 &); sleep 600"),
    ] {
        let started = Instant::now();
        let timed_out = exec(&mut fx, &id, command.clone(), 1).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(timed_out.code(), Code::DeadlineExceeded, "{timed_out:?}");
        assert!(
            timed_out.message().contains("timed out after 1s"),
            "{timed_out:?}"
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(10),
            "{command:?} took {took:?}"
        );
        wait_for_init_alone(&mut fx, &id).await;
        let status = fx.status(&id).await.unwrap();
        assert_eq!(status.state(), cri::ContainerState::ContainerRunning);
    }
    let answer = exec(&mut fx, &id, words(&["true"]), 1).await.unwrap();
    assert_eq!(answer.exit_code, 0);
    assert!(exec_dirs(&fx, &id).is_empty());
}

#[tokio::test]
async fn an_exec_whose_caller_goes_away_is_killed() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx, |_| {}).await;
    let call = exec(&mut fx, &id, sh("sleep 600 & sleep 600"), 0);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), call)
            .await
            .is_err()
    );
    wait_for_init_alone(&mut fx, &id).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exec_dirs(&fx, &id).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", exec_dirs(&fx, &id));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn exec_sync_output_is_cut_at_16_mib_and_the_daemon_memory_comes_back() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx, |_| {}).await;
    let daemon = fx.pods.crius.pid().unwrap();
    // Two full streams are more than kubelet's 16 MiB message.
    let client = fx
        .client()
        .runtime
        .clone()
        .max_decoding_message_size(3 * OUTPUT_LIMIT);
    let call = |cmd: Vec<String>| {
        let request = cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd,
            timeout: 120,
        };
        let mut client = client.clone();
        async move { client.exec_sync(request).await.unwrap().into_inner() }
    };
    call(words(&["true"])).await;
    let baseline_kib = status_field(daemon, "VmRSS:");

    let answer = call(sh(
        "yes | head -c 100000000; yes e | head -c 20000000 >&2; exit 7",
    ))
    .await;
    assert_eq!(answer.exit_code, 7);
    assert_eq!(answer.stdout.len(), OUTPUT_LIMIT);
    assert!(answer.stdout.chunks(2).all(|pair| pair == b"y\n"));
    assert_eq!(answer.stderr.len(), OUTPUT_LIMIT);
    assert!(answer.stderr.chunks(2).all(|pair| pair == b"e\n"));
    drop(answer);
    let small = call(words(&["echo", "done"])).await;
    assert_eq!(small.stdout, b"done\n");

    let after_kib = status_field(daemon, "VmRSS:");
    eprintln!("crius VmRSS: {baseline_kib} KiB before, {after_kib} KiB after 2 x 16 MiB");
    assert!(
        after_kib < baseline_kib + 40 * 1024,
        "crius VmRSS {after_kib} KiB after the call, {baseline_kib} KiB before"
    );
}

#[tokio::test]
async fn two_hundred_execs_leak_no_fds_threads_processes_or_files() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx, |_| {}).await;
    let daemon = fx.pods.crius.pid().unwrap();
    for _ in 0..5 {
        exec(&mut fx, &id, words(&["true"]), 5).await.unwrap();
    }
    let fds = open_fds(daemon);
    let threads = status_field(daemon, "Threads:");
    for n in 0..200 {
        let answer = exec(&mut fx, &id, words(&["echo", &n.to_string()]), 5)
            .await
            .unwrap();
        assert_eq!(answer.stdout, format!("{n}\n").as_bytes());
    }
    let (fds_after, threads_after) = (open_fds(daemon), status_field(daemon, "Threads:"));
    assert!(
        fds_after <= fds + 2,
        "crius holds {fds_after} fds after 200 execs, {fds} before"
    );
    assert!(
        threads_after <= threads + 4,
        "crius runs {threads_after} threads after 200 execs, {threads} before"
    );
    assert_eq!(zombie_children(daemon), Vec::<String>::new());
    assert!(exec_dirs(&fx, &id).is_empty());
    wait_for_init_alone(&mut fx, &id).await;
}

#[tokio::test]
async fn exec_sync_refuses_bad_requests_and_containers_not_running() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let id = sleeper(&mut fx, |_| {}).await;
    let empty = exec(&mut fx, &id, Vec::new(), 0).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");
    let no_id = exec(&mut fx, "", words(&["true"]), 0).await.unwrap_err();
    assert_eq!(no_id.code(), Code::InvalidArgument, "{no_id:?}");
    let unknown = exec(&mut fx, &"f".repeat(64), words(&["true"]), 0)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    let pod = fx.pod().await;
    let created = fx
        .create(&pod, fx.config("created", &["/bin/sleep", "3600"]))
        .await
        .unwrap();
    let not_started = exec(&mut fx, &created, words(&["true"]), 0)
        .await
        .unwrap_err();
    assert_eq!(
        not_started.code(),
        Code::FailedPrecondition,
        "{not_started:?}"
    );
    fx.stop(&id, 0).await.unwrap();
    let stopped = exec(&mut fx, &id, words(&["true"]), 0).await.unwrap_err();
    assert_eq!(stopped.code(), Code::FailedPrecondition, "{stopped:?}");
}
