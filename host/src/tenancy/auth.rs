//! Authentication: bearer tokens and people's sessions to principals, and a principal's access
//! to one tenant.
//!
//! API keys look like `key_<id>.<secret>`, sessions `ses_<id>.<secret>`; only the SHA-256 of the
//! secret is stored (the secret is 256 random bits, so a fast hash is enough), compared in
//! constant time. The operator's token comes from the configuration and is compared the same way.
//! A person's session becomes a tenant or partner principal through one membership: the one the
//! request is about.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Actor, Credential, PartnerRole, PartnerScope, Role, Scope, TenantScope, ids};
use crate::store::{ApiKeyRecord, Mode, Store, StoreError, TenantRecord, Tx};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator (`SWITCHYARD_OPERATOR_TOKEN`).
    Operator,
    /// A partner, by one of its keys (as owner) or a member's session.
    Partner {
        /// The partner.
        partner_id: String,
        /// The key or person.
        by: Credential,
        /// The partner role.
        role: PartnerRole,
    },
    /// A tenant member, by one of the tenant's keys or a member's session.
    Tenant {
        /// The tenant.
        tenant_id: String,
        /// The key or person.
        by: Credential,
        /// The member's role.
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

    /// How logs and records name this caller (as [`Actor::ledger_name`] does).
    pub fn name(&self) -> String {
        match self {
            Principal::Operator => "operator".to_string(),
            Principal::Partner { partner_id, by, .. } => format!("{partner_id} via {}", by.id()),
            Principal::Tenant { by, role, .. } => format!("{} ({})", by.id(), role.as_str()),
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
    /// A session that ended (signed out, expired, or its password was reset).
    #[error("this session has ended; sign in again")]
    SessionEnded,
    /// A signed-in person whose request names no membership while they have several.
    #[error("this person belongs to several tenants or partners; name one")]
    ContextRequired,
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

/// A fresh API key, session or one-time token: its id, the full token (shown once) and the
/// hash to store.
pub struct NewKey {
    /// `key_…` (or the prefix asked for).
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
    new_token("key")
}

/// Make a new `<prefix>_<id>.<secret>` token (sessions, invitations, password resets).
pub fn new_token(prefix: &str) -> NewKey {
    let id = ids::new_id(prefix);
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

    /// What an operator console session stores of its `secret`: a digest bound to this
    /// token, so changing the operator token ends every session it opened.
    pub fn session_hash(&self, secret: &str) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(b"switchyard-operator-session-v1");
        h.update(self.0);
        h.update(secret.as_bytes());
        h.finalize().to_vec()
    }

    /// Whether `candidate` is the operator token (compared in constant time).
    pub fn matches(&self, candidate: &str) -> bool {
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
    let by = Credential::Key(key_id.to_string());
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let record: Option<ApiKeyRecord> = tx.api_key(key_id).await?;
    tx.commit().await?;
    let Some(record) = record else {
        return Err(AccessError::Unauthenticated);
    };
    if !secret_matches(secret, &record.secret_hash) {
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
            by,
            role: PartnerRole::Owner,
        }),
        ("tenant", _, Some(tenant_id), Some(role)) => Ok(Principal::Tenant {
            tenant_id,
            by,
            role: Role::parse(&role).ok_or(AccessError::Unauthenticated)?,
        }),
        _ => Err(AccessError::Unauthenticated),
    }
}

/// Whether `secret` hashes to `hash` (SHA-256, compared in constant time).
pub fn secret_matches(secret: &str, hash: &[u8]) -> bool {
    let h: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    bool::from(h.as_slice().ct_eq(hash))
}

/// A live session: the person and the session, from the cookie's `ses_<id>.<secret>`.
pub async fn authenticate_session(
    store: &Store,
    token: &str,
) -> Result<(String, String), AccessError> {
    let Some((session_id, secret)) = token.split_once('.') else {
        return Err(AccessError::Unauthenticated);
    };
    if !session_id.starts_with("ses_") || session_id.len() > 64 {
        return Err(AccessError::Unauthenticated);
    }
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let record = tx.session(session_id).await?;
    tx.commit().await?;
    let Some(record) = record else {
        // Signed out or reset: the row is gone. A token that never existed says the same.
        return Err(AccessError::SessionEnded);
    };
    if !secret_matches(secret, &record.token_hash) {
        return Err(AccessError::Unauthenticated);
    }
    if record.expires_at <= crate::store::now_ms() {
        return Err(AccessError::SessionEnded);
    }
    Ok((record.user_id, record.id))
}

/// The operator's console session a cookie names: its id, when it is live and was opened
/// with the operator token this host runs with.
pub async fn authenticate_operator_session(
    store: &Store,
    operator: &OperatorToken,
    token: &str,
) -> Result<String, AccessError> {
    let Some((session_id, secret)) = token.split_once('.') else {
        return Err(AccessError::Unauthenticated);
    };
    if !session_id.starts_with("ops_") || session_id.len() > 64 {
        return Err(AccessError::Unauthenticated);
    }
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let record = tx.operator_session(session_id).await?;
    tx.commit().await?;
    let Some((hash, expires_at)) = record else {
        return Err(AccessError::SessionEnded);
    };
    if !bool::from(operator.session_hash(secret).as_slice().ct_eq(&hash)) {
        return Err(AccessError::SessionEnded);
    }
    if expires_at <= crate::store::now_ms() {
        return Err(AccessError::SessionEnded);
    }
    Ok(session_id.to_string())
}

/// The header a person names the tenant or partner a request acts for with.
pub const CONTEXT_HEADER: &str = "switchyard-context";

/// What a person's request is about: the membership it acts through.
#[derive(Debug, Clone, Copy)]
pub enum Context<'a> {
    /// The `{tenant}` in the path: the person's membership in it, or in its partner.
    Tenant(&'a str),
    /// The `{partner}` in the path.
    Partner(&'a str),
    /// No tenant or partner in the path: the one the request names (a tenant or partner id),
    /// else the person's only membership.
    Named(Option<&'a str>),
}

/// The principal a signed-in person acts as for a request about `context`; `NotFound` when
/// they hold no membership there (never a hint that the tenant exists).
pub async fn as_member(
    store: &Store,
    user_id: &str,
    session_id: &str,
    context: Context<'_>,
) -> Result<Principal, AccessError> {
    let by = Credential::Session {
        user_id: user_id.to_string(),
        session_id: session_id.to_string(),
    };
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let memberships = tx.memberships_of(user_id).await?;
    tx.commit().await?;
    let tenant = |tenant_id: &str, role: &str| -> Result<Principal, AccessError> {
        Ok(Principal::Tenant {
            tenant_id: tenant_id.to_string(),
            by: by.clone(),
            role: Role::parse(role).ok_or(AccessError::Unauthenticated)?,
        })
    };
    let partner = |partner_id: &str, role: &str| -> Result<Principal, AccessError> {
        Ok(Principal::Partner {
            partner_id: partner_id.to_string(),
            by: by.clone(),
            role: PartnerRole::parse(role).ok_or(AccessError::Unauthenticated)?,
        })
    };
    let in_partner = |id: &str| {
        memberships
            .iter()
            .find(|m| m.partner_id.as_deref() == Some(id))
            .map(|m| partner(id, &m.role))
    };
    let in_tenant = |id: &str| {
        memberships
            .iter()
            .find(|m| m.tenant_id.as_deref() == Some(id))
            .map(|m| tenant(id, &m.role))
    };
    match context {
        Context::Tenant(id) => {
            if let Some(p) = in_tenant(id) {
                return p;
            }
            // A partner member reaches the partner's tenants as the partner.
            let mut tx = store.begin(Scope::Operator, Mode::Read).await?;
            let row = tx.tenant(id).await?;
            tx.commit().await?;
            row.and_then(|t| t.partner_id)
                .and_then(|p| in_partner(&p))
                .unwrap_or(Err(AccessError::NotFound))
        }
        Context::Partner(id) => in_partner(id).unwrap_or(Err(AccessError::NotFound)),
        Context::Named(Some(id)) => in_tenant(id)
            .or_else(|| in_partner(id))
            .unwrap_or(Err(AccessError::NotFound)),
        Context::Named(None) => match memberships.as_slice() {
            [only] => match (&only.tenant_id, &only.partner_id) {
                (Some(t), _) => tenant(t, &only.role),
                (None, Some(p)) => partner(p, &only.role),
                (None, None) => Err(AccessError::Unauthenticated),
            },
            [] => Err(AccessError::Forbidden),
            _ => Err(AccessError::ContextRequired),
        },
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
            by,
            role,
        } => {
            if own != tenant_id {
                return Err(AccessError::NotFound);
            }
            Actor::User {
                by: by.clone(),
                role: *role,
            }
        }
        Principal::Partner {
            partner_id,
            by,
            role,
        } => Actor::Partner {
            partner_id: partner_id.clone(),
            by: by.clone(),
            role: *role,
        },
        Principal::Operator => Actor::Operator,
    };
    // The tenant must be visible in the principal's own scope (RLS on Postgres, the partner
    // filter in the query on both).
    let mut tx = store.begin(principal.listing_scope(), Mode::Read).await?;
    let found = tx.tenant(tenant_id).await?;
    tx.commit().await?;
    // A deleted account is gone for everyone but the operator (who verifies what stays).
    let tenant = found
        .filter(|t| t.deleted_at.is_none() || matches!(principal, Principal::Operator))
        .ok_or(AccessError::NotFound)?;
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
    // A deleted account's jobs find nothing to work for.
    Ok(tx
        .tenant(tenant_id)
        .await?
        .filter(|t| t.deleted_at.is_none())
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
    fn an_operator_session_is_bound_to_the_token_that_opened_it() {
        let a = OperatorToken::new("operator-token-a");
        let b = OperatorToken::new("operator-token-b");
        assert_eq!(a.session_hash("s3cret"), a.session_hash("s3cret"));
        assert_ne!(a.session_hash("s3cret"), b.session_hash("s3cret"));
        assert_ne!(a.session_hash("s3cret"), a.session_hash("other"));
    }

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
