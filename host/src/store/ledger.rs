//! The consent ledger's rows (tenant scope): append and read, never update or delete.

use sqlx::FromRow;

use super::{Result, StoreError, Tx};

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct LedgerRow {
    /// The tenant.
    pub tenant_id: String,
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// The connection it is about, if any.
    pub connection_id: Option<String>,
    /// `granted`, `revoked`, `token-revoked`, `shredded`, …
    pub action: String,
    /// Who: key id and role, partner, operator or `host`.
    pub actor: String,
    /// The request's IP address.
    pub ip: Option<String>,
    /// The request's user agent.
    pub user_agent: Option<String>,
    /// The consent document version the client showed.
    pub document_version: Option<String>,
    /// Scopes (JSON array of strings).
    pub scopes: String,
    /// Time (Unix ms).
    pub created_at: i64,
    /// The previous row's hash (hex; 64 zeros for the first row).
    pub prev_hash: String,
    /// This row's hash (hex).
    pub hash: String,
}

const LEDGER_COLUMNS: &str = "tenant_id, seq, connection_id, action, actor, ip, user_agent, \
     document_version, scopes, created_at, prev_hash, hash";

impl Tx {
    /// The tenant's last ledger row.
    pub async fn ledger_last(&mut self) -> Result<Option<LedgerRow>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM consent_ledger WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1"
        )))
        .bind(tenant_id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Append a row; `Conflict` when another writer took its `seq` first.
    pub async fn ledger_insert(&mut self, r: &LedgerRow) -> Result<()> {
        if self.tenant_id()? != r.tenant_id {
            return Err(StoreError::WrongScope);
        }
        sqlx::query(
            "INSERT INTO consent_ledger (tenant_id, seq, connection_id, action, actor, ip, user_agent,
                document_version, scopes, created_at, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&r.tenant_id)
        .bind(r.seq)
        .bind(&r.connection_id)
        .bind(&r.action)
        .bind(&r.actor)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.document_version)
        .bind(&r.scopes)
        .bind(r.created_at)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// The tenant's ledger rows in order, `limit` after `after_seq`.
    pub async fn ledger(&mut self, after_seq: i64, limit: i64) -> Result<Vec<LedgerRow>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM consent_ledger WHERE tenant_id = $1 AND seq > $2
             ORDER BY seq LIMIT $3"
        )))
        .bind(tenant_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }
}

impl Tx {
    /// Serialize writers of this tenant's ledger (a row lock on Postgres; SQLite writers
    /// already hold the database's write lock).
    pub async fn lock_tenant(&mut self) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT tenant_id FROM tenants WHERE tenant_id = $1 FOR UPDATE")
                .bind(tenant_id)
                .fetch_optional(&mut self.inner)
                .await?;
        }
        Ok(())
    }
}

impl Tx {
    /// Record `scope` as granted on `connection_id` (`None`: tenant-wide) by ledger row `seq`.
    pub async fn consent_grant(
        &mut self,
        connection_id: Option<&str>,
        scope: &str,
        seq: i64,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "INSERT INTO consent_grants (tenant_id, connection_id, scope, granted_seq)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, scope, connection_id) DO UPDATE SET granted_seq = excluded.granted_seq",
        )
        .bind(tenant_id)
        .bind(connection_id.unwrap_or(""))
        .bind(scope)
        .bind(seq)
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// End grants: of `connection_id` or, when `None`, of every connection and the tenant-wide
    /// one; of `scope` or, when `None`, of every scope.
    pub async fn consent_revoke(
        &mut self,
        connection_id: Option<&str>,
        scope: Option<&str>,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "DELETE FROM consent_grants
              WHERE tenant_id = $1 AND ($2 = '' OR connection_id = $2) AND ($3 = '' OR scope = $3)",
        )
        .bind(tenant_id)
        .bind(connection_id.unwrap_or(""))
        .bind(scope.unwrap_or(""))
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Whether `scope` is in force for `connection_id` (its own grant or a tenant-wide one):
    /// one primary-key probe.
    pub async fn consent_active(&mut self, connection_id: &str, scope: &str) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let hit: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM consent_grants
              WHERE tenant_id = $1 AND scope = $2 AND connection_id IN ('', $3) LIMIT 1",
        )
        .bind(tenant_id)
        .bind(scope)
        .bind(connection_id)
        .fetch_optional(&mut self.inner)
        .await?;
        Ok(hit.is_some())
    }

    /// The tenant-wide scopes in force.
    pub async fn consent_tenant_scopes(&mut self) -> Result<Vec<String>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "SELECT scope FROM consent_grants WHERE tenant_id = $1 AND connection_id = '' ORDER BY scope",
        )
        .bind(tenant_id)
        .fetch_all(&mut self.inner)
        .await?)
    }
}
