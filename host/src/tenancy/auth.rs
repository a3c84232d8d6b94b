//! Authentication: bearer tokens to principals, and a principal's access to one tenant.
//!
//! API keys look like `key_<id>.<secret>`; only the SHA-256 of the secret is stored (the secret
//! is 256 random bits, so a fast hash is enough), compared in constant time. The operator's token
//! comes from the configuration and is compared the same way.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Actor, PartnerScope, Role, Scope, TenantScope, ids};
use crate::store::{ApiKeyRecord, Mode, Store, StoreError, TenantRecord, Tx};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator (`SWITCHYARD_OPERATOR_TOKEN`).
    Operator,
    /// A partner, by one of its keys.
    Partner {
        /// The partner.
        partner_id: String,
        /// The key used.
        key_id: String,
    },
    /// A tenant user, by one of the tenant's keys.
    Tenant {
        /// The tenant.
        tenant_id: String,
        /// The key used.
        key_id: String,
        /// The key's role.
        role: Role,
    },
}

impl Principal {
    /// The partner's scope, when the principal is a partner.
    pub fn partner_scope(&self) -> Option<PartnerScope> {
        match self {
            Principal::Partner { partner_id, .. } => Some(PartnerScope {
                partner_id: partner_id.clone(),
            }),
            _ => None,
        }
    }

    /// The scope this principal lists tenants in.
    pub fn listing_scope(&self) -> Scope {
        match self {
            Principal::Operator => Scope::Operator,
            Principal::Partner { partner_id, .. } => Scope::Partner(PartnerScope {
                partner_id: partner_id.clone(),
            }),
            Principal::Tenant { tenant_id, .. } => {
                Scope::Tenant(TenantScope::new(tenant_id.clone()))
            }
        }
    }
}

/// Why a request may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No credentials, or credentials that match nothing.
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// A key whose secret matched, but that was revoked.
    #[error("this API key was revoked")]
    KeyRevoked,
    /// A key whose secret matched, but that expired.
    #[error("this API key has expired")]
    KeyExpired,
    /// The tenant's own key, while the tenant is suspended.
    #[error("this tenant is suspended")]
    Suspended,
    /// Authenticated, but the role may not do this.
    #[error("this key may not do that")]
    Forbidden,
    /// No such tenant for this caller (also: another tenant's).
    #[error("no such tenant")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fresh API key: its id, the full token (shown once) and the hash to store.
pub struct NewKey {
    /// `key_…`.
    pub id: String,
    /// `key_….<secret>`: given to the caller once, never stored.
    pub token: Zeroizing<String>,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("id", &self.id).finish()
    }
}

/// Make a new API key.
pub fn new_key() -> NewKey {
    let id = ids::new_id("key");
    let secret = ids::new_secret();
    let token = Zeroizing::new(format!("{id}.{}", secret.as_str()));
    NewKey {
        secret_hash: Sha256::digest(secret.as_bytes()).to_vec(),
        id,
        token,
    }
}

/// The operator token's hash, kept instead of the token.
#[derive(Clone)]
pub struct OperatorToken([u8; 32]);

impl OperatorToken {
    /// Hash the configured token.
    pub fn new(token: &str) -> OperatorToken {
        OperatorToken(Sha256::digest(token.as_bytes()).into())
    }

    fn matches(&self, candidate: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(h.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken([redacted])")
    }
}

/// Resolve a bearer token to a principal.
pub async fn authenticate(
    store: &Store,
    operator: &OperatorToken,
    token: &str,
) -> Result<Principal, AccessError> {
    if operator.matches(token) {
        return Ok(Principal::Operator);
    }
    let Some((key_id, secret)) = token.split_once('.') else {
        return Err(AccessError::Unauthenticated);
    };
    if !key_id.starts_with("key_") || key_id.len() > 64 {
        return Err(AccessError::Unauthenticated);
    }
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let record: Option<ApiKeyRecord> = tx.api_key(key_id).await?;
    tx.commit().await?;
    let Some(record) = record else {
        return Err(AccessError::Unauthenticated);
    };
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    if !bool::from(hash.as_slice().ct_eq(&record.secret_hash)) {
        return Err(AccessError::Unauthenticated);
    }
    // Only a caller holding the secret learns why a known key no longer works.
    if record.revoked_at.is_some() {
        return Err(AccessError::KeyRevoked);
    }
    if record
        .expires_at
        .is_some_and(|at| at <= crate::store::now_ms())
    {
        return Err(AccessError::KeyExpired);
    }
    match (
        record.kind.as_str(),
        record.partner_id,
        record.tenant_id,
        record.role,
    ) {
        ("partner", Some(partner_id), None, None) => Ok(Principal::Partner {
            partner_id,
            key_id: record.id,
        }),
        ("tenant", _, Some(tenant_id), Some(role)) => Ok(Principal::Tenant {
            tenant_id,
            key_id: record.id,
            role: Role::parse(&role).ok_or(AccessError::Unauthenticated)?,
        }),
        _ => Err(AccessError::Unauthenticated),
    }
}

/// A principal's access to one tenant: the scope to reach its rows and who is acting.
#[derive(Debug, Clone)]
pub struct TenantAccess {
    /// The tenant's scope.
    pub scope: TenantScope,
    /// Who acts.
    pub actor: Actor,
    /// The tenant's row, as read when access was checked.
    pub tenant: TenantRecord,
}

impl TenantAccess {
    /// A transaction in this tenant's scope.
    pub async fn begin(&self, store: &Store, mode: Mode) -> Result<crate::store::Tx, StoreError> {
        store.begin(Scope::Tenant(self.scope.clone()), mode).await
    }

