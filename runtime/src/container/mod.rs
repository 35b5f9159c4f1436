//! Containers: their records, kept on disk across daemon restarts, their root filesystems and
//! the calls to the OCI runtime that start, signal, update and delete them.
