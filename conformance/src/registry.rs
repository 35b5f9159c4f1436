//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution) on 127.0.0.1 and
//! a random port, storing into a temp dir, and the push half of the distribution protocol.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;

use crate::image::{Blob, OciImage};

/// Where Debian's `docker-registry` package installs the binary.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

const PATIENCE: Duration = Duration::from_secs(30);

/// A running registry; killed and its storage removed when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    addr: SocketAddr,
    http: reqwest::Client,
    /// What the harness itself pushes with, on a registry that asks for auth.
    credentials: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_users(&[]).await
    }

    /// A registry that asks for HTTP basic auth (htpasswd, bcrypt) when `users` is not empty.
    pub async fn start_with_users(users: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let config = dir.path().join("config.yml");
        let mut text = registry_config(&dir.path().join("data"));
        if !users.is_empty() {
            let htpasswd = dir.path().join("htpasswd");
            let mut lines = String::new();
            for (user, password) in users {
                lines.push_str(&format!("{user}:{}\n", bcrypt::hash(password, 4)?));
            }
            std::fs::write(&htpasswd, lines)?;
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: crius-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, text).context("write registry config")?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {REGISTRY_BINARY} (install docker-registry)"))?;
        let mut registry = TestRegistry {
            child,
            // Port 0 until the registry says which port it bound.
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            http: reqwest::Client::new(),
            credentials: users.first().map(|(u, p)| (u.to_string(), p.to_string())),
            dir,
        };
        registry.wait_until_serving().await?;
        Ok(registry)
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Waits until the registry has logged the port it bound and answers there. It binds port
    /// 0 itself: a port picked here and bound later could be taken by then.
    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.addr.port() == 0
                && let Some(addr) = listening_address(&self.log())
            {
                self.addr = addr;
            }
            if self.addr.port() != 0
                && let Ok(response) = self
                    .request(reqwest::Method::GET, self.url("/v2/"))
                    .send()
                    .await
                && response.status() == StatusCode::OK
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited with {status}:\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not serve within {PATIENCE:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Pushes every blob of `image`, then its manifest under `tag`; returns the manifest digest
    /// the registry reports.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        image: &OciImage,
    ) -> anyhow::Result<String> {
        for blob in image.blobs() {
            self.push_blob(repository, blob).await?;
        }
        self.push_manifest(repository, tag, &image.manifest).await
    }

    /// Pushes the images of an index by digest, then the index under `tag`.
    pub async fn push_index(
        &self,
        repository: &str,
        tag: &str,
        images: &[&OciImage],
        index: &Blob,
    ) -> anyhow::Result<String> {
        for image in images {
            for blob in image.blobs() {
                self.push_blob(repository, blob).await?;
            }
            self.push_manifest(repository, &image.manifest.digest, &image.manifest)
                .await?;
        }
        self.push_manifest(repository, tag, index).await
    }

    /// PUTs a manifest (or index) under a tag or its digest; returns the stored digest.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Blob,
    ) -> anyhow::Result<String> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let response = self
            .request(reqwest::Method::PUT, &url)
            .header("Content-Type", manifest.media_type)
            .body(manifest.bytes.clone())
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let response = expect_status(response, StatusCode::CREATED).await?;
        let digest = response
            .headers()
            .get("Docker-Content-Digest")
            .context("manifest PUT answered without Docker-Content-Digest")?
            .to_str()?
            .to_string();
        if digest != manifest.digest {
            bail!(
                "registry stored manifest {digest}, pushed {}",
                manifest.digest
            );
        }
        Ok(digest)
    }

    /// A monolithic upload: POST to open an upload session, PUT the bytes with their digest.
    async fn push_blob(&self, repository: &str, blob: &Blob) -> anyhow::Result<()> {
        let exists = self
            .request(
                reqwest::Method::HEAD,
                self.url(&format!("/v2/{repository}/blobs/{}", blob.digest)),
            )
            .send()
            .await?;
        if exists.status() == StatusCode::OK {
            return Ok(());
        }
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let response = self
            .request(reqwest::Method::POST, &url)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let response = expect_status(response, StatusCode::ACCEPTED).await?;
        let location = response
            .headers()
            .get("Location")
            .context("upload POST answered without Location")?
            .to_str()?;
        let mut upload = response.url().join(location).context("upload Location")?;
        upload.query_pairs_mut().append_pair("digest", &blob.digest);
        let response = self
            .request(reqwest::Method::PUT, upload.clone())
            .header("Content-Type", "application/octet-stream")
            .body(blob.bytes.clone())
            .send()
            .await
            .with_context(|| format!("PUT {upload}"))?;
        expect_status(response, StatusCode::CREATED).await?;
        Ok(())
    }

    /// GETs a path of the registry API, with an `Accept` header, and returns status and body.
    pub async fn get(&self, path: &str, accept: &str) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let response = self
            .request(reqwest::Method::GET, self.url(path))
            .header("Accept", accept)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        Ok((status, response.bytes().await?.to_vec()))
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn expect_status(
    response: reqwest::Response,
    expected: StatusCode,
) -> anyhow::Result<reqwest::Response> {
    if response.status() == expected {
        return Ok(response);
    }
    let status = response.status();
    let url = response.url().clone();
    let body = response.text().await.unwrap_or_default();
    bail!("{url} answered {status}, expected {expected}: {body}")
}

/// The address in the registry's `msg="listening on 127.0.0.1:<port>"` log line.
fn listening_address(log: &str) -> Option<SocketAddr> {
    let (_, rest) = log.split_once("msg=\"listening on ")?;
    rest.split_once('"')?.0.parse().ok()
}

/// The registry's configuration: a random loopback port, which it logs (at level info).
fn registry_config(storage: &Path) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:0\n",
        storage.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_address_is_read_from_the_registrys_log() {
        let log = "time=\"t\" level=info msg=\"redis not configured\" go.version=go1.19.8\n\
                   time=\"t\" level=info msg=\"listening on 127.0.0.1:38537\" go.version=go1.19.8\n";
        assert_eq!(
            listening_address(log),
            Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 38537)))
        );
        assert_eq!(
            listening_address("level=info msg=\"redis not configured\""),
            None
        );
    }
}
