//! The end of an account or of one contact's data (issue 16, item 6): every connection ended
//! and shredded, every onboarding session's keys shredded, then the data erased — and each step
//! in the consent ledger, which stays (its hash chain still verifies) with the daily counters
//! and the tenant's row as the minimal record.

use super::end::{EndError, end_connection};
use crate::consent::{self, Action, Entry, Origin};
use crate::store::{Erased, Tx};
use crate::vault::Vault;

/// Erase the account of the scope's tenant in `tx`: its connections end (ledger `revoked`,
/// `shredded`), its onboarding keys are shredded, its data is erased, and the ledger records
/// `account-deleted`. The caller commits, then checkpoints SQLite's WAL.
pub async fn erase_account(
    tx: &mut Tx,
    vault: &Vault,
    origin: &Origin,
) -> Result<Erased, EndError> {
    for (c, _) in tx.connections_to_end().await? {
        end_connection(
            tx,
            vault,
            &c,
            origin,
            Action::Revoked,
            Some("the account was deleted"),
        )
        .await?;
    }
    for session in tx.onboarding_ids().await? {
        vault.shred_onboarding(tx, &session).await?;
    }
    let erased = tx.erase_tenant().await?;
    consent::append(
        tx,
        origin,
        &Entry {
            connection_id: None,
            action: Action::AccountDeleted,
            document_version: None,
            scopes: &[],
        },
    )
    .await?;
    Ok(erased)
}

/// Erase one contact's data in `tx` (the scope's tenant) and record it in the ledger.
pub async fn erase_contact(
    tx: &mut Tx,
    contact_id: &str,
    origin: &Origin,
) -> Result<Erased, EndError> {
    let (connection_id, erased) = tx.erase_contact(contact_id).await?;
    consent::append(
        tx,
        origin,
        &Entry {
            connection_id: Some(&connection_id),
            action: Action::ContactErased,
            document_version: None,
            scopes: &[],
        },
    )
    .await?;
    Ok(erased)
}
