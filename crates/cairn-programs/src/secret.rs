//! The secret that signs links (clicks, opens, unsubscribes, survey answers). Made once per
//! database and kept in its settings, so links in mail sent last year still verify, on
//! every node.

use cairn_channels::LinkSigner;
use cairn_store::Store;

use crate::ProgramError;

/// The settings key of the link-signing secret.
pub const LINK_SECRET_KEY: &str = "link_secret";

/// The database's link signer, creating its secret (32 random bytes, hex) the first time.
/// Several nodes starting at once agree on the first secret stored.
pub async fn link_signer(store: &Store) -> Result<LinkSigner, ProgramError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ProgramError::Invalid(format!("no randomness for the link secret: {e}")))?;
    let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = store.setting_or_insert(LINK_SECRET_KEY, &fresh).await?;
    Ok(LinkSigner::new(secret.as_bytes()))
}
