//! The per-container monitor (`crius-monitor container`): the process that creates a container
//! through the OCI runtime, holds its stdio, writes its log and records how it ended.
