//! The setting of the container tests: a test registry, a crius on a bridge network of its own
//! that pulls from it, the static busybox image pulled, and helpers that speak the container RPCs
//! as kubelet and crictl do. Dropping the fixture kills what the daemon left running.

#![allow(clippy::unwrap_used)] // fixture helpers panic as the tests' failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use crate::fixture::spec;
use crate::image::{OciImage, busybox_image};
use crate::pods::{PodFixture, pod_config};
use crate::registry::TestRegistry;

/// How long a test waits for a container to exit.
const EXIT_PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct ContainerFixture {
    pub pods: PodFixture,
    pub registry: TestRegistry,
    /// The busybox image, as pulled.
    pub image: String,
    pods_made: usize,
    /// Holds the registries.conf the daemon reads at every pull.
    _conf_dir: tempfile::TempDir,
}

/// One record of a kubelet CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub timestamp: String,
    pub stream: String,
    /// `true` for `F` (the line ends here), `false` for `P`.
    pub full: bool,
    pub content: Vec<u8>,
}

impl ContainerFixture {
    pub async fn new() -> Self {
        Self::with("").await
    }

    /// `config_toml` is appended to crius's config file.
    pub async fn with(config_toml: &str) -> Self {
        Self::with_daemon_args(config_toml, &[]).await
    }

