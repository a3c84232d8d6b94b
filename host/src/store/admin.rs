//! Host-global rows (partners, API keys, endpoints, routes) and the tenant rows partners and the
//! operator may see (`tenants`, `tenant_counters`).

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};
use crate::tenancy::Scope;

/// A partner.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct PartnerRecord {
    /// `par_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

/// A stored API key (its secret's hash only).
#[derive(Clone, FromRow)]
pub struct ApiKeyRecord {
    /// `key_…`.
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// `partner` or `tenant`.
    pub kind: String,
    /// The partner, for partner keys.
    pub partner_id: Option<String>,
    /// The tenant, for tenant keys.
    pub tenant_id: Option<String>,
    /// The role, for tenant keys.
    pub role: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it stops working, if it expires.
    pub expires_at: Option<i64>,
}

/// An API key as lists show it: never the key or its hash.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// `key_…`; also the beginning of the key itself (`key_….<secret>`), to recognise it by.
    pub id: String,
    /// `partner` or `tenant`.
    pub kind: String,
    /// The role, for tenant keys.
    pub role: Option<String>,
    /// The note given when it was made.
    pub label: Option<String>,
    /// Who made it.
    pub created_by: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// When it stops working (Unix ms), if it expires.
    pub expires_at: Option<i64>,
    /// When it was revoked (Unix ms), if it was.
    pub revoked_at: Option<i64>,
}

/// Whose keys: one tenant's or one partner's.
#[derive(Debug, Clone, Copy)]
pub enum KeyOwner<'a> {
    /// A tenant's users' keys.
    Tenant(&'a str),
    /// A partner's own keys.
    Partner(&'a str),
}

impl KeyOwner<'_> {
    fn filter(&self) -> (&'static str, &str) {
        match self {
            KeyOwner::Tenant(t) => ("kind = 'tenant' AND tenant_id = $1", t),
            KeyOwner::Partner(p) => ("kind = 'partner' AND partner_id = $1", p),
        }
    }
}

const KEY_COLUMNS: &str = "id, kind, role, label, created_by, created_at, expires_at, revoked_at";

/// A tenant as partners and the operator see it.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TenantRecord {
    /// `ten_…`.
    #[sqlx(rename = "tenant_id")]
    #[serde(rename = "id")]
    pub id: String,
    /// Its partner, if a partner provisioned it.
    pub partner_id: Option<String>,
    /// Display name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Its plan (`null`: none, unlimited).
    pub plan_id: Option<String>,
    /// When the account was deleted (its data erased; the row, ledger and counters stay).
    pub deleted_at: Option<i64>,
    /// Minutes a conversation people own may sit idle before its policy takes it back
    /// (`null`: people keep it until they give it back).
    pub hand_back_minutes: Option<i64>,
}

/// A connector installation that owns a webhook URL.
#[derive(Debug, Clone, FromRow)]
pub struct EndpointRecord {
    /// `end_…`.
    pub id: String,
    /// The connector plugin's name.
    pub connector: String,
    /// Vault owner scope of its secrets: `operator` or `partner:<id>`.
    pub owner: String,
    /// The partner that created it, if one did.
    pub partner_id: Option<String>,
    /// The tenant, for a connection-level endpoint.
    pub tenant_id: Option<String>,
    /// Non-secret settings (JSON object).
    pub settings: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

/// One tenant's totals in a partner report.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    /// The tenant.
    pub tenant_id: String,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Inbound messages.
    pub messages_in: i64,
    /// Outbound messages.
    pub messages_out: i64,
    /// Failed sends.
    pub failures: i64,
    /// When the account was deleted (its counters stay).
    pub deleted_at: Option<i64>,
}

const TENANT_COLUMNS: &str =
    "tenant_id, partner_id, name, status, created_at, plan_id, deleted_at, hand_back_minutes";

