//! Plans (host table), partners' ceilings, a tenant's plan and what it uses of it.

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};
use crate::tenancy::Scope;

/// A plan as stored.
#[derive(Debug, Clone, FromRow)]
pub struct PlanRecord {
    /// `pln_…`.
    pub id: String,
    /// The partner that defined it (`None`: the operator).
    pub partner_id: Option<String>,
    /// Name, unique per owner.
    pub name: String,
    /// JSON array of connector names (`None`: every channel).
    pub channels: Option<String>,
    /// Numbers allowed (`None`: unlimited).
    pub max_numbers: Option<i64>,
    /// Outbound messages per calendar month (`None`: unlimited).
    pub monthly_messages: Option<i64>,
    /// 1 when AI policies (with egress or insights) may run.
    pub ai_policies: i64,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

const PLAN_COLUMNS: &str = "id, partner_id, name, channels, max_numbers, monthly_messages, \
     ai_policies, created_at, updated_at";

impl Tx {
    /// Store a new plan (`Conflict` on a name its owner already uses).
    pub async fn insert_plan(&mut self, p: &PlanRecord) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO plans ({PLAN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
        )))
        .bind(&p.id)
        .bind(&p.partner_id)
        .bind(&p.name)
        .bind(&p.channels)
        .bind(p.max_numbers)
        .bind(p.monthly_messages)
        .bind(p.ai_policies)
        .bind(p.created_at)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Replace a plan's terms (`NotFound` when it does not exist).
    pub async fn update_plan(&mut self, p: &PlanRecord) -> Result<()> {
        let n = sqlx::query(
            "UPDATE plans SET name = $2, channels = $3, max_numbers = $4, monthly_messages = $5,
                ai_policies = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.channels)
        .bind(p.max_numbers)
        .bind(p.monthly_messages)
        .bind(p.ai_policies)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A plan by id.
    pub async fn plan(&mut self, id: &str) -> Result<Option<PlanRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Plans by name: the operator's and, with `partner`, that partner's (`all`: everyone's).
    pub async fn plans(&mut self, partner: Option<&str>, all: bool) -> Result<Vec<PlanRecord>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM plans
             WHERE $1 = 1 OR partner_id IS NULL OR partner_id = $2
             ORDER BY COALESCE(partner_id, ''), name LIMIT 1000"
        )))
        .bind(i64::from(all))
        .bind(partner)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Delete a plan (`NotFound` when it does not exist); the caller checked it is unused.
    pub async fn delete_plan(&mut self, id: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM plans WHERE id = $1")
            .bind(id)
            .execute(&mut self.inner)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A partner's ceiling plan.
    pub async fn partner_ceiling(&mut self, partner_id: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT plan_ceiling FROM partners WHERE id = $1")
                .bind(partner_id)
                .fetch_optional(&mut self.inner)
                .await?;
        Ok(row.and_then(|(c,)| c))
    }

    /// Set or clear a partner's ceiling plan (`NotFound` for no such partner).
    pub async fn set_partner_ceiling(
        &mut self,
        partner_id: &str,
        plan: Option<&str>,
    ) -> Result<()> {
        let n = sqlx::query("UPDATE partners SET plan_ceiling = $2 WHERE id = $1")
            .bind(partner_id)
            .bind(plan)
            .execute(&mut self.inner)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Set or clear the scope's tenant's plan.
    pub async fn set_tenant_plan(&mut self, plan: Option<&str>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query("UPDATE tenants SET plan_id = $2 WHERE tenant_id = $1")
            .bind(tenant_id)
            .bind(plan)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// The scope's tenant's plan, if it has one.
    pub async fn tenant_plan(&mut self) -> Result<Option<PlanRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PLAN_COLUMNS} FROM plans
             WHERE id = (SELECT plan_id FROM tenants WHERE tenant_id = $1)"
        )))
        .bind(tenant_id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The scope's tenant's numbers that count against a plan (not disconnected), but for
    /// `except` (the connector and address a reconnect renews).
    pub async fn numbers_in_use(&mut self, except: Option<(&str, &str)>) -> Result<i64> {
        let tenant_id = self.tenant_id()?;
        let (connector, address) = except.unwrap_or(("", ""));
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM connections
             WHERE tenant_id = $1 AND status <> 'disconnected'
               AND NOT (connector = $2 AND channel_address = $3)",
        )
        .bind(tenant_id)
        .bind(connector)
        .bind(address)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n)
    }

    /// The scope's tenant's replies the providers accepted from day `since` (days since the
    /// epoch) on.
    pub async fn messages_sent_since(&mut self, since: i64) -> Result<i64> {
        let tenant_id = self.tenant_id()?;
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(messages_sent), 0) AS BIGINT) FROM tenant_counters
             WHERE tenant_id = $1 AND CAST(day AS BIGINT) >= $2",
        )
        .bind(tenant_id)
        .bind(since)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n)
    }

    /// How many tenants are on a plan and partners bounded by it (operator scope: it reads
    /// every tenant's row).
    pub async fn plan_users(&mut self, id: &str) -> Result<i64> {
        if self.scope != Scope::Operator {
            return Err(StoreError::WrongScope);
        }
        let (n,): (i64,) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM partners WHERE plan_ceiling = $1)
                  + (SELECT COUNT(*) FROM tenants WHERE plan_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut self.inner)
        .await?;
        Ok(n)
    }
}