    /// `config_toml` is appended to crius's config file; the daemon gets `daemon_args` on its
    /// command line.
    pub async fn with_daemon_args(config_toml: &str, daemon_args: &[&str]) -> Self {
        let registry = TestRegistry::start().await.unwrap();
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("registries.conf");
        std::fs::write(
            &conf,
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                registry.host()
            ),
        )
        .unwrap();
        let pods = PodFixture::with_daemon_args(
            &format!(
                "[image]\nregistries_conf = \"{}\"\n{config_toml}",
                conf.display()
            ),
            daemon_args,
        )
        .await;
        let mut fixture = ContainerFixture {
            pods,
            registry,
            image: String::new(),
            pods_made: 0,
            _conf_dir: conf_dir,
        };
        fixture.image = fixture
            .push_and_pull("busybox", "1", &busybox_image().unwrap())
            .await;
        fixture
    }

    pub fn client(&mut self) -> &mut crate::client::CriClient {
        &mut self.pods.client
    }

    /// Pushes `image` as `repository:tag` and pulls it; returns the name pulled.
    pub async fn push_and_pull(&mut self, repository: &str, tag: &str, image: &OciImage) -> String {
        self.registry.push(repository, tag, image).await.unwrap();
        let name = format!("{}/{repository}:{tag}", self.registry.host());
        self.client()
            .image
            .pull_image(cri::PullImageRequest {
                image: Some(spec(&name)),
                auth: None,
                sandbox_config: None,
            })
            .await
            .unwrap();
        name
    }

    /// A ready pod with a log directory and a cgroup of the test's own; `configure` may change
    /// its config first.
    pub async fn pod_with(&mut self, configure: impl FnOnce(&mut cri::PodSandboxConfig)) -> String {
        self.pods_made += 1;
        let mut config = pod_config(&format!("pod{}", self.pods_made));
        config.log_directory = self
            .pods
            .dir()
            .join(format!("logs/pod{}", self.pods_made))
            .display()
            .to_string();
        config.linux = Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: self.pod_cgroup(self.pods_made),
            ..Default::default()
        });
        configure(&mut config);
        self.pods.run(config).await.unwrap()
    }

    pub async fn pod(&mut self) -> String {
        self.pod_with(|_| {}).await
    }

    /// The cgroup parent of the fixture's pod number `n`.
    pub fn pod_cgroup(&self, n: usize) -> String {
        format!("/{}/pod{n}", self.cgroup_parent())
    }

    /// The parent of the fixture's pod cgroups: one per fixture, so that no test removes a
    /// parent another test's daemon is creating a cgroup in.
    fn cgroup_parent(&self) -> String {
        format!("crius-test-{}", self.pods.bridge)
    }

    /// A container config as kubelet sends it: the busybox image, `command`, a log path.
    pub fn config(&self, name: &str, command: &[&str]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(spec(&self.image)),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(cri::LinuxContainerConfig::default()),
            ..Default::default()
        }
    }

    pub async fn create(
        &mut self,
        pod_id: &str,
        config: cri::ContainerConfig,
    ) -> Result<String, tonic::Status> {
        let response = self
            .client()
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.into(),
                config: Some(config),
                sandbox_config: None,
            })
            .await?;
        Ok(response.into_inner().container_id)
    }

    pub async fn start(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.client()
            .runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .map(|_| ())
    }

    /// Creates and starts a container; returns its id.
    pub async fn run(&mut self, pod_id: &str, config: cri::ContainerConfig) -> String {
        let id = self.create(pod_id, config).await.unwrap();
        self.start(&id).await.unwrap();
        id
    }

    pub async fn stop(&mut self, id: &str, timeout: i64) -> Result<(), tonic::Status> {
        self.client()
            .runtime
            .stop_container(cri::StopContainerRequest {
                container_id: id.into(),
                timeout,
            })
            .await
            .map(|_| ())
    }

    pub async fn remove(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.client()
            .runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .map(|_| ())
    }

    pub async fn status(&mut self, id: &str) -> Result<cri::ContainerStatus, tonic::Status> {
        let response = self
            .client()
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await?;
        Ok(response.into_inner().status.unwrap())
    }

    /// The `info` JSON of a verbose ContainerStatus.
    pub async fn info(&mut self, id: &str) -> serde_json::Value {
        let response = self
            .client()
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .unwrap()
            .into_inner();
        serde_json::from_str(&response.info["info"]).unwrap()
    }

    pub async fn list(&mut self, filter: cri::ContainerFilter) -> Vec<cri::Container> {
        self.client()
            .runtime
            .list_containers(cri::ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .unwrap()
            .into_inner()
            .containers
    }

    /// Waits (bounded) until the container has exited; returns its status.
    pub async fn wait_exited(&mut self, id: &str) -> cri::ContainerStatus {
        let deadline = Instant::now() + EXIT_PATIENCE;
        loop {
            let status = self.status(id).await.unwrap();
            if status.state == cri::ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {:?} after {EXIT_PATIENCE:?}",
                status.state()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (bounded) until the container's stdout, as logged, is `expected`.
    pub async fn wait_for_output(&mut self, id: &str, expected: &str) {
        let log_path = self.status(id).await.unwrap().log_path;
        let deadline = Instant::now() + EXIT_PATIENCE;
        loop {
            let stdout = joined(&read_log(Path::new(&log_path)), "stdout");
            if stdout == expected.as_bytes() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} wrote {:?}, not {expected:?}",
                String::from_utf8_lossy(&stdout)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs a container to its end in `pod_id`; returns its status and its stdout and stderr
    /// as the log file has them.
    pub async fn run_to_exit(
        &mut self,
        pod_id: &str,
        config: cri::ContainerConfig,
    ) -> (cri::ContainerStatus, String, String) {
        let id = self.run(pod_id, config).await;
        let status = self.wait_exited(&id).await;
        let records = read_log(Path::new(&status.log_path));
        let text = |stream: &str| String::from_utf8(joined(&records, stream)).unwrap();
        let (stdout, stderr) = (text("stdout"), text("stderr"));
        self.remove(&id).await.unwrap();
        (status, stdout, stderr)
    }

    /// Mount points under the fixture's directory.
    pub fn mounts(&self) -> Vec<String> {
        self.pods.mounts()
    }

    /// The OCI runtime's state dir for the default handler.
    pub fn runc_root(&self) -> PathBuf {
        self.pods.paths().state_dir.join("runtimes/runc")
    }

    /// Containers runc still knows.
    pub fn runc_containers(&self) -> Vec<String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for ContainerFixture {
    fn drop(&mut self) {
        // The daemon dies with the fixture; the containers and their monitors would not.
        for id in self.runc_containers() {
            Command::new("runc")
                .arg("--root")
                .arg(self.runc_root())
                .args(["delete", "--force", &id])
                .output()
                .ok();
        }
        // The pods' init processes (a pod-wide PID namespace each), which RemovePodSandbox
        // would have ended.
        let pods = self.pods.paths().state_dir.join("pods");
        for pod in std::fs::read_dir(pods).into_iter().flatten().flatten() {
            let pid = std::fs::read_to_string(pod.path().join("ns/init.pid"))
                .ok()
                .and_then(|pid| pid.trim().parse::<i32>().ok());
            if let Some(pid) = pid {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .ok();
            }
        }
        for mount in self.mounts().iter().rev() {
            Command::new("umount").args(["-l", mount]).output().ok();
        }
        // The pods' cgroups, which RemovePodSandbox would have removed.
        let hierarchies = std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for n in 1..=self.pods_made {
            let pod_cgroup = self.pod_cgroup(n);
            for hierarchy in &hierarchies {
                std::fs::remove_dir(hierarchy.join(pod_cgroup.trim_start_matches('/'))).ok();
            }
        }
        // Their parent too.
        for hierarchy in &hierarchies {
            std::fs::remove_dir(hierarchy.join(self.cgroup_parent())).ok();
        }
    }
}

/// The records of a CRI log file (`<timestamp> <stream> <P|F> <content>`).
pub fn read_log(path: &Path) -> Vec<LogRecord> {
    parse_log(&std::fs::read(path).unwrap_or_default())
}

pub fn parse_log(bytes: &[u8]) -> Vec<LogRecord> {
    let mut records = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let mut fields = line.splitn(4, |&b| b == b' ');
        let timestamp = String::from_utf8(fields.next().unwrap().to_vec()).unwrap();
        let stream = String::from_utf8(fields.next().unwrap().to_vec()).unwrap();
        let tag = fields.next().unwrap();
        assert!(tag == b"P" || tag == b"F", "bad tag in {line:?}");
        records.push(LogRecord {
            timestamp,
            stream,
            full: tag == b"F",
            content: fields.next().unwrap_or_default().to_vec(),
        });
    }
    records
}

/// The bytes a stream carried: partial records joined, full records ended by a newline.
pub fn joined(records: &[LogRecord], stream: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records.iter().filter(|r| r.stream == stream) {
        out.extend_from_slice(&record.content);
        if record.full {
            out.push(b'\n');
        }
    }
    out
}
