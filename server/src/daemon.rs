//! The daemon's life: prepare its directories, own the CRI socket, serve both CRI services, and
//! on SIGTERM/SIGINT stop accepting, let in-flight calls finish (bounded) and exit. Containers and
//! pods are never touched by a shutdown: they outlive the daemon.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::Server;
use tower_http::classify::GrpcFailureClass;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::containers::ContainerManager;
use crate::image_service::{CriImageService, ImageServiceServer};
use crate::pods::PodManager;
use crate::runtime_service::{CriRuntimeService, RuntimeServiceServer};
use crate::socket;
use crate::streaming::StreamServer;
use crius_image_store::store::{ImageStore, ImageStoreConfig};

/// Largest gRPC message either way. kubelet allows 16 MiB; ExecSync may answer 16 MiB of stdout
/// and 16 MiB of stderr at once, so crius takes cri-o's 80 MiB.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 80 * 1024 * 1024;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    // The socket first: a daemon refused because another one serves the path creates nothing.
    let (listener, socket_ownership) = socket::bind(&config.listen)?;
    create_private_dir(&config.root)?;
    // The state dir is on a tmpfs: without it, the node rebooted since crius last ran.
    let node_rebooted = !config.state_dir.exists();
    create_private_dir(&config.state_dir)?;

    let image_store = open_image_store(&config)?;
    let config = Arc::new(config);
    let pods = Arc::new(
        PodManager::open(config.clone(), node_rebooted)
            .await
            .context("open the pod store")?,
    );
    let containers = ContainerManager::open(
        config.clone(),
        pods.clone(),
        image_store.clone(),
        node_rebooted,
    )
    .await
    .context("open the container store")?;
    let (streaming, stream_listener) =
        StreamServer::bind(&config.stream, containers.clone(), pods.clone())
            .await
            .context("start the streaming server")?;
    let (stop_streaming, streaming_stop_requested) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(streaming.clone().serve(stream_listener, async {
        streaming_stop_requested.await.ok();
    }));
    tracing::info!(address = %streaming.address(), "the streaming server is listening");
    let runtime_service = RuntimeServiceServer::new(CriRuntimeService::new(
        config.clone(),
        pods,
        containers.clone(),
        streaming,
    ))
    .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let image_service = ImageServiceServer::new(CriImageService::new(
        image_store,
        containers,
        &config.image.sandbox_image,
    ))
    .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let (stop_accepting, stop_requested) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(
        Server::builder()
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(rpc_span)
                    .on_request(())
                    .on_response(log_rpc_answer)
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(log_rpc_failure),
            )
            .add_service(runtime_service)
            .add_service(image_service)
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                stop_requested.await.ok();
            }),
    );
    tracing::info!(
        socket = %config.listen.display(),
        version = env!("CARGO_PKG_VERSION"),
        "crius is serving"
    );

    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        finished = &mut server => {
            finished.context("gRPC server task")?.context("gRPC server")?;
            anyhow::bail!("gRPC server stopped on its own");
        }
    };
    tracing::info!(
        signal = signal_name,
        "shutting down: no new calls are accepted"
    );
    stop_accepting.send(()).ok();
    stop_streaming.send(()).ok();
    match tokio::time::timeout(config.shutdown_timeout, &mut server).await {
        Ok(finished) => finished
            .context("gRPC server task")?
            .context("gRPC server")?,
        Err(_) => {
            tracing::warn!(
                timeout = ?config.shutdown_timeout,
                "in-flight calls did not finish in time; exiting anyway"
            );
            server.abort();
        }
    }
    drop(socket_ownership);
    tracing::info!("crius stopped");
    Ok(())
}

/// One span per RPC, named by its gRPC method; handlers record the pod and container they touch.
fn rpc_span(request: &http::Request<Body>) -> tracing::Span {
    tracing::info_span!(
        "rpc",
        method = request.uri().path(),
        pod_id = tracing::field::Empty,
        container_id = tracing::field::Empty,
    )
}

fn log_rpc_answer(_: &http::Response<Body>, latency: Duration, _: &tracing::Span) {
    tracing::debug!(?latency, "rpc answered");
}

/// A non-OK gRPC code, from the headers or the trailers.
#[allow(clippy::needless_pass_by_value)] // the signature tower-http's `OnFailure` calls
fn log_rpc_failure(failure: GrpcFailureClass, latency: Duration, _: &tracing::Span) {
    tracing::debug!(%failure, ?latency, "rpc failed");
}

fn open_image_store(config: &Config) -> anyhow::Result<Arc<ImageStore>> {
    ImageStore::open(ImageStoreConfig {
        root: config.root.clone(),
        registries_conf: config.image.registries_conf.clone(),
        auth_file: config.image.auth_file.clone(),
        progress_timeout: config.image.pull_progress_timeout,
        max_layer_bytes: config.image.max_layer_bytes,
    })
    .context("open the image store")
}

/// Creates `dir` (and its parents) with mode 0700 if missing; an existing directory is kept.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create directory {}", dir.display()))
}
