//! Containers through the CRI socket, as kubelet and crictl drive them: real images from the test
//! registry, real overlayfs, real runc, one crius-monitor per container, kubelet log files.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crius_conformance::containers::{ContainerFixture, joined, read_log};
use crius_conformance::fixture::spec;
use crius_conformance::image::{LayerBuilder, OciImage, RunConfig, STATIC_BUSYBOX, busybox_layer};
use crius_conformance::require_root;
use k8s_cri::v1 as cri;
use tonic::Code;

fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

/// The cgroup v1 memory dir of a cgroups path.
fn memory_cgroup(path: &str) -> std::path::PathBuf {
    Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'))
}

#[tokio::test]
async fn a_container_runs_logs_exits_and_leaves_nothing_when_removed() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let mut config = fx.config("hello", &sh("echo out; echo err >&2; exit 3"));
    config.labels = HashMap::from([("app".into(), "hello".into())]);
    let id = fx.create(&pod, config).await.unwrap();
    let created = fx.status(&id).await.unwrap();
    assert_eq!(created.state(), cri::ContainerState::ContainerCreated);
    assert!(created.created_at > 0 && created.started_at == 0);
    let info = fx.info(&id).await;
    let cgroups_path = info["cgroupsPath"].as_str().unwrap().to_string();
    assert!(
        cgroups_path.starts_with(&fx.pod_cgroup(1)),
        "{cgroups_path}"
    );

    fx.start(&id).await.unwrap();
    let status = fx.wait_exited(&id).await;
    assert_eq!(status.exit_code, 3);
    assert_eq!(status.reason, "Error");
    assert!(status.started_at >= status.created_at && status.finished_at >= status.started_at);
    assert_eq!(status.image.as_ref().unwrap().image, fx.image);
    assert!(
        status.image_ref.contains("@sha256:"),
        "{}",
        status.image_ref
    );
    assert!(status.image_id.starts_with("sha256:"));
    let user = status.user.unwrap().linux.unwrap();
    assert_eq!((user.uid, user.gid), (0, 0));
    assert!(status.log_path.ends_with("hello.log"));
    let records = read_log(Path::new(&status.log_path));
    assert_eq!(joined(&records, "stdout"), b"out\n");
    assert_eq!(joined(&records, "stderr"), b"err\n");
    for record in &records {
        assert!(record.full);
        // RFC 3339 with nanoseconds.
        assert_eq!(
            record.timestamp.len(),
            "2026-11-22T10:11:12.123456789Z".len()
        );
    }

    let dir = fx.pods.paths().state_dir.join("containers").join(&id);
    let layer_dir = fx.pods.paths().root.join("container-layers").join(&id);
    assert!(dir.exists() && layer_dir.exists());
    fx.remove(&id).await.unwrap();
    assert!(!dir.exists() && !layer_dir.exists());
    assert!(!memory_cgroup(&cgroups_path).exists());
    assert!(fx.runc_containers().is_empty());
    assert!(!fx.mounts().iter().any(|m| m.contains(&id)));
    assert_eq!(fx.status(&id).await.unwrap_err().code(), Code::NotFound);
    // Stop and Remove of what is gone are fine.
    fx.stop(&id, 0).await.unwrap();
    fx.remove(&id).await.unwrap();
    // The log stays for kubelet.
    assert!(Path::new(&status.log_path).exists());
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_timeout() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    // The shell ignores SIGTERM; its children live on when it is killed, unless crius kills
    // them too (the pod shares one PID namespace).
    let script = "trap '' TERM; echo ready; while :; do sleep 1; done";
    let id = fx.run(&pod, fx.config("sleeper", &sh(script))).await;
    fx.wait_for_output(&id, "ready\n").await;
    let running = fx.status(&id).await.unwrap();
    assert_eq!(running.state(), cri::ContainerState::ContainerRunning);
    let pid = fx.info(&id).await["pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let started = std::time::Instant::now();
    fx.stop(&id, 1).await.unwrap();
    let status = fx.status(&id).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(status.state(), cri::ContainerState::ContainerExited);
    assert_eq!(status.exit_code, 137);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let cgroups_path = fx.info(&id).await["cgroupsPath"]
        .as_str()
        .unwrap()
        .to_string();
    let procs = std::fs::read_to_string(memory_cgroup(&cgroups_path).join("cgroup.procs"));
    assert_eq!(procs.unwrap(), "");
    fx.remove(&id).await.unwrap();
}

