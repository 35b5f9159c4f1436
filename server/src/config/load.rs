//! Reading the configuration: the main file, its drop-ins, then the command-line flags.
//!
//! Each file is first checked on its own against [`Config`], so an unknown key or a wrong type is
//! reported with that file's path. The files are then merged as TOML tables (a drop-in's key
//! replaces the same key before it; tables merge key by key; arrays are replaced whole) and the
//! result is deserialized once more and validated.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Config;
use crate::cli::{Cli, DEFAULT_CONFIG_FILE};

/// The effective configuration for this command line.
pub fn load(cli: &Cli) -> anyhow::Result<Config> {
    let (file, must_exist) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let drop_in_dir = match &cli.config_dir {
        Some(dir) => dir.clone(),
        None => file.with_file_name("crius.d"),
    };
    let mut config = from_files(&file, must_exist, &drop_in_dir)?;
    cli.apply_overrides(&mut config);
    config.validate().context("invalid configuration")?;
    Ok(config)
}

/// Merges `file` (skipped when absent, unless `must_exist`) and the `*.toml` files of
/// `drop_in_dir` in lexical order.
fn from_files(file: &Path, must_exist: bool, drop_in_dir: &Path) -> anyhow::Result<Config> {
    let mut merged = toml::Table::new();
    match std::fs::read_to_string(file) {
        Ok(text) => merge(&mut merged, parse_file(file, &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
        Err(e) => bail!("read config file {}: {e}", file.display()),
    }
    for drop_in in drop_in_files(drop_in_dir)? {
        let text = std::fs::read_to_string(&drop_in)
            .with_context(|| format!("read config drop-in {}", drop_in.display()))?;
        merge(&mut merged, parse_file(&drop_in, &text)?);
    }
    Config::deserialize_table(merged).context("merged configuration")
}

/// Parses one file and checks it against the schema on its own, naming the file on error.
fn parse_file(path: &Path, text: &str) -> anyhow::Result<toml::Table> {
    let table: toml::Table =
        toml::from_str(text).with_context(|| format!("config file {}", path.display()))?;
    Config::deserialize_table(table.clone())
        .with_context(|| format!("config file {}", path.display()))?;
    Ok(table)
}

fn drop_in_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("read config drop-in directory {}: {e}", dir.display()),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("read config drop-in directory {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Merges `overlay` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    fn deserialize_table(table: toml::Table) -> Result<Config, toml::de::Error> {
        use serde::Deserialize;
        Config::deserialize(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLevel;
    use clap::Parser;
    use crius_runtime::cgroup::CgroupDriver;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Files {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }

        fn load(&self, extra_args: &[&str]) -> anyhow::Result<Config> {
            let file = self.dir.path().join("crius.toml");
            let mut args = vec!["crius".to_string(), format!("--config={}", file.display())];
            args.extend(extra_args.iter().map(|a| a.to_string()));
            load(&Cli::parse_from(args))
        }
    }

    #[test]
    fn drop_ins_merge_in_lexical_order_over_the_main_file() {
        let files = Files::new();
        files.write(
            "crius.toml",
            "root = \"/srv/crius\"\n[log]\nlevel = \"warn\"\n[network]\ncni_config_dir = \"/a\"\n",
        );
        files.write(
            "crius.d/20-late.toml",
            "[network]\ncni_config_dir = \"/late\"\n",
        );
        files.write(
            "crius.d/10-early.toml",
            "[network]\ncni_config_dir = \"/early\"\n",
        );
        files.write("crius.d/15-log.toml", "[log]\nformat = \"json\"\n");
        files.write("crius.d/99-ignored.conf", "this is not toml");
        let config = files.load(&[]).unwrap();
        assert_eq!(config.root, Path::new("/srv/crius"));
        assert_eq!(config.network.cni_config_dir, Path::new("/late"));
        assert_eq!(
            config.log.level,
            LogLevel::Warn,
            "the table merged key by key"
        );
        assert_eq!(config.log.format, crate::config::LogFormat::Json);
    }

    #[test]
    fn flags_override_files() {
        let files = Files::new();
        files.write(
            "crius.toml",
            "listen = \"/run/x.sock\"\n[network]\ncni_plugin_dirs = [\"/a\", \"/b\"]\n",
        );
        let config = files
            .load(&[
                "--listen=/run/y.sock",
                "--cni-plugin-dir=/c",
                "--cni-plugin-dir=/d",
                "--log-level=debug",
                "--cgroup-driver=systemd",
                "--stream-port=10010",
            ])
            .unwrap();
        assert_eq!(config.listen, Path::new("/run/y.sock"));
        assert_eq!(
            config.network.cni_plugin_dirs,
            [Path::new("/c"), Path::new("/d")]
        );
        assert_eq!(config.log.level, LogLevel::Debug);
        assert_eq!(config.runtime.cgroup_driver, CgroupDriver::Systemd);
        assert_eq!(config.stream.port, 10010);
    }

    #[test]
    fn unknown_key_is_refused_naming_file_and_key() {
        let files = Files::new();
        files.write("crius.toml", "");
        let drop_in = files.write("crius.d/10-typo.toml", "[network]\ncni_conf_dir = \"/x\"\n");
        let message = format!("{:#}", files.load(&[]).unwrap_err());
        assert!(
            message.contains(&drop_in.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("unknown field `cni_conf_dir`"),
            "{message}"
        );
    }

    #[test]
    fn wrong_type_is_refused_naming_the_file() {
        let files = Files::new();
        let file = files.write("crius.toml", "[stream]\nport = \"ten\"\n");
        let message = format!("{:#}", files.load(&[]).unwrap_err());
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("port"), "{message}");
    }

    #[test]
    fn explicit_config_file_must_exist() {
        let files = Files::new();
        let message = format!("{:#}", files.load(&[]).unwrap_err());
        assert!(message.contains("crius.toml"), "{message}");
    }

    #[test]
    fn invalid_merged_value_is_refused() {
        let files = Files::new();
        files.write("crius.toml", "root = \"relative\"\n");
        let message = format!("{:#}", files.load(&[]).unwrap_err());
        assert!(
            message.contains("root: relative is not an absolute path"),
            "{message}"
        );
    }
}
