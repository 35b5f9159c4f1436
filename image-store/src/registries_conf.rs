//! containers-registries.conf(5) (`/etc/containers/registries.conf`): where to pull a reference
//! from — mirrors, insecure and blocked registries. Version 2 format, and the old version 1
//! `[registries.*]` tables. Only the one file, no drop-ins; short-name search and aliases are
//! accepted but unused, since crius normalizes references docker-style.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::reference::{Reference, ReferenceError, check_domain, check_location};

/// A larger registries.conf is refused rather than read.
const FILE_MAX_BYTES: u64 = 4 << 20;

/// The parsed and validated configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    source: PathBuf,
    unqualified_search_registries: Vec<String>,
    registries: Vec<Registry>,
}

/// One `[[registry]]` entry, validated and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// `host[:port][/path]`, or `*.example.com`; defaults to the location.
    pub prefix: String,
    /// `host[:port][/path]` replacing the prefix; empty only for a wildcard prefix, which leaves
    /// references as they are.
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<Mirror>,
}

/// One `[[registry.mirror]]`, tried before its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/path]` replacing the registry's prefix.
    pub location: String,
    pub insecure: bool,
    /// Which references the mirror serves (`pull-from-mirror`, or digest-only when the registry
    /// has `mirror-by-digest-only = true`).
    pub pull_from: MirrorUse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorUse {
    All,
    /// Only references with a digest.
    DigestOnly,
    /// Only references without a digest.
    TagOnly,
}

impl MirrorUse {
    fn serves(self, reference: &Reference) -> bool {
        match self {
            MirrorUse::All => true,
            MirrorUse::DigestOnly => reference.digest().is_some(),
            MirrorUse::TagOnly => reference.digest().is_none(),
        }
    }
}

/// One place to try pulling from, in the order given by [`RegistriesConf::endpoints`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The reference rewritten for this place.
    pub reference: Reference,
    /// Plain HTTP or unverified TLS allowed.
    pub insecure: bool,
    /// A mirror, not the registry itself.
    pub mirror: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistriesConfError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("pulling {reference} is blocked by registry {prefix:?} in {}", path.display())]
    Blocked {
        path: PathBuf,
        reference: String,
        prefix: String,
    },
    #[error(
        "{}: registry {prefix:?} rewrites {reference} to location {location:?}, which is not a valid reference: {source}",
        path.display()
    )]
    Rewrite {
        path: PathBuf,
        reference: String,
        prefix: String,
        location: String,
        #[source]
        source: Box<ReferenceError>,
    },
}

impl RegistriesConfError {
    /// The configuration forbids pulling this reference (as opposed to a broken configuration).
    pub fn is_blocked(&self) -> bool {
        matches!(self, RegistriesConfError::Blocked { .. })
    }
}

