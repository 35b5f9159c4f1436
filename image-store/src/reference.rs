//! Docker-style image references (`[domain/]path[:tag][@digest]`), parsed and normalized the way
//! distribution/reference's `ParseNormalizedNamed` + `TagNameOnly` do: `busybox` is
//! `docker.io/library/busybox:latest`.
//!
//! Every `Reference` is in normalized form: `Reference::parse(&r.to_string()) == Ok(r)`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// Longest `domain/path`, as in distribution/reference.
const NAME_MAX_LEN: usize = 255;
const TAG_MAX_LEN: usize = 128;
/// Longer input cannot be a valid reference (name + tag + the longest digest); refused before
/// any other work.
const INPUT_MAX_LEN: usize = 1024;
/// How much of a rejected input an error quotes.
const QUOTE_MAX_CHARS: usize = 200;

/// A normalized image reference: a registry domain, a repository path in it, and a tag, a digest
/// or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a text is not an image reference; carries the input (truncated) for the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {problem}")]
pub struct ReferenceError {
    input: String,
    problem: ReferenceProblem,
}

/// What is wrong with a rejected reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("empty")]
    Empty,
    #[error("{len} bytes is too long")]
    TooLong { len: usize },
    #[error("character {character:?} at byte {position} is not allowed")]
    ForbiddenCharacter { character: char, position: usize },
    #[error("looks like an image id, not a reference")]
    LooksLikeImageId,
    #[error("no repository name")]
    EmptyName,
    #[error("registry host {0:?} is not a valid host[:port]")]
    InvalidDomain(String),
    #[error(
        "registry host {0:?} would not be recognized as a host (it needs a '.', a ':' or to be localhost)"
    )]
    UnrecognizableDomain(String),
    #[error("repository name {0:?} must be lowercase")]
    UppercaseRepository(String),
    #[error("repository name has an empty path component")]
    EmptyPathComponent,
    #[error(
        "repository path component {0:?} is invalid (lowercase letters and digits, separated by '.', '_', '__' or dashes)"
    )]
    InvalidPathComponent(String),
    #[error("repository name is {len} characters, more than {NAME_MAX_LEN}")]
    NameTooLong { len: usize },
    #[error("empty tag")]
    EmptyTag,
    #[error(
        "tag {0:?} is invalid (letters, digits, '_', '.', '-', not starting with '.' or '-', at most 128)"
    )]
    InvalidTag(String),
    #[error("{0}")]
    InvalidDigest(DigestError),
}

impl ReferenceError {
    fn new(input: &str, problem: ReferenceProblem) -> Self {
        ReferenceError {
            input: input.chars().take(QUOTE_MAX_CHARS).collect(),
            problem,
        }
    }

    /// The rejected input, truncated to 200 characters.
    pub fn input(&self) -> &str {
        &self.input
    }

    pub fn problem(&self) -> &ReferenceProblem {
        &self.problem
    }
}

impl Reference {
    /// Parses and normalizes `text`: adds `docker.io` when there is no registry domain,
    /// `library/` to single-component Docker Hub names, and tag `latest` when there is neither a
    /// tag nor a digest. A bare image id (64 hex digits, or `sha256:<hex>`) is refused.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let error = |problem| ReferenceError::new(text, problem);
        if text.is_empty() {
            return Err(error(ReferenceProblem::Empty));
        }
        if text.len() > INPUT_MAX_LEN {
            return Err(error(ReferenceProblem::TooLong { len: text.len() }));
        }
        if let Some((position, character)) =
            text.char_indices().find(|(_, c)| !c.is_ascii_graphic())
        {
            return Err(error(ReferenceProblem::ForbiddenCharacter {
                character,
                position,
            }));
        }
        if is_image_id(text) {
            return Err(error(ReferenceProblem::LooksLikeImageId));
        }

