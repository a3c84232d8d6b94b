//! Supervision of the host's background tasks (job workers, the receipt writer, the retention
//! job): a task that panics or returns when it should not is reported with an error line and
//! started again after a back-off, so one bad job or bug does not silently stop a queue. Owns no
//! task's work, only its restarts.

use std::future::Future;
use std::time::{Duration, Instant};

/// How a supervised task ended without panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Told to stop, or nothing left to do: not restarted.
    Finished,
    /// Stopped when it should not have: restarted.
    Unexpectedly,
}

/// First back-off before a restart; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest back-off before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A task that ran this long before dying starts again from [`MIN_BACKOFF`].
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Run the task `make` builds until it ends with [`Ended::Finished`]; when it panics or ends
/// [`Ended::Unexpectedly`], log an error naming `name` and start a fresh one after a back-off.
pub fn supervise<F, Fut>(name: &'static str, make: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Ended> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        let mut restarts: u64 = 0;
        loop {
            let started = Instant::now();
            match tokio::spawn(make()).await {
                Ok(Ended::Finished) => break,
                // Aborted from outside (the runtime is shutting down): nothing to restart.
                Err(e) if e.is_cancelled() => break,
                Ok(Ended::Unexpectedly) => {
                    tracing::error!(task = name, restarts, "background task stopped; restarting")
                }
                Err(_) => {
                    tracing::error!(
                        task = name,
                        restarts,
                        "background task panicked; restarting"
                    )
                }
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = MIN_BACKOFF;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            restarts += 1;
        }
    })
}

/// Run `tick` every `interval` (the first after one interval), supervised, until `shutdown`
/// fires.
pub fn every<F, Fut>(
    name: &'static str,
    interval: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
    tick: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    supervise(name, move || {
        let (tick, mut stop) = (tick.clone(), shutdown.clone());
        async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => return Ended::Finished,
                }
                if *stop.borrow() {
                    return Ended::Finished;
                }
                tick().await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_task_that_panics_or_returns_early_is_restarted() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let handle = supervise("test", move || {
            let runs = counted.clone();
            async move {
                match runs.fetch_add(1, Ordering::SeqCst) {
                    0 => panic!("first run dies"),
                    1 => Ended::Unexpectedly,
                    _ => Ended::Finished,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("supervisor ends once the task finishes")
            .expect("supervisor itself does not panic");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "panicked, returned, then finished"
        );
    }
}
