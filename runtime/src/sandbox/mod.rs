//! Pod sandboxes: their records, kept on disk across daemon restarts, and the files a pod gets
//! (hostname, resolv.conf, a /dev/shm of its own). The records are kept by [`crate::record_store`].

pub mod files;
pub mod record;
