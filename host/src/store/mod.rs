//! The store: the database behind the host, SQLite (embedded, WAL mode) or PostgreSQL.
//!
//! Owns the connection pool, migrations and every SQL statement; other modules read and write
//! through its methods, never through SQL of their own. One query text serves both backends
//! (sqlx's `Any` driver, `$N` placeholders, integer flags and millisecond times).
//!
//! Tenant-owned rows are reached only through a [`Tx`] opened with a [`Scope`] (see
//! [`crate::tenancy`]): on PostgreSQL the scope becomes transaction-local settings that row-level
//! security reads; on both backends every tenant query also names the scope's tenant.

mod access;
mod admin;
mod desk;
mod erasure;
mod events;
mod grouped;
mod inbox;
mod ingress;
mod inline;
mod insights;
mod ledger;
mod lifecycle;
mod onboarding;
mod outbox;
mod people;
mod plans;
mod plugins;
mod postgres;
mod tenant;
mod vault;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor as _, Transaction};

pub use access::{
    AccessRequestRecord, CODES_PER_HOUR, CONTACTS_PER_ADDRESS, Issued, LoginCode, MAX_TRIES,
    RESEND_MS, SharedEmail,
};
pub use admin::{
    ApiKeyRecord, EndpointRecord, KeyInfo, KeyOwner, NewRoute, PartnerRecord, ReportRow,
    TenantRecord,
};
pub use desk::{DeskTarget, LinkedMedia};
pub use erasure::Erased;
pub use events::{Audience, EVENTS_CHANNEL, EventRecord, NotificationRecord};
pub use grouped::{UnitFuture, next_group};
pub use inbox::{
    ContactRecord, ConversationFilter, ConversationRecord, HistoryRow, MessageContext,
    MessagePricing, MessageRecord, NewMessage, Page, PricingVolume, ReferralRecord, TENANT_TABLES,
};
pub use ingress::{Job, NewReceipt, RECEIPT_EXPIRY_BATCH, REDELIVERY_WINDOW_MS, Receipt};
pub use insights::{InsightRecord, InsightSubject, NewInsight};
pub use ledger::LedgerRow;
pub use lifecycle::{MediaRecord, TemplateRecord};
pub use onboarding::{OnboardingRecord, OnboardingUpdate};
pub use outbox::{Attempt, Slot};
pub use people::{
    InvitationRecord, Member, MembershipRow, Org, ResetRecord, SessionRecord, UserRecord,
};
pub use plans::PlanRecord;
pub use plugins::{FailurePolicy, NewUpload, PinRow, PluginRow, Promotion, PublisherKey};
pub use postgres::RoleCheck;
pub use tenant::{ConnectionRecord, NewConnection, PolicyRecord};
pub use vault::{Holder, SealedKeyRow, SealedSecretRow};

use crate::runtime::Manifest;
use crate::tenancy::Scope;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A unique constraint refused the write (the constraint's name).
    #[error("conflict on {0}")]
    Conflict(String),
    /// The row does not exist (or is not visible in this scope).
    #[error("not found")]
    NotFound,
    /// The transaction's scope may not do this.
    #[error("not allowed in this scope")]
    WrongScope,
    /// A write transaction was begun by a task that already holds one (a bug: on SQLite it
    /// would wait for itself).
    #[error("a write transaction is already open in this task")]
    NestedWrite,
    /// A grouped write's transaction failed or never ran (the reason).
    #[error("grouped write failed: {0}")]
    Grouped(String),
}

impl StoreError {
    /// Turn a unique-violation into [`StoreError::Conflict`]; keep anything else.
    fn from_write(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            let name = db
                .constraint()
                .map(str::to_string)
                .unwrap_or_else(|| db.message().to_string());
            return StoreError::Conflict(name);
        }
        StoreError::Database(e)
    }
}

/// Store result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite: the one connection every write transaction uses, driven on the writer's thread
    /// ([`inline`]; a pooled one for an in-memory database). Only it writes, so its page cache
    /// stays valid between transactions (a connection that sees another's commit in the WAL
    /// drops its whole cache and reads every page again).
    writer: Option<Writer>,
    backend: Backend,
    /// SQLite has one writer at a time: writers of this process queue here, first come first
    /// served, instead of in SQLite's busy handler, which sleeps up to 100 ms between retries.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// The tasks holding a write transaction now: a second one in the same task is refused at
    /// once, on both backends, instead of waiting on the gate it holds itself.
    writers: Writers,
    /// PostgreSQL: the URL, for a `LISTEN` connection of its own (it may hold a password).
    listen_url: Option<Arc<ListenUrl>>,
    /// The queue of grouped writes ([`Store::grouped`]); `None` in the group writer's own copy.
    groups: Option<grouped::Groups>,
    /// SQLite (a database file): read transactions on connections driven on the caller's
    /// thread ([`inline`]).
    readers: Option<Arc<inline::Readers>>,
    /// Tenants whose events just committed, for this process's event streams.
    events: tokio::sync::broadcast::Sender<Arc<str>>,
}

