//! CRI messages from the leaf crates' plain values, and back.

pub mod container;
pub mod container_status;
pub mod image;
pub mod sandbox;
