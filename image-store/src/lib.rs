//! crius-image-store: pulls images from OCI registries into a verified content store and unpacks
//! their layers as directories that overlayfs stacks.
//!
//! A leaf crate: no gRPC, no CRI types; it hands the server plain values (an image record, a
//! rootfs as a list of layer directories). [`store::ImageStore`] is the entry point: `pull`,
//! `status`, `list`, `remove`, `fs_usage`.

mod blocking;
pub mod content;
pub mod digest;
mod durable;
mod error;
pub mod images;
pub mod layers;
pub mod manifest;
mod pull;
pub mod reference;
pub mod registries_conf;
pub mod registry;
pub mod store;
mod stream;
pub mod unpack;

pub use error::{ImageStoreError, ImageStoreErrorKind};