/// A database URL kept for `LISTEN`; its Debug output shows nothing of it.
struct ListenUrl(String);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenUrl([redacted])")
    }
}

/// The PostgreSQL channel every plugin catalog change is announced on.
pub const PLUGIN_CHANNEL: &str = "switchyard_plugins";

/// The tokio tasks that hold an open write transaction.
#[derive(Debug, Clone, Default)]
struct Writers(Arc<std::sync::Mutex<std::collections::HashSet<tokio::task::Id>>>);

/// A task's claim on being a writer; released when the transaction ends.
struct WriterClaim {
    writers: Writers,
    task: tokio::task::Id,
}

impl Writers {
    /// Claim the current task as a writer; `NestedWrite` when it already is one. Outside a
    /// tokio task (a plain `block_on`) there is nothing to track.
    fn claim(&self) -> Result<Option<WriterClaim>> {
        let Some(task) = tokio::task::try_id() else {
            return Ok(None);
        };
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(task) {
            return Err(StoreError::NestedWrite);
        }
        Ok(Some(WriterClaim {
            writers: self.clone(),
            task,
        }))
    }

    /// Whether the current task holds a write transaction.
    fn held_here(&self) -> bool {
        tokio::task::try_id().is_some_and(|task| {
            let set = self.0.lock().unwrap_or_else(|p| p.into_inner());
            set.contains(&task)
        })
    }
}

impl Drop for WriterClaim {
    fn drop(&mut self) {
        let mut set = self.writers.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.task);
    }
}

/// SQLite, the writer connection: a larger page cache (16 MiB), kept warm because only it writes,
/// and savepoints journalled in memory (a unit per savepoint, never spilled to a temp file).
const SQLITE_WRITER_PRAGMAS: &str = "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;";

/// Past this size the writer truncates SQLite's WAL after a commit (SQLite's own checkpoint
/// starts at 1,000 pages, about 4 MiB, and is passive).
const WAL_BOUND_BYTES: u64 = 8 << 20;

/// SQLite, the inline readers: pages read through a memory map. Each commit of the writer
/// empties a reader's page cache, so its next transaction reads its pages again: mapped, that
/// is a pointer, not a copy through a system call.
const SQLITE_READER_PRAGMAS: &str = "PRAGMA mmap_size = 268435456;";

/// How long a reader waits for a connection before giving up (as the pool's acquire).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a writer waits for SQLite's write lock before giving up.
const WRITE_GATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a loaded plugin came from.
#[derive(Debug, Clone, Copy)]
pub enum PluginSource {
    /// Built into the binary.
    Bundled,
    /// Loaded from `SWITCHYARD_PLUGIN_DIR`.
    Directory,
}

/// What a committed SQLite write survives (DECISIONS A8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// A crash of the process (`kill -9`): WAL with `synchronous=NORMAL`.
    #[default]
    Crash,
    /// Also a power loss or OS crash: `synchronous=FULL` (an fsync per commit).
    PowerLoss,
}

/// Whether a transaction writes (on SQLite a writer takes the write lock up front).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

/// A transaction with its scope; commits with [`Tx::commit`], rolls back when dropped.
pub struct Tx {
    inner: Conn,
    scope: Scope,
    backend: Backend,
    /// SQLite writers: this process's write turn, held until commit or rollback.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Writers: this task's claim, so it cannot begin a second write while this one is open.
    _writer: Option<WriterClaim>,
    /// The tenants this transaction emitted events for, told on commit.
    emitted: Vec<Arc<str>>,
    /// Where a commit tells this process's event streams.
    events: tokio::sync::broadcast::Sender<Arc<str>>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").field("scope", &self.scope).finish()
    }
}

/// SQLite's one writing connection.
#[derive(Debug, Clone)]
enum Writer {
    /// A database file's, driven on the calling thread.
    Inline(Arc<inline::Inline>),
    /// An in-memory database's, through sqlx's driver (a second connection would see another
    /// database).
    Pooled(AnyPool),
}

