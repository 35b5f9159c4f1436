//! Registry credentials: from the pull request, or from a docker-style auth file
//! (`{"auths": {"<host>": {"auth": "<base64 user:pass>"}}}`), looked up by the host being
//! contacted, so each host only ever sees its own credentials.

use std::path::Path;

use base64::Engine;
use serde::Deserialize;

use crate::error::ImageStoreError;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token, exchanged at the token endpoint.
    IdentityToken(String),
    /// A bearer token used as it is.
    RegistryToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Credentials::Basic { username, .. } => return write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => "IdentityToken",
            Credentials::RegistryToken(_) => "RegistryToken",
        };
        write!(f, "{kind}(***)")
    }
}

impl Credentials {
    /// Decodes the `auth` form: base64 of `user:password`.
    pub fn from_auth_string(auth: &str) -> Result<Credentials, ImageStoreError> {
        let invalid = |detail: &str| ImageStoreError::BadContent {
            what: "credentials",
            detail: detail.into(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| invalid("auth is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid("auth is not UTF-8"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("auth is not user:password"))?;
        Ok(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
}

/// Auth files larger than this are refused.
const MAX_AUTH_FILE_BYTES: u64 = 1024 * 1024;

/// The credentials for `host` in the auth file at `path`; none if the file or the entry is absent.
pub fn from_auth_file(path: &Path, host: &str) -> Result<Option<Credentials>, ImageStoreError> {
    use std::io::Read;
    let mut text = String::new();
    match std::fs::File::open(path) {
        Ok(file) => {
            file.take(MAX_AUTH_FILE_BYTES)
                .read_to_string(&mut text)
                .map_err(ImageStoreError::io("read auth file", path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageStoreError::io("open auth file", path)(e)),
    }
    let file: AuthFile = serde_json::from_str(&text).map_err(|e| ImageStoreError::BadContent {
        what: "auth file",
        detail: format!("{}: {e}", path.display()),
    })?;
    let Some(entry) = file
        .auths
        .iter()
        .find(|(key, _)| normalize_auth_key(key) == host)
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    if !entry.identity_token.is_empty() {
        return Ok(Some(Credentials::IdentityToken(
            entry.identity_token.clone(),
        )));
    }
    if !entry.auth.is_empty() {
        return Credentials::from_auth_string(&entry.auth).map(Some);
    }
    if !entry.username.is_empty() {
        return Ok(Some(Credentials::Basic {
            username: entry.username.clone(),
            password: entry.password.clone(),
        }));
    }
    Ok(None)
}

/// Auth file keys come as `host`, `https://host`, or `https://index.docker.io/v1/`.
fn normalize_auth_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_entries_are_found_by_host_in_any_key_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "127.0.0.1:5000":{"username":"u","password":"p"},
                "quay.io":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(
            from_auth_file(&path, "docker.io").unwrap(),
            Some(basic("user", "pass"))
        );
        assert_eq!(
            from_auth_file(&path, "127.0.0.1:5000").unwrap(),
            Some(basic("u", "p"))
        );
        assert_eq!(
            from_auth_file(&path, "quay.io").unwrap(),
            Some(Credentials::IdentityToken("tok".into()))
        );
        assert_eq!(from_auth_file(&path, "other.io").unwrap(), None);
        assert_eq!(
            from_auth_file(&dir.path().join("missing"), "x").unwrap(),
            None
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let creds = Credentials::Basic {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