#[tokio::test]
async fn a_container_that_handles_sigterm_stops_with_its_own_exit_code() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let id = fx
        .run(
            &pod,
            fx.config(
                "graceful",
                &sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"),
            ),
        )
        .await;
    fx.wait_for_output(&id, "ready\n").await;
    fx.stop(&id, 30).await.unwrap();
    let status = fx.status(&id).await.unwrap();
    assert_eq!(status.exit_code, 7);
    fx.remove(&id).await.unwrap();
}

#[tokio::test]
async fn created_and_running_containers_are_removed_whole() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let created = fx
        .create(&pod, fx.config("created", &["/bin/sleep", "600"]))
        .await
        .unwrap();
    let running = fx
        .run(&pod, fx.config("running", &["/bin/sleep", "600"]))
        .await;
    fx.remove(&created).await.unwrap();
    fx.remove(&running).await.unwrap();
    assert!(fx.runc_containers().is_empty());
    assert!(fx.list(cri::ContainerFilter::default()).await.is_empty());
    assert!(!fx.mounts().iter().any(|m| m.contains("/containers/")));
}

#[tokio::test]
async fn list_containers_filters_by_id_prefix_state_pod_and_labels() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod_a = fx.pod().await;
    let pod_b = fx.pod().await;
    let mut config = fx.config("a", &["/bin/sleep", "600"]);
    config.labels = HashMap::from([("tier".into(), "front".into())]);
    let a = fx.run(&pod_a, config).await;
    let b = fx
        .create(&pod_b, fx.config("b", &["/bin/sleep", "600"]))
        .await
        .unwrap();
    let ids = |list: Vec<cri::Container>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(fx.list(cri::ContainerFilter::default()).await.len(), 2);
    let by_prefix = cri::ContainerFilter {
        id: a[..12].into(),
        ..Default::default()
    };
    assert_eq!(ids(fx.list(by_prefix).await), vec![a.clone()]);
    let running = cri::ContainerFilter {
        state: Some(cri::ContainerStateValue {
            state: cri::ContainerState::ContainerRunning.into(),
        }),
        ..Default::default()
    };
    assert_eq!(ids(fx.list(running).await), vec![a.clone()]);
    let in_pod_b = cri::ContainerFilter {
        pod_sandbox_id: pod_b.clone(),
        ..Default::default()
    };
    assert_eq!(ids(fx.list(in_pod_b).await), vec![b.clone()]);
    let labelled = cri::ContainerFilter {
        label_selector: HashMap::from([("tier".into(), "front".into())]),
        ..Default::default()
    };
    let listed = fx.list(labelled).await;
    assert_eq!(ids(listed.clone()), vec![a.clone()]);
    assert_eq!(listed[0].pod_sandbox_id, pod_a);
    assert_eq!(listed[0].metadata.as_ref().unwrap().name, "a");
    fx.remove(&a).await.unwrap();
    fx.remove(&b).await.unwrap();
}

#[tokio::test]
async fn create_container_is_retry_safe_and_names_are_unique_in_a_pod() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let config = fx.config("same", &["/bin/sleep", "600"]);
    let first = fx.create(&pod, config.clone()).await.unwrap();
    let retry = fx.create(&pod, config).await.unwrap();
    assert_eq!(first, retry);
    let changed = fx.create(&pod, fx.config("same", &["/bin/true"])).await;
    assert_eq!(changed.unwrap_err().code(), Code::AlreadyExists);
    fx.remove(&first).await.unwrap();
}

