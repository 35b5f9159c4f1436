//! The error type of the image store, with a kind the server maps to a gRPC code.

use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::reference::ReferenceError;
use crate::registries_conf::RegistriesConfError;
use crate::unpack::{UnpackError, UnpackErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStoreErrorKind {
    /// The request names something malformed (a reference, a digest).
    InvalidArgument,
    /// The image, manifest or blob does not exist where it was looked for.
    NotFound,
    /// The registry refused our credentials, or we had none it would take.
    Unauthenticated,
    /// Configuration forbids it (a blocked registry).
    PermissionDenied,
    /// The registry or the image content is wrong: digest or size mismatch, bad manifest, hostile
    /// layer, unsupported format.
    BadContent,
    /// The registry could not be reached or failed; trying later may work.
    Unavailable,
    /// No progress for too long.
    DeadlineExceeded,
    /// A local failure: disk, permissions, a bug.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    RegistriesConf(#[from] RegistriesConfError),
    #[error("{what} not found: {target}")]
    NotFound { what: &'static str, target: String },
    #[error("registry {host} refused the credentials: {detail}")]
    Unauthenticated { host: String, detail: String },
    #[error("{what} {digest}: {detail}")]
    Verification {
        what: &'static str,
        digest: Digest,
        detail: String,
    },
    #[error("unsupported {what}: {detail}")]
    Unsupported { what: &'static str, detail: String },
    #[error("invalid {what}: {detail}")]
    BadContent { what: &'static str, detail: String },
    #[error("layer {digest}: {source}")]
    Unpack {
        digest: Digest,
        #[source]
        source: UnpackError,
    },
    #[error("registry {host}: {detail}")]
    Registry { host: String, detail: String },
    #[error("no progress for {seconds}s pulling {what}")]
    Stalled { what: String, seconds: u64 },
    /// The failure of a pull this caller shared with others.
    #[error(transparent)]
    Shared(std::sync::Arc<ImageStoreError>),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageStoreError {
    pub fn kind(&self) -> ImageStoreErrorKind {
        use ImageStoreErrorKind as K;
        match self {
            ImageStoreError::Reference(_) | ImageStoreError::Digest(_) => K::InvalidArgument,
            ImageStoreError::RegistriesConf(e) if e.is_blocked() => K::PermissionDenied,
            ImageStoreError::RegistriesConf(_) | ImageStoreError::Io { .. } => K::Internal,
            ImageStoreError::NotFound { .. } => K::NotFound,
            ImageStoreError::Unauthenticated { .. } => K::Unauthenticated,
            ImageStoreError::Unpack { source, .. } if source.kind() == UnpackErrorKind::Io => {
                K::Internal
            }
            ImageStoreError::Verification { .. }
            | ImageStoreError::Unsupported { .. }
            | ImageStoreError::BadContent { .. }
            | ImageStoreError::Unpack { .. } => K::BadContent,
            ImageStoreError::Registry { .. } => K::Unavailable,
            ImageStoreError::Stalled { .. } => K::DeadlineExceeded,
            ImageStoreError::Shared(shared) => shared.kind(),
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ImageStoreError::Io { op, path, source }
    }
}
