//! Pod sandboxes: their records, kept on disk across daemon restarts, and the files a pod gets
//! (hostname, resolv.conf, a /dev/shm of its own), and connections to a pod's ports for
//! port-forward. The records are kept by [`crate::record_store`].

pub mod files;
pub mod port_connect;
pub mod record;
