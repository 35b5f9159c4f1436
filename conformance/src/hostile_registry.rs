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
    /// Send only this many bytes of the body, then close the connection: the first
    /// `cut_times` requests only.
    pub cut_after: Option<usize>,
    pub cut_times: usize,
    /// Extra response headers (`Location`, `WWW-Authenticate`, …).
    pub headers: Vec<(String, String)>,
    /// Answer 401 with these headers unless the request carries this `Authorization` value.
    pub require_authorization: Option<String>,
}

impl Canned {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Self {
        Canned {
            status: 200,
            content_type: content_type.to_string(),
            body,
            content_length: None,
            stall_after: None,
            cut_after: None,
            cut_times: 0,
            headers: Vec::new(),
            require_authorization: None,
        }
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Self {
        let mut canned = Canned::ok("text/plain", Vec::new());
        canned.status = 307;
        canned.headers.push(("Location".into(), location.into()));
        canned
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running hostile registry; stops when dropped.
#[derive(Debug)]
pub struct HostileRegistry {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    /// Requests so far, in order.
    requests: Arc<Mutex<Vec<Request>>>,
    server: tokio::task::JoinHandle<()>,
}

impl HostileRegistry {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let routes: Arc<Mutex<HashMap<String, Canned>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
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

    /// Paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.full_requests().into_iter().map(|r| r.path).collect()
    }

    pub fn full_requests(&self) -> Vec<Request> {
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
    requests: Arc<Mutex<Vec<Request>>>,
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
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let request = Request { path, headers };
    requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(request.clone());
    let canned = {
        let mut routes = routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let canned = routes.get(&request.path).cloned();
        if let Some(route) = routes.get_mut(&request.path) {
            route.cut_times = route.cut_times.saturating_sub(1);
        }
        canned.unwrap_or_else(|| {
            let mut not_found = Canned::ok("application/json", b"{\"errors\":[]}".to_vec());
            not_found.status = if request.path == "/v2/" { 200 } else { 404 };
            not_found
        })
    };
    if let Some(required) = &canned.require_authorization
        && request.header("authorization") != Some(required.as_str())
    {
        let mut refused = canned.clone();
        refused.status = 401;
        refused.body = b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}".to_vec();
        refused.content_length = None;
        refused.stall_after = None;
        refused.cut_after = None;
        return respond(&mut stream, &refused, 0).await;
    }
    // A `Range: bytes=N-` request of a 200 route is answered 206 from N.
    let offset = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| canned.status == 200 && *n <= canned.body.len())
        .unwrap_or(0);
    respond(&mut stream, &canned, offset).await;
}

async fn respond(stream: &mut TcpStream, canned: &Canned, offset: usize) {
    let body = &canned.body[offset..];
    let (status, range) = if offset > 0 {
        let total = canned.body.len();
        (
            206,
            format!("Content-Range: bytes {offset}-{}/{total}\r\n", total - 1),
        )
    } else {
        (canned.status, String::new())
    };
    let length = canned.content_length.unwrap_or(body.len());
    let extra: String = canned
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let response_head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {}\r\nContent-Length: {length}\r\n\
         Accept-Ranges: bytes\r\n{range}{extra}\
         Docker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n",
        canned.content_type
    );
    if stream.write_all(response_head.as_bytes()).await.is_err() {
        return;
    }
    let cut = canned
        .cut_after
        .filter(|_| canned.cut_times > 0 && offset == 0);
    let sent = canned
        .stall_after
        .or(cut)
        .unwrap_or(body.len())
        .min(body.len());
    if stream.write_all(&body[..sent]).await.is_err() {
        return;
    }
    stream.flush().await.ok();
    if canned.stall_after.is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
