//! A TCP connection to a port of a pod, made from inside the pod's network namespace, for
//! port-forward: `127.0.0.1:<port>` as the pod itself sees it.
//!
//! `setns(2)` moves only the calling thread, and a thread in a pod's namespace must never run
//! anything else: each connection is made by a thread of its own that enters the namespace,
//! connects and ends. The socket keeps the namespace it was made in.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sched::CloneFlags;

/// Connects to `127.0.0.1:port` in the network namespace pinned at `netns` (None: the host's,
/// for a pod on the host network), giving up after `timeout`. Blocks the caller until the
/// connection is made or has failed.
pub fn connect_to_pod_port(
    netns: Option<&Path>,
    port: u16,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Some(netns) = netns else {
        return TcpStream::connect_timeout(&address, timeout);
    };
    // Opened here, so that a missing namespace fails before a thread is made.
    let namespace = File::open(netns)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", netns.display())))?;
    let netns: PathBuf = netns.to_owned();
    std::thread::Builder::new()
        .name("crius-pod-connect".into())
        .spawn(move || {
            nix::sched::setns(&namespace, CloneFlags::CLONE_NEWNET).map_err(|e| {
                io::Error::other(format!("enter network namespace {}: {e}", netns.display()))
            })?;
            TcpStream::connect_timeout(&address, timeout)
        })?
        .join()
        .map_err(|_| io::Error::other("the connecting thread panicked"))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    #[test]
    fn the_host_network_is_reached_without_a_namespace() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = connect_to_pod_port(None, port, Duration::from_secs(5)).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        client.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        served.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }

    #[test]
    fn a_missing_namespace_is_an_error_that_names_it() {
        let error = connect_to_pod_port(
            Some(Path::new("/nonexistent/netns")),
            80,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/nonexistent/netns"), "{error}");
    }

    #[test]
    fn a_port_in_another_namespace_is_reached_from_inside_it() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP: entering a network namespace needs root");
            return;
        }
        // A namespace of its own, made by a thread that unshares, listens and serves one
        // connection; its /proc path stands for the pinned file.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).unwrap();
            // `lo` is down in a new namespace; the listener on 127.0.0.1 needs it up.
            crate::sys::namespace::NamespaceOps::set_loopback_up(
                &mut crate::sys::namespace::LinuxNamespaces,
            )
            .unwrap();
            let tid = nix::unistd::gettid();
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = listener.local_addr().unwrap().port();
            ready_tx.send((tid, port)).unwrap();
            let (mut served, _) = listener.accept().unwrap();
            served.write_all(b"from inside").unwrap();
        });
        let (tid, port) = ready_rx.recv().unwrap();
        let netns = PathBuf::from(format!("/proc/self/task/{tid}/ns/net"));
        let mut client = connect_to_pod_port(Some(&netns), port, Duration::from_secs(5)).unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "from inside");
        server.join().unwrap();
    }
}