impl Tx {
    /// Create a partner (host scope).
    pub async fn insert_partner(&mut self, id: &str, name: &str) -> Result<PartnerRecord> {
        let now = now_ms();
        sqlx::query("INSERT INTO partners (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        Ok(PartnerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created_at: now,
        })
    }

    /// Every partner, oldest first (host scope; at most 1,000).
    pub async fn partners(&mut self) -> Result<Vec<PartnerRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, name, created_at FROM partners ORDER BY created_at, id LIMIT 1000",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// A partner by id (host scope).
    pub async fn partner(&mut self, id: &str) -> Result<Option<PartnerRecord>> {
        Ok(
            sqlx::query_as("SELECT id, name, created_at FROM partners WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut self.inner)
                .await?,
        )
    }

    /// Whether a partner exists.
    pub async fn partner_exists(&mut self, id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM partners WHERE id = $1")
            .bind(id)
            .fetch_one(&mut self.inner)
            .await?;
        Ok(n > 0)
    }

    /// Store an API key's hash.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_api_key(
        &mut self,
        id: &str,
        secret_hash: &[u8],
        partner_id: Option<&str>,
        tenant_id: Option<&str>,
        role: Option<&str>,
        label: Option<&str>,
        created_by: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        let kind = if tenant_id.is_some() {
            "tenant"
        } else {
            "partner"
        };
        sqlx::query(
            "INSERT INTO api_keys (id, secret_hash, kind, partner_id, tenant_id, role, label, created_by,
                created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(secret_hash.to_vec())
        .bind(kind)
        .bind(partner_id)
        .bind(tenant_id)
        .bind(role)
        .bind(label)
        .bind(created_by)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// An API key by id.
    pub async fn api_key(&mut self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, secret_hash, kind, partner_id, tenant_id, role, revoked_at, expires_at
             FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The keys of `owner`, oldest first, `limit` after `after` (host scope: the caller checked
    /// who may see them).
    pub async fn keys(
        &mut self,
        owner: KeyOwner<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<KeyInfo>> {
        let (filter, id) = owner.filter();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE {filter} AND id > $2 ORDER BY id LIMIT $3"
        )))
        .bind(id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// One key of `owner`.
    pub async fn key_info(&mut self, owner: KeyOwner<'_>, key_id: &str) -> Result<Option<KeyInfo>> {
        let (filter, id) = owner.filter();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE {filter} AND id = $2"
        )))
        .bind(id)
        .bind(key_id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Revoke a key of `owner` now (a revoked key stays revoked: the first time is kept).
    pub async fn revoke_key(&mut self, owner: KeyOwner<'_>, key_id: &str) -> Result<()> {
        let (filter, id) = owner.filter();
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE {filter} AND id = $2"
        )))
        .bind(id)
        .bind(key_id)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Make a key of `owner` expire at `at` at the latest (an earlier expiry is kept).
    pub async fn expire_key(&mut self, owner: KeyOwner<'_>, key_id: &str, at: i64) -> Result<()> {
        let (filter, id) = owner.filter();
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $3
                                                   THEN $3 ELSE expires_at END
             WHERE {filter} AND id = $2"
        )))
        .bind(id)
        .bind(key_id)
        .bind(at)
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Create a tenant (operator or partner scope; a partner's tenant is its own).
    pub async fn insert_tenant(
        &mut self,
        id: &str,
        partner_id: Option<&str>,
        name: &str,
    ) -> Result<TenantRecord> {
        match &self.scope {
            Scope::Operator => {}
            Scope::Partner(p) if partner_id == Some(p.id()) => {}
            _ => return Err(StoreError::WrongScope),
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO tenants (tenant_id, partner_id, name, status, created_at)
             VALUES ($1, $2, $3, 'active', $4)",
        )
        .bind(id)
        .bind(partner_id)
        .bind(name)
        .bind(now)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(TenantRecord {
            id: id.to_string(),
            partner_id: partner_id.map(str::to_string),
            name: name.to_string(),
            status: "active".into(),
            created_at: now,
            plan_id: None,
            deleted_at: None,
            hand_back_minutes: None,
        })
    }

    /// A tenant visible in this scope.
    pub async fn tenant(&mut self, id: &str) -> Result<Option<TenantRecord>> {
        let (tenant, partner, operator) = self.scope.settings();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = $1
               AND (tenant_id = $2 OR partner_id = $3 OR $4 = 'on')"
        )))
        .bind(id)
        .bind(tenant)
        .bind(partner)
        .bind(operator)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The tenants visible in this scope, oldest first, `limit` after `after`.
    pub async fn tenants(&mut self, after: Option<&str>, limit: i64) -> Result<Vec<TenantRecord>> {
        let (tenant, partner, operator) = self.scope.settings();
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants
             WHERE (tenant_id = $1 OR partner_id = $2 OR $3 = 'on') AND tenant_id > $4
             ORDER BY tenant_id LIMIT $5"
        )))
        .bind(tenant)
        .bind(partner)
        .bind(operator)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Set the scope's tenant's status (`active` or `suspended`); its row as it is now.
    pub async fn set_tenant_status(&mut self, status: &str) -> Result<TenantRecord> {
        let tenant_id = self.tenant_id()?;
        sqlx::query("UPDATE tenants SET status = $2 WHERE tenant_id = $1")
            .bind(&tenant_id)
            .bind(status)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        self.tenant(&tenant_id).await?.ok_or(StoreError::NotFound)
    }

    /// Make every queued job deferred with exactly `reason` due now (a reinstated tenant's
    /// work); how many. Jobs are host-global: the caller decides whose reason it names.
    pub async fn wake_deferred_jobs(&mut self, reason: &str) -> Result<u64> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET run_at = $2, updated_at = $2
             WHERE state = 'queued' AND last_error = $1 AND run_at > $2",
        )
        .bind(reason)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected())
    }

    /// Every tenant's id (operator scope).
    pub async fn all_tenant_ids(&mut self) -> Result<Vec<String>> {
        if self.scope != Scope::Operator {
            return Err(StoreError::WrongScope);
        }
        Ok(
            sqlx::query_scalar("SELECT tenant_id FROM tenants ORDER BY tenant_id")
                .fetch_all(&mut self.inner)
                .await?,
        )
    }

    /// Per-tenant totals of a partner's tenants (partner or operator scope).
    pub async fn partner_report(&mut self, partner_id: &str) -> Result<Vec<ReportRow>> {
        match &self.scope {
            Scope::Operator => {}
            Scope::Partner(p) if p.id() == partner_id => {}
            _ => return Err(StoreError::WrongScope),
        }
        Ok(sqlx::query_as(
            "SELECT t.tenant_id, t.name, t.status, t.deleted_at,
                    CAST(COALESCE(SUM(c.messages_in), 0) AS BIGINT) AS messages_in,
                    CAST(COALESCE(SUM(c.messages_out), 0) AS BIGINT) AS messages_out,
                    CAST(COALESCE(SUM(c.failures), 0) AS BIGINT) AS failures
             FROM tenants t LEFT JOIN tenant_counters c ON c.tenant_id = t.tenant_id
             WHERE t.partner_id = $1
             GROUP BY t.tenant_id, t.name, t.status, t.deleted_at
             ORDER BY t.tenant_id",
        )
        .bind(partner_id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Create an endpoint (a connector installation that owns a webhook URL).
    pub async fn insert_endpoint(&mut self, e: &EndpointRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO endpoints (id, connector, owner, partner_id, tenant_id, settings, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.connector)
        .bind(&e.owner)
        .bind(&e.partner_id)
        .bind(&e.tenant_id)
        .bind(&e.settings)
        .bind(e.created_at)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Every endpoint's id.
    pub async fn endpoint_ids(&mut self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM endpoints ORDER BY id")
            .fetch_all(&mut self.inner)
            .await?)
    }

    /// An endpoint by id.
    pub async fn endpoint(&mut self, id: &str) -> Result<Option<EndpointRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, connector, owner, partner_id, tenant_id, settings, created_at
             FROM endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The shared endpoints (connector installations) a tenant of `partner` may connect
    /// numbers through: the operator's and that partner's, oldest first.
    pub async fn shared_endpoints(&mut self, partner: Option<&str>) -> Result<Vec<EndpointRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, connector, owner, partner_id, tenant_id, settings, created_at
             FROM endpoints WHERE tenant_id IS NULL AND (partner_id IS NULL OR partner_id = $1)
             ORDER BY created_at, id LIMIT 500",
        )
        .bind(partner)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Route `(endpoint, channel address)` to a tenant's connection; `Conflict` when taken.
    pub async fn insert_route(&mut self, route: &NewRoute<'_>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "INSERT INTO routes (endpoint_id, channel_address, tenant_id, connection_id, created_at,
                                 connector, account_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(route.endpoint_id)
        .bind(route.channel_address)
        .bind(tenant_id)
        .bind(route.connection_id)
        .bind(now_ms())
        .bind(route.connector)
        .bind(route.account_id)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Remove the route of a tenant's connection.
    pub async fn delete_route(&mut self, connection_id: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query("DELETE FROM routes WHERE tenant_id = $1 AND connection_id = $2")
            .bind(tenant_id)
            .bind(connection_id)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// Whether a connector's channel address is connected in a tenant other than `tenant_id`,
    /// on any endpoint (host scope); the tenant's own number may be reconnected in place.
    pub async fn route_taken(
        &mut self,
        connector: &str,
        channel_address: &str,
        tenant_id: &str,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM routes
             WHERE connector = $1 AND channel_address = $2 AND tenant_id <> $3",
        )
        .bind(connector)
        .bind(channel_address)
        .bind(tenant_id)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n > 0)
    }

    /// Whether a connection other than `except` (in any tenant) is connected through the same
    /// provider account (host scope). A route whose account is unknown counts as a user: the
    /// answer errs toward keeping a shared account subscribed.
    pub async fn account_in_use(
        &mut self,
        connector: &str,
        account_id: &str,
        except: &str,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM routes
             WHERE connector = $1 AND (account_id = $2 OR account_id IS NULL)
               AND connection_id <> $3",
        )
        .bind(connector)
        .bind(account_id)
        .bind(except)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n > 0)
    }
}

/// A route to insert: a connection's channel address on its endpoint.
#[derive(Debug, Clone, Copy)]
pub struct NewRoute<'a> {
    /// The webhook endpoint.
    pub endpoint_id: &'a str,
    /// The connector (a channel address is unique per connector, host-wide).
    pub connector: &'a str,
    /// The channel address.
    pub channel_address: &'a str,
    /// The provider account, if any.
    pub account_id: Option<&'a str>,
    /// The connection it routes to.
    pub connection_id: &'a str,
}

impl Tx {
    /// The `(tenant, connection)` of an endpoint's only route (per-connection endpoints).
    pub async fn route_for_endpoint(
        &mut self,
        endpoint_id: &str,
    ) -> Result<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, connection_id FROM routes WHERE endpoint_id = $1 ORDER BY created_at LIMIT 1",
        )
        .bind(endpoint_id)
        .fetch_optional(&mut self.inner)
        .await?)
    }
}
