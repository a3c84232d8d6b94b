//! A tenant's connections and reply policy (tenant scope only).

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};

/// A connection (one business number) as stored; never holds a secret.
#[derive(Debug, Clone, FromRow)]
pub struct ConnectionRecord {
    /// `con_…`.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The connector plugin's name.
    pub connector: String,
    /// The webhook endpoint it receives on.
    pub endpoint_id: String,
    /// The business address (Meta phone_number_id, Twilio `whatsapp:+E164`).
    pub channel_address: String,
    /// The provider account (WABA id, Account SID).
    pub account_id: Option<String>,
    /// The number as people see it.
    pub display_name: Option<String>,
    /// Non-secret settings (JSON object).
    pub settings: String,
    /// `connecting`, `live`, `expired`, `disconnected` or `error`.
    pub status: String,
    /// Why, for `error` and `expired`.
    pub status_reason: Option<String>,
    /// 1 when the number is switched on (a later console toggle).
    pub active: i64,
    /// When the access token expires, when the provider said.
    pub token_expires_at: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// When it was disconnected.
    pub disconnected_at: Option<i64>,
    /// When it was last connected: made, or renewed by a reconnect (Unix ms).
    pub connected_at: Option<i64>,
    /// What the business calls the number (e.g. "Sales Support").
    pub name: Option<String>,
    /// The reply policy chosen for this number (`None`: the tenant's).
    pub policy_plugin: Option<String>,
    /// Its configuration (JSON), with `policy_plugin`.
    pub policy_config: Option<String>,
}

/// What a new connection is made of.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    /// `con_…`.
    pub id: &'a str,
    /// Connector name.
    pub connector: &'a str,
    /// Endpoint id.
    pub endpoint_id: &'a str,
    /// Business address.
    pub channel_address: &'a str,
    /// Provider account.
    pub account_id: Option<&'a str>,
    /// Display name.
    pub display_name: Option<&'a str>,
    /// Settings JSON.
    pub settings: &'a str,
    /// Initial status.
    pub status: &'a str,
    /// Reason for the status.
    pub status_reason: Option<&'a str>,
    /// Token expiry.
    pub token_expires_at: Option<i64>,
}

/// A tenant's reply policy.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct PolicyRecord {
    /// The reply-policy plugin's name.
    pub plugin: String,
    /// Its configuration (JSON).
    pub config: String,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

pub(super) const CONNECTION_COLUMNS: &str = "id, tenant_id, connector, endpoint_id, channel_address, account_id, \
     display_name, settings, status, status_reason, active, token_expires_at, created_at, \
     updated_at, disconnected_at, connected_at, name, policy_plugin, policy_config";

