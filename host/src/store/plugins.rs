//! The plugin catalog's rows (host scope): every version known (bundled, directory, uploaded
//! with its bytes), each name's promotion, the pins of endpoints and tenants, the generation
//! counter hosts poll, and partners' namespaces.

use sqlx::FromRow;

use super::{Result, StoreError, Tx, now_ms};

/// One plugin version as the catalog lists it (never its bytes).
#[derive(Debug, Clone, FromRow)]
pub struct PluginRow {
    /// SHA-256 of the packed component (hex).
    pub sha256: String,
    /// Plugin name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `connector` or `reply-policy`.
    pub world: String,
    /// Interface package it was built against.
    pub interface: String,
    /// The manifest (JSON).
    pub manifest: String,
    /// Size of the packed component.
    pub size_bytes: i64,
    /// `bundled`, `directory` or `upload`.
    pub source: String,
    /// `operator`, `switchyard` (bundled) or `partner:<id>`.
    pub publisher: String,
    /// Who uploaded it (ledger-style actor name).
    pub uploaded_by: Option<String>,
    /// When it was uploaded (Unix ms).
    pub uploaded_at: Option<i64>,
    /// `unsigned`, or `key:<id>` of the publisher key whose signature verified.
    pub signature: String,
}

/// A publisher key the operator registered.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct PublisherKey {
    /// Key id (16 hex digits of the key's SHA-256).
    pub id: String,
    /// `operator` or `partner:<id>`.
    pub publisher: String,
    /// `ed25519:<base64>`.
    pub public_key: String,
    /// A label for people.
    pub label: Option<String>,
    /// When registered (Unix ms).
    pub created_at: i64,
    /// When revoked (Unix ms): its signatures are no longer trusted.
    pub revoked_at: Option<i64>,
}

/// An upload to store.
pub struct NewUpload<'a> {
    /// SHA-256 (hex).
    pub sha256: &'a str,
    /// Name.
    pub name: &'a str,
    /// Version.
    pub version: &'a str,
    /// World.
    pub world: &'a str,
    /// Interface package.
    pub interface: &'a str,
    /// Manifest JSON.
    pub manifest: &'a str,
    /// Publisher.
    pub publisher: &'a str,
    /// Uploader.
    pub uploaded_by: &'a str,
    /// The packed component.
    pub component: &'a [u8],
    /// `unsigned` or `key:<id>`.
    pub signature: &'a str,
}

/// A name's promoted version.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Promotion {
    /// Plugin name.
    pub name: String,
    /// The version calls run when nothing pins one.
    pub version: String,
    /// The version promoted before it.
    pub previous: Option<String>,
    /// Why (`promoted`, `rolled back: …`, `first version`).
    pub reason: String,
    /// Who.
    pub actor: String,
    /// When (Unix ms).
    pub at: i64,
}

/// A plugin name's failure policy: when its promoted version is rolled back by itself.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FailurePolicy {
    /// Plugin name.
    pub name: String,
    /// Roll back automatically (1) or only by hand (0).
    pub auto_rollback: i64,
    /// Faults (traps, CPU deadline, memory cap) above this percentage of calls trigger it (1-100).
    pub max_fault_pct: i64,
    /// ... once at least this many calls were made in the window (1-100,000).
    pub min_calls: i64,
    /// The sliding window, in seconds (5-3,600).
    pub window_secs: i64,
}

impl FailurePolicy {
    /// The policy of a name that has none of its own.
    pub fn default_for(name: &str) -> FailurePolicy {
        FailurePolicy {
            name: name.to_string(),
            auto_rollback: 1,
            max_fault_pct: 50,
            min_calls: 20,
            window_secs: 60,
        }
    }
}

/// One pin.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct PinRow {
    /// `endpoint` or `tenant`.
    pub kind: String,
    /// The endpoint or tenant id.
    pub target: String,
    /// Plugin name.
    pub plugin: String,
    /// Pinned version.
    pub version: String,
}

const PLUGIN_COLUMNS: &str = "sha256, name, version, world, interface, manifest, size_bytes, source, \
     publisher, uploaded_by, uploaded_at, signature";

