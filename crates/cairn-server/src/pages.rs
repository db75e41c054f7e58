//! The liveness probe and the escaper the signed-link pages use (the web UI's pages are
//! in [`crate::ui`]).

/// Liveness probe.
pub async fn healthz() -> &'static str {
    "ok"
}

pub(crate) use cairn_core::html::escape_html as escape;
