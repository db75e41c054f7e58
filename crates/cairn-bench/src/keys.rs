//! The write key the HTTP benchmarks post with, stored as `cairn keys create` stores one.

use cairn_store::{KeyKind, Store};
use jiff::Timestamp;

/// Creates the benchmark's write key (named `bench`) in `store` and returns it.
pub(crate) async fn bench_write_key(store: &Store, now: Timestamp) -> anyhow::Result<String> {
    let key = cairn_server::generate_key(KeyKind::Write, [9; 32]);
    let prefix = cairn_server::key_prefix(&key);
    store.create_api_key(KeyKind::Write, "bench", &cairn_server::hash_key(&key), prefix, now).await?;
    Ok(key)
}
