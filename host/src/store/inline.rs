//! SQLite driven on the calling thread: the group writer's own connection, whose statements run
//! where they are awaited instead of being handed to a driver thread and back (two thread
//! wake-ups per statement, the writer's whole cost under load). It speaks sqlx's `Any` types,
//! so the store's one copy of each query runs on it unchanged.
//!
//! The group writer drives one on its own thread; readers take one from [`Readers`] and run
//! their statements on the calling thread (a read in WAL mode never waits for the writer).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt as _, StreamExt as _};
use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo, AnyTypeInfoKind, AnyValue};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::{Any, Describe, Either, Execute, Executor, SqlStr};
use sqlx_core::any::{AnyColumn, AnyValueKind};
use sqlx_core::ext::ustr::UStr;

/// Statements kept prepared (the group writer runs a few dozen distinct ones).
const STATEMENT_CACHE: usize = 256;

/// Column names of a statement, as sqlx's rows carry them.
type Names = Arc<sqlx_core::HashMap<UStr, usize>>;

/// A SQLite connection the calling thread drives itself.
pub(super) struct Inline {
    state: Mutex<State>,
    /// The writer's: its WAL file, and the size past which a commit copies the log back and
    /// truncates it, waiting for readers to leave it (SQLite's own checkpoints after commits
    /// are passive: under steady reads they may never catch up).
    wal_bound: Option<(std::path::PathBuf, u64)>,
}

/// The connection and what is kept per statement.
struct State {
    conn: rusqlite::Connection,
    /// Each statement's column names and columns, built once.
    columns: HashMap<String, (Names, Vec<AnyColumn>)>,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inline")
    }
}

impl Inline {
    /// Open the database file at `path` (already created) and apply `pragmas`.
    pub(super) fn open(path: &std::path::Path, pragmas: &str) -> rusqlite::Result<Inline> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.execute_batch(pragmas)?;
        Ok(Inline {
            state: Mutex::new(State {
                conn,
                columns: HashMap::new(),
            }),
            wal_bound: None,
        })
    }

    /// Bound this (writing) connection's WAL at `bytes` (see [`Inline::wal_bound`]).
    pub(super) fn with_wal_bound(mut self, path: &std::path::Path, bytes: u64) -> Inline {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        self.wal_bound = Some((wal.into(), bytes));
        self
    }

    /// After a commit: past the bound, checkpoint and truncate the WAL (best effort; the busy
    /// timeout bounds the wait for readers).
    fn keep_wal_bounded(&self) {
        let Some((wal, bound)) = &self.wal_bound else {
            return;
        };
        if std::fs::metadata(wal).is_ok_and(|m| m.len() > *bound)
            && let Err(e) = self.batch("PRAGMA wal_checkpoint(TRUNCATE)")
        {
            tracing::warn!(error = %e, "WAL checkpoint past its bound failed");
        }
    }

    /// Run statements that take no arguments and return no rows, parsed anew each time.
    pub(super) fn batch(&self, sql: &str) -> Result<(), sqlx::Error> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.conn.execute_batch(sql).map_err(to_sqlx)
    }

    /// Run one statement that takes no arguments and returns no rows (`BEGIN`, `COMMIT`), kept
    /// prepared.
    fn exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = state.conn.prepare_cached(sql).map_err(to_sqlx)?;
        stmt.raw_execute().map(drop).map_err(to_sqlx)
    }

    /// Run sqlx's `query`: its rows (at most one when `first_only`), then its result.
    fn query<'q>(
        &self,
        mut query: impl Execute<'q, Any>,
        first_only: bool,
    ) -> Result<Vec<Either<AnyQueryResult, AnyRow>>, sqlx::Error> {
        let arguments = query.take_arguments().map_err(sqlx::Error::Encode)?;
        self.run(query.sql().as_str(), arguments, first_only)
    }

    /// Run one statement: its rows (at most one when `first_only`), then its result.
    fn run(
        &self,
        sql: &str,
        arguments: Option<sqlx::any::AnyArguments>,
        first_only: bool,
    ) -> Result<Vec<Either<AnyQueryResult, AnyRow>>, sqlx::Error> {
        let Some(arguments) = arguments else {
            // Raw SQL: possibly several statements, no arguments, no rows.
            self.batch(sql)?;
            return Ok(vec![Either::Left(AnyQueryResult {
                rows_affected: 0,
                last_insert_id: None,
            })]);
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State { conn, columns } = &mut *state;
        let mut stmt = conn.prepare_cached(sql).map_err(to_sqlx)?;
        bind(&mut stmt, &arguments.values.0)?;
        let (names, cols) = match columns.get(sql) {
            Some(known) => known.clone(),
            None => {
                let built = describe_columns(&stmt);
                columns.insert(sql.to_string(), built.clone());
                built
            }
        };
        let readonly = stmt.readonly();
        let mut out = Vec::new();
        {
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(to_sqlx)? {
                let mut values = Vec::with_capacity(cols.len());
                for i in 0..cols.len() {
                    values.push(AnyValue {
                        kind: value_of(row.get_ref(i).map_err(to_sqlx)?)?,
                    });
                }
                out.push(Either::Right(AnyRow {
                    column_names: names.clone(),
                    columns: cols.clone(),
                    values,
                }));
                if first_only {
                    break;
                }
            }
        }
        out.push(Either::Left(AnyQueryResult {
            rows_affected: if readonly { 0 } else { conn.changes() },
            last_insert_id: Some(conn.last_insert_rowid()),
        }));
        Ok(out)
    }
}

