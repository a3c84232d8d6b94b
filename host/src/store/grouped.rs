//! Grouped writes: the small write transactions of many tasks (a job worker's claim, a
//! message's rows, a decision, a send's outcome) run one after another inside one transaction
//! and commit together, as ingress commits receipts. Each unit runs in a savepoint and in its
//! own scope, so one that fails is undone alone; each caller hears its unit's result only after
//! the group's commit, so nothing it was told is ever rolled back.
//!
//! SQLite only (one writer at a time, whose turn is the bottleneck): the writer has a thread of
//! its own, so a write turn waits only on the database, never on a plugin call or a request
//! that happens to share a tokio thread with it; there it drives the process's one writing
//! connection itself ([`super::inline`]), so a statement costs SQLite's work and no hand-off to
//! a driver thread. On PostgreSQL a unit is a transaction of its own: several hosts' groups would
//! deadlock with each other.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use super::{Backend, Mode, Result, Store, StoreError, Tx};
use crate::tenancy::Scope;

/// The future of one unit of a grouped write, borrowing the group's transaction.
pub type UnitFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// Most units one commit carries.
const GROUP_MAX: usize = 256;

/// A unit, its type erased: runs on the group's transaction and says how it went.
type Run = Box<dyn for<'t> FnOnce(&'t mut Tx) -> UnitFuture<'t, Ran> + Send>;

/// Tells a unit's caller its result once the group's commit is known (`Some(why)`: it failed).
type Tell = Box<dyn FnOnce(Option<&str>) + Send>;

/// One caller's writes and the scope they run in.
struct Unit {
    scope: Scope,
    run: Run,
}

/// What a unit did: whether its writes are kept, and how to answer its caller.
struct Ran {
    keep: bool,
    tell: Tell,
}

/// The queue of the process's group writer.
#[derive(Debug, Clone)]
pub(super) struct Groups(mpsc::Sender<Unit>);

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit").field("scope", &self.scope).finish()
    }
}

/// Start the group writer of `store` (a store with no writer of its own: its units run alone).
/// `None` on PostgreSQL, or when no thread could be started: units then run one transaction
/// each.
pub(super) fn start(store: Store) -> Option<Groups> {
    // PostgreSQL takes concurrent writers, and groups of one host would deadlock with the
    // groups of another on the same rows (a tenant's counters, its conversations): there each
    // unit is a transaction of its own.
    if store.backend == Backend::Postgres {
        return None;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "no runtime for the group writer; writes run alone");
            return None;
        }
    };
    let (queue, units) = mpsc::channel(4 * GROUP_MAX);
    let started = std::thread::Builder::new()
        .name("switchyard-db-writer".into())
        .spawn(move || runtime.block_on(write_groups(store, units)));
    if let Err(e) = started {
        tracing::error!(error = %e, "no thread for the group writer; writes run alone");
        return None;
    }
    Some(Groups(queue))
}

