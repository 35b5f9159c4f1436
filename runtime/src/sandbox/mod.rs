//! Pod sandboxes: their records, kept on disk across daemon restarts, and the files a pod gets
//! (hostname, resolv.conf, a /dev/shm of its own).

pub mod files;
pub mod record;
pub mod store;