/// Bind sqlx's arguments to `stmt` as sqlx's SQLite driver does: `$N` and `?N` name argument N,
/// a bare `?` the next one; parameters past the arguments stay NULL.
fn bind(stmt: &mut rusqlite::Statement<'_>, values: &[AnyValueKind]) -> Result<(), sqlx::Error> {
    let mut next = 0usize;
    for param in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(param) {
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!("unsupported SQL parameter {name:?}"))
                })?,
            None => {
                next += 1;
                next
            }
        };
        let Some(value) = n.checked_sub(1).and_then(|i| values.get(i)) else {
            break;
        };
        stmt.raw_bind_parameter(param, Arg(value))
            .map_err(to_sqlx)?;
    }
    Ok(())
}

/// One argument, as SQLite takes it.
struct Arg<'a>(&'a AnyValueKind);

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            AnyValueKind::Null(_) => ValueRef::Null,
            AnyValueKind::Bool(b) => ValueRef::Integer(i64::from(*b)),
            AnyValueKind::SmallInt(i) => ValueRef::Integer(i64::from(*i)),
            AnyValueKind::Integer(i) => ValueRef::Integer(i64::from(*i)),
            AnyValueKind::BigInt(i) => ValueRef::Integer(*i),
            AnyValueKind::Real(r) => ValueRef::Real(f64::from(*r)),
            AnyValueKind::Double(d) => ValueRef::Real(*d),
            AnyValueKind::Text(t) => ValueRef::Text(t.as_bytes()),
            AnyValueKind::TextSlice(t) => ValueRef::Text(t.as_bytes()),
            AnyValueKind::Blob(b) => ValueRef::Blob(b),
            // `AnyValueKind` is non-exhaustive: a kind added later is refused, not guessed.
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("unsupported argument {other:?}").into(),
                ));
            }
        }))
    }
}

/// A column value as sqlx's SQLite driver maps it: by the value's own type.
fn value_of(v: ValueRef<'_>) -> Result<AnyValueKind, sqlx::Error> {
    Ok(match v {
        ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
        ValueRef::Integer(i) => AnyValueKind::BigInt(i),
        ValueRef::Real(f) => AnyValueKind::Double(f),
        ValueRef::Text(t) => AnyValueKind::Text(Arc::new(
            std::str::from_utf8(t)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
                .to_string(),
        )),
        ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
    })
}

