//! crius-conformance: drives a CRI runtime the way kubelet, crictl and critest do, over its unix
//! socket, with real components around it.
//!
//! The pieces:
//! - [`daemon::Crius`]: the built `crius` binary started in its own temp dirs (root, state dir,
//!   socket, CNI config dir), killed when dropped; its log is kept for assertions.
//! - [`client::CriClient`]: typed `RuntimeService` and `ImageService` clients over the socket.
//! - [`registry::TestRegistry`]: Debian's `docker-registry` on 127.0.0.1 and a random port, with a
//!   minimal OCI distribution push client.
//! - [`pods::PodFixture`]: a crius on a bridge network of its own, for pod tests.
//! - [`containers::ContainerFixture`]: that, plus a registry and the busybox image pulled, for
//!   container tests, with readers of the kubelet log format.
//! - [`cni`]: network configurations for the real CNI plugins of Debian's
//!   `containernetworking-plugins`.
//! - [`containerd::Containerd`]: containerd from Debian, the benchmarks' baseline, and
//!   [`bench`]'s medians, percentiles and ratios, and [`memory`]'s procfs readings (RSS, PSS,
//!   MemAvailable).
//! - [`fixture::ImageFixture`]: a test registry and a crius pulling from it, for image tests.
//! - [`hostile_registry::HostileRegistry`]: a registry that serves wrong digests, wrong sizes and
//!   stalls on purpose.
//! - [`image`]: OCI images assembled from files of this machine (static busybox) into gzip layers,
//!   an image config and a manifest, ready to push.
//! - The streaming clients, speaking to the URLs that Exec, Attach and PortForward return as
//!   client-go (crictl, kubectl) and kubelet do: remotecommand over WebSocket ([`remotecommand`])
//!   and over SPDY ([`spdy_remotecommand`]); port-forward over SPDY, directly or tunnelled
//!   through a WebSocket ([`spdy_portforward`]), and over kubelet's WebSocket channels
//!   ([`websocket_portforward`]), each connection a [`portforward::ForwardedConnection`]; with
//!   the HTTP upgrade to SPDY ([`spdy_upgrade`]) and the WebSocket handshake and channel
//!   messages ([`websocket_channels`]) they share.

pub mod bench;
pub mod client;
pub mod cni;
pub mod containerd;
pub mod containers;
pub mod daemon;
pub mod fixture;
pub mod hostile_registry;
pub mod image;
pub mod kubelet;
pub mod memory;
pub mod pods;
pub mod portforward;
pub mod registry;
pub mod remotecommand;
pub mod spdy_portforward;
pub mod spdy_remotecommand;
pub mod spdy_upgrade;
pub mod streaming;
pub mod websocket_channels;
pub mod websocket_portforward;

/// Whether the suite runs as root, as the pod and container tests need.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Ends a test that needs root, loudly, when the suite does not run as root.
#[macro_export]
macro_rules! require_root {
    ($what:literal) => {
        if !$crate::is_root() {
            eprintln!(concat!("!!! SKIPPED: ", $what, " need root"));
            return;
        }
    };
}
