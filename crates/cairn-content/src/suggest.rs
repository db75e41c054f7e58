//! "Did you mean …?": the closest known name to a misspelt one (from `cairn-core`).

pub(crate) use cairn_core::suggest::closest;
