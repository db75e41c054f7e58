//! The API keys the HTTP benchmarks use, stored as `cairn keys create` stores them.

use cairn_store::{KeyKind, Store};
use jiff::Timestamp;

/// Creates the benchmark's write key (named `bench`) in `store` and returns it.
pub(crate) async fn bench_write_key(store: &Store, now: Timestamp) -> anyhow::Result<String> {
    bench_key(store, KeyKind::Write, now).await
}

/// Creates a key of `kind` named `bench` in `store` and returns it.
pub(crate) async fn bench_key(store: &Store, kind: KeyKind, now: Timestamp) -> anyhow::Result<String> {
    let key = cairn_server::generate_key(kind, [9; 32]);
    let prefix = cairn_server::key_prefix(&key);
    store.create_api_key(kind, "bench", &cairn_server::hash_key(&key), prefix, now).await?;
    Ok(key)
}
