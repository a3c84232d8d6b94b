//! The end of a connection, whoever ends it: the business through the API, or the provider
//! through an account webhook (the business removed the app in WhatsApp Manager). Either way the
//! number stops routing, its credentials are crypto-shredded, the raw webhook bodies routed to
//! it are dropped, the ledger says who and why, and the history stays.

use crate::consent::{self, Action, Entry, Origin};
use crate::store::{StoreError, Tx};
use crate::vault::{Vault, VaultError};

/// Why a connection could not be ended.
#[derive(Debug, thiserror::Error)]
pub enum EndError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// End `connection_id` in `tx` (its tenant's scope): status `disconnected`, route removed,
/// secrets shredded, ledger `why` then `shredded` by `origin`. The caller commits.
pub async fn end_connection(
    tx: &mut Tx,
    vault: &Vault,
    connection_id: &str,
    origin: &Origin,
    why: Action,
    reason: Option<&str>,
) -> Result<(), EndError> {
    tx.set_connection_status(connection_id, "disconnected", reason)
        .await?;
    tx.delete_route(connection_id).await?;
    vault.shred_connection(tx, connection_id).await?;
    // Raw webhook bodies routed to it go too: no message content outlives the connection there.
    tx.drop_connection_receipts(connection_id).await?;
    for action in [why, Action::Shredded] {
        consent::append(
            tx,
            origin,
            &Entry {
                connection_id: Some(connection_id),
                action,
                document_version: None,
                scopes: &[],
            },
        )
        .await?;
    }
    Ok(())
}