#[tokio::test]
async fn bad_requests_are_refused_and_leave_nothing_behind() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let mut cases: Vec<(&str, cri::ContainerConfig, Code)> = Vec::new();
    let mut config = fx.config("procfd", &["/bin/true"]);
    config.working_dir = "/proc/self/fd/3".into();
    cases.push(("working dir under /proc", config, Code::InvalidArgument));
    let mut config = fx.config("escape", &["/bin/true"]);
    config.log_path = "../../escape.log".into();
    cases.push(("log path with ..", config, Code::InvalidArgument));
    let mut config = fx.config("biguid", &["/bin/true"]);
    config.linux.as_mut().unwrap().security_context = Some(cri::LinuxContainerSecurityContext {
        run_as_user: Some(cri::Int64Value { value: 1 << 31 }),
        ..Default::default()
    });
    cases.push(("uid 2^31", config, Code::InvalidArgument));
    let mut config = fx.config("grouponly", &["/bin/true"]);
    config.linux.as_mut().unwrap().security_context = Some(cri::LinuxContainerSecurityContext {
        run_as_group: Some(cri::Int64Value { value: 5 }),
        ..Default::default()
    });
    cases.push(("run_as_group without a user", config, Code::InvalidArgument));
    let mut config = fx.config("nosuchuser", &["/bin/true"]);
    config.linux.as_mut().unwrap().security_context = Some(cri::LinuxContainerSecurityContext {
        run_as_username: "nobody-here".into(),
        ..Default::default()
    });
    cases.push(("unknown user name", config, Code::InvalidArgument));
    let mut config = fx.config("nul", &["/bin/true"]);
    config.envs = vec![cri::KeyValue {
        key: "A".into(),
        value: "x\0y".into(),
    }];
    cases.push(("NUL in env", config, Code::InvalidArgument));
    let mut config = fx.config("noimage", &["/bin/true"]);
    config.image = Some(spec("127.0.0.1:1/not/pulled:1"));
    cases.push(("image not pulled", config, Code::NotFound));
    let mut config = fx.config("cap", &["/bin/true"]);
    config.linux.as_mut().unwrap().security_context = Some(cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: vec!["NOT_A_CAP".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    cases.push(("unknown capability", config, Code::InvalidArgument));
    for (what, config, code) in cases {
        let error = fx.create(&pod, config).await.unwrap_err();
        assert_eq!(error.code(), code, "{what}: {}", error.message());
    }
    let missing_pod = fx.create("0000", fx.config("orphan", &["/bin/true"])).await;
    assert_eq!(missing_pod.unwrap_err().code(), Code::NotFound);
    assert!(fx.list(cri::ContainerFilter::default()).await.is_empty());
    assert!(fx.runc_containers().is_empty());
    let containers_dir = fx.pods.paths().state_dir.join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let layers_dir = fx.pods.paths().root.join("container-layers");
    assert_eq!(
        std::fs::read_dir(&layers_dir)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert!(!fx.mounts().iter().any(|m| m.contains("/containers/")));
    assert!(!fx.pods.dir().join("escape.log").exists());
}

#[tokio::test]
async fn environment_working_dir_and_arguments_follow_the_kubernetes_rules() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let mut config = fx.config("env", &["/bin/sh", "-c"]);
    config.args = vec![r#"printf '%s|%s|%s|%s' "$GREETING" "$HOSTNAME" "$(pwd)" "$PATH""#.into()];
    config.working_dir = "/tmp".into();
    config.envs = vec![cri::KeyValue {
        key: "GREETING".into(),
        value: "two\nlines".into(),
    }];
    let (status, stdout, _) = fx.run_to_exit(&pod, config).await;
    assert_eq!(status.exit_code, 0, "{stdout}");
    let hostname = fx.pods.status(&pod).await.unwrap().metadata.unwrap().name;
    assert_eq!(
        stdout,
        format!("two\nlines|{hostname}|/tmp|/usr/sbin:/usr/bin:/sbin:/bin\n")
    );
}

#[tokio::test]
async fn the_container_init_sees_only_its_stdio() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    // `ls` runs in a child; PID 1 is the shell the OCI runtime started.
    let (_, stdout, _) = fx
        .run_to_exit(&pod, fx.config("fds", &sh("ls /proc/1/fd | tr '\\n' ' '")))
        .await;
    assert_eq!(stdout, "0 1 2 \n");
}

#[tokio::test]
async fn users_groups_and_supplemental_groups_come_from_the_request_and_the_image() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let id_command = sh("id -u; id -g; id -G");
    let security = |context: cri::LinuxContainerSecurityContext| {
        let mut config = fx.config("user", &id_command);
        config.linux.as_mut().unwrap().security_context = Some(context);
        config
    };
    let by_uid = security(cri::LinuxContainerSecurityContext {
        run_as_user: Some(cri::Int64Value { value: 1234 }),
        run_as_group: Some(cri::Int64Value { value: 2345 }),
        supplemental_groups: vec![3456],
        ..Default::default()
    });
    let (status, stdout, _) = fx.run_to_exit(&pod, by_uid).await;
    assert_eq!(stdout, "1234\n2345\n2345 3456\n");
    let user = status.user.unwrap().linux.unwrap();
    assert_eq!((user.uid, user.gid), (1234, 2345));
    assert!(user.supplemental_groups.contains(&3456));
}

