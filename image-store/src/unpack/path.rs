//! Archive paths normalized into paths relative to the layer root.

/// The longest entry path or link target accepted, in bytes (Linux `PATH_MAX`).
pub(super) const MAX_PATH_BYTES: usize = 4096;

/// A path inside the layer: components joined by `/`, none of them empty, `.` or `..`.
/// The empty path is the layer root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LayerPath(Vec<u8>);

impl LayerPath {
    /// Normalizes a path from the archive: leading `/` and `./`, repeated slashes and `.`
    /// components are dropped (so an absolute path is re-rooted in the layer); a `..` component,
    /// a NUL byte or more than [`MAX_PATH_BYTES`] bytes is refused.
    pub(super) fn normalize(raw: &[u8]) -> Result<Self, PathProblem> {
        check_length_and_nul(raw)?;
        let mut normalized = Vec::with_capacity(raw.len());
        for component in raw.split(|&byte| byte == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(PathProblem::ParentComponent),
                _ => {
                    if !normalized.is_empty() {
                        normalized.push(b'/');
                    }
                    normalized.extend_from_slice(component);
                }
            }
        }
        Ok(LayerPath(normalized))
    }

    pub(super) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The parent directory (empty for a top-level entry) and the last component; `None` for
    /// the root.
    pub(super) fn split_last(&self) -> Option<(&[u8], &[u8])> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.iter().rposition(|&byte| byte == b'/') {
            Some(slash) => (&self.0[..slash], &self.0[slash + 1..]),
            None => (&[][..], &self.0[..]),
        })
    }

    /// The number of components (0 for the root).
    pub(super) fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            1 + self.0.iter().filter(|&&byte| byte == b'/').count()
        }
    }

    /// The path for messages (lossy UTF-8).
    pub(super) fn display(&self) -> String {
        display_bytes(&self.0)
    }
}

/// Why a path from the archive is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PathProblem {
    TooLong,
    Nul,
    ParentComponent,
}

impl PathProblem {
    /// The reason, for the entry's own path.
    pub(super) fn reason(self) -> &'static str {
        match self {
            PathProblem::TooLong => "path longer than 4096 bytes",
            PathProblem::Nul => "path contains a nul byte",
            PathProblem::ParentComponent => "path has a `..` component",
        }
    }

    /// The reason, for a link target.
    pub(super) fn link_target_reason(self) -> &'static str {
        match self {
            PathProblem::TooLong => "link target longer than 4096 bytes",
            PathProblem::Nul => "link target contains a nul byte",
            PathProblem::ParentComponent => "hardlink target has a `..` component",
        }
    }
}

/// Refuses a path or link target that is too long or has a NUL byte.
pub(super) fn check_length_and_nul(raw: &[u8]) -> Result<(), PathProblem> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathProblem::TooLong);
    }
    if raw.contains(&0) {
        return Err(PathProblem::Nul);
    }
    Ok(())
}

/// Bytes from the archive (a path, a link target) for messages, lossy UTF-8.
pub(super) fn display_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(raw: &str) -> Result<String, PathProblem> {
        LayerPath::normalize(raw.as_bytes()).map(|path| path.display())
    }

    #[test]
    fn normalize_strips_leading_slashes_dots_and_repeated_separators() {
        assert_eq!(normalized("/etc/evil").unwrap(), "etc/evil");
        assert_eq!(normalized("./usr/bin/").unwrap(), "usr/bin");
        assert_eq!(normalized("//a/./b//c").unwrap(), "a/b/c");
        assert_eq!(normalized("./").unwrap(), "");
        assert_eq!(normalized("/").unwrap(), "");
        assert_eq!(normalized("..a/b..").unwrap(), "..a/b..");
    }

    #[test]
    fn normalize_refuses_parent_components_nul_and_overlong_paths() {
        assert_eq!(normalized("../escape"), Err(PathProblem::ParentComponent));
        assert!(normalized("a/../../escape").is_err());
        assert!(normalized("a/..").is_err());
        assert!(normalized("/..").is_err());
        assert_eq!(LayerPath::normalize(b"a\0b"), Err(PathProblem::Nul));
        assert_eq!(
            normalized(&"a".repeat(MAX_PATH_BYTES + 1)),
            Err(PathProblem::TooLong)
        );
        assert!(normalized(&"a".repeat(MAX_PATH_BYTES)).is_ok());
    }

    #[test]
    fn split_last_and_depth_describe_the_parent_and_name() {
        let nested = LayerPath::normalize(b"a/b/c").unwrap();
        assert_eq!(nested.split_last(), Some((&b"a/b"[..], &b"c"[..])));
        assert_eq!(nested.depth(), 3);
        let top = LayerPath::normalize(b"top").unwrap();
        assert_eq!(top.split_last(), Some((&b""[..], &b"top"[..])));
        assert_eq!(top.depth(), 1);
        let root = LayerPath::normalize(b"/").unwrap();
        assert_eq!(root.split_last(), None);
        assert_eq!(root.depth(), 0);
    }
}