/// A statement's column names and columns, with the declared type of each.
fn describe_columns(stmt: &rusqlite::Statement<'_>) -> (Names, Vec<AnyColumn>) {
    let mut names = sqlx_core::HashMap::default();
    let mut cols = Vec::new();
    for (ordinal, column) in stmt.columns().iter().enumerate() {
        let name = UStr::from(column.name().to_string());
        names.insert(name.clone(), ordinal);
        let kind = match column.decl_type().map(str::to_ascii_uppercase).as_deref() {
            Some(t) if t.contains("INT") => AnyTypeInfoKind::BigInt,
            Some(t) if t.contains("CHAR") || t.contains("TEXT") => AnyTypeInfoKind::Text,
            Some(t) if t.contains("BLOB") => AnyTypeInfoKind::Blob,
            Some(t) if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") => {
                AnyTypeInfoKind::Double
            }
            _ => AnyTypeInfoKind::Null,
        };
        cols.push(AnyColumn {
            ordinal,
            name,
            type_info: AnyTypeInfo { kind },
        });
    }
    (Arc::new(names), cols)
}

/// A SQLite error as sqlx's SQLite driver reports it (unique violations stay recognisable).
fn to_sqlx(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            let message = message.unwrap_or_else(|| code.to_string());
            sqlx::Error::Database(Box::new(InlineError {
                code: code.extended_code,
                message,
            }))
        }
        other => sqlx::Error::AnyDriverError(Box::new(other)),
    }
}

/// An error SQLite returned: its extended result code and message.
#[derive(Debug)]
struct InlineError {
    code: i32,
    message: String,
}

impl std::fmt::Display for InlineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for InlineError {}

impl DatabaseError for InlineError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// Inline connections for read transactions, opened as needed up to a bound and kept.
pub(super) struct Readers {
    path: std::path::PathBuf,
    pragmas: String,
    idle: Mutex<Vec<Arc<Inline>>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

/// A reader's connection, given back to its [`Readers`] when its transaction ends.
struct Lent {
    readers: Arc<Readers>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Readers {
    /// At most `max` read connections to the database file at `path`, each with `pragmas`.
    pub(super) fn new(path: std::path::PathBuf, pragmas: String, max: usize) -> Readers {
        Readers {
            path,
            pragmas,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
        }
    }

    /// Begin a read transaction on an idle connection, or a new one while under the bound;
    /// waits at most `timeout` for one to come free.
    pub(super) async fn begin(
        self: &Arc<Self>,
        timeout: std::time::Duration,
    ) -> Result<InlineTx, sqlx::Error> {
        let permit = tokio::time::timeout(timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let db = match idle {
            Some(db) => db,
            None => Arc::new(Inline::open(&self.path, &self.pragmas).map_err(to_sqlx)?),
        };
        db.exec("BEGIN")?;
        Ok(InlineTx {
            db,
            open: true,
            lent: Some(Lent {
                readers: self.clone(),
                _permit: permit,
            }),
        })
    }
}

/// An open transaction on an [`Inline`] connection; rolled back when dropped uncommitted.
pub(super) struct InlineTx {
    db: Arc<Inline>,
    open: bool,
    /// A reader's: where its connection goes back.
    lent: Option<Lent>,
}

impl InlineTx {
    /// Begin a write transaction (`BEGIN IMMEDIATE`: the write lock up front).
    pub(super) fn begin(db: Arc<Inline>) -> Result<InlineTx, sqlx::Error> {
        db.exec("BEGIN IMMEDIATE")?;
        Ok(InlineTx {
            db,
            open: true,
            lent: None,
        })
    }

    /// Commit.
    pub(super) fn commit(mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        if let Err(e) = self.db.exec("COMMIT") {
            // A failed COMMIT may leave the transaction open: end it, so the next begins clean.
            let _ = self.db.exec("ROLLBACK");
            return Err(e);
        }
        self.db.keep_wal_bounded();
        Ok(())
    }
}

impl Drop for InlineTx {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.db.exec("ROLLBACK")
        {
            tracing::warn!(error = %e, "rolling back an inline transaction failed");
            // Not given back: a connection whose transaction may still be open is closed.
            return;
        }
        if let Some(lent) = self.lent.take() {
            lent.readers
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.db.clone());
        }
    }
}

impl std::fmt::Debug for InlineTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineTx")
            .field("open", &self.open)
            .finish()
    }
}