impl RegistriesConf {
    /// Reads and validates `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistriesConf, RegistriesConfError> {
        let read_error = |source| RegistriesConfError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = match fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(path = %path.display(), "no registries.conf, using defaults");
                return Ok(RegistriesConf {
                    source: path.to_path_buf(),
                    ..RegistriesConf::default()
                });
            }
            Err(e) => return Err(read_error(e)),
        };
        let mut text = String::new();
        file.take(FILE_MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > FILE_MAX_BYTES {
            return Err(RegistriesConfError::Invalid {
                path: path.to_path_buf(),
                message: format!("larger than {FILE_MAX_BYTES} bytes"),
            });
        }
        RegistriesConf::parse(&text, path)
    }

    /// Parses and validates `text`; `source` names the file in errors.
    pub fn parse(text: &str, source: &Path) -> Result<RegistriesConf, RegistriesConfError> {
        let file: ConfFile = toml::from_str(text).map_err(|e| toml_error(text, source, &e))?;
        let invalid = |message: String| RegistriesConfError::Invalid {
            path: source.to_path_buf(),
            message,
        };
        let (search, tables) = file.into_v2().map_err(invalid)?;
        let unqualified_search_registries = search
            .iter()
            .map(|entry| check_search_registry(entry))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let registries = tables
            .into_iter()
            .map(RegistryTable::validate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        check_no_conflicts(&registries).map_err(invalid)?;
        Ok(RegistriesConf {
            source: source.to_path_buf(),
            unqualified_search_registries,
            registries,
        })
    }

    /// The file this configuration came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// `unqualified-search-registries` (or v1 `[registries.search]`); kept, not used for
    /// pulling.
    pub fn unqualified_search_registries(&self) -> &[String] {
        &self.unqualified_search_registries
    }

    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    /// Where to pull `reference` from, in order: the mirrors of the matching `[[registry]]` that
    /// serve it (each with the reference rewritten from the prefix to the mirror's location),
    /// then the registry's own location. A reference no entry matches is pulled from itself.
    /// Errors if the matching registry is blocked.
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<PullSource>, RegistriesConfError> {
        let name = reference.name();
        let Some(registry) = self.matching_registry(reference, &name) else {
            return Ok(vec![PullSource {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if registry.blocked {
            return Err(RegistriesConfError::Blocked {
                path: self.source.clone(),
                reference: reference.to_string(),
                prefix: registry.prefix.clone(),
            });
        }
        let mut sources = Vec::with_capacity(registry.mirrors.len() + 1);
        for mirror in registry
            .mirrors
            .iter()
            .filter(|m| m.pull_from.serves(reference))
        {
            sources.push(PullSource {
                reference: self.rewrite(reference, &name, registry, &mirror.location)?,
                insecure: mirror.insecure,
                mirror: true,
            });
        }
        let own = if registry.location.is_empty() {
            reference.clone()
        } else {
            self.rewrite(reference, &name, registry, &registry.location)?
        };
        sources.push(PullSource {
            reference: own,
            insecure: registry.insecure,
            mirror: false,
        });
        Ok(sources)
    }

    /// The entry with the longest prefix matching `name` (`domain/path`); on equal lengths an
    /// exact prefix beats a wildcard.
    fn matching_registry(&self, reference: &Reference, name: &str) -> Option<&Registry> {
        self.registries
            .iter()
            .filter(|registry| prefix_matches(&registry.prefix, reference, name))
            .max_by_key(|registry| (registry.prefix.len(), !is_wildcard(&registry.prefix)))
    }

    /// `reference` with the part matched by the registry's prefix replaced by `location`.
    fn rewrite(
        &self,
        reference: &Reference,
        name: &str,
        registry: &Registry,
        location: &str,
    ) -> Result<Reference, RegistriesConfError> {
        let matched = if is_wildcard(&registry.prefix) {
            reference.domain().len()
        } else {
            registry.prefix.len()
        };
        let rewritten = format!("{location}{}", &name[matched..]);
        let (domain, path) = rewritten.split_once('/').unwrap_or((&rewritten, ""));
        reference
            .try_with_domain(domain, path)
            .map_err(|source| RegistriesConfError::Rewrite {
                path: self.source.clone(),
                reference: reference.to_string(),
                prefix: registry.prefix.clone(),
                location: location.to_string(),
                source: Box::new(source),
            })
    }
}

fn is_wildcard(prefix: &str) -> bool {
    prefix.starts_with("*.")
}

/// `prefix` matches `name` if it equals it or is a leading run of its `/`-components; a
/// wildcard `*.example.com` matches any domain (port aside) under `example.com`.
fn prefix_matches(prefix: &str, reference: &Reference, name: &str) -> bool {
    if let Some(suffix) = prefix.strip_prefix('*') {
        let domain = reference.domain();
        let host = domain.split_once(':').map_or(domain, |(host, _)| host);
        return host.len() > suffix.len() && host.ends_with(suffix);
    }
    match name.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn toml_error(text: &str, source: &Path, error: &toml::de::Error) -> RegistriesConfError {
    let start = error.span().map_or(0, |span| span.start).min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    RegistriesConfError::Toml {
        path: source.to_path_buf(),
        line,
        column,
        message: error.message().trim_end().to_string(),
    }
}

/// c/image's parseLocation: trailing slashes dropped, URL schemes refused.
fn trim_location(what: &str, text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(format!(
            "invalid {what} {text:?}: URI schemes are not supported"
        ));
    }
    Ok(trimmed.to_string())
}

fn validate_location(what: &str, text: &str) -> Result<String, String> {
    let trimmed = trim_location(what, text)?;
    let path = trimmed.split_once('/').map_or("", |(_, path)| path);
    if path.contains([':', '@']) {
        return Err(format!(
            "invalid {what} {text:?}: a location has no tag or digest"
        ));
    }
    check_location(&trimmed).map_err(|e| format!("invalid {what} {text:?}: {}", e.problem()))
}

fn check_search_registry(entry: &str) -> Result<String, String> {
    let trimmed = trim_location("unqualified-search-registries entry", entry)?;
    check_domain(&trimmed)
        .map_err(|e| format!("invalid unqualified-search-registries entry {entry:?}: {e}"))?;
    Ok(trimmed)
}

/// c/image refuses a registry defined more than once (by location) with different `insecure` or
/// `blocked` settings, and we refuse a prefix defined twice.
fn check_no_conflicts(registries: &[Registry]) -> Result<(), String> {
    let mut by_prefix = HashMap::new();
    let mut by_location: HashMap<&str, &Registry> = HashMap::new();
    for registry in registries {
        if by_prefix.insert(registry.prefix.as_str(), ()).is_some() {
            return Err(format!(
                "registry prefix {:?} is defined more than once",
                registry.prefix
            ));
        }
        let key = if registry.location.is_empty() {
            &registry.prefix
        } else {
            &registry.location
        };
        if let Some(other) = by_location.insert(key, registry) {
            for (setting, differs) in [
                ("insecure", other.insecure != registry.insecure),
                ("blocked", other.blocked != registry.blocked),
            ] {
                if differs {
                    return Err(format!(
                        "registry {key:?} is defined more than once with conflicting {setting:?} settings"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The file as written: version 2 keys and the version 1 `[registries.*]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct ConfFile {
    unqualified_search_registries: Vec<String>,
    short_name_mode: Option<String>,
    credential_helpers: Vec<String>,
    aliases: BTreeMap<String, String>,
    registry: Vec<RegistryTable>,
    registries: V1Tables,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct V1Tables {
    search: V1List,
    insecure: V1List,
    block: V1List,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct V1List {
    registries: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct RegistryTable {
    prefix: String,
    location: String,
    insecure: bool,
    blocked: bool,
    mirror_by_digest_only: bool,
    /// Only valid on mirrors; read to refuse it with a clear message.
    pull_from_mirror: Option<String>,
    mirror: Vec<MirrorTable>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct MirrorTable {
    location: String,
    insecure: bool,
    pull_from_mirror: Option<String>,
}

impl ConfFile {
    fn is_v1(&self) -> bool {
        let v1 = &self.registries;
        !(v1.search.registries.is_empty()
            && v1.insecure.registries.is_empty()
            && v1.block.registries.is_empty())
    }

    fn is_v2(&self) -> bool {
        !(self.registry.is_empty()
            && self.unqualified_search_registries.is_empty()
            && self.credential_helpers.is_empty()
            && self.aliases.is_empty()
            && self.short_name_mode.is_none())
    }

    /// The search list and the registry tables, converting version 1 the way c/image does:
    /// each blocked or insecure entry becomes a registry with that flag (an entry in both gets
    /// both).
    fn into_v2(self) -> Result<(Vec<String>, Vec<RegistryTable>), String> {
        if let Some(mode) = &self.short_name_mode
            && !matches!(mode.as_str(), "enforcing" | "permissive" | "disabled")
        {
            return Err(format!(
                "invalid short-name-mode {mode:?} (expected \"enforcing\", \"permissive\" or \"disabled\")"
            ));
        }
        if !self.is_v1() {
            return Ok((self.unqualified_search_registries, self.registry));
        }
        if self.is_v2() {
            return Err(
                "mixing the version 1 [registries.*] tables with version 2 keys is not supported"
                    .to_string(),
            );
        }
        let V1Tables {
            search,
            insecure,
            block,
        } = self.registries;
        let mut tables: Vec<RegistryTable> = Vec::new();
        let flagged = block
            .registries
            .iter()
            .map(|entry| (entry, true))
            .chain(insecure.registries.iter().map(|entry| (entry, false)));
        for (entry, is_block) in flagged {
            let location = trim_location("registry", entry)?;
            let index = match tables.iter().position(|t| t.location == location) {
                Some(index) => index,
                None => {
                    tables.push(RegistryTable {
                        location,
                        ..RegistryTable::default()
                    });
                    tables.len() - 1
                }
            };
            if is_block {
                tables[index].blocked = true;
            } else {
                tables[index].insecure = true;
            }
        }
        Ok((search.registries, tables))
    }
}

impl RegistryTable {
    /// c/image's rules: prefix defaults to location; a wildcard prefix `*.example.com` has no
    /// location (and no port or path); mirrors need a location; `mirror-by-digest-only` and a
    /// per-mirror `pull-from-mirror` exclude each other.
    fn validate(self) -> Result<Registry, String> {
        let location = if self.location.is_empty() {
            String::new()
        } else {
            validate_location("location", &self.location)?
        };
        let prefix = if self.prefix.is_empty() {
            if location.is_empty() {
                return Err("a [[registry]] has neither a prefix nor a location".to_string());
            }
            location.clone()
        } else {
            let prefix = trim_location("prefix", &self.prefix)?;
            if let Some(domain) = prefix.strip_prefix("*.") {
                if domain.contains([':', '/']) || check_domain(domain).is_err() {
                    return Err(format!(
                        "invalid prefix {:?}: a wildcard prefix is *.domain, without a port or a path",
                        self.prefix
                    ));
                }
                if !location.is_empty() {
                    return Err(format!(
                        "registry with wildcard prefix {prefix:?} must not set a location"
                    ));
                }
                prefix
            } else {
                if location.is_empty() {
                    return Err(format!(
                        "registry with prefix {prefix:?} has no location (only a *.domain prefix may leave it unset)"
                    ));
                }
                validate_location("prefix", &prefix)?
            }
        };
        if self.pull_from_mirror.is_some() {
            return Err(format!(
                "registry {prefix:?}: pull-from-mirror belongs in a [[registry.mirror]], not in the [[registry]]"
            ));
        }
        let mirrors = self
            .mirror
            .into_iter()
            .map(|mirror| {
                if mirror.location.is_empty() {
                    return Err(format!("registry {prefix:?} has a mirror without a location"));
                }
                let location = validate_location("mirror location", &mirror.location)?;
                let pull_from = match mirror.pull_from_mirror.as_deref() {
                    Some(value) if !value.is_empty() && self.mirror_by_digest_only => {
                        return Err(format!(
                            "registry {prefix:?} sets both mirror-by-digest-only and pull-from-mirror for mirror {location:?}"
                        ));
                    }
                    None | Some("") if self.mirror_by_digest_only => MirrorUse::DigestOnly,
                    None | Some("" | "all") => MirrorUse::All,
                    Some("digest-only") => MirrorUse::DigestOnly,
                    Some("tag-only") => MirrorUse::TagOnly,
                    Some(other) => {
                        return Err(format!(
                            "mirror {location:?}: invalid pull-from-mirror {other:?} (expected \"all\", \"digest-only\" or \"tag-only\")"
                        ));
                    }
                };
                Ok(Mirror {
                    location,
                    insecure: mirror.insecure,
                    pull_from,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Registry {
            prefix,
            location,
            insecure: self.insecure,
            blocked: self.blocked,
            mirrors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    const EXAMPLE: &str = r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "registry.k8s.io"
location = "registry.k8s.io"
[[registry.mirror]]
location = "127.0.0.1:5000/k8s"
insecure = true
[[registry]]
location = "127.0.0.1:5001"
insecure = true
[[registry]]
prefix = "evil.example.com"
location = "evil.example.com"
blocked = true
"#;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, Path::new("/etc/containers/registries.conf"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_error(text: &str) -> String {
        RegistriesConf::parse(text, Path::new("/etc/containers/registries.conf"))
            .expect_err("accepted")
            .to_string()
    }

    fn reference(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    /// Each endpoint as "reference [insecure] [mirror]".
    fn endpoints(conf: &RegistriesConf, text: &str) -> Vec<String> {
        conf.endpoints(&reference(text))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into_iter()
            .map(|source| {
                let mut line = source.reference.to_string();
                if source.insecure {
                    line.push_str(" insecure");
                }
                if source.mirror {
                    line.push_str(" mirror");
                }
                line
            })
            .collect()
    }

    #[test]
    fn example_config_gives_mirrors_then_the_registry() {
        let conf = conf(EXAMPLE);
        assert_eq!(conf.unqualified_search_registries(), ["docker.io"]);
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "registry.k8s.io/pause:3.10",
                vec![
                    "127.0.0.1:5000/k8s/pause:3.10 insecure mirror",
                    "registry.k8s.io/pause:3.10",
                ],
            ),
            (
                "registry.k8s.io/sig/kube-proxy:v1",
                vec![
                    "127.0.0.1:5000/k8s/sig/kube-proxy:v1 insecure mirror",
                    "registry.k8s.io/sig/kube-proxy:v1",
                ],
            ),
            ("127.0.0.1:5001/x:1", vec!["127.0.0.1:5001/x:1 insecure"]),
            (
                "docker.io/library/busybox",
                vec!["docker.io/library/busybox:latest"],
            ),
            // Prefixes match whole components only.
            (
                "registry.k8s.io.evil.com/pause",
                vec!["registry.k8s.io.evil.com/pause:latest"],
            ),
            ("127.0.0.1:50011/x", vec!["127.0.0.1:50011/x:latest"]),
        ];
        for (input, expected) in cases {
            assert_eq!(endpoints(&conf, input), expected, "{input}");
        }
    }

    #[test]
    fn blocked_registry_is_an_error_naming_reference_and_file() {
        let conf = conf(EXAMPLE);
        for input in ["evil.example.com/x", "evil.example.com/a/b:c"] {
            let error = conf.endpoints(&reference(input)).unwrap_err();
            assert!(error.is_blocked(), "{error}");
            let message = error.to_string();
            assert!(message.contains("evil.example.com/"), "{message}");
            assert!(
                message.contains("/etc/containers/registries.conf"),
                "{message}"
            );
        }
    }

    #[test]
    fn unmatched_reference_is_pulled_from_itself() {
        let conf = conf("");
        assert_eq!(
            conf.endpoints(&reference("quay.io/a/b:c")).unwrap(),
            vec![PullSource {
                reference: reference("quay.io/a/b:c"),
                insecure: false,
                mirror: false,
            }]
        );
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.conf");
        let conf = RegistriesConf::load(&path).unwrap();
        assert!(conf.registries().is_empty());
        assert!(conf.unqualified_search_registries().is_empty());
        assert_eq!(conf.source(), path);
    }

    #[test]
    fn load_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.conf");
        fs::write(&path, EXAMPLE).unwrap();
        let conf = RegistriesConf::load(&path).unwrap();
        assert_eq!(conf.registries().len(), 3);
        assert_eq!(conf.source(), path);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.conf");
        fs::write(&path, "nonsense = 1\n").unwrap();
        let message = RegistriesConf::load(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");

        // A directory cannot be read as the file.
        let error = RegistriesConf::load(dir.path()).unwrap_err();
        assert!(matches!(error, RegistriesConfError::Read { .. }), "{error}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.conf");
        let comment = format!("# {}\n", "x".repeat(1000));
        fs::write(&path, comment.repeat(5000)).unwrap();
        let message = RegistriesConf::load(&path).unwrap_err().to_string();
        assert!(message.contains("larger than"), "{message}");
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_file() {
        for (text, key, line) in [
            ("nonsense = 1\n", "nonsense", 1),
            (
                "[[registry]]\nlocation = \"a.io\"\nmirors = []\n",
                "mirors",
                3,
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"b.io\"\nprefix = \"x\"\n",
                "prefix",
                5,
            ),
            ("[registries.search]\nregistry = []\n", "registry", 2),
            ("[registries.other]\nregistries = []\n", "other", 1),
        ] {
            let error = RegistriesConf::parse(text, Path::new("/etc/r.conf")).unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("/etc/r.conf:{line}:")),
                "{message}"
            );
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn toml_syntax_errors_keep_the_line() {
        let error = parse_error("unqualified-search-registries = [\"docker.io\"]\n[[registry]\n");
        assert!(
            error.starts_with("/etc/containers/registries.conf:2:"),
            "{error}"
        );
        let error = parse_error("[[registry]]\ninsecure = \"yes\"\nlocation = \"a.io\"\n");
        assert!(
            error.starts_with("/etc/containers/registries.conf:2:"),
            "{error}"
        );
    }

    #[test]
    fn short_name_mode_aliases_and_credential_helpers_are_accepted() {
        let conf = conf(
            r#"
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"#,
        );
        assert!(conf.registries().is_empty());
        let error = parse_error("short-name-mode = \"sometimes\"\n");
        assert!(error.contains("short-name-mode"), "{error}");
    }

    #[test]
    fn invalid_configs_are_refused_with_a_reason() {
        let cases = [
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"a.io\"\nlocation = \"b.io\"\n",
                "defined more than once",
            ),
            (
                "[[registry]]\ninsecure = true\n",
                "neither a prefix nor a location",
            ),
            ("[[registry]]\nprefix = \"a.io\"\n", "has no location"),
            (
                "[[registry]]\nlocation = \"https://a.io\"\n",
                "URI schemes are not supported",
            ),
            (
                "[[registry]]\nprefix = \"http://a.io\"\nlocation = \"a.io\"\n",
                "URI schemes",
            ),
            ("[[registry]]\nlocation = \"A B\"\n", "invalid location"),
            (
                "[[registry]]\nlocation = \"a.io/Upper\"\n",
                "must be lowercase",
            ),
            (
                "[[registry]]\nlocation = \"a.io/x:tag\"\n",
                "a location has no tag or digest",
            ),
            (
                "[[registry]]\nlocation = \"a.io/x@sha256:abc\"\n",
                "no tag or digest",
            ),
            (
                "[[registry]]\nlocation = \"a.io@sha256:abc\"\n",
                "invalid location",
            ),
            (
                "[[registry]]\nlocation = \"nodots/x\"\n",
                "would not be recognized as a host",
            ),
            (
                "[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n",
                "must not set a location",
            ),
            (
                "[[registry]]\nprefix = \"*.a.io:5000\"\n",
                "wildcard prefix",
            ),
            ("[[registry]]\nprefix = \"*.a.io/x\"\n", "wildcard prefix"),
            (
                "[[registry]]\nprefix = \"a.*.io\"\nlocation = \"a.io\"\n",
                "invalid prefix",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
                "mirror without a location",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"ftp://m.io\"\n",
                "invalid mirror location",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"\n",
                "invalid pull-from-mirror",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"all\"\n",
                "both mirror-by-digest-only and pull-from-mirror",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n",
                "pull-from-mirror belongs in a [[registry.mirror]]",
            ),
            (
                "[[registry]]\nprefix = \"a.io/x\"\nlocation = \"b.io\"\ninsecure = true\n[[registry]]\nprefix = \"a.io/y\"\nlocation = \"b.io\"\n",
                "conflicting \"insecure\"",
            ),
            (
                "[[registry]]\nprefix = \"a.io/x\"\nlocation = \"b.io\"\nblocked = true\n[[registry]]\nprefix = \"a.io/y\"\nlocation = \"b.io\"\n",
                "conflicting \"blocked\"",
            ),
            (
                "unqualified-search-registries = [\"not a host\"]\n",
                "unqualified-search-registries",
            ),
            (
                "unqualified-search-registries = [\"docker.io\"]\n[registries.insecure]\nregistries = [\"a.io\"]\n",
                "mixing the version 1",
            ),
            (
                "[[registry]]\nlocation = \"b.io\"\n[registries.block]\nregistries = [\"a.io\"]\n",
                "mixing the version 1",
            ),
            (
                "[registries.block]\nregistries = [\"not a host\"]\n",
                "invalid location",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_error(text);
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(
                message.starts_with("/etc/containers/registries.conf"),
                "{message}"
            );
        }
    }

    #[test]
    fn prefix_defaults_to_location_and_locations_are_normalized() {
        let conf = conf(
            r#"
[[registry]]
location = "quay.io/"
[[registry]]
location = "index.docker.io"
[[registry.mirror]]
location = "mirror.local:5000/hub/"
"#,
        );
        let registries = conf.registries();
        assert_eq!(registries[0].prefix, "quay.io");
        assert_eq!(registries[0].location, "quay.io");
        assert_eq!(registries[1].prefix, "docker.io");
        assert_eq!(registries[1].mirrors[0].location, "mirror.local:5000/hub");
        assert_eq!(
            endpoints(&conf, "busybox"),
            [
                "mirror.local:5000/hub/library/busybox:latest mirror",
                "docker.io/library/busybox:latest"
            ]
        );
    }

    #[test]
    fn longest_matching_prefix_wins() {
        let conf = conf(
            r#"
[[registry]]
location = "example.com"
[[registry.mirror]]
location = "m1.local"
[[registry]]
prefix = "example.com/team"
location = "team.local/base"
insecure = true
[[registry]]
prefix = "example.com/team/special"
location = "special.local"
"#,
        );
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "example.com/other/x",
                vec![
                    "m1.local/other/x:latest mirror",
                    "example.com/other/x:latest",
                ],
            ),
            ("example.com/team/x:1", vec!["team.local/base/x:1 insecure"]),
            ("example.com/team", vec!["team.local/base:latest insecure"]),
            ("example.com/team/special/y", vec!["special.local/y:latest"]),
            (
                "example.com/teams/x",
                vec![
                    "m1.local/teams/x:latest mirror",
                    "example.com/teams/x:latest",
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(endpoints(&conf, input), expected, "{input}");
        }
    }

    #[test]
    fn prefix_rewritten_to_a_bare_host_needs_a_remaining_path() {
        let conf =
            conf("[[registry]]\nprefix = \"example.com/app\"\nlocation = \"mirror.local\"\n");
        assert_eq!(
            endpoints(&conf, "example.com/app/web"),
            ["mirror.local/web:latest"]
        );
        let error = conf.endpoints(&reference("example.com/app")).unwrap_err();
        assert!(
            matches!(error, RegistriesConfError::Rewrite { .. }),
            "{error}"
        );
        assert!(!error.is_blocked());
    }

    #[test]
    fn wildcard_prefix_matches_subdomains_and_keeps_the_reference() {
        let conf = conf(
            r#"
[[registry]]
prefix = "*.example.com"
insecure = true
[[registry.mirror]]
location = "mirror.local/ex"
[[registry]]
prefix = "*.blocked.example.com"
blocked = true
[[registry]]
prefix = "exact.example.com"
location = "exact.example.com"
"#,
        );
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "a.example.com/x",
                vec![
                    "mirror.local/ex/x:latest mirror",
                    "a.example.com/x:latest insecure",
                ],
            ),
            (
                "a.b.example.com:5000/x/y:t",
                vec![
                    "mirror.local/ex/x/y:t mirror",
                    "a.b.example.com:5000/x/y:t insecure",
                ],
            ),
            ("example.com/x", vec!["example.com/x:latest"]),
            ("notexample.com/x", vec!["notexample.com/x:latest"]),
            ("exact.example.com/x", vec!["exact.example.com/x:latest"]),
        ];
        for (input, expected) in cases {
            assert_eq!(endpoints(&conf, input), expected, "{input}");
        }
        let error = conf
            .endpoints(&reference("x.blocked.example.com/y"))
            .unwrap_err();
        assert!(error.is_blocked(), "{error}");
    }

    #[test]
    fn mirror_usage_follows_digest_presence() {
        let conf = conf(
            r#"
[[registry]]
location = "a.io"
[[registry.mirror]]
location = "all.local"
[[registry.mirror]]
location = "digest.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tag.local"
pull-from-mirror = "tag-only"
[[registry]]
location = "b.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "bmirror.local"
"#,
        );
        let digested = format!("a.io/x@sha256:{HEX}");
        let both = format!("a.io/x:t@sha256:{HEX}");
        let cases: Vec<(&str, Vec<String>)> = vec![
            (
                "a.io/x:t",
                vec![
                    "all.local/x:t mirror".into(),
                    "tag.local/x:t mirror".into(),
                    "a.io/x:t".into(),
                ],
            ),
            (
                &digested,
                vec![
                    format!("all.local/x@sha256:{HEX} mirror"),
                    format!("digest.local/x@sha256:{HEX} mirror"),
                    format!("a.io/x@sha256:{HEX}"),
                ],
            ),
            (
                &both,
                vec![
                    format!("all.local/x:t@sha256:{HEX} mirror"),
                    format!("digest.local/x:t@sha256:{HEX} mirror"),
                    format!("a.io/x:t@sha256:{HEX}"),
                ],
            ),
            ("b.io/y", vec!["b.io/y:latest".into()]),
        ];
        for (input, expected) in cases {
            assert_eq!(endpoints(&conf, input), expected, "{input}");
        }
        let digested = format!("b.io/y@sha256:{HEX}");
        assert_eq!(
            endpoints(&conf, &digested),
            [
                format!("bmirror.local/y@sha256:{HEX} mirror"),
                format!("b.io/y@sha256:{HEX}")
            ]
        );
        assert_eq!(
            conf.registries()[1].mirrors[0].pull_from,
            MirrorUse::DigestOnly
        );
    }

    #[test]
    fn version_1_tables_become_registries() {
        let conf = conf(
            r#"
[registries.search]
registries = ["docker.io", "quay.io"]
[registries.insecure]
registries = ["127.0.0.1:5000", "both.example.com"]
[registries.block]
registries = ["evil.example.com", "both.example.com/"]
"#,
        );
        assert_eq!(
            conf.unqualified_search_registries(),
            ["docker.io", "quay.io"]
        );
        let summary: Vec<(&str, bool, bool)> = conf
            .registries()
            .iter()
            .map(|r| (r.prefix.as_str(), r.insecure, r.blocked))
            .collect();
        assert_eq!(
            summary,
            [
                ("evil.example.com", false, true),
                ("both.example.com", true, true),
                ("127.0.0.1:5000", true, false),
            ]
        );
        assert_eq!(
            endpoints(&conf, "127.0.0.1:5000/x"),
            ["127.0.0.1:5000/x:latest insecure"]
        );
        assert!(
            conf.endpoints(&reference("evil.example.com/x"))
                .unwrap_err()
                .is_blocked()
        );
    }

    #[test]
    fn empty_version_1_tables_do_not_conflict_with_version_2() {
        let conf = conf(
            "unqualified-search-registries = [\"docker.io\"]\n[registries.insecure]\nregistries = []\n",
        );
        assert_eq!(conf.unqualified_search_registries(), ["docker.io"]);
    }

    #[test]
    fn mirror_of_docker_hub_keeps_the_library_path() {
        let conf = conf(
            r#"
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
"#,
        );
        assert_eq!(
            endpoints(&conf, "busybox:1.36"),
            [
                "127.0.0.1:5000/library/busybox:1.36 insecure mirror",
                "docker.io/library/busybox:1.36",
            ]
        );
    }

    #[test]
    fn relocating_into_docker_hub_normalizes_the_path() {
        let conf = conf("[[registry]]\nprefix = \"registry.k8s.io\"\nlocation = \"docker.io\"\n");
        assert_eq!(
            endpoints(&conf, "registry.k8s.io/pause:3.10"),
            ["docker.io/library/pause:3.10"]
        );
    }
}
