//! The image service against registries that fail, lie or need credentials, and against
//! hostile layers: each failure is a clear gRPC error, commits nothing, and leaves no temp file
//! and nothing outside the store.

#![allow(clippy::unwrap_used)] // a panic is how a test helper reports the failure

use std::path::Path;

use crius_conformance::daemon::Crius;
use crius_conformance::fixture::ImageFixture;
use crius_conformance::hostile_registry::{Canned, HostileRegistry};
use crius_conformance::image::{
    LayerBuilder, OCI_CONFIG, OCI_MANIFEST, OciImage, RunConfig, busybox_image, sha256_digest,
};
use crius_conformance::registry::TestRegistry;
use k8s_cri::v1 as cri;
use nix::sys::signal::Signal;
use tonic::Code;

/// A loopback port bound but not listening, for as long as the socket lives: connections to it
/// are refused, and nothing else can take the port meanwhile.
fn dead_host() -> (std::os::fd::OwnedFd, String) {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
    };
    use std::os::fd::AsRawFd as _;
    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(socket.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    let address: SockaddrIn = getsockname(socket.as_raw_fd()).unwrap();
    (socket, address.to_string())
}

async fn assert_nothing_committed(fx: &mut ImageFixture) {
    assert!(fx.list().await.is_empty(), "an image was recorded");
    assert_eq!(fx.stored(), (vec![], vec![]), "content was committed");
    assert!(fx.staged().is_empty(), "temp files left: {:?}", fx.staged());
}

#[tokio::test]
async fn a_mirror_that_is_down_falls_back_to_the_next_and_tags_keep_the_original_name() {
    let registry = TestRegistry::start().await.unwrap();
    let image = busybox_image().unwrap();
    registry.push("k8s/pause", "3.10", &image).await.unwrap();
    let (_dead_socket, dead_host) = dead_host();
    let mirrors = format!(
        "[[registry]]\nprefix = \"registry.k8s.io\"\nlocation = \"registry.k8s.io\"\n\
         [[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n\
         [[registry.mirror]]\nlocation = \"{}/k8s\"\ninsecure = true\n",
        dead_host,
        registry.host()
    );
    let mut fx = ImageFixture::with(registry, &mirrors, "").await;
    assert_eq!(
        fx.pull("registry.k8s.io/pause:3.10").await.unwrap(),
        image.id()
    );
    let status = fx.status("registry.k8s.io/pause:3.10").await.unwrap();
    assert_eq!(status.repo_tags, ["registry.k8s.io/pause:3.10"]);
    assert!(
        fx.crius.log().contains("trying the next source"),
        "{}",
        fx.crius.log()
    );
}

#[tokio::test]
async fn the_configured_pause_image_is_pinned() {
    let registry = TestRegistry::start().await.unwrap();
    let image = busybox_image().unwrap();
    registry.push("k8s/pause", "3.10", &image).await.unwrap();
    registry.push("k8s/other", "1", &image).await.unwrap();
    let mirror = format!(
        "[[registry]]\nprefix = \"registry.k8s.io\"\nlocation = \"registry.k8s.io\"\n\
         [[registry.mirror]]\nlocation = \"{}/k8s\"\ninsecure = true\n",
        registry.host()
    );
    let mut fx = ImageFixture::with(registry, &mirror, "").await;
    fx.pull("registry.k8s.io/pause:3.10").await.unwrap();
    assert!(
        fx.status("registry.k8s.io/pause:3.10")
            .await
            .unwrap()
            .pinned
    );
    let mut images = fx.list().await;
    assert_eq!(images.len(), 1);
    assert!(images.remove(0).pinned);
}

#[tokio::test]
async fn a_blocked_registry_is_permission_denied() {
    let blocked = "[[registry]]\nlocation = \"blocked.example\"\nblocked = true\n";
    let mut fx = ImageFixture::with(TestRegistry::start().await.unwrap(), blocked, "").await;
    let err = fx.pull("blocked.example/x:1").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("blocked"), "{err:?}");
}

