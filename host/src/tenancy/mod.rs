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

/// A tenant member's role: viewer < agent < admin < owner, each may do what the ones below it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Also deletes the account and changes the plan; grants and removes owners.
    Owner,
    /// Manages numbers, policies, keys and people.
    Admin,
    /// Works conversations.
    Agent,
    /// Reads.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Agent, Role::Viewer];

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
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Agent => 1,
            Role::Admin => 2,
            Role::Owner => 3,
        }
    }

    /// Whether this role may do what `least` may.
    pub fn at_least(self, least: Role) -> bool {
        self.rank() >= least.rank()
    }
}

/// A partner member's role: a member provisions and looks after tenants; an owner also manages
/// the partner's keys, people and plugins. Partner API keys act as owners.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PartnerRole {
    /// Everything a partner may do.
    Owner,
    /// Tenants, their plans, status and keys; reports.
    Member,
}

impl PartnerRole {
    /// Both roles, most powerful first.
    pub const ALL: [PartnerRole; 2] = [PartnerRole::Owner, PartnerRole::Member];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerRole::Owner => "owner",
            PartnerRole::Member => "member",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<PartnerRole> {
        PartnerRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `least` may.
    pub fn at_least(self, least: PartnerRole) -> bool {
        self == PartnerRole::Owner || least == PartnerRole::Member
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key (machines).
    Key(String),
    /// A person's session.
    Session {
        /// The person (`usr_…`).
        user_id: String,
        /// The session (`ses_…`).
        session_id: String,
    },
}

impl Credential {
    /// The key or user id, as logs and the ledger name the caller.
    pub fn id(&self) -> &str {
        match self {
            Credential::Key(id) => id,
            Credential::Session { user_id, .. } => user_id,
        }
    }

    /// The person, when a person signed in.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Credential::Key(_) => None,
            Credential::Session { user_id, .. } => Some(user_id),
        }
    }
}

/// Who acts on a tenant: one of its members, its partner or the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A tenant member, by API key or session.
    User {
        /// The key or person.
        by: Credential,
        /// The member's role.
        role: Role,
    },
    /// The tenant's partner, by API key or a partner member's session.
    Partner {
        /// The partner.
        partner_id: String,
        /// The key or person.
        by: Credential,
        /// The partner role.
        role: PartnerRole,
    },
    /// The operator.
    Operator,
}

impl Actor {
    /// How the consent ledger names this actor.
    pub fn ledger_name(&self) -> String {
        match self {
            Actor::User { by, role } => format!("{} ({})", by.id(), role.as_str()),
            Actor::Partner { partner_id, by, .. } => format!("{partner_id} via {}", by.id()),
            Actor::Operator => "operator".to_string(),
        }
    }

    /// Who a message this actor sends is recorded as sent by: the key or person, or `operator`.
    pub fn author(&self) -> &str {
        match self {
            Actor::User { by, .. } | Actor::Partner { by, .. } => by.id(),
            Actor::Operator => "operator",
        }
    }

    /// Whether the actor may grant, change or take away the tenant's owner role (owner keys,
    /// owner invitations, owners): the tenant's owners, its partner's owners (partner keys act
    /// as owners), the operator.
    pub fn owner_powers(&self) -> bool {
        match self {
            Actor::User { role, .. } => *role == Role::Owner,
            Actor::Partner { role, .. } => *role == PartnerRole::Owner,
            Actor::Operator => true,
        }
    }

    /// The tenant role, when a tenant member acts.
    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::User { role, .. } => Some(*role),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Agent));
        assert!(Role::Agent.at_least(Role::Viewer));
        assert!(!Role::Viewer.at_least(Role::Agent));
        assert!(!Role::Admin.at_least(Role::Owner));
        assert!(PartnerRole::Owner.at_least(PartnerRole::Member));
        assert!(!PartnerRole::Member.at_least(PartnerRole::Owner));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
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
