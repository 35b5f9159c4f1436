//! crius-cni: the pod network through CNI plugins.
//!
//! Network configurations are `*.conflist` (or single-plugin `*.conf`/`*.json`) files in the CNI
//! config dir; plugins are executables in the plugin dirs. [`load_default_network`] finds the
//! network crius uses: the first valid file in lexical order, or the one of a configured name. The node is network-ready exactly
//! when there is one. A leaf crate: no gRPC and no CRI types.

mod config;
mod error;
pub mod exec;
mod loader;

pub use config::{NetworkConfigList, PluginConfig, SUPPORTED_CNI_VERSIONS};
pub use error::{CniError, CniErrorKind};
pub use loader::{load_default_network, load_network};
