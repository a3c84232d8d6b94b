//! The vault's rows: sealed data keys and sealed secrets of connections (tenant scope) and
//! endpoints (host scope). Only ciphertext passes through here.

use sqlx::FromRow;

use super::{Result, StoreError, Tx};

/// A sealed data key as stored.
#[derive(Debug, Clone, FromRow)]
pub struct SealedKeyRow {
    /// The master-key version it is sealed under.
    pub key_version: i64,
    /// AES-GCM nonce.
    pub nonce: Vec<u8>,
    /// Sealed key.
    pub sealed: Vec<u8>,
}

/// A sealed secret as stored.
#[derive(Debug, Clone, FromRow)]
pub struct SealedSecretRow {
    /// The field (`access_token`, `auth_token`, …).
    pub field: String,
    /// AES-GCM nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext.
    pub ciphertext: Vec<u8>,
    /// When the provider said the token expires.
    pub expires_at: Option<i64>,
}

/// Whose secrets: a tenant's connection or onboarding session, or a host-global endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A connection (tenant scope).
    Connection(&'a str),
    /// An endpoint (host scope).
    Endpoint(&'a str),
    /// A Meta onboarding session (tenant scope): the user token between callback and pick.
    Onboarding(&'a str),
}

/// `(keys table, secrets table, id column)` of a tenant-scoped holder.
fn tenant_tables(holder: Holder<'_>) -> Option<(&'static str, &'static str, &'static str, String)> {
    match holder {
        Holder::Connection(id) => Some((
            "connection_keys",
            "connection_secrets",
            "connection_id",
            id.to_string(),
        )),
        Holder::Onboarding(id) => Some((
            "meta_onboarding_keys",
            "meta_onboarding_secrets",
            "session_id",
            id.to_string(),
        )),
        Holder::Endpoint(_) => None,
    }
}

impl Tx {
    /// Store a holder's sealed data key (insert or replace).
    pub async fn put_data_key(&mut self, holder: Holder<'_>, key: &SealedKeyRow) -> Result<()> {
        let q = match (holder, tenant_tables(holder)) {
            (_, Some((keys, _, col, id))) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {keys} (tenant_id, {col}, key_version, nonce, sealed)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT ({col}) DO UPDATE SET key_version = $3, nonce = $4, sealed = $5"
            )))
            .bind(self.tenant_id()?)
            .bind(id),
            (Holder::Endpoint(id) | Holder::Connection(id) | Holder::Onboarding(id), None) => {
                sqlx::query(
                    "INSERT INTO endpoint_keys (endpoint_id, key_version, nonce, sealed)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (endpoint_id) DO UPDATE SET key_version = $2, nonce = $3, sealed = $4",
                )
                .bind(id)
            }
        };
        q.bind(key.key_version)
            .bind(key.nonce.clone())
            .bind(key.sealed.clone())
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Replace a sealed data key only if it is still the one that was read (rotation).
    pub async fn reseal_data_key(
        &mut self,
        holder: Holder<'_>,
        old: &SealedKeyRow,
        new: &SealedKeyRow,
    ) -> Result<bool> {
        let q = match (holder, tenant_tables(holder)) {
            (_, Some((keys, _, col, id))) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {keys} SET key_version = $3, nonce = $4, sealed = $5
                 WHERE tenant_id = $1 AND {col} = $2 AND nonce = $6"
            )))
            .bind(self.tenant_id()?)
            .bind(id),
            (Holder::Endpoint(id) | Holder::Connection(id) | Holder::Onboarding(id), None) => {
                sqlx::query(
                    "UPDATE endpoint_keys SET key_version = $2, nonce = $3, sealed = $4
                 WHERE endpoint_id = $1 AND nonce = $5",
                )
                .bind(id)
            }
        };
        let done = q
            .bind(new.key_version)
            .bind(new.nonce.clone())
            .bind(new.sealed.clone())
            .bind(old.nonce.clone())
            .execute(&mut self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A holder's sealed data key.
    pub async fn data_key(&mut self, holder: Holder<'_>) -> Result<Option<SealedKeyRow>> {
        let q = match (holder, tenant_tables(holder)) {
            (_, Some((keys, _, col, id))) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT key_version, nonce, sealed FROM {keys}
                 WHERE tenant_id = $1 AND {col} = $2"
            )))
            .bind(self.tenant_id()?)
            .bind(id),
            (Holder::Endpoint(id) | Holder::Connection(id) | Holder::Onboarding(id), None) => {
                sqlx::query_as(
                    "SELECT key_version, nonce, sealed FROM endpoint_keys WHERE endpoint_id = $1",
                )
                .bind(id)
            }
        };
        Ok(q.fetch_optional(&mut self.inner).await?)
    }

    /// Ids of every holder with a data key in this scope (tenant: its connections; host: endpoints).
    pub async fn data_key_holders(&mut self) -> Result<Vec<String>> {
        Ok(match self.scope.tenant() {
            Some(t) => {
                sqlx::query_scalar(
                    "SELECT connection_id FROM connection_keys WHERE tenant_id = $1 ORDER BY connection_id",
                )
                .bind(t.id().to_string())
                .fetch_all(&mut self.inner)
                .await?
            }
            None => {
                sqlx::query_scalar("SELECT endpoint_id FROM endpoint_keys ORDER BY endpoint_id")
                    .fetch_all(&mut self.inner)
                    .await?
            }
        })
    }

    /// How many data keys this scope holds under each master-key version (tenant: its
    /// connections' and onboarding sessions'; host: endpoints').
    pub async fn key_versions(&mut self) -> Result<Vec<(i64, i64)>> {
        Ok(match self.scope.tenant() {
            Some(t) => {
                sqlx::query_as(
                    "SELECT key_version, COUNT(*) FROM (
                         SELECT key_version FROM connection_keys WHERE tenant_id = $1
                         UNION ALL
                         SELECT key_version FROM meta_onboarding_keys WHERE tenant_id = $1
                     ) k GROUP BY key_version ORDER BY key_version",
                )
                .bind(t.id().to_string())
                .fetch_all(&mut self.inner)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT key_version, COUNT(*) FROM endpoint_keys
                     GROUP BY key_version ORDER BY key_version",
                )
                .fetch_all(&mut self.inner)
                .await?
            }
        })
    }

    /// The onboarding sessions of this tenant that hold a sealed data key.
    pub async fn onboarding_key_holders(&mut self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT session_id FROM meta_onboarding_keys WHERE tenant_id = $1 ORDER BY session_id",
        )
        .bind(self.tenant_id()?)
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Store one sealed secret (insert or replace).
    pub async fn put_secret(&mut self, holder: Holder<'_>, s: &SealedSecretRow) -> Result<()> {
        let tenant_holder = tenant_tables(holder);
        let q = match (holder, tenant_holder.clone()) {
            (_, Some((_, secrets, col, id))) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {secrets} (tenant_id, {col}, field, nonce, ciphertext, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT ({col}, field) DO UPDATE SET nonce = $4, ciphertext = $5, expires_at = $6"
            )))
            .bind(self.tenant_id()?)
            .bind(id),
            (Holder::Endpoint(id) | Holder::Connection(id) | Holder::Onboarding(id), None) => sqlx::query(
                "INSERT INTO endpoint_secrets (endpoint_id, field, nonce, ciphertext)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (endpoint_id, field) DO UPDATE SET nonce = $3, ciphertext = $4",
            )
            .bind(id),
        };
        let q = q
            .bind(s.field.clone())
            .bind(s.nonce.clone())
            .bind(s.ciphertext.clone());
        let q = match tenant_holder {
            Some(_) => q.bind(s.expires_at),
            None => q,
        };
        q.execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// A holder's sealed secrets.
    pub async fn secrets(&mut self, holder: Holder<'_>) -> Result<Vec<SealedSecretRow>> {
        let q = match (holder, tenant_tables(holder)) {
            (_, Some((_, secrets, col, id))) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT field, nonce, ciphertext, expires_at FROM {secrets}
                 WHERE tenant_id = $1 AND {col} = $2 ORDER BY field"
            )))
            .bind(self.tenant_id()?)
            .bind(id),
            (Holder::Endpoint(id) | Holder::Connection(id) | Holder::Onboarding(id), None) => {
                sqlx::query_as(
                    "SELECT field, nonce, ciphertext, CAST(NULL AS BIGINT) AS expires_at
                 FROM endpoint_secrets WHERE endpoint_id = $1 ORDER BY field",
                )
                .bind(id)
            }
        };
        Ok(q.fetch_all(&mut self.inner).await?)
    }

    /// Crypto-shred a connection: overwrite its sealed data key and secrets with zeros of the
    /// same length, then delete them.
    pub async fn shred_connection(&mut self, connection_id: &str) -> Result<()> {
        self.shred(Holder::Connection(connection_id)).await
    }

    /// Crypto-shred a tenant-scoped holder (connection or onboarding session): overwrite its
    /// sealed data key and secrets with zeros of the same length, then delete them.
    pub async fn shred(&mut self, holder: Holder<'_>) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        let Some((keys, secrets, col, id)) = tenant_tables(holder) else {
            return Err(StoreError::WrongScope);
        };
        // Same-length zeros first, so no page keeps the old bytes even without secure_delete.
        if let Some(key) = self.data_key(holder).await? {
            let zeroed = SealedKeyRow {
                key_version: key.key_version,
                nonce: vec![0; key.nonce.len()],
                sealed: vec![0; key.sealed.len()],
            };
            self.put_data_key(holder, &zeroed).await?;
        }
        for secret in self.secrets(holder).await? {
            let zeroed = SealedSecretRow {
                nonce: vec![0; secret.nonce.len()],
                ciphertext: vec![0; secret.ciphertext.len()],
                ..secret
            };
            self.put_secret(holder, &zeroed).await?;
        }
        for table in [secrets, keys] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND {col} = $2"
            )))
            .bind(&tenant_id)
            .bind(&id)
            .execute(&mut self.inner)
            .await?;
        }
        Ok(())
    }
}