impl Tx {
    /// Add a connection; `Conflict("connections_live_number")`-like when the number is live elsewhere.
    pub async fn insert_connection(&mut self, c: &NewConnection<'_>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO connections (tenant_id, id, connector, endpoint_id, channel_address, account_id,
                display_name, settings, status, status_reason, active, token_expires_at, created_at, updated_at,
                connected_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $12, $12)",
        )
        .bind(tenant_id)
        .bind(c.id)
        .bind(c.connector)
        .bind(c.endpoint_id)
        .bind(c.channel_address)
        .bind(c.account_id)
        .bind(c.display_name)
        .bind(c.settings)
        .bind(c.status)
        .bind(c.status_reason)
        .bind(c.token_expires_at)
        .bind(now)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// The tenant's connection of this channel address (any status, newest first): the one a
    /// reconnect renews, so the address keeps its contacts and history.
    pub async fn connection_by_address(
        &mut self,
        connector: &str,
        channel_address: &str,
    ) -> Result<Option<ConnectionRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections
             WHERE tenant_id = $1 AND connector = $2 AND channel_address = $3
             ORDER BY id DESC LIMIT 1"
        )))
        .bind(tenant_id)
        .bind(connector)
        .bind(channel_address)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Renew a connection in place (a reconnect): new endpoint, account, settings, status and
    /// token expiry; its id, contacts, conversations and history stay.
    pub async fn renew_connection(&mut self, c: &NewConnection<'_>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE connections SET endpoint_id = $3, account_id = $4, display_name = $5,
                    settings = $6, status = $7, status_reason = $8, token_expires_at = $9,
                    updated_at = $10, connected_at = $10, disconnected_at = NULL
             WHERE tenant_id = $1 AND id = $2 AND connector = $11 AND channel_address = $12",
        )
        .bind(tenant_id)
        .bind(c.id)
        .bind(c.endpoint_id)
        .bind(c.account_id)
        .bind(c.display_name)
        .bind(c.settings)
        .bind(c.status)
        .bind(c.status_reason)
        .bind(c.token_expires_at)
        .bind(now_ms())
        .bind(c.connector)
        .bind(c.channel_address)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// One of the tenant's connections.
    pub async fn connection(&mut self, id: &str) -> Result<Option<ConnectionRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// The tenant's connections, newest first, `limit` before `before`.
    pub async fn connections(
        &mut self,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConnectionRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections
             WHERE tenant_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        )))
        .bind(tenant_id)
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Count the tenant's connections by status.
    pub async fn connection_status_counts(&mut self) -> Result<Vec<(String, i64)>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(
            "SELECT status, COUNT(*) FROM connections WHERE tenant_id = $1 GROUP BY status ORDER BY status",
        )
        .bind(tenant_id)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Set a connection's status (and reason).
    pub async fn set_connection_status(
        &mut self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE connections SET status = $3, status_reason = $4, updated_at = $5,
                    disconnected_at = CASE WHEN $3 = 'disconnected' THEN $5 ELSE disconnected_at END
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Set the tenant's reply policy.
    pub async fn put_policy(&mut self, plugin: &str, config: &str) -> Result<PolicyRecord> {
        let tenant_id = self.tenant_id()?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO policies (tenant_id, plugin, config, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE SET plugin = $2, config = $3, updated_at = $4",
        )
        .bind(tenant_id)
        .bind(plugin)
        .bind(config)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        Ok(PolicyRecord {
            plugin: plugin.to_string(),
            config: config.to_string(),
            updated_at: now,
        })
    }

    /// Edit a number: its name, whether it is switched on, its own policy (`Some(None)`
    /// clears it); `NotFound` when it is not the tenant's.
    pub async fn edit_connection(
        &mut self,
        id: &str,
        name: Option<&str>,
        active: Option<bool>,
        policy: Option<Option<(&str, &str)>>,
    ) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let (set_policy, plugin, config) = match policy {
            None => (0i64, None, None),
            Some(None) => (1, None, None),
            Some(Some((p, c))) => (1, Some(p), Some(c)),
        };
        let done = sqlx::query(
            "UPDATE connections SET
                name = COALESCE($3, name),
                active = COALESCE($4, active),
                policy_plugin = CASE WHEN $5 = 1 THEN $6 ELSE policy_plugin END,
                policy_config = CASE WHEN $5 = 1 THEN $7 ELSE policy_config END,
                updated_at = $8
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(name)
        .bind(active.map(i64::from))
        .bind(set_policy)
        .bind(plugin)
        .bind(config)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The reply policy a number runs: its own, else the tenant's.
    pub async fn policy_for(&mut self, connection_id: &str) -> Result<Option<PolicyRecord>> {
        let tenant_id = self.tenant_id()?;
        let own: Option<(Option<String>, Option<String>, i64)> = sqlx::query_as(
            "SELECT policy_plugin, policy_config, updated_at FROM connections
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant_id)
        .bind(connection_id)
        .fetch_optional(&mut self.inner)
        .await?;
        if let Some((Some(plugin), config, updated_at)) = own {
            return Ok(Some(PolicyRecord {
                plugin,
                config: config.unwrap_or_else(|| "{}".into()),
                updated_at,
            }));
        }
        self.policy().await
    }

    /// The tenant's reply policy, if set.
    pub async fn policy(&mut self) -> Result<Option<PolicyRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(
            sqlx::query_as("SELECT plugin, config, updated_at FROM policies WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(&mut self.inner)
                .await?,
        )
    }
}
