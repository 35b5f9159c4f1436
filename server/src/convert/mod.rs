//! CRI messages from the leaf crates' plain values, and back.

pub mod image;
pub mod sandbox;