impl Tx {
    /// Every version the catalog knows, by name then version.
    pub async fn plugin_rows(&mut self) -> Result<Vec<PluginRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY name, version, sha256"
        )))
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// The bytes of an uploaded version.
    pub async fn plugin_component(&mut self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT component FROM plugins WHERE sha256 = $1 AND component IS NOT NULL",
        )
        .bind(sha256)
        .fetch_optional(&mut self.inner)
        .await?)
    }

    /// Store an uploaded version; [`StoreError::Conflict`] when the name and version exist
    /// with other bytes.
    pub async fn insert_upload(&mut self, u: &NewUpload<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugins (sha256, name, version, world, interface, manifest, size_bytes,
                                  source, publisher, uploaded_by, uploaded_at, component, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'upload', $8, $9, $10, $11, $12)",
        )
        .bind(u.sha256)
        .bind(u.name)
        .bind(u.version)
        .bind(u.world)
        .bind(u.interface)
        .bind(u.manifest)
        .bind(i64::try_from(u.component.len()).unwrap_or(i64::MAX))
        .bind(u.publisher)
        .bind(u.uploaded_by)
        .bind(now_ms())
        .bind(u.component)
        .bind(u.signature)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Delete an uploaded version and its egress grants (new bytes under the same version
    /// start with none); whether it existed.
    pub async fn delete_upload(&mut self, name: &str, version: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM plugins WHERE name = $1 AND version = $2 AND source = 'upload'",
        )
        .bind(name)
        .bind(version)
        .execute(&mut self.inner)
        .await?;
        sqlx::query("DELETE FROM plugin_grants WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut self.inner)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Record the signature judged at a later upload of the same bytes.
    pub async fn set_signature(&mut self, sha256: &str, signature: &str) -> Result<()> {
        sqlx::query("UPDATE plugins SET signature = $2 WHERE sha256 = $1")
            .bind(sha256)
            .bind(signature)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// How many uploaded versions `publisher` has stored.
    pub async fn uploads_by(&mut self, publisher: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM plugins WHERE publisher = $1 AND source = 'upload'",
        )
        .bind(publisher)
        .fetch_one(&mut self.inner)
        .await?)
    }

    /// Every name's promotion.
    pub async fn promotions(&mut self) -> Result<Vec<Promotion>> {
        Ok(sqlx::query_as(
            "SELECT name, version, previous, reason, actor, at FROM plugin_promotions ORDER BY name",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Promote `version` of `name` (the one promoted before becomes `previous`).
    pub async fn promote(
        &mut self,
        name: &str,
        version: &str,
        previous: Option<&str>,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_promotions (name, version, previous, reason, actor, at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                previous = excluded.previous, reason = excluded.reason, actor = excluded.actor,
                at = excluded.at",
        )
        .bind(name)
        .bind(version)
        .bind(previous)
        .bind(reason)
        .bind(actor)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Forget a name's promotion (its last uploaded version was deleted).
    pub async fn drop_promotion(&mut self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM plugin_promotions WHERE name = $1")
            .bind(name)
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// Every pin.
    pub async fn pins(&mut self) -> Result<Vec<PinRow>> {
        Ok(sqlx::query_as(
            "SELECT kind, target, plugin, version FROM plugin_pins ORDER BY kind, target, plugin",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Pin `kind`/`target`'s `plugin` at `version`, or (`None`) follow the promoted version.
    pub async fn set_pin(
        &mut self,
        kind: &str,
        target: &str,
        plugin: &str,
        version: Option<&str>,
    ) -> Result<()> {
        match version {
            Some(v) => sqlx::query(
                "INSERT INTO plugin_pins (kind, target, plugin, version, at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kind, target, plugin) DO UPDATE SET version = excluded.version,
                    at = excluded.at",
            )
            .bind(kind)
            .bind(target)
            .bind(plugin)
            .bind(v)
            .bind(now_ms()),
            None => sqlx::query(
                "DELETE FROM plugin_pins WHERE kind = $1 AND target = $2 AND plugin = $3",
            )
            .bind(kind)
            .bind(target)
            .bind(plugin),
        }
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// How many pins hold `name` at `version`.
    pub async fn pins_on(&mut self, name: &str, version: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM plugin_pins WHERE plugin = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_one(&mut self.inner)
        .await?)
    }

    /// The catalog's generation.
    pub async fn plugin_generation(&mut self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT generation FROM plugin_generation WHERE id = 1")
                .fetch_one(&mut self.inner)
                .await?,
        )
    }

    /// Mark the catalog changed: every host reloads what differs (PostgreSQL also announces it
    /// at commit, so hosts need not wait for their next poll).
    pub async fn bump_plugin_generation(&mut self) -> Result<()> {
        sqlx::query("UPDATE plugin_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(super::PLUGIN_CHANNEL)
                .execute(&mut self.inner)
                .await?;
        }
        Ok(())
    }

    /// Every name's own failure policy.
    pub async fn failure_policies(&mut self) -> Result<Vec<FailurePolicy>> {
        Ok(sqlx::query_as(
            "SELECT name, auto_rollback, max_fault_pct, min_calls, window_secs
               FROM plugin_failure_policies ORDER BY name",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Set a name's failure policy.
    pub async fn set_failure_policy(&mut self, p: &FailurePolicy) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_failure_policies (name, auto_rollback, max_fault_pct, min_calls, window_secs)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET auto_rollback = excluded.auto_rollback,
                max_fault_pct = excluded.max_fault_pct, min_calls = excluded.min_calls,
                window_secs = excluded.window_secs",
        )
        .bind(&p.name)
        .bind(p.auto_rollback)
        .bind(p.max_fault_pct)
        .bind(p.min_calls)
        .bind(p.window_secs)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Promote `to` only while `from` is promoted (an automatic roll back, made by whichever
    /// host sees the faults first); whether it happened.
    pub async fn promote_if(
        &mut self,
        name: &str,
        from: &str,
        to: &str,
        reason: &str,
        actor: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE plugin_promotions SET version = $3, previous = $2, reason = $4, actor = $5, at = $6
              WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(from)
        .bind(to)
        .bind(reason)
        .bind(actor)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(done.rows_affected() > 0)
    }

    /// Every egress grant: `(name, version, host)`.
    pub async fn plugin_grants(&mut self) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT name, version, host FROM plugin_grants ORDER BY name, version, host",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Replace the egress hosts granted to `name` `version`.
    pub async fn set_grants(
        &mut self,
        name: &str,
        version: &str,
        hosts: &[String],
        by: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM plugin_grants WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        for host in hosts {
            sqlx::query(
                "INSERT INTO plugin_grants (name, version, host, granted_by, granted_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(version)
            .bind(host)
            .bind(by)
            .bind(now_ms())
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        }
        Ok(())
    }

    /// Every publisher key, revoked ones included.
    pub async fn publisher_keys(&mut self) -> Result<Vec<PublisherKey>> {
        Ok(sqlx::query_as(
            "SELECT id, publisher, public_key, label, created_at, revoked_at
               FROM publisher_keys ORDER BY created_at, id",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Register a publisher key; [`StoreError::Conflict`] when the key is registered already.
    pub async fn insert_publisher_key(&mut self, k: &PublisherKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO publisher_keys (id, publisher, public_key, label, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.id)
        .bind(&k.publisher)
        .bind(&k.public_key)
        .bind(&k.label)
        .bind(k.created_at)
        .execute(&mut self.inner)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Revoke a publisher key; whether it was active.
    pub async fn revoke_publisher_key(&mut self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE publisher_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&mut self.inner)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A partner's plugin namespace, if it has one (`Ok(None)` also when no such partner).
    pub async fn partner_namespace(&mut self, partner_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, Option<String>>("SELECT namespace FROM partners WHERE id = $1")
                .bind(partner_id)
                .fetch_optional(&mut self.inner)
                .await?
                .flatten(),
        )
    }

    /// Every partner's namespace: `(partner id, namespace)`.
    pub async fn partner_namespaces(&mut self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, namespace FROM partners WHERE namespace IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut self.inner)
        .await?)
    }

    /// Give a partner its namespace; [`StoreError::Conflict`] when another partner has it.
    pub async fn set_partner_namespace(&mut self, partner_id: &str, namespace: &str) -> Result<()> {
        let done = sqlx::query("UPDATE partners SET namespace = $2 WHERE id = $1")
            .bind(partner_id)
            .bind(namespace)
            .execute(&mut self.inner)
            .await
            .map_err(StoreError::from_write)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
