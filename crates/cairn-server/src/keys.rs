//! API keys: generation, hashing and a short-lived cache of verified keys.

use std::collections::HashMap;
use std::sync::RwLock;

use cairn_store::{ApiKey, KeyKind, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// How long a verified key is trusted without asking the store again.
const CACHE_FOR: SignedDuration = SignedDuration::from_secs(30);

/// Makes a new random key: `cairn_wk_…` (write), `cairn_pk_…` (publishable) or
/// `cairn_sk_…` (secret), with 256 bits from the OS's random source.
pub fn generate_key(kind: KeyKind, random: [u8; 32]) -> String {
    let tag = match kind {
        KeyKind::Write => "wk",
        KeyKind::Publishable => "pk",
        KeyKind::Secret => "sk",
    };
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("cairn_{tag}_{hex}")
}

/// The SHA-256 of a key, hex: what the store keeps instead of the key. Keys are 256-bit
/// random values, so a fast hash is enough (no password stretching needed).
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
pub(crate) struct KeyCache {
    verified: RwLock<HashMap<String, (ApiKey, Timestamp)>>,
}

impl KeyCache {
    /// Finds the key, from the cache if it was verified recently.
    pub(crate) async fn find(&self, store: &Store, key: &str, now: Timestamp) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash_key(key);
        if let Some((k, at)) = self.verified.read().unwrap_or_else(|e| e.into_inner()).get(&hash)
            && now.duration_since(*at) < CACHE_FOR
        {
            return Ok(Some(k.clone()));
        }
        let found = store.find_api_key(&hash).await?;
        if let Some(k) = &found {
            let mut cache = self.verified.write().unwrap_or_else(|e| e.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (k.clone(), now));
        }
        Ok(found)
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
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