/// The connection a transaction runs on: a pooled one (through sqlx's driver), or the group
/// writer's own SQLite connection, driven on its thread ([`inline`]).
#[derive(Debug)]
enum Conn {
    Pooled(Transaction<'static, Any>),
    Inline(inline::InlineTx),
}

impl<'c> sqlx::Executor<'c> for &'c mut Conn {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::stream::BoxStream<
        'e,
        std::result::Result<
            sqlx::Either<sqlx::any::AnyQueryResult, sqlx::any::AnyRow>,
            sqlx::Error,
        >,
    >
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, Any>,
    {
        match self {
            Conn::Pooled(tx) => (&mut **tx).fetch_many(query),
            Conn::Inline(tx) => tx.fetch_many(query),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::future::BoxFuture<
        'e,
        std::result::Result<Option<sqlx::any::AnyRow>, sqlx::Error>,
    >
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, Any>,
    {
        match self {
            Conn::Pooled(tx) => (&mut **tx).fetch_optional(query),
            Conn::Inline(tx) => tx.fetch_optional(query),
        }
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [sqlx::any::AnyTypeInfo],
    ) -> futures_util::future::BoxFuture<
        'e,
        std::result::Result<sqlx::any::AnyStatement, sqlx::Error>,
    >
    where
        'c: 'e,
    {
        match self {
            Conn::Pooled(tx) => (&mut **tx).prepare_with(sql, parameters),
            Conn::Inline(tx) => tx.prepare_with(sql, parameters),
        }
    }

    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> futures_util::future::BoxFuture<'e, std::result::Result<sqlx::Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Conn::Pooled(tx) => (&mut **tx).describe(sql),
            Conn::Inline(tx) => tx.describe(sql),
        }
    }
}

