//! The client half of the OCI distribution protocol: manifests and blobs over HTTPS (plain HTTP
//! only for hosts configured insecure), anonymous, basic and bearer-token auth, retries with
//! backoff on transient failures.
//!
//! Credentials go only to the registry host they are for: never to a mirror they were not given
//! for, never across a redirect to another host (reqwest drops `Authorization` there), and to a
//! token realm on another host only over HTTPS.

mod challenge;
pub mod credentials;

use std::time::Duration;

use base64::Engine;
use reqwest::{Response, StatusCode, Url};
use tokio::sync::Mutex;

use crate::digest::Digest;
use crate::error::ImageStoreError;
use crate::manifest::{ACCEPTED_MANIFESTS, MAX_MANIFEST_BYTES};
use challenge::Challenge;
pub use credentials::Credentials;

/// Attempts of one request when the registry fails transiently (5xx, 429, reset, timeout).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Token responses larger than this are refused.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RegistryClient {
    verified_tls: reqwest::Client,
    unverified_tls: reqwest::Client,
}

impl RegistryClient {
    pub fn new() -> Result<Self, ImageStoreError> {
        let build = |accept_invalid_certs: bool| {
            reqwest::Client::builder()
                .user_agent(concat!("crius/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(CONNECT_TIMEOUT)
                .danger_accept_invalid_certs(accept_invalid_certs)
                .build()
                .map_err(|e| ImageStoreError::Registry {
                    host: String::new(),
                    detail: format!("build HTTP client: {e}"),
                })
        };
        Ok(RegistryClient {
            verified_tls: build(false)?,
            unverified_tls: build(true)?,
        })
    }

    /// A session with one repository of one registry. An insecure host is tried over HTTPS
    /// without certificate checks first, then over plain HTTP.
    pub async fn session(
        &self,
        host: &str,
        repository: &str,
        insecure: bool,
        credentials: Option<Credentials>,
    ) -> Result<Session, ImageStoreError> {
        let (http, scheme) = if insecure {
            let probe = self
                .unverified_tls
                .get(format!("https://{host}/v2/"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match probe {
                Ok(_) => (self.unverified_tls.clone(), "https"),
                Err(_) => (self.unverified_tls.clone(), "http"),
            }
        } else {
            (self.verified_tls.clone(), "https")
        };
        Ok(Session {
            http,
            host: host.to_string(),
            base: format!("{scheme}://{host}/v2/{repository}"),
            repository: repository.to_string(),
            credentials,
            authorization: Mutex::new(None),
        })
    }
}

/// Requests against one repository, carrying the authorization obtained on the first challenge.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    host: String,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

impl Session {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A manifest by tag or digest: its exact bytes and content type.
    pub async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String), ImageStoreError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self.get(&url, ACCEPTED_MANIFESTS, "manifest", None).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = read_bounded(response, MAX_MANIFEST_BYTES, &self.host, "manifest").await?;
        Ok((bytes, content_type))
    }

    /// A blob by digest, as a response whose body the caller streams and verifies.
    pub async fn blob(&self, digest: &Digest) -> Result<Response, ImageStoreError> {
        let url = format!("{}/blobs/{digest}", self.base);
        self.get(&url, "*/*", "blob", None).await
    }

    /// The rest of a blob from byte `offset`, to resume a broken download. Returns the response
    /// and how many leading bytes of it to drop: none when the registry honoured the range,
    /// `offset` when it sent the whole blob again.
    pub async fn blob_from(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, u64), ImageStoreError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let response = self.get(&url, "*/*", "blob", Some(offset)).await?;
        let skip = if response.status() == StatusCode::PARTIAL_CONTENT {
            0
        } else {
            offset
        };
        Ok((response, skip))
    }

    /// GET (from byte `range_start`, if given) with authorization and retries. A 401 answers
    /// the registry's challenge once.
    async fn get(
        &self,
        url: &str,
        accept: &str,
        what: &'static str,
        range_start: Option<u64>,
    ) -> Result<Response, ImageStoreError> {
        let mut answered_challenge = false;
        loop {
            let authorization = self.authorization.lock().await.clone();
            let response = self
                .send_with_retries(url, accept, authorization.as_deref(), range_start)
                .await?;
            match response.status() {
                status if status.is_success() => return Ok(response),
                StatusCode::UNAUTHORIZED if !answered_challenge => {
                    let header = response
                        .headers()
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let authorization = self.answer(&header).await?;
                    *self.authorization.lock().await = Some(authorization);
                    answered_challenge = true;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(ImageStoreError::Unauthenticated {
                        host: self.host.clone(),
                        detail: format!(
                            "{what} of {} answered {}",
                            self.repository,
                            response.status()
                        ),
                    });
                }
                StatusCode::NOT_FOUND => {
                    return Err(ImageStoreError::NotFound {
                        what,
                        target: url.to_string(),
                    });
                }
                status => {
                    return Err(ImageStoreError::Registry {
                        host: self.host.clone(),
                        detail: format!("GET {url} answered {status}"),
                    });
                }
            }
        }
    }

    async fn send_with_retries(
        &self,
        url: &str,
        accept: &str,
        authorization: Option<&str>,
        range_start: Option<u64>,
    ) -> Result<Response, ImageStoreError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut request = self.http.get(url).header(reqwest::header::ACCEPT, accept);
            if let Some(authorization) = authorization {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            if let Some(start) = range_start {
                request = request.header(reqwest::header::RANGE, format!("bytes={start}-"));
            }
            let outcome = request.send().await;
            let transient = match &outcome {
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
                }
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            };
            if !transient || attempt == ATTEMPTS {
                return outcome.map_err(|e| ImageStoreError::Registry {
                    host: self.host.clone(),
                    detail: format!("GET {url}: {e}"),
                });
            }
            tracing::debug!(
                url,
                attempt,
                ?backoff,
                "transient registry failure, retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// The `Authorization` value that answers a challenge with our credentials.
    async fn answer(&self, header: &str) -> Result<String, ImageStoreError> {
        let unauthenticated = |detail: String| ImageStoreError::Unauthenticated {
            host: self.host.clone(),
            detail,
        };
        match challenge::parse(header) {
            Some(Challenge::Basic) => match &self.credentials {
                Some(Credentials::Basic { username, password }) => {
                    Ok(basic_authorization(username, password))
                }
                _ => Err(unauthenticated("basic credentials required".into())),
            },
            Some(Challenge::Bearer { realm, params }) => {
                if let Some(Credentials::RegistryToken(token)) = &self.credentials {
                    return Ok(format!("Bearer {token}"));
                }
                let token = self.fetch_token(&realm, &params).await?;
                Ok(format!("Bearer {token}"))
            }
            None => Err(unauthenticated(format!("unsupported challenge {header:?}"))),
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<String, ImageStoreError> {
        let unauthenticated = |detail: String| ImageStoreError::Unauthenticated {
            host: self.host.clone(),
            detail,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| unauthenticated(format!("token realm {realm:?}: {e}")))?;
        let scope = format!("repository:{}:pull", self.repository);
        let service = params.get("service").cloned().unwrap_or_default();
        let realm_host = url.host_str().unwrap_or_default().to_string();
        let realm_authority = match url.port() {
            Some(port) => format!("{realm_host}:{port}"),
            None => realm_host.clone(),
        };
        // The same server means the same host and port, not just the same address.
        let same_host = realm_authority == self.host;
        // Credentials may go to the realm over HTTPS, or to the registry's own host.
        let credentials = self
            .credentials
            .as_ref()
            .filter(|_| url.scheme() == "https" || same_host);
        let request = match credentials {
            Some(Credentials::IdentityToken(refresh_token)) => self.http.post(url.clone()).form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("service", &service),
                ("scope", &scope),
                ("client_id", "crius"),
            ]),
            other => {
                url.query_pairs_mut()
                    .append_pair("service", &service)
                    .append_pair("scope", &scope);
                let request = self.http.get(url.clone());
                match other {
                    Some(Credentials::Basic { username, password }) => request.header(
                        reqwest::header::AUTHORIZATION,
                        basic_authorization(username, password),
                    ),
                    _ => request,
                }
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| unauthenticated(format!("token request to {realm_host}: {e}")))?;
        if !response.status().is_success() {
            return Err(unauthenticated(format!(
                "token endpoint answered {}",
                response.status()
            )));
        }
        let bytes = read_bounded(response, MAX_TOKEN_RESPONSE_BYTES, &self.host, "token").await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| unauthenticated(format!("token response: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("token response without a token".into()))
    }
}

fn basic_authorization(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Reads a whole response body of at most `max` bytes.
async fn read_bounded(
    mut response: Response,
    max: u64,
    host: &str,
    what: &'static str,
) -> Result<Vec<u8>, ImageStoreError> {
    if response.content_length().is_some_and(|len| len > max) {
        return Err(ImageStoreError::BadContent {
            what,
            detail: format!("larger than {max} bytes"),
        });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ImageStoreError::Registry {
            host: host.to_string(),
            detail: format!("reading {what}: {e}"),
        })?
    {
        if bytes.len() as u64 + chunk.len() as u64 > max {
            return Err(ImageStoreError::BadContent {
                what,
                detail: format!("larger than {max} bytes"),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