#[tokio::test]
async fn a_registry_with_htpasswd_takes_only_the_right_credentials() {
    let registry = TestRegistry::start_with_users(&[("alice", "s3cret")])
        .await
        .unwrap();
    registry
        .push("private/busybox", "1", &busybox_image().unwrap())
        .await
        .unwrap();
    let mut fx = ImageFixture::with(registry, "", "").await;
    let name = fx.name("private/busybox:1");
    let auth = |user: &str, password: &str| cri::AuthConfig {
        username: user.into(),
        password: password.into(),
        ..Default::default()
    };

    let missing = fx.pull(&name).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    let wrong = fx
        .pull_with(&name, Some(auth("alice", "guess")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert!(
        !wrong.message().contains("guess"),
        "a password in an error: {wrong:?}"
    );
    assert_nothing_committed(&mut fx).await;

    fx.pull_with(&name, Some(auth("alice", "s3cret")))
        .await
        .unwrap();
    fx.remove(&name).await;
    let base64_form = cri::AuthConfig {
        auth: "YWxpY2U6czNjcmV0".into(), // alice:s3cret
        ..Default::default()
    };
    fx.pull_with(&name, Some(base64_form)).await.unwrap();
}

#[tokio::test]
async fn credentials_come_from_the_auth_file_for_their_host() {
    let registry = TestRegistry::start_with_users(&[("bob", "pw")])
        .await
        .unwrap();
    registry
        .push("private/busybox", "1", &busybox_image().unwrap())
        .await
        .unwrap();
    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"Ym9iOnB3"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let config = format!("[image]\nauth_file = \"{}\"\n", auth_file.display());
    let mut fx = ImageFixture::with(registry, "", &config).await;
    let name = fx.name("private/busybox:1");
    fx.pull(&name).await.unwrap();
}

/// Pushes a one-layer image whose layer is `layer` and pulls it; returns the pull's outcome.
async fn pull_layer(
    fx: &mut ImageFixture,
    tag: &str,
    layer: LayerBuilder,
) -> Result<String, tonic::Status> {
    let image = OciImage::build(vec![layer], &RunConfig::default()).unwrap();
    fx.registry.push("test/hostile", tag, &image).await.unwrap();
    let name = fx.name(&format!("test/hostile:{tag}"));
    fx.pull(&name).await
}

#[tokio::test]
async fn hostile_layers_cannot_touch_anything_outside_the_layer() {
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    let mut fx = ImageFixture::new().await;
    let outside = tempfile::tempdir().unwrap();
    let sentinel = outside.path().join("sentinel");
    std::fs::write(&sentinel, "untouched").unwrap();
    let mode = |path: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
    };
    let outside_mode = mode(outside.path());
    let outside_dir = outside.path().display().to_string();
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    let refused: Vec<(&str, LayerBuilder)> = vec![
        (
            "dotdot",
            LayerBuilder::default()
                .raw_entry(Regular, "../escape", "", b"x")
                .unwrap(),
        ),
        (
            "nested-dotdot",
            LayerBuilder::default()
                .raw_entry(Regular, "a/../../escape", "", b"x")
                .unwrap(),
        ),
        (
            "hardlink-out",
            LayerBuilder::default()
                .raw_entry(Link, "passwd", &format!("{outside_dir}/sentinel"), b"")
                .unwrap(),
        ),
        (
            "hardlink-dotdot",
            LayerBuilder::default()
                .raw_entry(Link, "x", "../../../../etc/passwd", b"")
                .unwrap(),
        ),
        (
            "whiteout-dotdot",
            LayerBuilder::default()
                .raw_entry(Regular, ".wh...", "", b"")
                .unwrap(),
        ),
    ];
    for (tag, layer) in refused {
        let err = pull_layer(&mut fx, tag, layer).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{tag}: {err:?}");
        assert_nothing_committed(&mut fx).await;
    }

    // Absolute paths and symlinks are resolved inside the layer: these pull, harmlessly.
    let contained: Vec<(&str, LayerBuilder)> = vec![
        (
            "absolute",
            LayerBuilder::default()
                .raw_entry(Regular, &format!("{outside_dir}/evil"), "", b"x")
                .unwrap(),
        ),
        (
            "symlink-then-write",
            LayerBuilder::default()
                .raw_entry(Symlink, "link", &outside_dir, b"")
                .unwrap()
                .raw_entry(Regular, "link/evil", "", b"x")
                .unwrap(),
        ),
        (
            "symlink-dir-then-chmod",
            LayerBuilder::default()
                .raw_entry(Symlink, "d", &outside_dir, b"")
                .unwrap()
                .raw_entry(Directory, "d", "", b"")
                .unwrap(),
        ),
    ];
    for (tag, layer) in contained {
        let outcome = pull_layer(&mut fx, tag, layer).await;
        if let Err(err) = &outcome {
            assert_eq!(err.code(), Code::FailedPrecondition, "{tag}: {err:?}");
        }
        assert!(fx.staged().is_empty(), "{tag}: temp files left");
    }
    assert_eq!(listing(outside.path()), ["sentinel"]);
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert_eq!(
        mode(outside.path()),
        outside_mode,
        "the outside dir's mode was changed"
    );
}

#[tokio::test]
async fn a_decompression_bomb_stops_at_the_layer_size_limit() {
    let registry = TestRegistry::start().await.unwrap();
    let mut fx = ImageFixture::with(registry, "", "[image]\nmax_layer_bytes = 1048576\n").await;
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let err = pull_layer(
        &mut fx,
        "bomb",
        LayerBuilder::default()
            .file("zeros", 0o644, &zeros)
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("limit"), "{err:?}");
    assert_nothing_committed(&mut fx).await;
}

/// A valid image, served by a hostile registry under `test/x`: returns the manifest, config and
/// layer blobs so a test can corrupt one of them.
fn serve_image(hostile: &HostileRegistry, tag: &str) -> OciImage {
    let image = OciImage::build(
        vec![
            LayerBuilder::default()
                .file("hello", 0o644, b"hello")
                .unwrap(),
        ],
        &RunConfig::default(),
    )
    .unwrap();
    hostile.route(
        &format!("/v2/test/x/manifests/{tag}"),
        Canned::ok(OCI_MANIFEST, image.manifest.bytes.clone()),
    );
    for blob in image.blobs() {
        hostile.route(
            &format!("/v2/test/x/blobs/{}", blob.digest),
            Canned::ok("application/octet-stream", blob.bytes.clone()),
        );
    }
    image
}

async fn hostile_fixture(hostile: &HostileRegistry, config_toml: &str) -> ImageFixture {
    let conf = format!(
        "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
        hostile.host()
    );
    ImageFixture::with(TestRegistry::start().await.unwrap(), &conf, config_toml).await
}

#[tokio::test]
async fn content_that_does_not_match_its_digest_is_refused() {
    let hostile = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    let name = |reference: &str| format!("{}/test/x{reference}", hostile.host());

    // The control: served honestly, the image pulls.
    let image = serve_image(&hostile, "good");
    assert_eq!(fx.pull(&name(":good")).await.unwrap(), image.id());
    fx.remove(&name(":good")).await;

    // The same manifest for any digest: pulling by another digest must fail.
    let other = sha256_digest(b"another manifest");
    hostile.route(
        &format!("/v2/test/x/manifests/{other}"),
        Canned::ok(OCI_MANIFEST, image.manifest.bytes.clone()),
    );
    let err = fx.pull(&name(&format!("@{other}"))).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // A layer blob with other bytes of the same size.
    let image = serve_image(&hostile, "bad-layer");
    let layer = &image.layers[0];
    let mut tampered = layer.bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    hostile.route(
        &format!("/v2/test/x/blobs/{}", layer.digest),
        Canned::ok("application/octet-stream", tampered),
    );
    let err = fx.pull(&name(":bad-layer")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // A layer blob longer than its descriptor says.
    let image = serve_image(&hostile, "long-layer");
    let layer = &image.layers[0];
    let mut longer = layer.bytes.clone();
    longer.extend_from_slice(b"trailing");
    hostile.route(
        &format!("/v2/test/x/blobs/{}", layer.digest),
        Canned::ok("application/octet-stream", longer),
    );
    let err = fx.pull(&name(":long-layer")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // A config with other bytes.
    let image = serve_image(&hostile, "bad-config");
    hostile.route(
        &format!("/v2/test/x/blobs/{}", image.config.digest),
        Canned::ok(
            OCI_CONFIG,
            br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
        ),
    );
    let err = fx.pull(&name(":bad-config")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_nothing_committed(&mut fx).await;
}

#[tokio::test]
async fn malformed_and_schema1_manifests_are_refused() {
    let hostile = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    let name = |tag: &str| format!("{}/test/x:{tag}", hostile.host());
    hostile.route(
        "/v2/test/x/manifests/schema1",
        Canned::ok(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"test/x","tag":"schema1","fsLayers":[]}"#.to_vec(),
        ),
    );
    let err = fx.pull(&name("schema1")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("schema 1"), "{err:?}");

    let evil_digest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:../../../../etc/passwd","size":1}},
            "layers":[]}}"#
    );
    hostile.route(
        "/v2/test/x/manifests/evil",
        Canned::ok(OCI_MANIFEST, evil_digest.into_bytes()),
    );
    let err = fx.pull(&name("evil")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let requested = hostile.requests();
    assert!(
        !requested.iter().any(|p| p.contains("etc/passwd")),
        "{requested:?}"
    );

    hostile.route(
        "/v2/test/x/manifests/junk",
        Canned::ok(OCI_MANIFEST, b"not json".to_vec()),
    );
    let err = fx.pull(&name("junk")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_nothing_committed(&mut fx).await;
}

#[tokio::test]
async fn a_stalled_download_fails_after_the_progress_timeout_and_leaves_nothing() {
    let hostile = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "[image]\npull_progress_timeout = \"1s\"\n").await;
    let image = serve_image(&hostile, "stall");
    let layer = &image.layers[0];
    let mut stalled = Canned::ok("application/octet-stream", layer.bytes.clone());
    stalled.stall_after = Some(layer.bytes.len() / 2);
    hostile.route(&format!("/v2/test/x/blobs/{}", layer.digest), stalled);
    let err = fx
        .pull(&format!("{}/test/x:stall", hostile.host()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_nothing_committed(&mut fx).await;
}

#[tokio::test]
async fn kill_9_in_the_middle_of_a_pull_leaves_a_clean_store_after_restart() {
    let hostile = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    let kept = busybox_image().unwrap();
    fx.push_and_pull("test/kept", "1", &kept).await;

    let image = serve_image(&hostile, "crash");
    let layer = &image.layers[0];
    let mut stalled = Canned::ok("application/octet-stream", layer.bytes.clone());
    stalled.stall_after = Some(layer.bytes.len() / 2);
    hostile.route(&format!("/v2/test/x/blobs/{}", layer.digest), stalled);
    let name = format!("{}/test/x:crash", hostile.host());
    let mut client = fx.client.clone();
    let pull = tokio::spawn(async move {
        client
            .image
            .pull_image(cri::PullImageRequest {
                image: Some(crius_conformance::fixture::spec(&name)),
                ..Default::default()
            })
            .await
    });
    // The registry sees the layer request before the daemon has its response headers and
    // stages the layer, so wait for both, bounded: the stall holds the pull there.
    let layer_path = format!("/v2/test/x/blobs/{}", layer.digest);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !hostile.requests().contains(&layer_path) || fx.staged().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never got to staging the layer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    fx.crius.signal_and_wait(Signal::SIGKILL).await.unwrap();
    assert!(pull.await.unwrap().is_err());

    let arg = format!("--registries-conf={}", fx.registries_conf().display());
    let restarted = Crius::start_at(fx.crius.paths.clone(), &[arg.as_str()])
        .await
        .unwrap();
    fx.client = restarted.client().await.unwrap();
    let images = fx.list().await;
    assert_eq!(images.len(), 1, "the other image is untouched");
    assert_eq!(images[0].id, kept.id());
    assert!(fx.staged().is_empty(), "temp files left: {:?}", fx.staged());
    let (layers, blobs) = fx.stored();
    assert_eq!(
        (layers.len(), blobs.len()),
        (1, 3),
        "only the kept image's content"
    );
    assert!(
        !blobs
            .iter()
            .any(|b| b.ends_with(layer.digest.trim_start_matches("sha256:")))
    );
}

#[tokio::test]
async fn a_download_that_breaks_off_resumes_with_a_range_request() {
    let hostile = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    let image = serve_image(&hostile, "resume");
    let layer = &image.layers[0];
    let layer_path = format!("/v2/test/x/blobs/{}", layer.digest);
    let mut breaking = Canned::ok("application/octet-stream", layer.bytes.clone());
    breaking.cut_after = Some(layer.bytes.len() / 2);
    breaking.cut_times = 1;
    hostile.route(&layer_path, breaking);
    assert_eq!(
        fx.pull(&format!("{}/test/x:resume", hostile.host()))
            .await
            .unwrap(),
        image.id()
    );
    let ranges: Vec<_> = hostile
        .full_requests()
        .into_iter()
        .filter(|r| r.path == layer_path)
        .map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(
        ranges,
        [None, Some(format!("bytes={}-", layer.bytes.len() / 2))]
    );
    assert!(fx.staged().is_empty());
}

/// Serves `test/x:tag` behind a bearer token that `/token` grants to `alice:pw` only.
fn serve_behind_token(hostile: &HostileRegistry, realm_host: &str, tag: &str) -> OciImage {
    let image = serve_image(hostile, tag);
    let challenge = format!(
        r#"Bearer realm="http://{realm_host}/token",service="hostile",scope="repository:test/x:pull""#
    );
    let mut paths = vec![format!("/v2/test/x/manifests/{tag}")];
    paths.extend(
        image
            .blobs()
            .map(|b| format!("/v2/test/x/blobs/{}", b.digest)),
    );
    for path in paths {
        let mut canned = if path.contains("/manifests/") {
            Canned::ok(OCI_MANIFEST, image.manifest.bytes.clone())
        } else {
            let blob = image.blobs().find(|b| path.ends_with(&b.digest)).unwrap();
            Canned::ok("application/octet-stream", blob.bytes.clone())
        };
        canned.require_authorization = Some("Bearer tok123".into());
        canned
            .headers
            .push(("WWW-Authenticate".into(), challenge.clone()));
        hostile.route(&path, canned);
    }
    image
}

fn token_endpoint(server: &HostileRegistry) {
    let mut token = Canned::ok("application/json", br#"{"token":"tok123"}"#.to_vec());
    token.require_authorization = Some("Basic YWxpY2U6cHc=".into()); // alice:pw
    server.route("/token", token);
}

fn alice() -> Option<cri::AuthConfig> {
    Some(cri::AuthConfig {
        username: "alice".into(),
        password: "pw".into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_bearer_token_is_fetched_with_the_credentials_and_used() {
    let hostile = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    token_endpoint(&hostile);
    let image = serve_behind_token(&hostile, &hostile.host(), "token");
    let name = format!("{}/test/x:token", hostile.host());

    let err = fx.pull(&name).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert_eq!(fx.pull_with(&name, alice()).await.unwrap(), image.id());
    let token_requests: Vec<_> = hostile
        .full_requests()
        .into_iter()
        .filter(|r| r.path == "/token")
        .collect();
    assert!(
        token_requests
            .iter()
            .any(|r| r.header("authorization").is_some())
    );
}

#[tokio::test]
async fn credentials_never_go_to_a_token_realm_on_another_host_over_http() {
    let hostile = HostileRegistry::start().await.unwrap();
    let elsewhere = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    token_endpoint(&elsewhere);
    serve_behind_token(&hostile, &elsewhere.host(), "realm");
    let err = fx
        .pull_with(&format!("{}/test/x:realm", hostile.host()), alice())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let sent: Vec<_> = elsewhere.full_requests();
    assert!(!sent.is_empty(), "the realm was asked for a token");
    assert!(
        sent.iter().all(|r| r.header("authorization").is_none()),
        "{sent:?}"
    );
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_host() {
    let hostile = HostileRegistry::start().await.unwrap();
    let storage = HostileRegistry::start().await.unwrap();
    let mut fx = hostile_fixture(&hostile, "").await;
    let image = serve_image(&hostile, "redirect");
    let basic = "Basic YWxpY2U6cHc="; // alice:pw
    let mut paths = vec!["/v2/test/x/manifests/redirect".to_string()];
    paths.extend(
        image
            .blobs()
            .map(|b| format!("/v2/test/x/blobs/{}", b.digest)),
    );
    for path in paths {
        let layer = &image.layers[0];
        let mut canned = if path.ends_with(&layer.digest) {
            storage.route(
                "/layer",
                Canned::ok("application/octet-stream", layer.bytes.clone()),
            );
            Canned::redirect(&format!("http://{}/layer", storage.host()))
        } else if path.contains("/manifests/") {
            Canned::ok(OCI_MANIFEST, image.manifest.bytes.clone())
        } else {
            Canned::ok(OCI_CONFIG, image.config.bytes.clone())
        };
        canned.require_authorization = Some(basic.into());
        canned
            .headers
            .push(("WWW-Authenticate".into(), r#"Basic realm="hostile""#.into()));
        hostile.route(&path, canned);
    }
    let name = format!("{}/test/x:redirect", hostile.host());
    assert_eq!(fx.pull_with(&name, alice()).await.unwrap(), image.id());
    let at_storage = storage.full_requests();
    assert_eq!(at_storage.len(), 1, "{at_storage:?}");
    assert_eq!(
        at_storage[0].header("authorization"),
        None,
        "credentials followed the redirect"
    );
}
