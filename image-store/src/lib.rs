//! crius-image-store: pulls images from OCI registries into a verified content store and unpacks
//! their layers as directories that overlayfs stacks.
//!
//! A leaf crate: no gRPC, no CRI types; it hands the server plain values (an image record, a
//! rootfs as a list of layer directories).

pub mod digest;
pub mod reference;
pub mod registries_conf;
pub mod unpack;
