//! CNI network configurations for tests, using the real plugins Debian installs.

use std::path::Path;

use serde_json::json;

/// Where Debian's `containernetworking-plugins` installs the plugins.
pub const DEBIAN_PLUGIN_DIR: &str = "/usr/lib/cni";

/// A bridge network with host-local IPAM and portmap, the shape of a typical node's conflist.
pub fn bridge_conflist(name: &str, bridge: &str, subnet: &str) -> String {
    bridge_conflist_with_ipam_dir(name, bridge, subnet, None)
}

/// The same, with host-local's leases kept in `ipam_data_dir` (so a test can see them).
pub fn bridge_conflist_with_ipam_dir(
    name: &str,
    bridge: &str,
    subnet: &str,
    ipam_data_dir: Option<&Path>,
) -> String {
    let mut ipam = json!({"type": "host-local", "ranges": [[{"subnet": subnet}]]});
    if let Some(dir) = ipam_data_dir {
        ipam["dataDir"] = json!(dir);
    }
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

/// Writes `contents` as `dir/file_name`, creating `dir`.
pub fn write_config(dir: &Path, file_name: &str, contents: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(file_name), contents)
}