impl<'c> Executor<'c> for &'c mut InlineTx {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let items: Vec<_> = match self.db.query(query, false) {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(items).boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        let out = self
            .db
            .query(query, true)
            .map(|items| items.into_iter().find_map(Either::right));
        std::future::ready(out).boxed()
    }

    fn prepare_with<'e>(
        self,
        _sql: SqlStr,
        _parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        std::future::ready(Err(sqlx::Error::Protocol(
            "statements are not prepared ahead on an inline connection".into(),
        )))
        .boxed()
    }

    fn describe<'e>(self, _sql: SqlStr) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        std::future::ready(Err(sqlx::Error::Protocol(
            "queries are not described on an inline connection".into(),
        )))
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row as _;

    type Read = (
        i64,
        Option<String>,
        Option<Vec<u8>>,
        Option<f64>,
        Option<String>,
    );

    const SELECT: &str = "SELECT a, b, c, d, e FROM t ORDER BY a";

    /// What the inline connection writes and reads is what sqlx's own driver writes and reads:
    /// `$N` arguments out of order and reused, NULLs, blobs, reals, names, unique violations,
    /// RETURNING, and a transaction dropped uncommitted.
    #[tokio::test]
    async fn the_inline_connection_reads_and_writes_as_the_driver_does() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("pool");
        sqlx::raw_sql(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c BLOB, d REAL, e TEXT UNIQUE)",
        )
        .execute(&pool)
        .await
        .expect("create");
        let db = Arc::new(Inline::open(&path, "PRAGMA foreign_keys = ON;").expect("open"));

        let mut tx = InlineTx::begin(db.clone()).expect("begin");
        let done = sqlx::query("INSERT INTO t (a, b, c, d, e) VALUES ($2, $1, $3, $4, $1)")
            .bind("x")
            .bind(7i64)
            .bind(vec![1u8, 2, 0, 255])
            .bind(1.5f64)
            .execute(&mut tx)
            .await
            .expect("insert");
        assert_eq!(done.rows_affected(), 1);
        sqlx::query("INSERT INTO t (a, b, e) VALUES ($1, NULL, $2)")
            .bind(8i64)
            .bind(Option::<String>::None)
            .execute(&mut tx)
            .await
            .expect("insert nulls");
        let dup = sqlx::query("INSERT INTO t (a, e) VALUES (9, $1)")
            .bind("x")
            .execute(&mut tx)
            .await
            .expect_err("a unique violation");
        match &dup {
            sqlx::Error::Database(e) => {
                assert!(e.is_unique_violation(), "{e}");
                assert!(e.message().contains("t.e"), "{}", e.message());
            }
            other => panic!("not a database error: {other:?}"),
        }
        let returned: Option<(i64, String)> =
            sqlx::query_as("UPDATE t SET b = 'y' WHERE a = $1 RETURNING a, b")
                .bind(8i64)
                .fetch_optional(&mut tx)
                .await
                .expect("returning");
        assert_eq!(returned, Some((8, "y".into())));
        let row = sqlx::query("SELECT b, d FROM t WHERE a = 7")
            .fetch_one(&mut tx)
            .await
            .expect("by name");
        assert_eq!(row.get::<String, _>("b"), "x");
        assert_eq!(row.get::<f64, _>("d"), 1.5);
        tx.commit().expect("commit");

        let driver: Vec<Read> = sqlx::query_as(SELECT)
            .fetch_all(&pool)
            .await
            .expect("driver");
        let mut tx = InlineTx::begin(db.clone()).expect("begin");
        let inline: Vec<Read> = sqlx::query_as(SELECT)
            .fetch_all(&mut tx)
            .await
            .expect("inline");
        assert_eq!(inline, driver);
        assert_eq!(
            driver,
            vec![
                (
                    7,
                    Some("x".into()),
                    Some(vec![1, 2, 0, 255]),
                    Some(1.5),
                    Some("x".into())
                ),
                (8, Some("y".into()), None, None, None),
            ]
        );
        // Dropped uncommitted: undone, and the connection is free for the next transaction.
        sqlx::query("DELETE FROM t")
            .execute(&mut tx)
            .await
            .expect("delete");
        drop(tx);
        let tx = InlineTx::begin(db).expect("begin again");
        tx.commit().expect("commit");
        let after: Vec<Read> = sqlx::query_as(SELECT)
            .fetch_all(&pool)
            .await
            .expect("after");
        assert_eq!(after, driver);
    }
}
