//! API keys: generation, hashing, the `Bearer` scheme, and a cache of verified keys that
//! never lets a revoked key through.
//!
//! Keys are revoked by `cairn keys revoke`, a separate process, possibly against another
//! node's database connection: the server cannot be told, it has to look. A cache entry
//! therefore records the store's count of revoked keys when the key was verified (that
//! count only grows, and grows exactly when a key is revoked), and the entry is used only
//! while the count read *for this request* is the same. The count is read from the store
//! by a read that started after the request arrived, so a revocation committed before a
//! request arrives is always seen: revocation takes effect at once, on every node.
//!
//! That read is shared: requests that arrive while one is in flight wait for it to finish
//! and take the next one, so under load reads run back to back on one connection, however
//! many requests there are, instead of one key lookup per request.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::{HeaderMap, header};
use cairn_store::{ApiKey, KeyKind, Store, StoreError};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// Entries kept at most; past it the cache starts again (keys are few; this bounds
/// memory against a flood of distinct valid keys, which cannot happen by accident).
const MAX_ENTRIES: usize = 10_000;

/// How many characters of a key are kept to recognise it in lists: the kind tag and
/// 32 bits of the random part.
const PREFIX_CHARS: usize = "cairn_wk_".len() + 8;

/// Makes a new random key: `cairn_wk_…` (write), `cairn_pk_…` (publishable) or
/// `cairn_sk_…` (secret), with 256 bits from the OS's random source.
pub fn generate_key(kind: KeyKind, random: [u8; 32]) -> String {
    let tag = match kind {
        KeyKind::Write => "wk",
        KeyKind::Publishable => "pk",
        KeyKind::Secret => "sk",
    };
    format!("cairn_{tag}_{}", hex(&random))
}

/// The part of a key stored to recognise it in `cairn keys list`.
pub fn key_prefix(key: &str) -> &str {
    // Keys are ASCII; `get` keeps a non-ASCII argument from panicking all the same.
    key.get(..PREFIX_CHARS).unwrap_or(key)
}

/// The SHA-256 of a key, hex: what the store keeps instead of the key. Keys are 256-bit
/// random values, so a fast hash is enough (no password stretching needed).
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme is case-insensitive
/// (RFC 9110 §11.1).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// One read of the count of revoked keys, and when it started.
#[derive(Clone, Copy)]
struct RevokedCount {
    value: i64,
    started: Instant,
}

#[derive(Default)]
pub(crate) struct KeyCache {
    /// Verified keys by hash, with the count of revoked keys they were verified at.
    verified: RwLock<HashMap<String, (ApiKey, i64)>>,
    last_count: tokio::sync::Mutex<Option<RevokedCount>>,
}

impl KeyCache {
    /// Finds a live key: from the cache when no key was revoked since it was verified,
    /// else from the store.
    pub(crate) async fn find(&self, store: &Store, key: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_key(key);
        let revoked = self.revoked_count(store).await?;
        if let Some((k, at)) = self.verified.read().unwrap_or_else(|e| e.into_inner()).get(&hash)
            && *at == revoked
        {
            return Ok(Some(k.clone()));
        }
        let found = store.find_api_key(&hash).await?;
        if let Some(k) = &found {
            let mut cache = self.verified.write().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(hash, (k.clone(), revoked));
        }
        Ok(found)
    }

    /// The count of revoked keys, from a read that started after this call did (shared
    /// with the calls waiting at the same time).
    async fn revoked_count(&self, store: &Store) -> Result<i64, StoreError> {
        let arrived = Instant::now();
        let mut last = self.last_count.lock().await;
        if let Some(read) = *last
            && read.started >= arrived
        {
            return Ok(read.value);
        }
        let started = Instant::now();
        let value = store.revoked_api_keys().await?;
        *last = Some(RevokedCount { value, started });
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_a_kind_tag_and_hash_stably() {
        let k = generate_key(KeyKind::Write, [7; 32]);
        assert!(k.starts_with("cairn_wk_0707"));
        assert_eq!(k.len(), "cairn_wk_".len() + 64);
        assert_eq!(key_prefix(&k), "cairn_wk_07070707");
        assert_eq!(key_prefix("short"), "short");
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_basic_is_not_bearer() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            bearer_token(&h).map(str::to_string)
        };
        assert_eq!(with("Bearer k1").as_deref(), Some("k1"));
        assert_eq!(with("bearer k1").as_deref(), Some("k1"));
        assert_eq!(with("BEARER  k1 ").as_deref(), Some("k1"));
        assert_eq!(with("Basic k1"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearerk1"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