#[tokio::test]
async fn a_container_over_its_memory_limit_is_oom_killed_and_says_so() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    // The shell's variable grows without bound.
    let mut config = fx.config(
        "hog",
        &sh("x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while :; do x=$x$x; done"),
    );
    config.linux.as_mut().unwrap().resources = Some(cri::LinuxContainerResources {
        memory_limit_in_bytes: 16 << 20,
        ..Default::default()
    });
    let id = fx.run(&pod, config).await;
    let status = fx.wait_exited(&id).await;
    assert_eq!(status.exit_code, 137);
    assert_eq!(status.reason, "OOMKilled");
    fx.remove(&id).await.unwrap();
}

#[tokio::test]
async fn stats_come_from_the_container_cgroup() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let id = fx
        .run(
            &pod,
            fx.config(
                "busy",
                &sh("echo data > /written; echo ready; while :; do :; done"),
            ),
        )
        .await;
    fx.wait_for_output(&id, "ready\n").await;
    let stats = fx
        .client()
        .runtime
        .container_stats(cri::ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let cpu = stats.cpu.unwrap();
    assert!(cpu.timestamp > 0);
    assert!(cpu.usage_core_nano_seconds.unwrap().value > 0);
    let memory = stats.memory.unwrap();
    assert!(memory.timestamp > 0 && memory.working_set_bytes.unwrap().value > 0);
    let layer = stats.writable_layer.unwrap();
    assert!(layer.used_bytes.unwrap().value > 0 && layer.inodes_used.unwrap().value >= 1);
    let listed = fx
        .client()
        .runtime
        .list_container_stats(cri::ListContainerStatsRequest {
            filter: Some(cri::ContainerStatsFilter {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(listed.len(), 1);
    // The second sample has a rate.
    assert!(listed[0].cpu.as_ref().unwrap().usage_nano_cores.is_some());
    fx.remove(&id).await.unwrap();
}

#[tokio::test]
async fn resources_are_updated_in_the_cgroup() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let id = fx
        .run(&pod, fx.config("updated", &["/bin/sleep", "600"]))
        .await;
    let cgroups_path = fx.info(&id).await["cgroupsPath"]
        .as_str()
        .unwrap()
        .to_string();
    fx.client()
        .runtime
        .update_container_resources(cri::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let limit = std::fs::read_to_string(memory_cgroup(&cgroups_path).join("memory.limit_in_bytes"))
        .unwrap();
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let quota = std::fs::read_to_string(
        Path::new("/sys/fs/cgroup/cpu")
            .join(cgroups_path.trim_start_matches('/'))
            .join("cpu.cfs_quota_us"),
    )
    .unwrap();
    assert_eq!(quota.trim(), "50000");
    let reported = fx
        .status(&id)
        .await
        .unwrap()
        .resources
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(
        (reported.memory_limit_in_bytes, reported.cpu_quota),
        (64 << 20, 50_000)
    );
    fx.remove(&id).await.unwrap();
}

#[tokio::test]
async fn stopping_a_pod_stops_its_containers_and_removing_it_removes_them() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let id = fx
        .run(&pod, fx.config("inpod", &["/bin/sleep", "600"]))
        .await;
    fx.pods.stop(&pod).await;
    assert_eq!(
        fx.status(&id).await.unwrap().state(),
        cri::ContainerState::ContainerExited
    );
    fx.pods.remove(&pod).await;
    assert_eq!(fx.status(&id).await.unwrap_err().code(), Code::NotFound);
    assert!(fx.runc_containers().is_empty());
}

#[tokio::test]
async fn containers_survive_a_daemon_kill_and_report_what_happened_meanwhile() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let long = fx
        .run(&pod, fx.config("long", &["/bin/sleep", "600"]))
        .await;
    let short = fx
        .run(
            &pod,
            fx.config("short", &sh("sleep 1; echo while-down; exit 4")),
        )
        .await;
    let before = fx.status(&long).await.unwrap();
    let pid = fx.info(&long).await["pid"].as_i64().unwrap();
    fx.pods
        .crius
        .signal_and_wait(nix::sys::signal::Signal::SIGKILL)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paths = fx.pods.crius.paths.clone();
    fx.pods.crius = crius_conformance::daemon::Crius::start_at(paths, &[])
        .await
        .unwrap();
    fx.pods.client = fx.pods.crius.client().await.unwrap();

    let after = fx.status(&long).await.unwrap();
    assert_eq!(after.state(), cri::ContainerState::ContainerRunning);
    assert_eq!(after.started_at, before.started_at);
    assert_eq!(fx.info(&long).await["pid"].as_i64().unwrap(), pid);
    let short_status = fx.wait_exited(&short).await;
    assert_eq!(short_status.exit_code, 4);
    let records = read_log(Path::new(&short_status.log_path));
    assert_eq!(joined(&records, "stdout"), b"while-down\n");
    // Still watched: a stop is seen.
    fx.stop(&long, 0).await.unwrap();
    assert_eq!(fx.status(&long).await.unwrap().exit_code, 137);
    fx.remove(&long).await.unwrap();
    fx.remove(&short).await.unwrap();
}

#[tokio::test]
async fn an_image_used_by_a_container_is_not_removed() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let id = fx
        .create(&pod, fx.config("user", &["/bin/true"]))
        .await
        .unwrap();
    let image = fx.image.clone();
    let refused = fx
        .client()
        .image
        .remove_image(cri::RemoveImageRequest {
            image: Some(spec(&image)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    fx.remove(&id).await.unwrap();
    fx.client()
        .image
        .remove_image(cri::RemoveImageRequest {
            image: Some(spec(&image)),
        })
        .await
        .unwrap();
}

/// An image whose `/etc/passwd` and `/etc/group` know a user `app`, which its config runs as.
fn users_image() -> OciImage {
    let accounts = LayerBuilder::default()
        .dir("etc", 0o755)
        .unwrap()
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap()
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nother:x:3000:\n",
        )
        .unwrap();
    OciImage::build(
        vec![busybox_layer(Path::new(STATIC_BUSYBOX)).unwrap(), accounts],
        &RunConfig {
            user: "app".into(),
            env: vec!["PATH=/bin".into()],
            ..RunConfig::default()
        },
    )
    .unwrap()
}

/// The busybox image with a last layer of hostile account files.
fn hostile_accounts_image(layer: LayerBuilder) -> OciImage {
    OciImage::build(
        vec![busybox_layer(Path::new(STATIC_BUSYBOX)).unwrap(), layer],
        &RunConfig::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn users_and_groups_are_resolved_from_the_image_files() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let image = fx.push_and_pull("users", "1", &users_image()).await;
    let pod = fx.pod().await;
    let command = sh("id -u; id -g; id -G; echo $HOME");
    let with = |name: &str, context: Option<cri::LinuxContainerSecurityContext>| {
        let mut config = fx.config(name, &command);
        config.image = Some(spec(&image));
        config.linux.as_mut().unwrap().security_context = context;
        config
    };
    let image_user = with("image-user", None);
    let merged = with(
        "merged",
        Some(cri::LinuxContainerSecurityContext {
            run_as_username: "app".into(),
            run_as_group: Some(cri::Int64Value { value: 3000 }),
            supplemental_groups: vec![4000],
            ..Default::default()
        }),
    );
    let strict = with(
        "strict",
        Some(cri::LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 1000 }),
            supplemental_groups: vec![4000],
            supplemental_groups_policy: cri::SupplementalGroupsPolicy::Strict.into(),
            ..Default::default()
        }),
    );
    let (status, stdout, _) = fx.run_to_exit(&pod, image_user).await;
    assert_eq!(stdout, "1000\n1000\n1000 2000\n/home/app\n");
    let user = status.user.unwrap().linux.unwrap();
    assert_eq!(
        (user.uid, user.gid, user.supplemental_groups),
        (1000, 1000, vec![1000, 2000])
    );
    let (_, stdout, _) = fx.run_to_exit(&pod, merged).await;
    assert_eq!(stdout, "1000\n3000\n3000 2000 4000\n/home/app\n");
    let (_, stdout, _) = fx.run_to_exit(&pod, strict).await;
    assert_eq!(stdout, "1000\n1000\n1000 4000\n/home/app\n");
}

#[tokio::test]
async fn hostile_account_files_in_an_image_are_refused_quickly() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let images = [
        (
            "passwd-to-dev-zero",
            LayerBuilder::default()
                .raw_entry(tar::EntryType::Symlink, "etc/passwd", "/dev/zero", b"")
                .unwrap(),
        ),
        (
            "etc-out-of-the-rootfs",
            // Resolved in the rootfs, this leads to its own empty /proc, not to the host's
            // /etc: the user is not found.
            LayerBuilder::default()
                .raw_entry(tar::EntryType::Symlink, "etc", "/proc/1/root/etc", b"")
                .unwrap(),
        ),
        (
            "passwd-over-10-mib",
            LayerBuilder::default()
                .file("etc/passwd", 0o644, &vec![b'#'; 11 << 20])
                .unwrap(),
        ),
    ];
    for (name, layer) in images {
        let image = fx
            .push_and_pull(name, "1", &hostile_accounts_image(layer))
            .await;
        let mut config = fx.config(name, &["/bin/true"]);
        config.image = Some(spec(&image));
        config.linux.as_mut().unwrap().security_context =
            Some(cri::LinuxContainerSecurityContext {
                run_as_username: "root".into(),
                ..Default::default()
            });
        let started = std::time::Instant::now();
        let refused = fx.create(&pod, config).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{name}: {}",
            refused.message()
        );
        // Bounded reading, not speed: an unbounded read of the hostile file would never end.
        assert!(started.elapsed() < Duration::from_secs(30), "{name}");
    }
    assert!(fx.list(cri::ContainerFilter::default()).await.is_empty());
}

