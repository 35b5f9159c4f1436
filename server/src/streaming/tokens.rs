//! Single-use tokens naming a validated Exec or Attach request, as the streaming URL's last
//! path segment. A token expires [`TOKEN_LIFETIME`] after it was issued; taking it removes it.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a token stays valid, as kubelet's and cri-o's streaming servers keep them.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The most tokens waiting at once; past it the oldest goes (each costs a few hundred bytes).
const MAX_TOKENS: usize = 4096;
/// Random bytes in a token (hex-encoded in the URL).
const TOKEN_BYTES: usize = 16;

/// Issued tokens and what they stand for.
#[derive(Debug)]
pub struct TokenCache<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    lifetime: Duration,
}

impl<T> TokenCache<T> {
    /// A cache whose tokens live `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        TokenCache {
            entries: Mutex::default(),
            lifetime,
        }
    }

    /// Stores `value` under a new random token and returns the token.
    pub fn insert(&self, value: T) -> std::io::Result<String> {
        let token = random_token()?;
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (issued, _)| now.duration_since(*issued) < self.lifetime);
        if entries.len() >= MAX_TOKENS
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (issued, _))| *issued)
                .map(|(token, _)| token.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(token.clone(), (now, value));
        Ok(token)
    }

    /// Removes and returns what `token` stands for, unless it is unknown, used or expired.
    pub fn take(&self, token: &str) -> Option<T> {
        let (issued, value) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token)?;
        (issued.elapsed() < self.lifetime).then_some(value)
    }
}

/// A fresh token: [`TOKEN_BYTES`] from the kernel's random source, hex-encoded.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_once() {
        let cache = TokenCache::new(TOKEN_LIFETIME);
        let token = cache.insert(7).unwrap();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert_eq!(cache.take(&token), Some(7));
        assert_eq!(cache.take(&token), None);
        assert_eq!(cache.take("unknown"), None);
    }

    #[test]
    fn tokens_are_distinct() {
        let cache = TokenCache::new(TOKEN_LIFETIME);
        let a = cache.insert(1).unwrap();
        let b = cache.insert(2).unwrap();
        assert_ne!(a, b);
        assert_eq!(cache.take(&b), Some(2));
        assert_eq!(cache.take(&a), Some(1));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let cache = TokenCache::new(Duration::ZERO);
        let token = cache.insert(1).unwrap();
        assert_eq!(cache.take(&token), None);
    }
}
