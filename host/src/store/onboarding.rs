//! Meta onboarding sessions (tenant scope only): the row the signed `state` points at, what
//! discovery found, and how it ended. The user token is not here: it is sealed in the vault
//! under the session's own data key ([`super::Holder::Onboarding`]).

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};

/// An onboarding session as stored.
#[derive(Debug, Clone, FromRow)]
pub struct OnboardingRecord {
    /// `onb_…`.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The Meta app endpoint the number will receive on.
    pub endpoint_id: String,
    /// `redirect` or `embedded`.
    pub flow: String,
    /// SHA-256 of the state nonce (redirect flow, once a browser opened the ticket).
    pub state_hash: Option<Vec<u8>>,
    /// SHA-256 of the browser ticket's nonce until the ticket is used (redirect flow).
    pub ticket_hash: Option<Vec<u8>>,
    /// SHA-256 of the nonce in the cookie of the browser that opened the ticket.
    pub browser_hash: Option<Vec<u8>>,
    /// SHA-256 of the confirmation page's token nonce while it waits for that browser's answer.
    pub confirm_hash: Option<Vec<u8>>,
    /// Who started it (consent-ledger actor).
    pub actor: String,
    /// The starter's IP.
    pub ip: Option<String>,
    /// The starter's user agent.
    pub user_agent: Option<String>,
    /// Consent document version given when starting.
    pub consent_version: Option<String>,
    /// Consent scopes (JSON array).
    pub consent_scopes: String,
    /// `started`, `picking`, `completed` or `failed`.
    pub status: String,
    /// The WABAs and numbers found (JSON), never a token.
    pub discovered: Option<String>,
    /// Why it failed.
    pub error_code: Option<String>,
    /// The connection it made.
    pub connection_id: Option<String>,
    /// When the sealed token expires (Unix ms), if Meta said.
    pub token_expires_at: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// When the state (or the pick) expires (Unix ms).
    pub expires_at: i64,
    /// When the state was used (single use).
    pub used_at: Option<i64>,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, endpoint_id, flow, state_hash, ticket_hash, browser_hash, \
     confirm_hash, actor, ip, user_agent, consent_version, consent_scopes, status, discovered, error_code, connection_id, \
     token_expires_at, created_at, expires_at, used_at, updated_at";

/// A change of an onboarding session's state.
#[derive(Debug, Clone, Default)]
pub struct OnboardingUpdate<'a> {
    /// New status.
    pub status: &'a str,
    /// New discovered JSON (kept when `None`).
    pub discovered: Option<&'a str>,
    /// Error code (cleared when `None`).
    pub error_code: Option<&'a str>,
    /// The connection made.
    pub connection_id: Option<&'a str>,
    /// New expiry (kept when `None`).
    pub expires_at: Option<i64>,
    /// Token expiry (kept when `None`).
    pub token_expires_at: Option<i64>,
}

impl Tx {
    /// Add an onboarding session.
    pub async fn insert_onboarding(&mut self, s: &OnboardingRecord) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "INSERT INTO meta_onboarding_sessions (tenant_id, id, endpoint_id, flow, state_hash, actor,
                ip, user_agent, consent_version, consent_scopes, status, discovered, error_code,
                connection_id, token_expires_at, created_at, expires_at, used_at, updated_at,
                ticket_hash, browser_hash, confirm_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $16,
                $19, $20, $21)",
        )
        .bind(tenant_id)
        .bind(&s.id)
        .bind(&s.endpoint_id)
        .bind(&s.flow)
        .bind(s.state_hash.clone())
        .bind(&s.actor)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(&s.consent_version)
        .bind(&s.consent_scopes)
        .bind(&s.status)
        .bind(&s.discovered)
        .bind(&s.error_code)
        .bind(&s.connection_id)
        .bind(s.token_expires_at)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.used_at)
        .bind(s.ticket_hash.clone())
        .bind(s.browser_hash.clone())
        .bind(s.confirm_hash.clone())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// One of the tenant's onboarding sessions.
    pub async fn onboarding(&mut self, id: &str) -> Result<Option<OnboardingRecord>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM meta_onboarding_sessions WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Mark the state of a session used, only if it was not used yet (single use): `true`
    /// when this call used it.
    pub async fn use_onboarding_state(&mut self, id: &str, now: i64) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE meta_onboarding_sessions SET used_at = $3, updated_at = $3
             WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Use a redirect session's browser ticket (single use): the ticket is forgotten and the
    /// session bound to the state's and the browser cookie's nonce hashes. `true` when this call
    /// used it.
    pub async fn bind_onboarding_browser(
        &mut self,
        id: &str,
        state_hash: &[u8],
        browser_hash: &[u8],
    ) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE meta_onboarding_sessions SET ticket_hash = NULL, state_hash = $3,
                    browser_hash = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2 AND ticket_hash IS NOT NULL AND used_at IS NULL",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(state_hash.to_vec())
        .bind(browser_hash.to_vec())
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Set (or with `None`, clear) the hash of a session's confirmation token.
    pub async fn set_onboarding_confirm(&mut self, id: &str, hash: Option<&[u8]>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE meta_onboarding_sessions SET confirm_hash = $3, updated_at = $4
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(hash.map(<[u8]>::to_vec))
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Use a session's confirmation token (single use): `true` when this call used it.
    pub async fn take_onboarding_confirm(&mut self, id: &str) -> Result<bool> {
        let tenant_id = self.tenant_id()?;
        let done = sqlx::query(
            "UPDATE meta_onboarding_sessions SET confirm_hash = NULL, updated_at = $3
             WHERE tenant_id = $1 AND id = $2 AND confirm_hash IS NOT NULL",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Change a session's status (and what else `u` names).
    pub async fn update_onboarding(&mut self, id: &str, u: &OnboardingUpdate<'_>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        sqlx::query(
            "UPDATE meta_onboarding_sessions SET status = $3,
                discovered = COALESCE($4, discovered), error_code = $5,
                connection_id = COALESCE($6, connection_id), expires_at = COALESCE($7, expires_at),
                token_expires_at = COALESCE($8, token_expires_at), updated_at = $9
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(u.status)
        .bind(u.discovered)
        .bind(u.error_code)
        .bind(u.connection_id)
        .bind(u.expires_at)
        .bind(u.token_expires_at)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(())
    }

    /// Sessions of this tenant past their expiry that still hold a sealed token.
    pub async fn expired_onboarding_with_secrets(&mut self, now: i64) -> Result<Vec<String>> {
        let tenant_id = self.tenant_id()?;
        Ok(sqlx::query_scalar(
            "SELECT s.id FROM meta_onboarding_sessions s
             WHERE s.tenant_id = $1 AND s.expires_at < $2
               AND EXISTS (SELECT 1 FROM meta_onboarding_keys k
                           WHERE k.tenant_id = $1 AND k.session_id = s.id)
             ORDER BY s.id",
        )
        .bind(tenant_id)
        .bind(now)
        .fetch_all(&mut self.inner)
        .await?)
    }
}