#[tokio::test]
async fn the_log_is_byte_exact_across_reopens_while_the_container_writes_100_mb() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    // 12.5 million numbered lines: 100 MB.
    const LINES: u64 = 12_500_000;
    let id = fx
        .run(
            &pod,
            fx.config("flood", &["/bin/seq", "1", &LINES.to_string()]),
        )
        .await;
    let log_path = std::path::PathBuf::from(fx.status(&id).await.unwrap().log_path);
    let mut rotated = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let target = log_path.with_extension(format!("log.{}", rotated.len()));
        std::fs::rename(&log_path, &target).unwrap();
        rotated.push(target);
        let reopened = fx
            .client()
            .runtime
            .reopen_container_log(cri::ReopenContainerLogRequest {
                container_id: id.clone(),
            })
            .await;
        if let Err(status) = reopened {
            // The container ended meanwhile: the monitor wrote its last records before the
            // rename, and nothing more comes.
            assert_eq!(
                status.code(),
                Code::FailedPrecondition,
                "{}",
                status.message()
            );
            break;
        }
        assert!(log_path.exists(), "reopen creates the file again");
    }
    let status = fx.wait_exited(&id).await;
    assert_eq!(status.exit_code, 0);
    rotated.push(log_path);
    assert!(rotated.len() > 2, "the writer ended before a second reopen");
    let mut expected = 1u64;
    for file in &rotated {
        let bytes = std::fs::read(file).unwrap_or_default();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut fields = line.splitn(4, |&b| b == b' ');
            let (_, stream, tag, content) = (
                fields.next(),
                fields.next().unwrap(),
                fields.next().unwrap(),
                fields.next().unwrap(),
            );
            assert_eq!((stream, tag), (&b"stdout"[..], &b"F"[..]));
            assert_eq!(
                content,
                expected.to_string().as_bytes(),
                "in {}",
                file.display()
            );
            expected += 1;
        }
    }
    assert_eq!(expected, LINES + 1);
    fx.remove(&id).await.unwrap();
}

