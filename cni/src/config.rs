//! One CNI network configuration file: parsing and validation.
//!
//! A `.conflist` holds `{cniVersion, name, plugins: [...]}`; a `.conf`/`.json` holds a single
//! plugin with `name` and `cniVersion` beside `type`, which becomes a list of one. The raw JSON of
//! each plugin is kept, because the plugin reads its own keys from it at ADD/DEL time.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The CNI spec versions whose results crius parses.
pub const SUPPORTED_CNI_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// Network configurations larger than this are refused unread.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A validated network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<PluginConfig>,
    /// The file it was read from.
    pub source: PathBuf,
}

/// One plugin of a list: its type (the executable's name), where that executable is, and the
/// plugin's own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub plugin_type: String,
    pub binary: PathBuf,
    pub raw: Map<String, Value>,
}

/// Why a file is not a usable network; the loader reports it and tries the next file.
pub(crate) enum Rejection {
    /// The file says `"disabled": true`: skipped on purpose, not an error.
    Disabled,
    Invalid(String),
}

impl NetworkConfigList {
    /// Parses and validates `bytes`, read from `source`. A `.conflist` must be a list; anything
    /// else is a single plugin. Every plugin's executable must be found in `plugin_dirs`.
    pub(crate) fn parse(
        source: &Path,
        bytes: &[u8],
        plugin_dirs: &[PathBuf],
    ) -> Result<Self, Rejection> {
        let invalid = |why: String| Rejection::Invalid(why);
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(invalid("not a JSON object".into()));
        };
        let is_list = source.extension().is_some_and(|e| e == "conflist");
        if is_list && top.get("disabled").and_then(Value::as_bool) == Some(true) {
            return Err(Rejection::Disabled);
        }
        let name = required_string(&top, "name").map_err(invalid)?;
        if !is_valid_network_name(&name) {
            return Err(invalid(format!(
                "network name {name:?} must start with a letter or digit and hold only letters, \
                 digits, '_', '.' and '-'"
            )));
        }
        let cni_version = required_string(&top, "cniVersion").map_err(invalid)?;
        if !SUPPORTED_CNI_VERSIONS.contains(&cni_version.as_str()) {
            return Err(invalid(format!(
                "cniVersion {cni_version:?} is not supported (supported: {})",
                SUPPORTED_CNI_VERSIONS.join(", ")
            )));
        }
        let raw_plugins = if is_list {
            match top.get("plugins") {
                Some(Value::Array(list)) if !list.is_empty() => list.clone(),
                Some(Value::Array(_)) => return Err(invalid("\"plugins\" is empty".into())),
                _ => return Err(invalid("\"plugins\" must be an array of plugins".into())),
            }
        } else {
            vec![Value::Object(top.clone())]
        };
        let plugins = raw_plugins
            .into_iter()
            .enumerate()
            .map(|(index, plugin)| PluginConfig::parse(index, plugin, plugin_dirs))
            .collect::<Result<Vec<_>, String>>()
            .map_err(invalid)?;
        Ok(NetworkConfigList {
            name,
            cni_version,
            plugins,
            source: source.to_path_buf(),
        })
    }
}

impl PluginConfig {
    fn parse(index: usize, plugin: Value, plugin_dirs: &[PathBuf]) -> Result<Self, String> {
        let Value::Object(raw) = plugin else {
            return Err(format!("plugin {index} is not a JSON object"));
        };
        let plugin_type =
            required_string(&raw, "type").map_err(|why| format!("plugin {index}: {why}"))?;
        if plugin_type.contains('/') || plugin_type == "." || plugin_type == ".." {
            return Err(format!(
                "plugin {index}: type {plugin_type:?} is not a file name"
            ));
        }
        let binary = find_executable(&plugin_type, plugin_dirs).ok_or_else(|| {
            let dirs: Vec<_> = plugin_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            format!("plugin {plugin_type:?} not found in {}", dirs.join(", "))
        })?;
        Ok(PluginConfig {
            plugin_type,
            binary,
            raw,
        })
    }
}

fn required_string(object: &Map<String, Value>, key: &str) -> Result<String, String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("{key:?} is empty")),
        Some(_) => Err(format!("{key:?} must be a string")),
        None => Err(format!("{key:?} is missing")),
    }
}