impl Store {
    /// Run `unit` in `scope` as part of the next grouped write transaction, and return its
    /// result once that transaction has committed. A unit that returns an error has its writes
    /// undone (the others are kept); a failed commit fails every unit of the group.
    ///
    /// A unit must not begin transactions of its own, and must not swallow a failed statement
    /// (on PostgreSQL that aborts the transaction): return the error and decide outside.
    pub async fn grouped<T, E, F>(&self, scope: Scope, unit: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> UnitFuture<'t, Result<T, E>> + Send + 'static,
    {
        let Some(groups) = &self.groups else {
            let mut tx = self.begin(scope, Mode::Write).await?;
            let out = unit(&mut tx).await?;
            tx.commit().await?;
            return Ok(out);
        };
        // The group would wait for this task's write turn, which waits for the group.
        if self.writers.held_here() {
            return Err(StoreError::NestedWrite.into());
        }
        let (done, answer) = oneshot::channel();
        let run = erase(unit, done);
        groups
            .0
            .send(Unit { scope, run })
            .await
            .map_err(|_| StoreError::Grouped("the group writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Grouped("the group's transaction did not run".into()))?
    }
}

/// `unit` as a [`Run`] that answers on `done`.
fn erase<T, E, F>(unit: F, done: oneshot::Sender<Result<T, E>>) -> Run
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> UnitFuture<'t, Result<T, E>> + Send + 'static,
{
    // The unit runs on the writer's thread, inside the caller's span (what it logs, and the
    // trace a job it queues continues).
    let span = tracing::Span::current();
    Box::new(move |tx: &mut Tx| -> UnitFuture<'_, Ran> {
        Box::pin(async move {
            use tracing::Instrument as _;
            let out = unit(tx).instrument(span).await;
            let keep = out.is_ok();
            // A failed group fails every unit in it, whatever the unit said: what it saw (a
            // row another unit wrote, say) was rolled back too.
            let tell: Tell = Box::new(move |failed: Option<&str>| {
                let out = match failed {
                    Some(why) => Err(E::from(StoreError::Grouped(why.to_string()))),
                    None => out,
                };
                let _ = done.send(out);
            });
            Ran { keep, tell }
        })
    })
}

/// The next group of a queue: the first item to arrive and every one waiting behind it, at
/// most `max`; `None` once every sender is gone.
pub async fn next_group<T>(queue: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = queue.recv().await?;
    let mut group = vec![first];
    while group.len() < max {
        match queue.try_recv() {
            Ok(item) => group.push(item),
            Err(_) => break,
        }
    }
    Some(group)
}

/// The writer's loop: takes every unit waiting when the previous commit ends (at most
/// [`GROUP_MAX`]); ends when every store that could send is gone.
async fn write_groups(store: Store, mut units: mpsc::Receiver<Unit>) {
    while let Some(group) = next_group(&mut units, GROUP_MAX).await {
        // A unit that panics takes its group down, not the writer: its callers hear that the
        // transaction did not run, and retry as for any failed write.
        if let Err(e) = tokio::spawn(write_group(store.clone(), group)).await {
            tracing::error!(error = %e, "a grouped write panicked; its group was rolled back");
        }
    }
}

/// Run one group and answer each of its callers.
async fn write_group(store: Store, group: Vec<Unit>) {
    let mut told = Vec::with_capacity(group.len());
    let failed = run_group(&store, group, &mut told).await.err().map(|e| {
        tracing::warn!(error = %e, units = told.len(), "a grouped write transaction failed");
        e.to_string()
    });
    for tell in told {
        tell(failed.as_deref());
    }
}

async fn run_group(store: &Store, group: Vec<Unit>, told: &mut Vec<Tell>) -> Result<()> {
    let mut tx = store.begin(Scope::Host, Mode::Write).await?;
    let mut previous = None;
    for unit in group {
        tx.next_unit(previous, unit.scope).await?;
        let ran = (unit.run)(&mut tx).await;
        previous = Some(ran.keep);
        told.push(ran.tell);
    }
    if let Some(keep) = previous {
        tx.end_units(keep).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        (dir, store)
    }

    /// Units of many tasks commit together; one that fails is undone alone and its caller
    /// hears its own error, the others keep their writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_unit_is_undone_alone_and_the_others_commit() {
        let (_dir, store) = store().await;
        let mut calls = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            calls.push(tokio::spawn(async move {
                let tenant = format!("ten_{i}");
                store
                    .grouped(Scope::Operator, move |tx| {
                        Box::pin(async move {
                            tx.insert_tenant(&tenant, None, &format!("Tenant {i}"))
                                .await?;
                            if i % 4 == 0 {
                                return Err(StoreError::Conflict(format!("unit {i} refused")));
                            }
                            Ok(i)
                        })
                    })
                    .await
            }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            let out = call.await.expect("join");
            if i % 4 == 0 {
                assert!(
                    matches!(&out, Err(StoreError::Conflict(w)) if *w == format!("unit {i} refused")),
                    "{out:?}"
                );
            } else {
                assert_eq!(out.expect("kept"), i);
            }
        }
        let mut tx = store
            .begin(Scope::Operator, Mode::Read)
            .await
            .expect("read");
        for i in 0..40 {
            let found = tx.tenant(&format!("ten_{i}")).await.expect("tenant");
            assert_eq!(found.is_some(), i % 4 != 0, "tenant {i}");
        }
    }

    /// Under steady grouped writes and reads on every side the WAL is still copied back and
    /// started over: it stays near its checkpoint size, not the size of all that was written
    /// (a checkpoint that runs beside the writer never catches up with it, and the log grew
    /// to gigabytes in the throughput benchmark).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_steady_writes_and_reads() {
        let (dir, store) = store().await;
        sqlx::raw_sql("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
            .execute(&store.pool)
            .await
            .expect("create");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (store, stop) = (store.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut tx = store.begin(Scope::Host, Mode::Read).await.expect("read");
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
                        .fetch_one(&mut tx.inner)
                        .await
                        .expect("count");
                    assert!(n >= 0);
                    tx.commit().await.expect("end read");
                    tokio::task::yield_now().await;
                }
            }));
        }
        // 3,200 units of 8 KiB each: 25 MiB written, six times the checkpoint's 1,000 pages.
        for round in 0..100 {
            let mut units = Vec::new();
            for i in 0..32 {
                let store = store.clone();
                units.push(tokio::spawn(async move {
                    store
                        .grouped(Scope::Host, move |tx| {
                            Box::pin(async move {
                                sqlx::query("INSERT INTO blobs (id, b) VALUES ($1, $2)")
                                    .bind(i64::from(round * 32 + i))
                                    .bind(vec![7u8; 8192])
                                    .execute(&mut tx.inner)
                                    .await?;
                                Ok::<_, StoreError>(())
                            })
                        })
                        .await
                }));
            }
            for unit in units {
                unit.await.expect("join").expect("unit");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            reader.await.expect("reader");
        }
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .expect("the WAL")
            .len();
        assert!(wal < 12 << 20, "the WAL grew to {wal} bytes");
    }

    /// A task that holds a write turn is refused at once: the group would wait for that turn.
    #[tokio::test]
    async fn a_task_holding_a_write_is_refused_not_deadlocked() {
        // Writers are tracked per tokio task: run the body as one, as workers are.
        let body = async {
            let (_dir, store) = store().await;
            let _held = store.begin(Scope::Host, Mode::Write).await.expect("write");
            let out = store
                .grouped(Scope::Host, |_tx| {
                    Box::pin(async { Ok::<_, StoreError>(()) })
                })
                .await;
            assert!(matches!(out, Err(StoreError::NestedWrite)), "{out:?}");
        };
        tokio::spawn(body).await.expect("join");
    }

    /// Each unit runs in the scope it asked for, whatever the unit before it used.
    #[tokio::test]
    async fn each_unit_runs_in_its_own_scope() {
        let (_dir, store) = store().await;
        let mut tx = store.begin(Scope::Operator, Mode::Write).await.expect("tx");
        tx.insert_tenant("ten_a", None, "A").await.expect("tenant");
        tx.commit().await.expect("commit");
        let tenant = crate::tenancy::auth::one_tenant(&store, "ten_a")
            .await
            .expect("scope");
        let scopes = [Scope::Host, Scope::Tenant(tenant), Scope::Operator];
        for scope in scopes {
            let want = format!("{scope:?}");
            let seen = store
                .grouped(scope, |tx| {
                    Box::pin(async move { Ok::<_, StoreError>(format!("{:?}", tx.scope())) })
                })
                .await
                .expect("unit");
            assert_eq!(seen, want);
        }
    }
}