#[tokio::test]
async fn security_settings_reach_the_process() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let status_fields =
        sh("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '");
    let base = fx.config("secure", &status_fields);
    let with = |context: cri::LinuxContainerSecurityContext| {
        let mut config = base.clone();
        config.linux.as_mut().unwrap().security_context = Some(context);
        config
    };
    let confined = with(cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            drop_capabilities: vec!["ALL".into()],
            add_capabilities: vec!["NET_ADMIN".into()],
            ..Default::default()
        }),
        no_new_privs: true,
        seccomp: Some(cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::RuntimeDefault.into(),
            localhost_ref: String::new(),
        }),
        ..Default::default()
    });
    let (_, stdout, _) = fx.run_to_exit(&pod, confined).await;
    assert_eq!(
        stdout,
        "CapEff: 0000000000001000\nNoNewPrivs: 1\nSeccomp: 2\n"
    );
    let unconfined = with(cri::LinuxContainerSecurityContext::default());
    let (_, stdout, _) = fx.run_to_exit(&pod, unconfined).await;
    assert!(stdout.ends_with("NoNewPrivs: 0\nSeccomp: 0\n"), "{stdout}");

    let mut readonly = fx.config("readonly", &sh("touch /new || echo refused"));
    readonly.linux.as_mut().unwrap().security_context = Some(cri::LinuxContainerSecurityContext {
        readonly_rootfs: true,
        ..Default::default()
    });
    let (_, stdout, _) = fx.run_to_exit(&pod, readonly).await;
    assert_eq!(stdout, "refused\n");
}

