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
