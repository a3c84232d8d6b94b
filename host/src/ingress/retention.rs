//! The receipt retention job: once a minute it trims the ingress guard's idle state and logs its
//! refusal counts; every hour it drops the bodies and headers of processed receipts older than
//! `SWITCHYARD_RECEIPT_RETENTION_DAYS` and deletes refused requests' receipts as old.
//! Unprocessed and dead-lettered receipts keep their bodies, so a replay still works.

use std::sync::Arc;
use std::time::Duration;

use super::guard::Guard;
use crate::store::{Mode, RECEIPT_EXPIRY_BATCH, REDELIVERY_WINDOW_MS, Store, StoreError, now_ms};
use crate::supervise::{Ended, supervise};
use crate::tenancy::Scope;

/// How often the guard is trimmed and reported.
const TICK: Duration = Duration::from_secs(60);
/// Retention passes run every this many ticks.
const PASS_EVERY: u32 = 60;

/// Drop what retention allows for receipts older than `retention`, in short batches; returns
/// `(bodies dropped, refused receipts deleted)`.
pub async fn run_once(store: &Store, retention: Duration) -> Result<(u64, u64), StoreError> {
    let before = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    // Body digests live as long as a provider may redeliver, whatever the body retention.
    let digests_before = now_ms() - REDELIVERY_WINDOW_MS;
    let mut total = (0, 0);
    loop {
        let mut tx = store.begin(Scope::Host, Mode::Write).await?;
        let (bodies, refused) = tx.expire_receipts(before).await?;
        let digests = tx.expire_digests(digests_before).await?;
        tx.commit().await?;
        total = (total.0 + bodies, total.1 + refused);
        if bodies < RECEIPT_EXPIRY_BATCH
            && refused < RECEIPT_EXPIRY_BATCH
            && digests < RECEIPT_EXPIRY_BATCH
        {
            return Ok(total);
        }
    }
}

/// Start the retention job (supervised); it stops when `shutdown` fires.
pub fn spawn(
    store: Store,
    guard: Arc<Guard>,
    retention: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    supervise("receipt retention", move || {
        let (store, guard, mut stop) = (store.clone(), guard.clone(), shutdown.clone());
        async move {
            let mut ticks = 0u32;
            loop {
                if *stop.borrow() {
                    return Ended::Finished;
                }
                // The first pass runs at start; then every PASS_EVERY ticks.
                if ticks.is_multiple_of(PASS_EVERY) {
                    match run_once(&store, retention).await {
                        Ok((0, 0)) => {}
                        Ok((bodies, refused)) => {
                            tracing::info!(
                                bodies,
                                refused,
                                "receipt retention: old receipts trimmed"
                            )
                        }
                        Err(e) => tracing::warn!(error = %e, "receipt retention failed"),
                    }
                }
                ticks = ticks.wrapping_add(1);
                tokio::select! {
                    () = tokio::time::sleep(TICK) => {}
                    _ = stop.changed() => {}
                }
                guard.report();
            }
        }
    });
}
