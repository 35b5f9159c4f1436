//! gRPC status codes for crius's errors: chosen by error kind, never by message text.

use tonic::Status;

/// The answer of an RPC that crius does not serve yet.
pub fn not_built(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented by crius yet"))
}

/// A failure of crius itself, not of the request.
pub fn internal(context: &str, err: &anyhow::Error) -> Status {
    tracing::error!(error = format!("{err:#}"), "{context}");
    Status::internal(format!("{context}: {err:#}"))
}

/// The gRPC status of an image store failure, by its kind.
pub fn image_store(err: &crius_image_store::ImageStoreError) -> Status {
    use crius_image_store::ImageStoreErrorKind as Kind;
    let message = err.to_string();
    match err.kind() {
        Kind::InvalidArgument => Status::invalid_argument(message),
        Kind::NotFound => Status::not_found(message),
        Kind::Unauthenticated => Status::unauthenticated(message),
        Kind::PermissionDenied => Status::permission_denied(message),
        Kind::BadContent => Status::failed_precondition(message),
        Kind::Unavailable => Status::unavailable(message),
        Kind::DeadlineExceeded => Status::deadline_exceeded(message),
        Kind::Internal => {
            tracing::error!(error = %message, "image store failure");
            Status::internal(message)
        }
    }
}

/// The gRPC status of a runtime failure, by its kind.
pub fn runtime(err: &crius_runtime::RuntimeError) -> Status {
    use crius_runtime::RuntimeErrorKind as Kind;
    let message = err.to_string();
    match err.kind() {
        Kind::InvalidArgument => Status::invalid_argument(message),
        Kind::HostUnsupported | Kind::NotRunning => Status::failed_precondition(message),
        Kind::Internal => {
            tracing::error!(error = %message, "runtime failure");
            Status::internal(message)
        }
    }
}

/// The gRPC status of a CNI failure, by its kind.
pub fn cni(err: &crius_cni::CniError) -> Status {
    use crius_cni::CniErrorKind as Kind;
    let message = err.to_string();
    match err.kind() {
        Kind::NotConfigured => Status::failed_precondition(message),
        Kind::InvalidArgument => Status::invalid_argument(message),
        Kind::PluginFailed => Status::unavailable(message),
        Kind::Timeout => Status::deadline_exceeded(message),
        Kind::Io => Status::internal(message),
    }
}
