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

/// Whose secrets: a tenant's connection or a host-global endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A connection (tenant scope).
    Connection(&'a str),
    /// An endpoint (host scope).
    Endpoint(&'a str),
}

impl Tx {
    /// Store a holder's sealed data key (insert or replace).
    pub async fn put_data_key(&mut self, holder: Holder<'_>, key: &SealedKeyRow) -> Result<()> {
        let q = match holder {
            Holder::Connection(id) => sqlx::query(
                "INSERT INTO connection_keys (tenant_id, connection_id, key_version, nonce, sealed)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (connection_id) DO UPDATE SET key_version = $3, nonce = $4, sealed = $5",
            )
            .bind(self.tenant_id()?)
            .bind(id),
            Holder::Endpoint(id) => sqlx::query(
                "INSERT INTO endpoint_keys (endpoint_id, key_version, nonce, sealed)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (endpoint_id) DO UPDATE SET key_version = $2, nonce = $3, sealed = $4",
            )
            .bind(id),
        };
        q.bind(key.key_version)
            .bind(key.nonce.clone())
            .bind(key.sealed.clone())
            .execute(&mut *self.inner)
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
        let q = match holder {
            Holder::Connection(id) => sqlx::query(
                "UPDATE connection_keys SET key_version = $3, nonce = $4, sealed = $5
                 WHERE tenant_id = $1 AND connection_id = $2 AND nonce = $6",
            )
            .bind(self.tenant_id()?)
            .bind(id),
            Holder::Endpoint(id) => sqlx::query(
                "UPDATE endpoint_keys SET key_version = $2, nonce = $3, sealed = $4
                 WHERE endpoint_id = $1 AND nonce = $5",
            )
            .bind(id),
        };
        let done = q
            .bind(new.key_version)
            .bind(new.nonce.clone())
            .bind(new.sealed.clone())
            .bind(old.nonce.clone())
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A holder's sealed data key.
    pub async fn data_key(&mut self, holder: Holder<'_>) -> Result<Option<SealedKeyRow>> {
        let q = match holder {
            Holder::Connection(id) => sqlx::query_as(
                "SELECT key_version, nonce, sealed FROM connection_keys
                 WHERE tenant_id = $1 AND connection_id = $2",
            )
            .bind(self.tenant_id()?)
            .bind(id),
            Holder::Endpoint(id) => sqlx::query_as(
                "SELECT key_version, nonce, sealed FROM endpoint_keys WHERE endpoint_id = $1",
            )
            .bind(id),
        };
        Ok(q.fetch_optional(&mut *self.inner).await?)
    }

    /// Ids of every holder with a data key in this scope (tenant: its connections; host: endpoints).
    pub async fn data_key_holders(&mut self) -> Result<Vec<String>> {
        Ok(match self.scope.tenant() {
            Some(t) => {
                sqlx::query_scalar(
                    "SELECT connection_id FROM connection_keys WHERE tenant_id = $1 ORDER BY connection_id",
                )
                .bind(t.id().to_string())
                .fetch_all(&mut *self.inner)
                .await?
            }
            None => {
                sqlx::query_scalar("SELECT endpoint_id FROM endpoint_keys ORDER BY endpoint_id")
                    .fetch_all(&mut *self.inner)
                    .await?
            }
        })
    }

    /// Store one sealed secret (insert or replace).
    pub async fn put_secret(&mut self, holder: Holder<'_>, s: &SealedSecretRow) -> Result<()> {
        let q = match holder {
            Holder::Connection(id) => sqlx::query(
                "INSERT INTO connection_secrets (tenant_id, connection_id, field, nonce, ciphertext, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (connection_id, field) DO UPDATE SET nonce = $4, ciphertext = $5, expires_at = $6",
            )
            .bind(self.tenant_id()?)
            .bind(id),
            Holder::Endpoint(id) => sqlx::query(
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
        let q = match holder {
            Holder::Connection(_) => q.bind(s.expires_at),
            Holder::Endpoint(_) => q,
        };
        q.execute(&mut *self.inner)
            .await
            .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// A holder's sealed secrets.
    pub async fn secrets(&mut self, holder: Holder<'_>) -> Result<Vec<SealedSecretRow>> {
        let q = match holder {
            Holder::Connection(id) => sqlx::query_as(
                "SELECT field, nonce, ciphertext, expires_at FROM connection_secrets
                 WHERE tenant_id = $1 AND connection_id = $2 ORDER BY field",
            )
            .bind(self.tenant_id()?)
            .bind(id),
            Holder::Endpoint(id) => sqlx::query_as(
                "SELECT field, nonce, ciphertext, CAST(NULL AS BIGINT) AS expires_at
                 FROM endpoint_secrets WHERE endpoint_id = $1 ORDER BY field",
            )
            .bind(id),
        };
        Ok(q.fetch_all(&mut *self.inner).await?)
    }

    /// Crypto-shred a connection: overwrite its sealed data key and secrets with zeros of the
    /// same length, then delete them.
    pub async fn shred_connection(&mut self, connection_id: &str) -> Result<()> {
        let tenant_id = self.tenant_id()?;
        // Same-length zeros first, so no page keeps the old bytes even without secure_delete.
        if let Some(key) = self.data_key(Holder::Connection(connection_id)).await? {
            let zeroed = SealedKeyRow {
                key_version: key.key_version,
                nonce: vec![0; key.nonce.len()],
                sealed: vec![0; key.sealed.len()],
            };
            self.put_data_key(Holder::Connection(connection_id), &zeroed)
                .await?;
        }
        for secret in self.secrets(Holder::Connection(connection_id)).await? {
            let zeroed = SealedSecretRow {
                nonce: vec![0; secret.nonce.len()],
                ciphertext: vec![0; secret.ciphertext.len()],
                ..secret
            };
            self.put_secret(Holder::Connection(connection_id), &zeroed)
                .await?;
        }
        for sql in [
            "DELETE FROM connection_secrets WHERE tenant_id = $1 AND connection_id = $2",
            "DELETE FROM connection_keys WHERE tenant_id = $1 AND connection_id = $2",
        ] {
            sqlx::query(sql)
                .bind(&tenant_id)
                .bind(connection_id)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
    }
}
