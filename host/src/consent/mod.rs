//! The consent ledger: append-only rows per tenant, chained by SHA-256, and the consent state
//! they add up to (which scopes are active, e.g. `marketing` for marketing templates).
//!
//! Each row's hash covers a canonical, length-prefixed encoding of all its fields and the
//! previous row's hash; appends are serialized per tenant (a row lock on Postgres, the write
//! lock on SQLite, and the unique `(tenant_id, seq)` as the last guard), so a chain never forks.
//!
//! Each append also updates `consent_grants`, the scopes in force, in the same transaction, so
//! a decision or a send reads one indexed row ([`marketing_allowed`]) instead of replaying the
//! ledger. A tenant-wide revocation ends the scope's grants on every connection too.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::store::{LedgerRow, Mode, Store, StoreError, Tx, now_ms};
use crate::tenancy::{Scope, TenantScope};

/// The first row's `prev_hash`.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Scopes a business may grant.
pub const SCOPES: &[&str] = &["messaging", "marketing"];

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Consent given (connecting a number, or a scope granted).
    Granted,
    /// Consent withdrawn by the business.
    Revoked,
    /// The provider token was revoked or stopped working.
    TokenRevoked,
    /// The connection's secrets were crypto-shredded.
    Shredded,
    /// The business removed the app at the provider.
    RevokedAtProvider,
    /// A test message was sent by a tenant user.
    TestSend,
    /// The tenant was suspended by its partner or the operator.
    Suspended,
    /// The tenant was reinstated.
    Reinstated,
    /// An owner downloaded the tenant's data.
    Exported,
    /// One contact's data was erased at their request.
    ContactErased,
    /// The account was deleted: its data erased, this ledger and the counters kept.
    AccountDeleted,
}

impl Action {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Granted => "granted",
            Action::Revoked => "revoked",
            Action::TokenRevoked => "token-revoked",
            Action::Shredded => "shredded",
            Action::RevokedAtProvider => "revoked-at-provider",
            Action::TestSend => "test-send",
            Action::Suspended => "tenant-suspended",
            Action::Reinstated => "tenant-reinstated",
            Action::Exported => "data-exported",
            Action::ContactErased => "contact-erased",
            Action::AccountDeleted => "account-deleted",
        }
    }
}

/// Where a request came from, for the ledger.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Who (see [`crate::tenancy::Actor::ledger_name`]).
    pub actor: String,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The connection it is about.
    pub connection_id: Option<&'a str>,
    /// What happened.
    pub action: Action,
    /// Consent document version the client showed.
    pub document_version: Option<&'a str>,
    /// Scopes it is about.
    pub scopes: &'a [String],
}

/// SHA-256 (hex) of a row's canonical encoding, `hash` itself excluded.
pub fn row_hash(r: &LedgerRow) -> String {
    let mut h = Sha256::new();
    h.update(b"switchyard-consent-v1");
    let mut field = |bytes: Option<&[u8]>| match bytes {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    };
    field(Some(r.tenant_id.as_bytes()));
    field(Some(&r.seq.to_be_bytes()));
    field(r.connection_id.as_deref().map(str::as_bytes));
    field(Some(r.action.as_bytes()));
    field(Some(r.actor.as_bytes()));
    field(r.ip.as_deref().map(str::as_bytes));
    field(r.user_agent.as_deref().map(str::as_bytes));
    field(r.document_version.as_deref().map(str::as_bytes));
    field(Some(r.scopes.as_bytes()));
    field(Some(&r.created_at.to_be_bytes()));
    field(Some(r.prev_hash.as_bytes()));
    hex::encode(h.finalize())
}