#[tokio::test]
async fn host_paths_are_mounted_as_asked() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let host = fx.pods.dir().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("greeting"), "hello\n").unwrap();
    // Reached through a symlink, as hostPath volumes may be.
    std::os::unix::fs::symlink(&host, fx.pods.dir().join("link")).unwrap();
    let mut config = fx.config(
        "mounts",
        &sh("cat /data/greeting; echo x > /data/new || echo refused; echo y > /rw/new"),
    );
    config.mounts = vec![
        cri::Mount {
            container_path: "/data".into(),
            host_path: fx.pods.dir().join("link").display().to_string(),
            readonly: true,
            ..Default::default()
        },
        cri::Mount {
            container_path: "/rw".into(),
            host_path: host.display().to_string(),
            ..Default::default()
        },
    ];
    let (status, stdout, _) = fx.run_to_exit(&pod, config).await;
    assert_eq!(stdout, "hello\nrefused\n");
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "y\n");
    assert_eq!(status.mounts.len(), 2);
    assert_eq!(status.mounts[0].container_path, "/data");
    assert!(status.mounts[0].readonly);
}

#[tokio::test]
async fn pid_namespace_modes_decide_what_a_container_sees() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let mode = |pid: cri::NamespaceMode| {
        Some(cri::NamespaceOption {
            pid: pid.into(),
            ..Default::default()
        })
    };
    let script = sh("cat /proc/1/comm; echo $$");
    let with = |fx: &ContainerFixture, pid: cri::NamespaceMode| {
        let mut config = fx.config(
            &format!("pid-{}", pid.as_str_name().to_lowercase()),
            &script,
        );
        config.linux.as_mut().unwrap().security_context =
            Some(cri::LinuxContainerSecurityContext {
                namespace_options: mode(pid),
                ..Default::default()
            });
        config
    };
    let pod = fx.pod().await;
    let (_, stdout, _) = fx
        .run_to_exit(&pod, with(&fx, cri::NamespaceMode::Container))
        .await;
    assert_eq!(stdout, "sh\n1\n");
    let (_, stdout, _) = fx
        .run_to_exit(&pod, with(&fx, cri::NamespaceMode::Pod))
        .await;
    assert!(
        stdout.starts_with("crius-pod-init\n") && stdout != "crius-pod-init\n1\n",
        "{stdout}"
    );
    let host_pod = fx
        .pod_with(|config| {
            config.linux.as_mut().unwrap().security_context =
                Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: mode(cri::NamespaceMode::Node),
                    ..Default::default()
                });
        })
        .await;
    let mut config = with(&fx, cri::NamespaceMode::Node);
    config.command = sh(&format!(
        "test -d /proc/{} && echo host",
        std::process::id()
    ))
    .into_iter()
    .map(str::to_string)
    .collect();
    let (_, stdout, _) = fx.run_to_exit(&host_pod, config).await;
    assert_eq!(stdout, "host\n");
}

