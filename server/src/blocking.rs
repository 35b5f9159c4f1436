//! Blocking work (file systems, mounts, execs of helpers) runs off the async workers; a panic in
//! it is a panic of the caller.

pub async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()))
}