/// The backend a database URL names, if any.
pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Connect to `url` (`sqlite://…`, created if missing, WAL mode; or `postgres://…`).
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        Self::open_with(url, 8).await
    }

    /// Connect with at most `max_connections` pooled connections.
    pub async fn open_with(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        Self::open_durable(url, max_connections, Durability::Crash).await
    }

    /// Connect with the given SQLite durability (ignored on PostgreSQL).
    pub async fn open_durable(
        url: &str,
        max_connections: u32,
        durability: Durability,
    ) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let pragmas = match durability {
            Durability::Crash => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;"
            }
            Durability::PowerLoss => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;"
            }
        };
        let Some(backend) = backend_of(url) else {
            anyhow::bail!("unsupported database URL scheme (expected sqlite:// or postgres://)");
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool_of = |max_connections: u32, extra: &'static str| {
            AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL + NORMAL survives a crash of the process (FULL: also power
                            // loss; docs/operating.md). secure_delete zeroes freed content, so
                            // shredded keys do not linger in free pages.
                            conn.execute(pragmas).await?;
                            conn.execute(extra).await?;
                        }
                        Ok(())
                    })
                })
        };
        let pool = pool_of(max_connections, "")
            .connect_with(options.clone())
            .await?;
        // The writer's own connection and the readers' (a database file only: a second
        // connection to an in-memory database would see another database).
        let file = match backend {
            Backend::Sqlite if !(url.contains(":memory:") || url.contains("mode=memory")) => Some(
                sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                    .get_filename()
                    .to_path_buf(),
            ),
            _ => None,
        };
        let writer = match (backend, &file) {
            (Backend::Sqlite, Some(file)) => Some(Writer::Inline(Arc::new(
                inline::Inline::open(file, &format!("{pragmas} {SQLITE_WRITER_PRAGMAS}"))
                    .map_err(|e| anyhow::anyhow!("opening the writer's connection: {e}"))?
                    .with_wal_bound(file, WAL_BOUND_BYTES),
            ))),
            (Backend::Sqlite, None) => Some(Writer::Pooled(
                pool_of(1, SQLITE_WRITER_PRAGMAS)
                    .connect_with(options)
                    .await?,
            )),
            (Backend::Postgres, _) => None,
        };
        let readers = file.map(|file| {
            Arc::new(inline::Readers::new(
                file,
                format!("{pragmas} {SQLITE_READER_PRAGMAS}"),
                max_connections as usize,
            ))
        });
        let store = Store {
            pool,
            writer,
            backend,
            write_gate: Arc::default(),
            writers: Writers::default(),
            listen_url: (backend == Backend::Postgres)
                .then(|| Arc::new(ListenUrl(url.to_string()))),
            groups: None,
            readers,
            events: tokio::sync::broadcast::channel(1024).0,
        };
        let groups = grouped::start(store.clone());
        Ok(Store { groups, ..store })
    }

    /// Tenants whose events commit from now on (this process's, and on PostgreSQL every
    /// replica's once [`Store::relay_events`] runs).
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// Tell this process's event streams that `tenant` has new events (another replica's
    /// commit, heard through `LISTEN`).
    pub fn relay_events(&self, tenant: &str) {
        let _ = self.events.send(tenant.into());
    }

    /// A connection listening on `channel` (PostgreSQL; `None` on SQLite, where hosts poll).
    pub async fn listen(&self, channel: &str) -> Result<Option<sqlx::postgres::PgListener>> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(&url.0).await?;
        listener.listen(channel).await?;
        Ok(Some(listener))
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Apply pending migrations (run as the tables' owner on PostgreSQL).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("../migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("../migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// `(applied, known)` migrations: those recorded as applied in the database and those this
    /// build carries.
    pub async fn migrations(&self) -> anyhow::Result<(usize, usize)> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
        };
        let known = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .count();
        // No table yet: nothing applied.
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .unwrap_or(0);
        Ok((usize::try_from(applied).unwrap_or(0), known))
    }

    /// SQLite's `synchronous` setting on a pooled connection (1 NORMAL, 2 FULL); `None` on
    /// PostgreSQL.
    pub async fn sqlite_synchronous(&self) -> Option<i64> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&self.pool)
            .await
            .ok()
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Close the pool (waits for connections to be returned).
    pub async fn close(&self) {
        if let Some(Writer::Pooled(writer)) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }

    /// Begin a transaction in `scope`.
    pub async fn begin(&self, scope: Scope, mode: Mode) -> Result<Tx> {
        let started = std::time::Instant::now();
        let tx = self.begin_waiting(scope, mode).await;
        crate::metrics::database_wait(mode == Mode::Write, started.elapsed());
        tx
    }

    /// [`Store::begin`], without recording the wait.
    async fn begin_waiting(&self, scope: Scope, mode: Mode) -> Result<Tx> {
        let begin = match (self.backend, mode) {
            (Backend::Sqlite, Mode::Write) => "BEGIN IMMEDIATE",
            (Backend::Sqlite, Mode::Read) => "BEGIN",
            (Backend::Postgres, Mode::Write) => "BEGIN",
            (Backend::Postgres, Mode::Read) => "BEGIN READ ONLY",
        };
        if let (Some(readers), Mode::Read) = (&self.readers, mode) {
            return Ok(Tx {
                inner: Conn::Inline(readers.begin(READ_TIMEOUT).await?),
                scope,
                backend: self.backend,
                _turn: None,
                _writer: None,
                emitted: Vec::new(),
                events: self.events.clone(),
            });
        }
        let (writer, turn) = self.write_turn(mode).await?;
        let inner = match (&self.writer, mode) {
            (Some(Writer::Inline(db)), Mode::Write) => {
                Conn::Inline(inline::InlineTx::begin(db.clone())?)
            }
            (Some(Writer::Pooled(pool)), Mode::Write) => {
                Conn::Pooled(pool.begin_with(begin).await?)
            }
            _ => Conn::Pooled(self.pool.begin_with(begin).await?),
        };
        let mut tx = Tx {
            inner,
            scope: Scope::Host,
            backend: self.backend,
            _turn: turn,
            _writer: writer,
            emitted: Vec::new(),
            events: self.events.clone(),
        };
        tx.set_scope(scope).await?;
        Ok(tx)
    }

    /// A write's claim on its task and, on SQLite, this process's write turn (nothing for reads).
    async fn write_turn(
        &self,
        mode: Mode,
    ) -> Result<(
        Option<WriterClaim>,
        Option<tokio::sync::OwnedMutexGuard<()>>,
    )> {
        // Before the gate: a task that already writes must fail now, not wait for itself.
        let writer = match mode {
            Mode::Write => self.writers.claim()?,
            Mode::Read => None,
        };
        let turn = if (self.backend, mode) == (Backend::Sqlite, Mode::Write) {
            let gate = self.write_gate.clone().lock_owned();
            Some(
                tokio::time::timeout(WRITE_GATE_TIMEOUT, gate)
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?,
            )
        } else {
            None
        };
        Ok((writer, turn))
    }

    /// Record that a plugin was loaded (content-addressed by sha256).
    pub async fn record_plugin(
        &self,
        manifest: &Manifest,
        sha256: &str,
        size: usize,
        source: PluginSource,
    ) -> anyhow::Result<()> {
        let (source, publisher) = match source {
            PluginSource::Bundled => ("bundled", "switchyard"),
            PluginSource::Directory => ("directory", "operator"),
        };
        sqlx::query(
            "INSERT INTO plugins (sha256, name, version, world, interface, manifest, size_bytes, source,
                                  publisher)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
        .bind(publisher)
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

impl Tx {
    /// Commit.
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            Conn::Pooled(tx) => tx.commit().await?,
            Conn::Inline(tx) => tx.commit()?,
        }
        for tenant in self.emitted {
            // No stream listening is no one to tell.
            let _ = self.events.send(tenant);
        }
        Ok(())
    }

    /// The scope this transaction runs in.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Run what follows in `scope`.
    async fn set_scope(&mut self, scope: Scope) -> Result<()> {
        if self.backend == Backend::Postgres {
            // Transaction-local (`true`): gone at COMMIT/ROLLBACK, so a pooled connection never
            // carries one request's scope into the next. All three are set every time.
            let (tenant, partner, operator) = scope.settings();
            sqlx::query(
                "SELECT set_config('app.tenant_id', $1, true), \
                        set_config('app.partner_id', $2, true), \
                        set_config('app.operator', $3, true)",
            )
            .bind(tenant)
            .bind(partner)
            .bind(operator)
            .execute(&mut self.inner)
            .await?;
        }
        self.scope = scope;
        Ok(())
    }

    /// Begin one unit of a grouped write in its own savepoint and scope, ending the previous
    /// unit's savepoint first (`Some(keep)`: keep or undo its writes).
    async fn next_unit(&mut self, previous: Option<bool>, scope: Scope) -> Result<()> {
        if let Some(keep) = previous {
            self.end_units(keep).await?;
        }
        // Each a prepared statement of its own (kept prepared on the group writer's connection).
        sqlx::query("SAVEPOINT unit")
            .execute(&mut self.inner)
            .await?;
        self.set_scope(scope).await
    }

    /// End the last unit's savepoint, keeping or undoing its writes.
    async fn end_units(&mut self, keep: bool) -> Result<()> {
        if !keep {
            sqlx::query("ROLLBACK TO SAVEPOINT unit")
                .execute(&mut self.inner)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT unit")
            .execute(&mut self.inner)
            .await?;
        Ok(())
    }

    /// The tenant id of a tenant scope, or `WrongScope`.
    fn tenant_id(&self) -> Result<String> {
        self.scope
            .tenant()
            .map(|t| t.id().to_string())
            .ok_or(StoreError::WrongScope)
    }
}

