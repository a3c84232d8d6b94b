//! The bound on queued work: past `SWITCHYARD_MAX_BACKLOG` unfinished jobs, webhook ingress
//! answers 503 with `Retry-After` (providers retry), so a flood fills neither the disk nor the
//! memory, and nothing is acknowledged that the host cannot keep.
//!
//! The count of unfinished jobs is read from the database every `SWITCHYARD_BACKLOG_COUNT_MS`
//! (every host on the database sees the same queue); between two counts each receipt this
//! process accepts adds one, so a burst cannot overshoot the bound by more than one count's
//! worth of other hosts' acceptances.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{Mode, Store};
use crate::supervise::{Ended, supervise};
use crate::tenancy::Scope;

/// Admission by the size of the job queue (one per process).
#[derive(Debug)]
pub struct Backlog {
    /// Unfinished jobs past which ingress refuses (0: no bound).
    limit: u64,
    /// Unfinished jobs at the last count.
    counted: AtomicU64,
    /// Receipts this process accepted since the last count.
    since: AtomicU64,
}

impl Backlog {
    /// A bound of `limit` unfinished jobs (0: none).
    pub fn new(limit: u64) -> Self {
        Backlog {
            limit,
            counted: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }

    /// Whether one more webhook may be accepted.
    pub fn admit(&self) -> bool {
        self.limit == 0
            || self
                .counted
                .load(Ordering::Relaxed)
                .saturating_add(self.since.load(Ordering::Relaxed))
                < self.limit
    }

    /// A receipt was accepted (its job is queued).
    pub fn accepted(&self) {
        self.since.fetch_add(1, Ordering::Relaxed);
    }

    /// The queue as counted now.
    fn counted(&self, unfinished: u64) {
        self.counted.store(unfinished, Ordering::Relaxed);
        self.since.store(0, Ordering::Relaxed);
    }

    /// The estimate ingress admits by: `(unfinished jobs, bound)`.
    pub fn estimate(&self) -> (u64, u64) {
        (
            self.counted
                .load(Ordering::Relaxed)
                .saturating_add(self.since.load(Ordering::Relaxed)),
            self.limit,
        )
    }
}

/// Count the queue every `every` until `shutdown` fires (nothing to do without a bound).
pub fn spawn(
    store: Store,
    backlog: Arc<Backlog>,
    every: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if backlog.limit == 0 {
        return;
    }
    supervise("backlog count", move || {
        let (store, backlog, mut shutdown) = (store.clone(), backlog.clone(), shutdown.clone());
        async move {
            loop {
                match count(&store).await {
                    Ok(n) => backlog.counted(n),
                    // Keep the last estimate: acceptances still add to it.
                    Err(e) => tracing::warn!(error = %e, "could not count the job queue"),
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return Ended::Finished,
                }
            }
        }
    });
}

async fn count(store: &Store) -> Result<u64, crate::store::StoreError> {
    let mut tx = store.begin(Scope::Host, Mode::Read).await?;
    let n = tx.unfinished_jobs().await?;
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptances_count_until_the_next_count() {
        let b = Backlog::new(3);
        assert!(b.admit());
        b.accepted();
        b.accepted();
        assert!(b.admit());
        b.accepted();
        assert!(!b.admit(), "three queued: the bound is reached");
        b.counted(1);
        assert!(b.admit(), "the workers drained two");
        assert_eq!(b.estimate(), (1, 3));
        let unbounded = Backlog::new(0);
        unbounded.counted(u64::MAX);
        assert!(unbounded.admit());
    }
}
