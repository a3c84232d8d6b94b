//! The sealed store: connection secrets (tenant scope) and endpoint secrets (host scope), each
//! holder's secrets under its own random data key, the data key sealed under a key derived from
//! the master key for the owner scope (`tenant:<id>`, `partner:<id>`, `operator`).
//!
//! Crypto-shredding a connection destroys its sealed data key (overwritten, then deleted, with
//! SQLite's `secure_delete` on), so no copy of its secrets' ciphertext can be opened again.
//! Rotation re-seals every data key under the current master-key version, one row at a time,
//! so reads go on throughout: a reader finds either the old sealing (its version still
//! configured) or the new one.

use std::sync::Arc;

use super::crypto::{DataKey, MasterKeys, SealedKey, SealedSecret, VaultCryptoError};
use super::{Secret, SecretScope, StaticSecrets};
use crate::store::{
    ConnectionRecord, EndpointRecord, Holder, Mode, SealedKeyRow, SealedSecretRow, Store,
    StoreError, Tx,
};
use crate::tenancy::{Scope, auth::every_tenant};

/// A vault failure (never carries secret material).
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key or secret could not be opened.
    #[error(transparent)]
    Crypto(#[from] VaultCryptoError),
    /// The holder has secrets but no data key (it was shredded).
    #[error("the secrets of {0} were shredded")]
    Shredded(String),
}

/// The vault: master keys plus the store's sealed rows.
#[derive(Clone)]
pub struct Vault {
    keys: Arc<MasterKeys>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("keys", &self.keys).finish()
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RotateReport {
    /// Data keys re-sealed under the current version.
    pub resealed: usize,
    /// Data keys already under the current version.
    pub current: usize,
}

fn to_row(k: SealedKey) -> SealedKeyRow {
    SealedKeyRow {
        key_version: i64::from(k.key_version),
        nonce: k.nonce.to_vec(),
        sealed: k.ciphertext,
    }
}

fn from_row(r: &SealedKeyRow) -> Result<SealedKey, VaultCryptoError> {
    Ok(SealedKey {
        key_version: u32::try_from(r.key_version).map_err(|_| VaultCryptoError::Malformed)?,
        nonce: r
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| VaultCryptoError::Malformed)?,
        ciphertext: r.sealed.clone(),
    })
}

/// Owner and holder strings of a connection (bound into every seal).
fn connection_ids(tx: &Tx, connection_id: &str) -> Result<(String, String), VaultError> {
    let tenant = tx.scope().tenant().ok_or(StoreError::WrongScope)?;
    Ok((
        format!("tenant:{}", tenant.id()),
        format!("connection:{connection_id}"),
    ))
}

/// Owner and holder strings of an onboarding session.
fn onboarding_ids(tx: &Tx, session_id: &str) -> Result<(String, String), VaultError> {
    let tenant = tx.scope().tenant().ok_or(StoreError::WrongScope)?;
    Ok((
        format!("tenant:{}", tenant.id()),
        format!("onboarding:{session_id}"),
    ))
}

impl Vault {
    /// A vault over these master keys.
    pub fn new(keys: MasterKeys) -> Vault {
        Vault {
            keys: Arc::new(keys),
        }
    }

    /// The current master-key version.
    pub fn current_version(&self) -> u32 {
        self.keys.current_version()
    }