impl Store {
    /// SQLite: copy the WAL into the database file and truncate it, so overwritten pages do not
    /// linger in the log. Best effort (readers may hold it); nothing on PostgreSQL.
    pub async fn checkpoint(&self) {
        if self.backend == Backend::Sqlite
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that writes cannot begin a second write: it is refused at once instead of
    /// waiting on the write gate it holds itself; another task still just waits its turn.
    #[tokio::test]
    async fn a_nested_write_is_refused_not_deadlocked() {
        // Writers are tracked per tokio task: run the body as one, as workers and handlers are.
        tokio::spawn(nested_write_body()).await.expect("body");
    }

    async fn nested_write_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        let outer = store.begin(Scope::Host, Mode::Write).await.expect("outer");
        let nested = store.begin(Scope::Host, Mode::Write).await;
        assert!(matches!(nested, Err(StoreError::NestedWrite)), "{nested:?}");
        // Reads are fine inside a write.
        store
            .begin(Scope::Host, Mode::Read)
            .await
            .expect("read")
            .commit()
            .await
            .expect("commit");
        // Another task waits for the gate and gets it once the first write ends.
        let other = tokio::spawn({
            let store = store.clone();
            async move { store.begin(Scope::Host, Mode::Write).await.map(drop) }
        });
        outer.commit().await.expect("commit");
        other.await.expect("join").expect("the other task's write");
        // The claim ended with the transaction: this task may write again.
        let again = store.begin(Scope::Host, Mode::Write).await.expect("again");
        drop(again);
        store
            .begin(Scope::Host, Mode::Write)
            .await
            .expect("after a rollback")
            .commit()
            .await
            .expect("commit");
    }
}