#[tokio::test]
async fn a_tty_container_logs_its_terminal_output() {
    require_root!("containers");
    let mut fx = ContainerFixture::new().await;
    let pod = fx.pod().await;
    let mut config = fx.config("tty", &sh("test -t 1 && echo terminal"));
    config.tty = true;
    let (status, stdout, _) = fx.run_to_exit(&pod, config).await;
    assert_eq!(status.exit_code, 0);
    assert_eq!(stdout.trim_end(), "terminal");
}

#[tokio::test]
async fn what_containers_without_records_left_is_swept_at_start() {
    require_root!("containers");
    let dir = tempfile::tempdir().unwrap();
    let paths = crius_conformance::daemon::CriusPaths::under(dir.path());
    let id = "ab".repeat(32);
    let layer = paths.root.join("container-layers").join(&id);
    let run = paths.state_dir.join("containers").join(&id);
    std::fs::create_dir_all(layer.join("upper")).unwrap();
    std::fs::create_dir_all(run.join("rootfs")).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(run.join("rootfs"))
        .status()
        .unwrap();
    assert!(mounted.success());
    std::fs::write(&paths.config_file, "").unwrap();
    let crius = crius_conformance::daemon::Crius::start_at(paths, &[])
        .await
        .unwrap();
    // Answered once the daemon has opened its stores, the sweep included.
    let mut client = crius.client().await.unwrap();
    client
        .runtime
        .version(cri::VersionRequest::default())
        .await
        .unwrap();
    assert!(!layer.exists() && !run.exists(), "{}", crius.log());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&run.display().to_string()));
}