/// The CNI spec's network name grammar: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
fn is_valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn find_executable(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|dir| dir.join(name)).find(|path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn parse(file: &str, json: &str, dir: &tempfile::TempDir) -> Result<NetworkConfigList, String> {
        NetworkConfigList::parse(
            Path::new(file),
            json.as_bytes(),
            &[dir.path().to_path_buf()],
        )
        .map_err(|r| match r {
            Rejection::Disabled => "disabled".to_string(),
            Rejection::Invalid(why) => why,
        })
    }

    #[test]
    fn conflist_with_found_plugins_is_valid() {
        let dir = plugin_dir(&["bridge", "portmap"]);
        let list = parse(
            "10-crius.conflist",
            r#"{"cniVersion":"1.0.0","name":"crius","plugins":[
                {"type":"bridge","bridge":"cni0"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
            &dir,
        )
        .unwrap();
        assert_eq!(list.name, "crius");
        assert_eq!(list.cni_version, "1.0.0");
        let types: Vec<_> = list
            .plugins
            .iter()
            .map(|p| p.plugin_type.as_str())
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert_eq!(list.plugins[0].binary, dir.path().join("bridge"));
        assert_eq!(list.plugins[0].raw["bridge"], "cni0");
    }

    #[test]
    fn the_shipped_conflist_is_valid() {
        let dir = plugin_dir(&["bridge", "portmap", "bandwidth"]);
        let shipped = include_str!("../../deploy/10-crius-bridge.conflist");
        let list = parse("10-crius-bridge.conflist", shipped, &dir).unwrap();
        assert_eq!(list.name, "crius");
    }

    #[test]
    fn single_plugin_conf_becomes_a_list_of_one() {
        let dir = plugin_dir(&["bridge"]);
        let list = parse(
            "10-net.conf",
            r#"{"cniVersion":"0.4.0","name":"net","type":"bridge"}"#,
            &dir,
        )
        .unwrap();
        assert_eq!(list.plugins.len(), 1);
        assert_eq!(list.plugins[0].plugin_type, "bridge");
    }

    #[test]
    fn each_defect_is_named() {
        let dir = plugin_dir(&["bridge"]);
        let cases = [
            ("{", "invalid JSON"),
            ("[]", "not a JSON object"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
                "\"name\" is missing",
            ),
            (
                r#"{"name":"n","plugins":[{"type":"bridge"}]}"#,
                "\"cniVersion\" is missing",
            ),
            (
                r#"{"name":"n","cniVersion":"9.9.9","plugins":[{"type":"bridge"}]}"#,
                "not supported",
            ),
            (
                r#"{"name":"-n","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
                "network name",
            ),
            (
                r#"{"name":"n","cniVersion":"1.0.0","plugins":[]}"#,
                "\"plugins\" is empty",
            ),
            (
                r#"{"name":"n","cniVersion":"1.0.0"}"#,
                "\"plugins\" must be an array",
            ),
            (
                r#"{"name":"n","cniVersion":"1.0.0","plugins":[{}]}"#,
                "plugin 0: \"type\" is missing",
            ),
            (
                r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"../bridge"}]}"#,
                "not a file name",
            ),
            (
                r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"flannel"}]}"#,
                "\"flannel\" not found",
            ),
        ];
        for (json, expected) in cases {
            let why = parse("a.conflist", json, &dir).unwrap_err();
            assert!(why.contains(expected), "{json}: {why:?} lacks {expected:?}");
        }
    }

    #[test]
    fn disabled_conflist_is_skipped_not_rejected() {
        let dir = plugin_dir(&["bridge"]);
        let why = parse(
            "a.conflist",
            r#"{"name":"n","cniVersion":"1.0.0","disabled":true,"plugins":[{"type":"bridge"}]}"#,
            &dir,
        )
        .unwrap_err();
        assert_eq!(why, "disabled");
    }

    #[test]
    fn plugin_that_is_not_executable_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bridge"), "").unwrap();
        let why = NetworkConfigList::parse(
            Path::new("a.conf"),
            br#"{"name":"n","cniVersion":"1.0.0","type":"bridge"}"#,
            &[dir.path().to_path_buf()],
        )
        .err()
        .unwrap();
        assert!(matches!(why, Rejection::Invalid(w) if w.contains("not found")));
    }
}