    async fn seal_into(
        &self,
        tx: &mut Tx,
        holder: Holder<'_>,
        owner: &str,
        holder_name: &str,
        secrets: &[(String, Secret)],
        expires_at: Option<i64>,
    ) -> Result<(), VaultError> {
        let key = DataKey::generate();
        tx.put_data_key(
            holder,
            &to_row(self.keys.seal_data_key(owner, holder_name, &key)),
        )
        .await?;
        for (field, value) in secrets {
            let sealed = key.seal(owner, holder_name, field, value.expose());
            tx.put_secret(
                holder,
                &SealedSecretRow {
                    field: field.clone(),
                    nonce: sealed.nonce.to_vec(),
                    ciphertext: sealed.ciphertext,
                    expires_at,
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn open_from(
        &self,
        tx: &mut Tx,
        holder: Holder<'_>,
        owner: &str,
        holder_name: &str,
    ) -> Result<Vec<(String, Secret)>, VaultError> {
        let rows = tx.secrets(holder).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let Some(sealed_key) = tx.data_key(holder).await? else {
            return Err(VaultError::Shredded(holder_name.to_string()));
        };
        let key = self
            .keys
            .open_data_key(owner, holder_name, &from_row(&sealed_key)?)?;
        rows.iter()
            .map(|r| {
                let sealed = SealedSecret {
                    nonce: r
                        .nonce
                        .as_slice()
                        .try_into()
                        .map_err(|_| VaultCryptoError::Malformed)?,
                    ciphertext: r.ciphertext.clone(),
                };
                Ok((
                    r.field.clone(),
                    key.open(owner, holder_name, &r.field, &sealed)?,
                ))
            })
            .collect()
    }

    /// Seal a connection's secrets (tenant scope) under a fresh data key.
    pub async fn seal_connection(
        &self,
        tx: &mut Tx,
        connection_id: &str,
        secrets: &[(String, Secret)],
        expires_at: Option<i64>,
    ) -> Result<(), VaultError> {
        let (owner, holder) = connection_ids(tx, connection_id)?;
        self.seal_into(
            tx,
            Holder::Connection(connection_id),
            &owner,
            &holder,
            secrets,
            expires_at,
        )
        .await
    }

    /// Open a connection's secrets (tenant scope).
    pub async fn open_connection(
        &self,
        tx: &mut Tx,
        connection_id: &str,
    ) -> Result<Vec<(String, Secret)>, VaultError> {
        let (owner, holder) = connection_ids(tx, connection_id)?;
        self.open_from(tx, Holder::Connection(connection_id), &owner, &holder)
            .await
    }

    /// Crypto-shred a connection's secrets (tenant scope), in the caller's transaction.
    pub async fn shred_connection(
        &self,
        tx: &mut Tx,
        connection_id: &str,
    ) -> Result<(), VaultError> {
        tx.shred_connection(connection_id).await?;
        Ok(())
    }

    /// Seal an onboarding session's secrets (the user token; tenant scope) under a fresh data
    /// key of their own.
    pub async fn seal_onboarding(
        &self,
        tx: &mut Tx,
        session_id: &str,
        secrets: &[(String, Secret)],
        expires_at: Option<i64>,
    ) -> Result<(), VaultError> {
        let (owner, holder) = onboarding_ids(tx, session_id)?;
        self.seal_into(
            tx,
            Holder::Onboarding(session_id),
            &owner,
            &holder,
            secrets,
            expires_at,
        )
        .await
    }

    /// Open an onboarding session's secrets (tenant scope).
    pub async fn open_onboarding(
        &self,
        tx: &mut Tx,
        session_id: &str,
    ) -> Result<Vec<(String, Secret)>, VaultError> {
        let (owner, holder) = onboarding_ids(tx, session_id)?;
        self.open_from(tx, Holder::Onboarding(session_id), &owner, &holder)
            .await
    }

    /// Crypto-shred an onboarding session's secrets, in the caller's transaction.
    pub async fn shred_onboarding(&self, tx: &mut Tx, session_id: &str) -> Result<(), VaultError> {
        tx.shred(Holder::Onboarding(session_id)).await?;
        Ok(())
    }

    /// HMAC-SHA256 of `message` under the `purpose` key of master-key `version` (signed
    /// onboarding state); `None` when that version is not configured.
    pub fn purpose_mac(&self, version: u32, purpose: &str, message: &[u8]) -> Option<[u8; 32]> {
        use hmac::{KeyInit, Mac};
        let key = self.keys.purpose_key(version, purpose).ok()?;
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_slice()).ok()?;
        mac.update(message);
        Some(mac.finalize().into_bytes().into())
    }

    /// Seal an endpoint's secrets under its owner's key.
    pub async fn seal_endpoint(
        &self,
        tx: &mut Tx,
        endpoint: &EndpointRecord,
        secrets: &[(String, Secret)],
    ) -> Result<(), VaultError> {
        let holder = format!("endpoint:{}", endpoint.id);
        self.seal_into(
            tx,
            Holder::Endpoint(&endpoint.id),
            &endpoint.owner,
            &holder,
            secrets,
            None,
        )
        .await
    }

    /// Open an endpoint's secrets.
    pub async fn open_endpoint(
        &self,
        tx: &mut Tx,
        endpoint: &EndpointRecord,
    ) -> Result<Vec<(String, Secret)>, VaultError> {
        let holder = format!("endpoint:{}", endpoint.id);
        self.open_from(tx, Holder::Endpoint(&endpoint.id), &endpoint.owner, &holder)
            .await
    }

    /// The secret scope of one plugin call: the opened secrets of its endpoint and connection.
    pub fn call_scope(
        endpoint: Option<(&EndpointRecord, Vec<(String, Secret)>)>,
        connection: Option<(&ConnectionRecord, Vec<(String, Secret)>)>,
    ) -> SecretScope {
        let mut set = StaticSecrets::new();
        let mut scope = SecretScope::default();
        if let Some((e, secrets)) = endpoint {
            scope.endpoint = Some(e.id.clone());
            for (field, value) in secrets.iter().filter(|(f, _)| !host_only(f)) {
                set = set.with(&e.id, field, value.expose().to_vec());
            }
        }
        if let Some((c, secrets)) = connection {
            scope.connection = Some(c.id.clone());
            scope.account_id = c.account_id.clone();
            for (field, value) in secrets.iter().filter(|(f, _)| !host_only(f)) {
                set = set.with(&c.id, field, value.expose().to_vec());
            }
        }
        scope.loaded = Some(Arc::new(set));
        scope
    }

    /// Re-seal every data key under the current master-key version, one key per transaction.
    pub async fn rotate(&self, store: &Store) -> Result<RotateReport, VaultError> {
        let mut report = RotateReport::default();
        let mut scopes = vec![Scope::Host];
        scopes.extend(every_tenant(store).await?.into_iter().map(Scope::Tenant));
        for scope in scopes {
            let mut tx = store.begin(scope.clone(), Mode::Read).await?;
            let mut holders: Vec<(bool, String)> = tx
                .data_key_holders()
                .await?
                .into_iter()
                .map(|id| (false, id))
                .collect();
            if scope.tenant().is_some() {
                let sessions = tx.onboarding_key_holders().await?;
                holders.extend(sessions.into_iter().map(|id| (true, id)));
            }
            tx.commit().await?;
            for (onboarding, id) in holders {
                let mut tx = store.begin(scope.clone(), Mode::Write).await?;
                let (holder, owner, holder_name) = match scope.tenant() {
                    Some(t) if onboarding => (
                        Holder::Onboarding(&id),
                        format!("tenant:{}", t.id()),
                        format!("onboarding:{id}"),
                    ),
                    Some(t) => (
                        Holder::Connection(&id),
                        format!("tenant:{}", t.id()),
                        format!("connection:{id}"),
                    ),
                    None => {
                        let Some(e) = tx.endpoint(&id).await? else {
                            continue;
                        };
                        (Holder::Endpoint(&id), e.owner, format!("endpoint:{id}"))
                    }
                };
                let Some(old) = tx.data_key(holder).await? else {
                    continue; // shredded meanwhile
                };
                if old.key_version == i64::from(self.keys.current_version()) {
                    report.current += 1;
                    continue;
                }
                let key = self
                    .keys
                    .open_data_key(&owner, &holder_name, &from_row(&old)?)?;
                let new = to_row(self.keys.seal_data_key(&owner, &holder_name, &key));
                if tx.reseal_data_key(holder, &old, &new).await? {
                    report.resealed += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(report)
    }
}

/// A secret the host sealed for itself (Meta's two-step PIN, an onboarding session's
/// per-number PIN): never part of a plugin call.
fn host_only(field: &str) -> bool {
    field.contains(':') || super::HOST_ONLY_SECRETS.contains(&field)
}
