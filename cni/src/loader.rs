//! Finding the network to use in the CNI config dir.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::CniError;
use crate::config::{MAX_CONFIG_BYTES, NetworkConfigList, Rejection};

/// File extensions that hold network configurations, as libcni reads them.
const CONFIG_EXTENSIONS: &[&str] = &["conf", "conflist", "json"];

/// Returns the first valid network configuration in `config_dir`, in lexical order of file
/// names. A missing directory is the same as an empty one: the node is simply not configured yet
/// (network add-ons write their conflist after the runtime starts).
pub fn load_default_network(
    config_dir: &Path,
    plugin_dirs: &[PathBuf],
) -> Result<NetworkConfigList, CniError> {
    load_network(config_dir, plugin_dirs, None)
}

/// Like [`load_default_network`], but when `name` is given only a network of that name counts.
pub fn load_network(
    config_dir: &Path,
    plugin_dirs: &[PathBuf],
    name: Option<&str>,
) -> Result<NetworkConfigList, CniError> {
    let mut rejected = Vec::new();
    for path in candidate_files(config_dir)? {
        let bytes = match read_bounded(&path) {
            Ok(bytes) => bytes,
            Err(why) => {
                rejected.push((path, why));
                continue;
            }
        };
        match NetworkConfigList::parse(&path, &bytes, plugin_dirs) {
            Ok(list) if name.is_some_and(|wanted| wanted != list.name) => {
                let wanted = name.unwrap_or_default();
                rejected.push((
                    path,
                    format!("network {:?} is not the configured {wanted:?}", list.name),
                ));
            }
            Ok(list) => return Ok(list),
            Err(Rejection::Disabled) => {}
            Err(Rejection::Invalid(why)) => rejected.push((path, why)),
        }
    }
    Err(CniError::NoValidConfig {
        dir: config_dir.to_path_buf(),
        rejected,
    })
}

fn candidate_files(config_dir: &Path) -> Result<Vec<PathBuf>, CniError> {
    let entries = match std::fs::read_dir(config_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CniError::Io {
                op: "read directory",
                path: config_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CniError::Io {
            op: "read directory",
            path: config_dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let has_config_extension = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| CONFIG_EXTENSIONS.contains(&e));
        if has_config_extension {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads a regular file of at most [`MAX_CONFIG_BYTES`]; anything else is a rejection reason.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let metadata = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CniErrorKind;
    use std::os::unix::fs::PermissionsExt;

    struct Fixture {
        config_dir: tempfile::TempDir,
        plugin_dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let plugin_dir = tempfile::tempdir().unwrap();
            let bridge = plugin_dir.path().join("bridge");
            std::fs::write(&bridge, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&bridge, std::fs::Permissions::from_mode(0o755)).unwrap();
            Fixture {
                config_dir: tempfile::tempdir().unwrap(),
                plugin_dir,
            }
        }

        fn write(&self, name: &str, contents: &str) {
            std::fs::write(self.config_dir.path().join(name), contents).unwrap();
        }

        fn load(&self) -> Result<NetworkConfigList, CniError> {
            load_default_network(
                self.config_dir.path(),
                &[self.plugin_dir.path().to_path_buf()],
            )
        }
    }

    fn conflist(name: &str) -> String {
        format!(r#"{{"cniVersion":"1.0.0","name":"{name}","plugins":[{{"type":"bridge"}}]}}"#)
    }

    #[test]
    fn first_valid_file_in_lexical_order_wins() {
        let fx = Fixture::new();
        fx.write("20-second.conflist", &conflist("second"));
        fx.write("10-first.conflist", &conflist("first"));
        assert_eq!(fx.load().unwrap().name, "first");
    }

    #[test]
    fn invalid_and_disabled_files_are_passed_over() {
        let fx = Fixture::new();
        fx.write("05-broken.conflist", "{");
        fx.write(
            "07-off.conflist",
            r#"{"cniVersion":"1.0.0","name":"off","disabled":true,"plugins":[{"type":"bridge"}]}"#,
        );
        fx.write("10-good.conflist", &conflist("good"));
        fx.write("00-readme.txt", "not a config");
        assert_eq!(fx.load().unwrap().name, "good");
    }

    #[test]
    fn a_configured_name_picks_that_network() {
        let fx = Fixture::new();
        fx.write("10-first.conflist", &conflist("first"));
        fx.write("20-second.conflist", &conflist("second"));
        let dirs = [fx.plugin_dir.path().to_path_buf()];
        let chosen = load_network(fx.config_dir.path(), &dirs, Some("second")).unwrap();
        assert_eq!(chosen.name, "second");
        let err = load_network(fx.config_dir.path(), &dirs, Some("third")).unwrap_err();
        assert!(
            err.to_string().contains("is not the configured \"third\""),
            "{err}"
        );
    }

    #[test]
    fn empty_or_missing_dir_is_not_configured() {
        let fx = Fixture::new();
        assert_eq!(fx.load().unwrap_err().kind(), CniErrorKind::NotConfigured);
        let missing = fx.config_dir.path().join("nope");
        let err = load_default_network(&missing, &[]).unwrap_err();
        assert_eq!(err.kind(), CniErrorKind::NotConfigured);
    }

    #[test]
    fn the_error_names_every_rejected_file_and_why() {
        let fx = Fixture::new();
        fx.write("10-broken.conflist", "{");
        std::fs::create_dir(fx.config_dir.path().join("20-dir.conf")).unwrap();
        let message = fx.load().unwrap_err().to_string();
        assert!(
            message.starts_with("no valid CNI network config in"),
            "{message}"
        );
        assert!(
            message.contains("10-broken.conflist: invalid JSON"),
            "{message}"
        );
        assert!(
            message.contains("20-dir.conf: not a regular file"),
            "{message}"
        );
    }

    #[test]
    fn oversized_file_is_refused_unparsed() {
        let fx = Fixture::new();
        fx.write(
            "10-big.conflist",
            &" ".repeat(MAX_CONFIG_BYTES as usize + 1),
        );
        let message = fx.load().unwrap_err().to_string();
        assert!(message.contains("larger than"), "{message}");
    }
}
