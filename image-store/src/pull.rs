//! Pulling an image: registries.conf picks the sources (mirrors first), the manifest is fetched
//! and verified (the linux/amd64 one from an index), the config is fetched and verified, then
//! every missing layer is downloaded, stored, decompressed, verified and unpacked at once, each
//! as one stream. The image record is written last, after a `syncfs`.
//!
//! Concurrent pulls of the same reference with the same credentials share one pull; a pull with
//! other (or no) credentials runs on its own, so nobody rides on another caller's access.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};

use crate::blocking::run_blocking;
use crate::digest::Digest;
use crate::error::ImageStoreError;
use crate::images::{ImageRecord, LayerRecord};
use crate::layers::chain_ids;
use crate::manifest::{
    Descriptor, ImageConfig, ImageManifest, MAX_MANIFEST_BYTES, Manifest, layer_compression,
    select_platform,
};
use crate::reference::Reference;
use crate::registries_conf::{PullSource, RegistriesConf};
use crate::registry::{Credentials, Session, credentials};
use crate::store::ImageStore;
use crate::stream::{ChannelReader, Decoder, DiffReader, TeeReader};
use crate::unpack::{UnpackOptions, unpack_layer};

type PullResult = Result<ImageRecord, Arc<ImageStoreError>>;
type SharedPull = Shared<BoxFuture<'static, PullResult>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PullKey {
    reference: String,
    credentials: Option<Credentials>,
}

/// Pulls under way, held weakly: when every caller of a pull has gone away, the pull is dropped
/// (cancelled) rather than kept alive by this map.
#[derive(Default)]
pub struct InFlightPulls {
    pulls: Mutex<HashMap<PullKey, WeakShared<BoxFuture<'static, PullResult>>>>,
}

impl std::fmt::Debug for InFlightPulls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightPulls").finish_non_exhaustive()
    }
}

/// Chunks buffered between the download task and the unpacking thread of one layer.
const LAYER_PIPE_CHUNKS: usize = 64;
/// Times a broken blob download is resumed before the pull fails.
const MAX_RESUMES: u32 = 3;

impl ImageStore {
    /// Pulls `reference`; `credentials` are for the reference's own registry (mirrors use the
    /// auth file's credentials for their host).
    pub async fn pull(
        self: &Arc<Self>,
        reference: &Reference,
        credentials: Option<Credentials>,
    ) -> Result<ImageRecord, ImageStoreError> {
        let key = PullKey {
            reference: reference.to_string(),
            credentials: credentials.clone(),
        };
        let shared: SharedPull = {
            let mut pulls = self
                .in_flight
                .pulls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pulls.retain(|_, weak| weak.upgrade().is_some());
            match pulls.get(&key).and_then(WeakShared::upgrade) {
                Some(shared) => shared,
                None => {
                    let store = Arc::clone(self);
                    let reference = reference.clone();
                    let pull = async move {
                        let _shared = store.content_lock.read().await;
                        store
                            .pull_now(&reference, credentials)
                            .await
                            .map_err(Arc::new)
                    }
                    .boxed()
                    .shared();
                    if let Some(weak) = pull.downgrade() {
                        pulls.insert(key, weak);
                    }
                    pull
                }
            }
        };
        shared.await.map_err(ImageStoreError::Shared)
    }

