//! The pod network as configured: the CNI network of `network.network_name`, or the first valid
//! one, read from the config dir at each use, so a conflist written later applies at once.

use crius_cni::{CniError, NetworkConfigList};

use crate::config::NetworkConfig;

/// Reads the directory and parses the files: call it from a blocking context.
pub fn load(config: &NetworkConfig) -> Result<NetworkConfigList, CniError> {
    let name = Some(config.network_name.as_str()).filter(|n| !n.is_empty());
    crius_cni::load_network(&config.cni_config_dir, &config.cni_plugin_dirs, name)
}
