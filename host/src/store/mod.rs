//! The store: the database behind the host. SQLite (embedded, WAL mode) for now.
//!
//! Owns the connection pool and migrations; other modules read and write through its methods,
//! never through raw SQL of their own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::runtime::Manifest;

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// Where a loaded plugin came from.
#[derive(Debug, Clone, Copy)]
pub enum PluginSource {
    /// Built into the binary.
    Bundled,
    /// Loaded from `SWITCHYARD_PLUGIN_DIR`.
    Directory,
}

impl Store {
    /// Open (creating it if needed) the database at `url`, in WAL mode.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Survives a crash of the process; FULL also survives power loss (see docs/operating.md).
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Store { pool })
    }

    /// Apply pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("../migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Record that a plugin was loaded (content-addressed by sha256).
    pub async fn record_plugin(
        &self,
        manifest: &Manifest,
        sha256: &str,
        size: usize,
        source: PluginSource,
    ) -> anyhow::Result<()> {
        let source = match source {
            PluginSource::Bundled => "bundled",
            PluginSource::Directory => "directory",
        };
        sqlx::query(
            "INSERT INTO plugins (sha256, name, version, world, interface, manifest, size_bytes, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (sha256) DO UPDATE SET last_loaded_at = CURRENT_TIMESTAMP",
        )
        .bind(sha256)
        .bind(&manifest.name)
        .bind(&manifest.version)
        .bind(manifest.world.as_str())
        .bind(&manifest.interface)
        .bind(serde_json::to_string(manifest)?)
        .bind(size as i64)
        .bind(source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Names and versions of the plugins ever loaded, newest load first.
    pub async fn plugin_history(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT name, version, sha256 FROM plugins ORDER BY last_loaded_at DESC, name",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