    /// `Ok` when the actor may do `cap`, `Forbidden` otherwise.
    pub fn require(&self, cap: super::Capability) -> Result<(), AccessError> {
        if self.actor.may(cap) {
            Ok(())
        } else {
            Err(AccessError::Forbidden)
        }
    }
}

/// The principal's access to `tenant_id`: a tenant only to itself, a partner only to its own
/// tenants, the operator to any. Anything else is `NotFound`, never a hint that it exists.
pub async fn access(
    store: &Store,
    principal: &Principal,
    tenant_id: &str,
) -> Result<TenantAccess, AccessError> {
    let actor = match principal {
        Principal::Tenant {
            tenant_id: own,
            key_id,
            role,
        } => {
            if own != tenant_id {
                return Err(AccessError::NotFound);
            }
            Actor::User {
                key_id: key_id.clone(),
                role: *role,
            }
        }
        Principal::Partner { partner_id, key_id } => Actor::Partner {
            partner_id: partner_id.clone(),
            key_id: key_id.clone(),
        },
        Principal::Operator => Actor::Operator,
    };
    // The tenant must be visible in the principal's own scope (RLS on Postgres, the partner
    // filter in the query on both).
    let mut tx = store.begin(principal.listing_scope(), Mode::Read).await?;
    let found = tx.tenant(tenant_id).await?;
    tx.commit().await?;
    let tenant = found.ok_or(AccessError::NotFound)?;
    // A suspended tenant's own keys stop working; its partner and the operator keep access
    // (to read its status and reinstate it).
    if matches!(principal, Principal::Tenant { .. }) && tenant.status == SUSPENDED {
        return Err(AccessError::Suspended);
    }
    Ok(TenantAccess {
        scope: TenantScope::new(tenant_id.to_string()),
        actor,
        tenant,
    })
}

/// The stored status of a suspended tenant.
pub const SUSPENDED: &str = "suspended";

/// Whether the tenant is suspended (its jobs wait; a tenant that is gone is not).
pub async fn is_suspended(store: &Store, tenant_id: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin(Scope::Operator, Mode::Read).await?;
    let found = tx.tenant(tenant_id).await?;
    tx.commit().await?;
    Ok(found.is_some_and(|t| t.status == SUSPENDED))
}

/// The tenant a host job names: its scope and a read transaction in that scope to go on
/// reading with, once its row has been read there (so the tenant exists); `None` when it is
/// gone. The row says whether it is suspended.
pub async fn job_tenant(
    store: &Store,
    tenant_id: &str,
) -> Result<Option<(TenantScope, Tx, TenantRecord)>, StoreError> {
    let scope = TenantScope::new(tenant_id.to_string());
    let mut tx = store
        .begin(Scope::Tenant(scope.clone()), Mode::Read)
        .await?;
    Ok(tx
        .tenant(tenant_id)
        .await?
        .map(|tenant| (scope, tx, tenant)))
}

/// Why a suspended tenant's job waits: the exact text its deferred jobs record, so
/// reinstatement finds them.
pub fn suspended_reason(tenant_id: &str) -> String {
    format!("tenant {tenant_id} is suspended")
}

/// The tenant scope and connection a per-connection endpoint routes to, if it has a live one
/// (ingress: the endpoint is the credential, the route names the tenant).
pub async fn route_of(
    store: &Store,
    endpoint_id: &str,
) -> Result<Option<(TenantScope, String)>, StoreError> {
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let route = tx.route_for_endpoint(endpoint_id).await?;
    tx.commit().await?;
    Ok(route.map(|(tenant, connection)| (TenantScope::new(tenant), connection)))
}

/// The tenant scope and connection that `(endpoint, channel address)` routes to (the worker
/// processing a receipt: the verified endpoint and the parsed address name the tenant).
pub async fn routed(
    store: &Store,
    endpoint_id: &str,
    channel_address: &str,
) -> Result<Option<(TenantScope, String)>, StoreError> {
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let route = tx.route(endpoint_id, channel_address).await?;
    tx.commit().await?;
    Ok(route.map(|(tenant, connection)| (TenantScope::new(tenant), connection)))
}

/// A scope for each tenant, for host maintenance (ledger verification, key rotation).
pub async fn every_tenant(store: &Store) -> Result<Vec<TenantScope>, StoreError> {
    let mut tx = store.begin(Scope::Operator, Mode::Read).await?;
    let ids = tx.all_tenant_ids().await?;
    tx.commit().await?;
    Ok(ids.into_iter().map(TenantScope::new).collect())
}

/// The scope of one named tenant, for host maintenance commands run by the operator.
pub async fn one_tenant(store: &Store, tenant_id: &str) -> Result<TenantScope, AccessError> {
    access(store, &Principal::Operator, tenant_id)
        .await
        .map(|a| a.scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shown_once_and_stored_hashed() {
        let k = new_key();
        let (id, secret) = k.token.split_once('.').expect("id.secret");
        assert_eq!(id, k.id);
        assert_eq!(k.secret_hash, Sha256::digest(secret.as_bytes()).to_vec());
        assert!(!format!("{k:?}").contains(secret));
    }

    #[test]
    fn operator_token_compares_by_hash() {
        let t = OperatorToken::new("op-secret");
        assert!(t.matches("op-secret"));
        assert!(!t.matches("op-secreT"));
        assert!(!format!("{t:?}").contains("op-secret"));
    }
}