        let (name_and_tag, digest) = match text.split_once('@') {
            Some((before, digest)) => {
                let digest = Digest::from_str(digest)
                    .map_err(|e| error(ReferenceProblem::InvalidDigest(e)))?;
                (before, Some(digest))
            }
            None => (text, None),
        };
        // The tag separator is a ':' after the last '/': one before it is a port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                let tag = &name_and_tag[split + 1..];
                check_tag(tag).map_err(error)?;
                (&name_and_tag[..split], Some(tag.to_string()))
            }
            None => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(error(ReferenceProblem::EmptyName));
        }

        let (domain, path) = split_domain(name);
        let (domain, path) = normalize(domain, path);
        check_domain(domain).map_err(error)?;
        check_path(&path).map_err(error)?;
        check_name_length(domain, &path).map_err(error)?;

        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag,
        };
        Ok(Reference {
            domain: domain.to_string(),
            path,
            tag,
            digest,
        })
    }

    /// The registry: `docker.io`, `127.0.0.1:5000`, `registry.k8s.io`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same tag and digest at another location (a mirror). `domain` and `path` must be valid
    /// (taken from another `Reference`, or a validated registries.conf location); they are
    /// normalized but not checked in release builds. Use [`Reference::try_with_domain`] for
    /// anything composed or untrusted.
    pub fn with_domain(&self, domain: &str, path: &str) -> Reference {
        debug_assert!(
            self.try_with_domain(domain, path).is_ok(),
            "with_domain({domain:?}, {path:?}) makes an invalid reference"
        );
        let (domain, path) = normalize(domain, path);
        Reference {
            domain: domain.to_string(),
            path,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }

    /// Like [`Reference::with_domain`], checking that the result is a valid normalized reference
    /// (a domain `parse` recognizes as one, a valid path, a name of at most 255 characters).
    pub fn try_with_domain(&self, domain: &str, path: &str) -> Result<Reference, ReferenceError> {
        let error = |problem| ReferenceError::new(&format!("{domain}/{path}"), problem);
        if !looks_like_domain(domain) {
            return Err(error(ReferenceProblem::UnrecognizableDomain(
                domain.chars().take(QUOTE_MAX_CHARS).collect(),
            )));
        }
        let (domain, path) = normalize(domain, path);
        check_domain(domain).map_err(error)?;
        check_path(&path).map_err(error)?;
        check_name_length(domain, &path).map_err(error)?;
        Ok(Reference {
            domain: domain.to_string(),
            path,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        })
    }

    /// `docker.io/library/busybox:latest`, when there is a tag.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|tag| format!("{}:{tag}", self.name()))
    }

    /// `docker.io/library/busybox@sha256:…` for `digest` (not necessarily this reference's own).
    pub fn digested_name(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.name())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Reference::parse(text)
    }
}

/// Checks a registries.conf-style location, `host[:port][/path]`, without a tag or a digest:
/// the host must be one `Reference::parse` recognizes as a host, and the path (if any) valid.
/// Returns the location with `index.docker.io` normalized to `docker.io`.
pub(crate) fn check_location(location: &str) -> Result<String, ReferenceError> {
    let error = |problem| ReferenceError::new(location, problem);
    if location.is_empty() {
        return Err(error(ReferenceProblem::Empty));
    }
    if location.len() > INPUT_MAX_LEN {
        return Err(error(ReferenceProblem::TooLong {
            len: location.len(),
        }));
    }
    if let Some((position, character)) = location
        .char_indices()
        .find(|(_, c)| !c.is_ascii_graphic() || matches!(c, '@'))
    {
        return Err(error(ReferenceProblem::ForbiddenCharacter {
            character,
            position,
        }));
    }
    let (domain, path) = match location.split_once('/') {
        Some((domain, path)) => (domain, Some(path)),
        None => (location, None),
    };
    if !looks_like_domain(domain) {
        return Err(error(ReferenceProblem::UnrecognizableDomain(
            domain.to_string(),
        )));
    }
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    check_domain(domain).map_err(error)?;
    let Some(path) = path else {
        return Ok(domain.to_string());
    };
    check_path(path).map_err(error)?;
    check_name_length(domain, path).map_err(error)?;
    Ok(format!("{domain}/{path}"))
}

/// Checks a host name with an optional port (`example.com`, `127.0.0.1:5000`, `[::1]:5000`).
pub(crate) fn check_domain(domain: &str) -> Result<(), ReferenceProblem> {
    let invalid =
        || ReferenceProblem::InvalidDomain(domain.chars().take(QUOTE_MAX_CHARS).collect());
    let (host_ok, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(invalid)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        let host_ok =
            !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (host_ok, port)
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        (!host.is_empty() && host.split('.').all(is_host_label), port)
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    });
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// A bare `<64 hex>` or a bare `algo:hex` digest: an image id, not a reference.
fn is_image_id(text: &str) -> bool {
    (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        || Digest::from_str(text).is_ok()
}

/// docker's rule: the first component is a registry domain if it contains '.' or ':', is
/// `localhost`, or has uppercase letters (repository paths cannot).
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

/// Splits `name` into a domain and a path, defaulting the domain to `docker.io`.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (first, rest),
        _ => (DEFAULT_DOMAIN, name),
    }
}