    async fn pull_now(
        self: &Arc<Self>,
        reference: &Reference,
        credentials: Option<Credentials>,
    ) -> Result<ImageRecord, ImageStoreError> {
        let registries = RegistriesConf::load(&self.config.registries_conf)?;
        let sources = registries.endpoints(reference)?;
        let last = sources.len().saturating_sub(1);
        let mut failure = None;
        for (position, source) in sources.into_iter().enumerate() {
            let host = source.reference.domain().to_string();
            // Credentials of the request belong to the reference's own registry only.
            let source_credentials = if host == reference.domain() && credentials.is_some() {
                credentials.clone()
            } else {
                credentials::from_auth_file(&self.config.auth_file, &host)?
            };
            match self.pull_from(reference, &source, source_credentials).await {
                Ok(image) => return Ok(image),
                Err(err) if position < last => {
                    tracing::warn!(
                        source = %source.reference,
                        error = %err,
                        "pull from a mirror failed, trying the next source"
                    );
                    failure = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(failure.unwrap_or_else(|| ImageStoreError::NotFound {
            what: "pull source",
            target: reference.to_string(),
        }))
    }

    async fn pull_from(
        self: &Arc<Self>,
        reference: &Reference,
        source: &PullSource,
        credentials: Option<Credentials>,
    ) -> Result<ImageRecord, ImageStoreError> {
        let location = &source.reference;
        let session = self
            .client
            .session(
                location.domain(),
                location.path(),
                source.insecure,
                credentials,
            )
            .await?;
        let wanted = match (location.digest(), location.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_string(),
            (None, None) => "latest".to_string(),
        };
        let (top_bytes, content_type) = session.manifest(&wanted).await?;
        let top_digest = match location.digest() {
            Some(expected) => verify_bytes("manifest", &top_bytes, expected, None)?,
            None => Digest::sha256_of(&top_bytes),
        };
        let mut manifest_blobs = vec![(top_digest.clone(), top_bytes.clone())];
        let manifest = match Manifest::parse(&top_bytes, &content_type)? {
            Manifest::Image(manifest) => manifest,
            Manifest::Index(entries) => {
                let entry = select_platform(&entries)?.clone();
                let (bytes, content_type) = session.manifest(&entry.digest.to_string()).await?;
                verify_bytes("manifest", &bytes, &entry.digest, Some(entry.size))?;
                let Manifest::Image(manifest) = Manifest::parse(&bytes, &content_type)? else {
                    return Err(ImageStoreError::BadContent {
                        what: "manifest",
                        detail: format!("{} is an index inside an index", entry.digest),
                    });
                };
                manifest_blobs.push((entry.digest, bytes));
                manifest
            }
        };
        let config_bytes = fetch_config(&session, &manifest.config).await?;
        let config = ImageConfig::parse(&config_bytes)?;
        let layers = self.ensure_layers(&session, &manifest, &config).await?;

        let record = ImageRecord {
            id: manifest.config.digest.clone(),
            repo_tags: match reference.digest() {
                None => reference.tagged_name().into_iter().collect(),
                Some(_) => Vec::new(),
            },
            repo_digests: vec![reference.digested_name(&top_digest)],
            manifests: manifest_blobs
                .iter()
                .map(|(digest, _)| digest.clone())
                .collect(),
            layers,
            user: config.user().to_string(),
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        };
        let store = Arc::clone(self);
        let config_digest = manifest.config.digest.clone();
        run_blocking(move || {
            store.content.put(&config_digest, &config_bytes)?;
            for (digest, bytes) in &manifest_blobs {
                store.content.put(digest, bytes)?;
            }
            store.layers.sync()?;
            let stored = store.index().insert(record)?;
            tracing::info!(id = %stored.id, tags = ?stored.repo_tags, "image pulled");
            Ok(stored)
        })
        .await
    }

    /// Every layer of the manifest, unpacked: the present ones as they are, the missing ones
    /// downloaded and unpacked all at once.
    async fn ensure_layers(
        self: &Arc<Self>,
        session: &Session,
        manifest: &ImageManifest,
        config: &ImageConfig,
    ) -> Result<Vec<LayerRecord>, ImageStoreError> {
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageStoreError::BadContent {
                what: "image config",
                detail: format!(
                    "{} diff IDs for {} layers in the manifest",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let chain = chain_ids(diff_ids);
        let layers = manifest.layers.iter().zip(diff_ids).zip(&chain).map(
            |((descriptor, diff_id), chain_id)| {
                self.ensure_layer(session, descriptor, diff_id, chain_id)
            },
        );
        futures_util::future::try_join_all(layers).await
    }

    async fn ensure_layer(
        self: &Arc<Self>,
        session: &Session,
        descriptor: &Descriptor,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<LayerRecord, ImageStoreError> {
        let present = |store: &ImageStore| {
            store
                .layers
                .get(chain_id)
                .filter(|layer| layer.diff_id == *diff_id)
        };
        if let Some(layer) = present(self) {
            return Ok(layer);
        }
        let _unpacking = self.layer_locks.lock(chain_id).await;
        if let Some(layer) = present(self) {
            return Ok(layer);
        }
        let compression = layer_compression(&descriptor.media_type)?;
        if descriptor.size > self.config.max_layer_bytes {
            return Err(ImageStoreError::BadContent {
                what: "layer",
                detail: format!(
                    "{} is {} bytes, over the limit",
                    descriptor.digest, descriptor.size
                ),
            });
        }
        let response = session.blob(&descriptor.digest).await?;
        if let Some(length) = response.content_length().filter(|l| *l != descriptor.size) {
            return Err(ImageStoreError::Verification {
                what: "layer",
                digest: descriptor.digest.clone(),
                detail: format!(
                    "registry announced {length} bytes, the manifest {}",
                    descriptor.size
                ),
            });
        }
        let staged = self.layers.stage()?;
        let blob = self.content.writer(&descriptor.digest, descriptor.size)?;
        let (chunks, received) = tokio::sync::mpsc::channel(LAYER_PIPE_CHUNKS);
        let diff_dir = staged.diff_dir();
        let limit = self.config.max_layer_bytes;
        let diff_hasher = diff_id.hasher();
        let blob_digest = descriptor.digest.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            let stream_error = |e: std::io::Error| ImageStoreError::BadContent {
                what: "layer",
                detail: format!("{blob_digest}: {e}"),
            };
            let tee = TeeReader::new(ChannelReader::new(received), blob);
            let mut diff = DiffReader::new(
                Decoder::new(tee, compression).map_err(stream_error)?,
                diff_hasher,
                limit,
            );
            let is_root = rustix::process::geteuid().is_root();
            let options = UnpackOptions {
                preserve_ownership: is_root,
                allow_devices: is_root,
            };
            let stats = unpack_layer(&mut diff, &diff_dir, &options).map_err(|source| {
                ImageStoreError::Unpack {
                    digest: blob_digest.clone(),
                    source,
                }
            })?;
            let (hasher, decoder) = diff.finish().map_err(stream_error)?;
            let blob = decoder.into_inner().finish().map_err(stream_error)?;
            blob.commit()?;
            Ok::<_, ImageStoreError>((hasher.finish(), stats))
        });
        let downloaded = self
            .download(session, response, chunks, &descriptor.digest)
            .await;
        let unpacked = unpacker
            .await
            .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()));
        downloaded?;
        let (actual_diff_id, stats) = unpacked?;
        if actual_diff_id != *diff_id {
            return Err(ImageStoreError::Verification {
                what: "layer",
                digest: descriptor.digest.clone(),
                detail: format!(
                    "uncompressed content has digest {actual_diff_id}, the image config says {diff_id}"
                ),
            });
        }
        let record = LayerRecord {
            blob: descriptor.digest.clone(),
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
            unpacked_bytes: stats.bytes,
            unpacked_entries: stats.entries,
        };
        let store = Arc::clone(self);
        let committed = record.clone();
        run_blocking(move || store.layers.commit(staged, &committed)).await?;
        Ok(record)
    }

    /// Streams a blob's body to the unpacking thread. A body that breaks off is resumed where it
    /// stopped (a few times); a stall or a failure beyond that is sent down the pipe as an error,
    /// so the unpacker stops, and returned.
    async fn download(
        &self,
        session: &Session,
        response: reqwest::Response,
        chunks: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
        digest: &Digest,
    ) -> Result<(), ImageStoreError> {
        let timeout = self.config.progress_timeout;
        let mut body = response.bytes_stream().boxed();
        let mut received: u64 = 0;
        let mut skip: u64 = 0;
        let mut resumes = 0;
        loop {
            let failure = match tokio::time::timeout(timeout, body.next()).await {
                Ok(None) => return Ok(()),
                Ok(Some(Ok(mut chunk))) => {
                    let dropped = skip.min(chunk.len() as u64);
                    skip -= dropped;
                    let _ = chunk.split_to(usize::try_from(dropped).unwrap_or(chunk.len()));
                    received += chunk.len() as u64;
                    if !chunk.is_empty() && chunks.send(Ok(chunk)).await.is_err() {
                        return Ok(()); // the unpacker stopped; its error says why
                    }
                    continue;
                }
                Ok(Some(Err(e))) if resumes < MAX_RESUMES => {
                    resumes += 1;
                    tracing::info!(%digest, received, error = %e, "blob download broke off, resuming");
                    match session.blob_from(digest, received).await {
                        Ok((response, to_skip)) => {
                            body = response.bytes_stream().boxed();
                            skip = to_skip;
                            continue;
                        }
                        Err(err) => err,
                    }
                }
                Ok(Some(Err(e))) => ImageStoreError::Registry {
                    host: session.host().to_string(),
                    detail: format!("reading blob {digest}: {e}"),
                },
                Err(_) => ImageStoreError::Stalled {
                    what: format!("blob {digest}"),
                    seconds: timeout.as_secs(),
                },
            };
            chunks
                .send(Err(std::io::Error::other(failure.to_string())))
                .await
                .ok();
            return Err(failure);
        }
    }
}

/// The image config blob, bounded and verified.
async fn fetch_config(
    session: &Session,
    descriptor: &Descriptor,
) -> Result<Vec<u8>, ImageStoreError> {
    if descriptor.size > MAX_MANIFEST_BYTES {
        return Err(ImageStoreError::BadContent {
            what: "image config",
            detail: format!(
                "{} bytes, over the limit of {MAX_MANIFEST_BYTES}",
                descriptor.size
            ),
        });
    }
    let mut response = session.blob(&descriptor.digest).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ImageStoreError::Registry {
            host: session.host().to_string(),
            detail: format!("reading config {}: {e}", descriptor.digest),
        })?
    {
        if (bytes.len() + chunk.len()) as u64 > descriptor.size {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    verify_bytes(
        "image config",
        &bytes,
        &descriptor.digest,
        Some(descriptor.size),
    )?;
    Ok(bytes)
}

/// Checks bytes against the digest (and size) that named them; returns the digest.
fn verify_bytes(
    what: &'static str,
    bytes: &[u8],
    expected: &Digest,
    size: Option<u64>,
) -> Result<Digest, ImageStoreError> {
    if let Some(size) = size.filter(|s| *s != bytes.len() as u64) {
        return Err(ImageStoreError::Verification {
            what,
            digest: expected.clone(),
            detail: format!("size {} bytes, expected {size}", bytes.len()),
        });
    }
    let mut hasher = expected.hasher();
    hasher.update(bytes);
    let actual = hasher.finish();
    if actual != *expected {
        return Err(ImageStoreError::Verification {
            what,
            digest: expected.clone(),
            detail: format!("registry served content with digest {actual}"),
        });
    }
    Ok(actual)
}

/// One async mutex per key, created on demand and dropped when nobody holds or waits for it.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

pub struct KeyedGuard<'a> {
    owner: &'a KeyedLocks,
    key: Digest,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &Digest) -> KeyedGuard<'_> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        KeyedGuard {
            owner: self,
            key: key.clone(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self
            .owner
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}
