//! Creations (RunPodSandbox, CreateContainer) that run detached and are parked by name: a caller
//! that gives up (its deadline passed) does not cut the creation short, and a retry of the same
//! request waits for the same outcome instead of failing with "name is reserved".

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use sha2::Digest as _;
use tonic::Status;

/// The outcome of a creation (the new object's id), once there is one.
type Outcome = tokio::sync::watch::Receiver<Option<Result<String, Status>>>;

#[derive(Debug, Default)]
pub struct Creations {
    /// Creations under way, by reserved name: the request's digest and where the outcome will be
    /// announced.
    under_way: Mutex<HashMap<String, (String, Outcome)>>,
}

impl Creations {
    /// Runs `create` on its own unless a creation of `name` is under way: the same request
    /// (`digest`) then waits for that one's outcome, a different one is refused. When every
    /// caller has gone by the time a creation succeeds, `abandoned` gets the new id.
    pub async fn run(
        self: &Arc<Self>,
        what: &str,
        name: String,
        digest: String,
        create: impl Future<Output = Result<String, Status>> + Send + 'static,
        abandoned: impl FnOnce(String) + Send + 'static,
    ) -> Result<String, Status> {
        let mut outcome = {
            let mut under_way = self
                .under_way
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match under_way.get(&name) {
                Some((running, outcome)) if *running == digest => outcome.clone(),
                Some(_) => {
                    return Err(Status::already_exists(format!(
                        "{what} name {name} is being created by another request"
                    )));
                }
                None => {
                    let (announce, outcome) = tokio::sync::watch::channel(None);
                    under_way.insert(name.clone(), (digest, outcome.clone()));
                    let creations = Arc::clone(self);
                    tokio::spawn(async move {
                        let result = create.await;
                        creations
                            .under_way
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&name);
                        let created = result.as_ref().ok().cloned();
                        // Nobody left to tell: every caller gave up before it was created.
                        if announce.send(Some(result)).is_err()
                            && let Some(id) = created
                        {
                            abandoned(id);
                        }
                    });
                    outcome
                }
            }
        };
        loop {
            if let Some(result) = outcome.borrow_and_update().clone() {
                return result;
            }
            outcome.changed().await.map_err(|_| {
                Status::internal(format!("the {what} creation task ended without an outcome"))
            })?;
        }
    }
}

/// A new object id: 64 random hex digits.
pub fn random_id() -> Result<String, Status> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Status::internal(format!("read /dev/urandom: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A digest of a request, to tell a retry of the same creation request from a different one. The
/// request goes through a `serde_json::Value`, whose maps are sorted, so label and annotation
/// order does not matter.
pub fn request_digest(request: &impl serde::Serialize) -> String {
    let canonical = serde_json::to_value(request)
        .and_then(|value| serde_json::to_vec(&value))
        .unwrap_or_default();
    hex::encode(sha2::Sha256::digest(canonical))
}
