//! Tenancy: who is asking (principals and API keys), which rows they may reach (scopes), and what
//! each role may do.
//!
//! A [`TenantScope`] is the only way to reach a tenant's rows through the store, and only this
//! module can make one: from an authenticated principal's access to a tenant, or for host
//! maintenance that walks every tenant (ledger verification, key rotation).

pub mod auth;
pub mod ids;

use std::fmt;

pub use auth::{AccessError, Principal, TenantAccess};

/// Proof that the holder may work on one tenant's rows.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: String,
}

impl TenantScope {
    /// Only this module mints scopes.
    pub(in crate::tenancy) fn new(tenant_id: String) -> TenantScope {
        TenantScope { tenant_id }
    }

    /// The tenant's id.
    pub fn id(&self) -> &str {
        &self.tenant_id
    }
}

impl fmt::Debug for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantScope({})", self.tenant_id)
    }
}

/// Proof that the holder is a partner (it may read and create its own tenants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerScope {
    partner_id: String,
}

impl PartnerScope {
    /// The partner's id.
    pub fn id(&self) -> &str {
        &self.partner_id
    }
}

/// The scope a store transaction runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Host-global tables only; tenant tables read zero rows.
    Host,
    /// One tenant's rows.
    Tenant(TenantScope),
    /// A partner: its own tenants' rows in `tenants` and their counters.
    Partner(PartnerScope),
    /// The operator: every tenant's row and counters, never contacts, conversations or messages.
    Operator,
}

impl Scope {
    /// The values of `app.tenant_id`, `app.partner_id` and `app.operator` for this scope.
    pub(crate) fn settings(&self) -> (&str, &str, &str) {
        match self {
            Scope::Host => ("", "", ""),
            Scope::Tenant(t) => (t.id(), "", ""),
            Scope::Partner(p) => ("", p.id(), ""),
            Scope::Operator => ("", "", "on"),
        }
    }

    /// The tenant scope, when this is one.
    pub fn tenant(&self) -> Option<&TenantScope> {
        match self {
            Scope::Tenant(t) => Some(t),
            _ => None,
        }
    }

    /// The partner scope, when this is one.
    pub fn partner(&self) -> Option<&PartnerScope> {
        match self {
            Scope::Partner(p) => Some(p),
            _ => None,
        }
    }
}

/// A tenant user's role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including owner keys.
    Owner,
    /// Everything but creating owner keys.
    Admin,
    /// Works conversations.
    Agent,
    /// Reads.
    Viewer,
}

impl Role {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Something a caller may want to do to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// See the tenant's row.
    ReadTenant,
    /// See connection status and identifiers (never secrets).
    ReadConnections,
    /// Connect or disconnect numbers, set the reply policy.
    ManageConnections,
    /// List, create and revoke API keys of the tenant's users.
    ManageKeys,
    /// Suspend and reinstate the tenant (its partner and the operator).
    ManageStatus,
    /// Read contacts, conversations and messages.
    ReadInbox,
    /// Read the consent ledger.
    ReadConsent,
    /// Grant or revoke consent scopes; export the ledger.
    ManageConsent,
}

/// Who acts on a tenant: one of its users, its partner or the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A tenant user, by API key.
    User {
        /// The key's id.
        key_id: String,
        /// The key's role.
        role: Role,
    },
    /// The tenant's partner, by API key.
    Partner {
        /// The partner.
        partner_id: String,
        /// The key's id.
        key_id: String,
    },
    /// The operator.
    Operator,
}

impl Actor {
    /// May this actor do `cap`? Partners and the operator see status and aggregates only.
    pub fn may(&self, cap: Capability) -> bool {
        use Capability::*;
        match self {
            Actor::User { role, .. } => match cap {
                ReadTenant | ReadConnections | ReadInbox | ReadConsent => true,
                ManageConnections | ManageKeys | ManageConsent => {
                    matches!(role, Role::Owner | Role::Admin)
                }
                ManageStatus => false,
            },
            // Keys: the partner provisions the tenant (it receives the first owner key) and the
            // operator runs the host; both may recover or cut off a tenant's access.
            Actor::Partner { .. } | Actor::Operator => {
                matches!(
                    cap,
                    ReadTenant | ReadConnections | ManageKeys | ManageStatus
                )
            }
        }
    }

    /// How the consent ledger names this actor.
    pub fn ledger_name(&self) -> String {
        match self {
            Actor::User { key_id, role } => format!("{key_id} ({})", role.as_str()),
            Actor::Partner { partner_id, key_id } => format!("{partner_id} via {key_id}"),
            Actor::Operator => "operator".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owner_and_admin_manage() {
        for (role, manage) in [
            (Role::Owner, true),
            (Role::Admin, true),
            (Role::Agent, false),
            (Role::Viewer, false),
        ] {
            let a = Actor::User {
                key_id: "key_1".into(),
                role,
            };
            assert_eq!(a.may(Capability::ManageConnections), manage, "{role:?}");
            assert_eq!(a.may(Capability::ManageKeys), manage, "{role:?}");
            assert!(!a.may(Capability::ManageStatus), "{role:?}");
            assert!(a.may(Capability::ReadInbox));
        }
    }

    #[test]
    fn partners_and_operator_never_see_contact_data() {
        let p = Actor::Partner {
            partner_id: "par_1".into(),
            key_id: "key_1".into(),
        };
        for a in [p, Actor::Operator] {
            assert!(a.may(Capability::ReadConnections));
            assert!(!a.may(Capability::ReadInbox));
            assert!(!a.may(Capability::ReadConsent));
            assert!(!a.may(Capability::ManageConsent));
            assert!(!a.may(Capability::ManageConnections));
            assert!(a.may(Capability::ManageKeys));
            assert!(a.may(Capability::ManageStatus));
        }
    }

    #[test]
    fn scopes_set_exactly_one_setting() {
        let t = Scope::Tenant(TenantScope::new("ten_1".into()));
        assert_eq!(t.settings(), ("ten_1", "", ""));
        assert_eq!(Scope::Host.settings(), ("", "", ""));
        assert_eq!(Scope::Operator.settings(), ("", "", "on"));
    }
}
