//! The parts of an image's config that shape a container's process.

use serde::Deserialize;

use crate::RuntimeError;

/// The parts of an OCI image config (`application/vnd.oci.image.config.v1+json`, also Docker's)
/// a container needs. Image configs are untrusted input: unknown fields and `null`s are accepted,
/// but every environment entry must be `KEY=VALUE` and no string may hold a NUL byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries, in the image's order.
    pub env: Vec<String>,
    /// Empty when the image does not set one.
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty when the image does not set one.
    pub user: String,
    /// A signal name or number (`SIGQUIT`, `3`), as the image gives it.
    pub stop_signal: Option<String>,
}

/// The JSON document: only `config` matters here.
#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    config: Option<ConfigJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigJson {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    stop_signal: Option<String>,
}

fn invalid(message: String) -> RuntimeError {
    RuntimeError::InvalidArgument(message)
}

impl ImageConfig {
    /// Parses an image config blob.
    pub fn parse(json: &[u8]) -> Result<ImageConfig, RuntimeError> {
        let document: Document = serde_json::from_slice(json)
            .map_err(|e| invalid(format!("image config is not valid JSON: {e}")))?;
        let Some(config) = document.config else {
            return Ok(ImageConfig::default());
        };
        let parsed = ImageConfig {
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            working_dir: config.working_dir.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            stop_signal: config.stop_signal.filter(|s| !s.is_empty()),
        };
        parsed.validate()?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), RuntimeError> {
        let strings = self
            .entrypoint
            .iter()
            .chain(&self.cmd)
            .chain(&self.env)
            .chain([&self.working_dir, &self.user])
            .chain(&self.stop_signal);
        if strings.into_iter().any(|s| s.contains('\0')) {
            return Err(invalid("image config holds a NUL byte".to_string()));
        }
        for entry in &self.env {
            match entry.split_once('=') {
                Some((key, _)) if !key.is_empty() => {}
                _ => {
                    return Err(invalid(format!(
                        "image config env entry {:?} is not KEY=VALUE",
                        entry.chars().take(64).collect::<String>()
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_process_fields_of_an_oci_config() {
        let json = br#"{
            "architecture": "amd64", "os": "linux",
            "config": {
                "Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"],
                "Env": ["PATH=/usr/bin:/bin", "EMPTY=", "MULTI=a=b"],
                "WorkingDir": "/srv", "User": "101:101", "StopSignal": "SIGQUIT",
                "ExposedPorts": {"80/tcp": {}}, "Labels": null
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }"#;
        let config = ImageConfig::parse(json).unwrap();
        assert_eq!(config.entrypoint, ["/docker-entrypoint.sh"]);
        assert_eq!(config.cmd, ["nginx", "-g", "daemon off;"]);
        assert_eq!(config.env, ["PATH=/usr/bin:/bin", "EMPTY=", "MULTI=a=b"]);
        assert_eq!(config.working_dir, "/srv");
        assert_eq!(config.user, "101:101");
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn nulls_and_a_missing_config_are_empty() {
        let config =
            ImageConfig::parse(br#"{"config": {"Entrypoint": null, "Cmd": null, "Env": null}}"#)
                .unwrap();
        assert_eq!(config, ImageConfig::default());
        assert_eq!(
            ImageConfig::parse(br#"{"architecture": "amd64"}"#).unwrap(),
            ImageConfig::default()
        );
        assert_eq!(
            ImageConfig::parse(br#"{"config": {"StopSignal": ""}}"#)
                .unwrap()
                .stop_signal,
            None
        );
    }

    #[test]
    fn malformed_env_entries_and_nul_bytes_are_refused() {
        for json in [
            r#"{"config": {"Env": ["NOVALUE"]}}"#,
            r#"{"config": {"Env": ["=value"]}}"#,
            r#"{"config": {"Env": ["A=b\u0000c"]}}"#,
            r#"{"config": {"Cmd": ["sh\u0000"]}}"#,
            r#"{"config": {"WorkingDir": "/a\u0000"}}"#,
            r#"{"config": {"Cmd": "not a list"}}"#,
            "not json",
        ] {
            let err = ImageConfig::parse(json.as_bytes()).unwrap_err();
            assert_eq!(
                err.kind(),
                crate::RuntimeErrorKind::InvalidArgument,
                "{json}: {err}"
            );
        }
    }
}