/// Append `entry` to the tenant's chain inside `tx` (the caller commits, together with the
/// change the row records).
pub async fn append(
    tx: &mut Tx,
    origin: &Origin,
    entry: &Entry<'_>,
) -> Result<LedgerRow, StoreError> {
    let Some(tenant) = tx.scope().tenant().cloned() else {
        return Err(StoreError::WrongScope);
    };
    tx.lock_tenant().await?;
    let last = tx.ledger_last().await?;
    let (seq, prev_hash) = match &last {
        Some(r) => (r.seq + 1, r.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let mut scopes: Vec<&str> = entry.scopes.iter().map(String::as_str).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let created_at = now_ms().max(last.as_ref().map_or(0, |r| r.created_at));
    let mut row = LedgerRow {
        tenant_id: tenant.id().to_string(),
        seq,
        connection_id: entry.connection_id.map(str::to_string),
        action: entry.action.as_str().to_string(),
        actor: origin.actor.clone(),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        document_version: entry.document_version.map(str::to_string),
        scopes: serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into()),
        created_at,
        prev_hash,
        hash: String::new(),
    };
    row.hash = row_hash(&row);
    tx.ledger_insert(&row).await?;
    match entry.action {
        Action::Granted => {
            for s in &scopes {
                tx.consent_grant(entry.connection_id, s, seq).await?;
            }
        }
        Action::Revoked | Action::TokenRevoked | Action::RevokedAtProvider => {
            if scopes.is_empty() {
                tx.consent_revoke(entry.connection_id, None).await?;
            }
            for s in &scopes {
                tx.consent_revoke(entry.connection_id, Some(s)).await?;
            }
        }
        Action::Shredded
        | Action::TestSend
        | Action::Suspended
        | Action::Reinstated
        | Action::Exported
        | Action::ContactErased
        | Action::AccountDeleted => {}
    }
    Ok(row)
}

/// The first row where a chain breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Break {
    /// The tenant.
    pub tenant_id: String,
    /// The row's `seq`.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Check a chain in order; the first broken row, if any.
pub fn check_chain(rows: &[LedgerRow]) -> Option<Break> {
    let mut prev = GENESIS.to_string();
    for (expected_seq, r) in (1..).zip(rows) {
        let broken = |reason: String| {
            Some(Break {
                tenant_id: r.tenant_id.clone(),
                seq: r.seq,
                reason,
            })
        };
        if r.seq != expected_seq {
            return broken(format!("expected seq {expected_seq} (a row is missing)"));
        }
        if r.prev_hash != prev {
            return broken("prev_hash does not match the previous row's hash".into());
        }
        if row_hash(r) != r.hash {
            return broken("contents do not match the row's hash (edited)".into());
        }
        prev = r.hash.clone();
    }
    None
}

/// Read a tenant's whole ledger.
pub async fn read_all(store: &Store, scope: &TenantScope) -> Result<Vec<LedgerRow>, StoreError> {
    let mut tx = store
        .begin(Scope::Tenant(scope.clone()), Mode::Read)
        .await?;
    let mut rows = Vec::new();
    loop {
        let after = rows.last().map_or(0, |r: &LedgerRow| r.seq);
        let page = tx.ledger(after, 1000).await?;
        let done = page.len() < 1000;
        rows.extend(page);
        if done {
            break;
        }
    }
    tx.commit().await?;
    Ok(rows)
}

/// Verify one tenant's chain: `(rows checked, first break)`.
pub async fn verify(
    store: &Store,
    scope: &TenantScope,
) -> Result<(usize, Option<Break>), StoreError> {
    let rows = read_all(store, scope).await?;
    Ok((rows.len(), check_chain(&rows)))
}

/// The scopes active for `connection` (tenant-wide grants count for every connection).
pub fn active_scopes(rows: &[LedgerRow], connection: Option<&str>) -> BTreeSet<String> {
    let mut active: BTreeSet<(Option<String>, String)> = BTreeSet::new();
    for r in rows {
        let scopes: Vec<String> = serde_json::from_str(&r.scopes).unwrap_or_default();
        match r.action.as_str() {
            "granted" => {
                for s in scopes {
                    active.insert((r.connection_id.clone(), s));
                }
            }
            // A revocation ends the grants of its connection, or of every connection when it
            // is tenant-wide; of its scopes, or of every scope when it names none.
            "revoked" | "token-revoked" | "revoked-at-provider" => {
                active.retain(|(c, s)| {
                    let connection = r.connection_id.is_none() || c == &r.connection_id;
                    let scope = scopes.is_empty() || scopes.contains(s);
                    !(connection && scope)
                });
            }
            _ => {}
        }
    }
    active
        .into_iter()
        .filter(|(c, _)| c.is_none() || c.as_deref() == connection)
        .map(|(_, s)| s)
        .collect()
}

/// Whether marketing templates may be sent on `connection` now (checked when a reply is
/// decided and again right before it is sent): one indexed read of the grants in force.
pub async fn marketing_allowed(
    store: &Store,
    scope: &TenantScope,
    connection: &str,
) -> Result<bool, StoreError> {
    let mut tx = store
        .begin(Scope::Tenant(scope.clone()), Mode::Read)
        .await?;
    let allowed = tx.consent_active(connection, "marketing").await?;
    tx.commit().await?;
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        seq: i64,
        action: &str,
        connection: Option<&str>,
        scopes: &[&str],
        prev: &str,
    ) -> LedgerRow {
        let mut r = LedgerRow {
            tenant_id: "ten_1".into(),
            seq,
            connection_id: connection.map(str::to_string),
            action: action.into(),
            actor: "key_1 (owner)".into(),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("test".into()),
            document_version: Some("2026-01".into()),
            scopes: serde_json::to_string(scopes).expect("json"),
            created_at: 1_700_000_000_000 + seq,
            prev_hash: prev.into(),
            hash: String::new(),
        };
        r.hash = row_hash(&r);
        r
    }

    fn chain() -> Vec<LedgerRow> {
        let a = row(1, "granted", Some("con_1"), &["messaging"], GENESIS);
        let b = row(2, "granted", None, &["marketing"], &a.hash);
        let c = row(3, "revoked", None, &["marketing"], &b.hash);
        vec![a, b, c]
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(check_chain(&chain()), None);
    }

    #[test]
    fn any_edit_names_the_row() {
        for field in 0..5 {
            let mut rows = chain();
            match field {
                0 => rows[1].actor = "someone else".into(),
                1 => rows[1].scopes = "[\"messaging\"]".into(),
                2 => rows[1].created_at += 1,
                3 => rows[1].ip = None,
                _ => rows[1].document_version = Some("2020-01".into()),
            }
            let b = check_chain(&rows).expect("broken");
            assert_eq!(b.seq, 2, "field {field}");
        }
        let mut rows = chain();
        rows.remove(1);
        assert_eq!(check_chain(&rows).expect("gap").seq, 3);
        let mut rows = chain();
        rows[1] = row(
            2,
            "granted",
            None,
            &["marketing", "messaging"],
            &rows[0].hash,
        );
        // A re-hashed replacement still breaks the link to the next row.
        assert_eq!(check_chain(&rows).expect("relinked").seq, 3);
    }

    #[test]
    fn marketing_follows_grants_and_revokes() {
        let rows = chain();
        assert!(active_scopes(&rows[..2], Some("con_1")).contains("marketing"));
        assert!(!active_scopes(&rows, Some("con_1")).contains("marketing"));
        assert!(active_scopes(&rows, Some("con_1")).contains("messaging"));
        assert!(!active_scopes(&rows, Some("con_2")).contains("messaging"));
        let d = row(4, "revoked", Some("con_1"), &[], &rows[2].hash);
        let mut all = rows.clone();
        all.push(d);
        assert!(active_scopes(&all, Some("con_1")).is_empty());
    }

    #[test]
    fn a_tenant_wide_revoke_ends_every_grant_of_its_scope() {
        let a = row(
            1,
            "granted",
            Some("con_1"),
            &["marketing", "messaging"],
            GENESIS,
        );
        let b = row(2, "granted", Some("con_2"), &["marketing"], &a.hash);
        let c = row(3, "revoked", None, &["marketing"], &b.hash);
        let rows = vec![a, b, c];
        for con in ["con_1", "con_2"] {
            assert!(
                !active_scopes(&rows, Some(con)).contains("marketing"),
                "{con}"
            );
        }
        assert!(active_scopes(&rows, Some("con_1")).contains("messaging"));
    }
}
