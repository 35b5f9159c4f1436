//! A registry that lies: an HTTP/1.1 server on 127.0.0.1 that answers each path with a canned
//! response chosen by the test (wrong bytes for a digest, a wrong size, a stall halfway through a
//! blob), to check that crius verifies what it is served and cleans up after a failure.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server sends for one path.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Announce this many bytes instead of the body's length.
    pub content_length: Option<usize>,
    /// Send only this many bytes of the body, then hold the connection open without a word.
    pub stall_after: Option<usize>,
}

impl Canned {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Self {
        Canned {
            status: 200,
            content_type: content_type.to_string(),
            body,
            content_length: None,
            stall_after: None,
        }
    }
}

/// A running hostile registry; stops when dropped.
#[derive(Debug)]
pub struct HostileRegistry {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    /// Paths requested so far, in order.
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl HostileRegistry {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let routes: Arc<Mutex<HashMap<String, Canned>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let server = tokio::spawn({
            let routes = Arc::clone(&routes);
            let requests = Arc::clone(&requests);
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, Arc::clone(&routes), Arc::clone(&requests)));
                }
            }
        });
        Ok(HostileRegistry {
            addr,
            routes,
            requests,
            server,
        })
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Answers GET `path` (e.g. `/v2/x/manifests/1.0`) with `response`.
    pub fn route(&self, path: &str, response: Canned) {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(path.to_string(), response);
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = path.split('?').next().unwrap_or("/").to_string();
    requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(path.clone());
    let canned = routes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&path)
        .cloned()
        .unwrap_or_else(|| {
            let mut not_found = Canned::ok("application/json", b"{\"errors\":[]}".to_vec());
            not_found.status = if path == "/v2/" { 200 } else { 404 };
            not_found
        });
    let length = canned.content_length.unwrap_or(canned.body.len());
    let response_head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {length}\r\n\
         Docker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n",
        canned.status, canned.content_type
    );
    if stream.write_all(response_head.as_bytes()).await.is_err() {
        return;
    }
    let sent = canned
        .stall_after
        .unwrap_or(canned.body.len())
        .min(canned.body.len());
    if stream.write_all(&canned.body[..sent]).await.is_err() {
        return;
    }
    stream.flush().await.ok();
    if canned.stall_after.is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
