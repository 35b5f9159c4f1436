//! A typed CRI client over a unix socket, as crictl and kubelet connect.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// kubelet's message size limit, the smallest a conformant runtime must take.
pub const KUBELET_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct CriClient {
    pub runtime: RuntimeServiceClient<Channel>,
    pub image: ImageServiceClient<Channel>,
}

impl CriClient {
    pub async fn connect(socket: &Path) -> anyhow::Result<Self> {
        let socket: PathBuf = socket.to_path_buf();
        // The URI is required by the API and ignored by the connector.
        let channel =
            Endpoint::try_from("http://[::1]:0")?
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?))
                    }
                }))
                .await
                .context("connect to the CRI socket")?;
        Ok(CriClient {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(KUBELET_MAX_MESSAGE_BYTES)
                .max_encoding_message_size(KUBELET_MAX_MESSAGE_BYTES),
            image: ImageServiceClient::new(channel)
                .max_decoding_message_size(KUBELET_MAX_MESSAGE_BYTES)
                .max_encoding_message_size(KUBELET_MAX_MESSAGE_BYTES),
        })
    }
}