/// `index.docker.io` → `docker.io`; `docker.io/x` → `docker.io/library/x`.
fn normalize<'a>(domain: &'a str, path: &str) -> (&'a str, String) {
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.is_empty() && !path.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{path}")
    } else {
        path.to_string()
    };
    (domain, path)
}

fn check_path(path: &str) -> Result<(), ReferenceProblem> {
    if path.is_empty() {
        return Err(ReferenceProblem::EmptyName);
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceProblem::UppercaseRepository(
            path.chars().take(QUOTE_MAX_CHARS).collect(),
        ));
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceProblem::EmptyPathComponent);
        }
        if !is_path_component(component) {
            return Err(ReferenceProblem::InvalidPathComponent(
                component.chars().take(QUOTE_MAX_CHARS).collect(),
            ));
        }
    }
    Ok(())
}

fn check_name_length(domain: &str, path: &str) -> Result<(), ReferenceProblem> {
    let len = domain.len() + 1 + path.len();
    if len > NAME_MAX_LEN {
        return Err(ReferenceProblem::NameTooLong { len });
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), ReferenceProblem> {
    if tag.is_empty() {
        return Err(ReferenceProblem::EmptyTag);
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let valid = tag.len() <= TAG_MAX_LEN
        && word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ReferenceProblem::InvalidTag(
            tag.chars().take(QUOTE_MAX_CHARS).collect(),
        ))
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        // A run of letters and digits.
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // A separator, then another run must follow.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`
fn is_host_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    #[test]
    fn good_references_normalize() {
        let cases: Vec<(String, String)> = vec![
            ("busybox".into(), "docker.io/library/busybox:latest".into()),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "someuser/app".into(),
                "docker.io/someuser/app:latest".into(),
            ),
            (
                "quay.io/coreos/etcd:v3".into(),
                "quay.io/coreos/etcd:v3".into(),
            ),
            ("localhost/foo".into(), "localhost/foo:latest".into()),
            ("localhost:5000/a/b:c".into(), "localhost:5000/a/b:c".into()),
            (
                "127.0.0.1:5000/test/busybox:1.0".into(),
                "127.0.0.1:5000/test/busybox:1.0".into(),
            ),
            (
                "registry.k8s.io/pause:3.10".into(),
                "registry.k8s.io/pause:3.10".into(),
            ),
            (
                "foo/bar@sha256:".to_string() + HEX,
                format!("docker.io/foo/bar@sha256:{HEX}"),
            ),
            (
                format!("foo:tag@sha256:{HEX}"),
                format!("docker.io/library/foo:tag@sha256:{HEX}"),
            ),
            ("[::1]:5000/x".into(), "[::1]:5000/x:latest".into()),
            ("[fe80::1]/x:y".into(), "[fe80::1]/x:y".into()),
            ("Example.com/x".into(), "Example.com/x:latest".into()),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
            ),
            (
                "x/a.b_c__d-e---f/g:_T.a-g".into(),
                "docker.io/x/a.b_c__d-e---f/g:_T.a-g".into(),
            ),
            (
                "x/a.b_c__d-e---f".into(),
                "docker.io/x/a.b_c__d-e---f:latest".into(),
            ),
            (
                format!("a:{}", "t".repeat(128)),
                format!("docker.io/library/a:{}", "t".repeat(128)),
            ),
            (
                "my-registry.example.com:443/ns/sub/app:v1".into(),
                "my-registry.example.com:443/ns/sub/app:v1".into(),
            ),
        ];
        for (input, expected) in cases {
            let reference = Reference::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(reference.to_string(), expected, "input {input:?}");
            let again = Reference::parse(&reference.to_string()).unwrap();
            assert_eq!(
                again, reference,
                "normalized form of {input:?} does not round-trip"
            );
        }
    }

    #[test]
    fn parts_of_a_normalized_reference() {
        let reference = Reference::parse("busybox").unwrap();
        assert_eq!(reference.domain(), "docker.io");
        assert_eq!(reference.path(), "library/busybox");
        assert_eq!(reference.name(), "docker.io/library/busybox");
        assert_eq!(reference.tag(), Some("latest"));
        assert_eq!(reference.digest(), None);
        assert_eq!(
            reference.tagged_name().as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(
            reference.digested_name(&digest()),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );

        let reference = Reference::parse("127.0.0.1:5000/test/busybox:1.0").unwrap();
        assert_eq!(reference.domain(), "127.0.0.1:5000");
        assert_eq!(reference.path(), "test/busybox");
        assert_eq!(reference.tag(), Some("1.0"));
    }

    #[test]
    fn digest_only_reference_gets_no_default_tag() {
        let reference = Reference::parse(&format!("foo/bar@sha256:{HEX}")).unwrap();
        assert_eq!(reference.tag(), None);
        assert_eq!(reference.tagged_name(), None);
        assert_eq!(reference.digest(), Some(&digest()));
    }

    #[test]
    fn tag_and_digest_are_both_kept() {
        let reference = Reference::parse(&format!("foo:tag@sha256:{HEX}")).unwrap();
        assert_eq!(reference.tag(), Some("tag"));
        assert_eq!(reference.digest(), Some(&digest()));
    }

    #[test]
    fn bad_references_are_refused() {
        let long_tag = format!("a:{}", "t".repeat(129));
        let long_name = format!("example.com/{}", "a".repeat(244));
        let cases: Vec<(&str, ReferenceProblem)> = vec![
            ("", ReferenceProblem::Empty),
            (
                "Busybox",
                ReferenceProblem::UppercaseRepository("library/Busybox".into()),
            ),
            (
                "docker.io/Busybox",
                ReferenceProblem::UppercaseRepository("library/Busybox".into()),
            ),
            ("a//b", ReferenceProblem::EmptyPathComponent),
            ("a/", ReferenceProblem::EmptyPathComponent),
            ("example.com/", ReferenceProblem::EmptyName),
            ("-a", ReferenceProblem::InvalidPathComponent("-a".into())),
            ("a-", ReferenceProblem::InvalidPathComponent("a-".into())),
            (
                "a..b",
                ReferenceProblem::InvalidPathComponent("a..b".into()),
            ),
            (
                "a___b",
                ReferenceProblem::InvalidPathComponent("a___b".into()),
            ),
            (
                "a._b",
                ReferenceProblem::InvalidPathComponent("a._b".into()),
            ),
            ("a:", ReferenceProblem::EmptyTag),
            (":tag", ReferenceProblem::EmptyName),
            ("a:.tag", ReferenceProblem::InvalidTag(".tag".into())),
            ("a:-tag", ReferenceProblem::InvalidTag("-tag".into())),
            ("a:t+g", ReferenceProblem::InvalidTag("t+g".into())),
            (&long_tag, ReferenceProblem::InvalidTag("t".repeat(129))),
            (&long_name, ReferenceProblem::NameTooLong { len: 256 }),
            (
                "a:b:c",
                ReferenceProblem::InvalidPathComponent("a:b".into()),
            ),
            (
                "a:tag with space",
                ReferenceProblem::ForbiddenCharacter {
                    character: ' ',
                    position: 5,
                },
            ),
            (
                "x\n",
                ReferenceProblem::ForbiddenCharacter {
                    character: '\n',
                    position: 1,
                },
            ),
            (
                "x\t/y",
                ReferenceProblem::ForbiddenCharacter {
                    character: '\t',
                    position: 1,
                },
            ),
            (
                "bü/x",
                ReferenceProblem::ForbiddenCharacter {
                    character: 'ü',
                    position: 1,
                },
            ),
            (HEX, ReferenceProblem::LooksLikeImageId),
            ("-.com/x", ReferenceProblem::InvalidDomain("-.com".into())),
            ("a..com/x", ReferenceProblem::InvalidDomain("a..com".into())),
            (
                "a_b.com/x",
                ReferenceProblem::InvalidDomain("a_b.com".into()),
            ),
            (
                "example.com:/x",
                ReferenceProblem::InvalidDomain("example.com:".into()),
            ),
            (
                "example.com:port/x",
                ReferenceProblem::InvalidDomain("example.com:port".into()),
            ),
            (
                "example.com:65536/x",
                ReferenceProblem::InvalidDomain("example.com:65536".into()),
            ),
            ("[::1/x", ReferenceProblem::InvalidDomain("[::1".into())),
            (
                "[]:5000/x",
                ReferenceProblem::InvalidDomain("[]:5000".into()),
            ),
            ("[::g]/x", ReferenceProblem::InvalidDomain("[::g]".into())),
            (
                "[::1]x:5000/x",
                ReferenceProblem::InvalidDomain("[::1]x:5000".into()),
            ),
        ];
        for (input, expected) in cases {
            let error = Reference::parse(input).expect_err(input);
            assert_eq!(error.problem(), &expected, "input {input:?}");
        }
    }

    #[test]
    fn bad_digests_are_refused() {
        for input in [
            "a@sha256:abc",
            "a@",
            "a@md5:d41d8cd98f00b204e9800998ecf8427e",
            "a@@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855@x",
        ] {
            let error = Reference::parse(input).expect_err(input);
            assert!(
                matches!(error.problem(), ReferenceProblem::InvalidDigest(_)),
                "{input:?}: {error}"
            );
        }
    }

    #[test]
    fn bare_digest_is_refused_as_an_image_id() {
        let error = Reference::parse(&format!("sha256:{HEX}")).unwrap_err();
        assert_eq!(error.problem(), &ReferenceProblem::LooksLikeImageId);
        assert!(
            error.to_string().contains("looks like an image id"),
            "{error}"
        );
    }

    #[test]
    fn error_message_quotes_truncated_input() {
        let input = format!("{}\n", "A".repeat(1000));
        let message = Reference::parse(&input).unwrap_err().to_string();
        assert!(
            message.starts_with("invalid image reference \"AAAA"),
            "{message}"
        );
        assert_eq!(Reference::parse(&input).unwrap_err().input().len(), 200);
        assert!(message.len() < 400, "{message}");

        let message = Reference::parse("x\ny").unwrap_err().to_string();
        assert!(
            !message.contains('\n'),
            "control characters are escaped: {message}"
        );
    }

    #[test]
    fn huge_input_is_refused_early() {
        let input = "a".repeat(100_000);
        let error = Reference::parse(&input).unwrap_err();
        assert_eq!(error.problem(), &ReferenceProblem::TooLong { len: 100_000 });
    }

    #[test]
    fn with_domain_keeps_tag_and_digest() {
        let reference =
            Reference::parse(&format!("registry.k8s.io/pause:3.10@sha256:{HEX}")).unwrap();
        let mirrored = reference.with_domain("127.0.0.1:5000", "k8s/pause");
        assert_eq!(mirrored.domain(), "127.0.0.1:5000");
        assert_eq!(mirrored.path(), "k8s/pause");
        assert_eq!(mirrored.tag(), Some("3.10"));
        assert_eq!(mirrored.digest(), Some(&digest()));
        assert_eq!(
            mirrored.to_string(),
            format!("127.0.0.1:5000/k8s/pause:3.10@sha256:{HEX}")
        );
    }

    #[test]
    fn with_domain_normalizes_docker_hub() {
        let reference = Reference::parse("registry.k8s.io/pause:3.10").unwrap();
        let moved = reference.with_domain("index.docker.io", "pause");
        assert_eq!(moved.to_string(), "docker.io/library/pause:3.10");
        assert_eq!(Reference::parse(&moved.to_string()).unwrap(), moved);
    }

    #[test]
    fn try_with_domain_refuses_what_parse_would_not_read_back() {
        let reference = Reference::parse("busybox").unwrap();
        for (domain, path) in [
            ("myhost", "x"),
            ("example.com", ""),
            ("example.com", "A"),
            ("example.com", "a//b"),
            ("exa mple.com", "a"),
            ("example.com:x", "a"),
        ] {
            assert!(
                reference.try_with_domain(domain, path).is_err(),
                "{domain:?} {path:?} accepted"
            );
        }
        let long = "a".repeat(250);
        assert!(matches!(
            reference
                .try_with_domain("example.com", &long)
                .unwrap_err()
                .problem(),
            ReferenceProblem::NameTooLong { .. }
        ));
        assert_eq!(
            reference
                .try_with_domain("localhost", "x")
                .unwrap()
                .to_string(),
            "localhost/x:latest"
        );
    }

    #[test]
    fn locations_are_checked_and_normalized() {
        for (location, expected) in [
            ("registry.k8s.io", "registry.k8s.io"),
            ("127.0.0.1:5000/k8s", "127.0.0.1:5000/k8s"),
            ("index.docker.io", "docker.io"),
            ("index.docker.io/library", "docker.io/library"),
            ("localhost", "localhost"),
            ("[::1]:5000/a/b", "[::1]:5000/a/b"),
        ] {
            assert_eq!(check_location(location).unwrap(), expected, "{location:?}");
        }
        for location in [
            "",
            "myhost",
            "myhost/x",
            "example.com/",
            "example.com//x",
            "example.com/X",
            "example.com/x:tag",
            "example.com/x@sha256:abc",
            "http://example.com",
            "example.com x",
            "example.com:99999",
        ] {
            assert!(check_location(location).is_err(), "{location:?} accepted");
        }
    }

    #[test]
    fn references_compare_by_normalized_form() {
        let a = Reference::parse("busybox").unwrap();
        let b = Reference::parse("index.docker.io/library/busybox:latest").unwrap();
        assert_eq!(a, b);
        assert_eq!("busybox".parse::<Reference>().unwrap(), a);
    }
}
