//! Supervision of the host's background tasks (job workers, the receipt writer, the retention
//! job): a task that panics or returns when it should not is reported with an error line and
//! started again after a back-off, so one bad job or bug does not silently stop a queue. Owns no
//! task's work, only its restarts, and keeps count of which tasks run ([`Tasks`]) for `/readyz`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How the supervised tasks of one name are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TaskCount {
    /// Running now.
    pub running: u32,
    /// Died, and waiting out the back-off before they start again.
    pub restarting: u32,
    /// Ended for good (told to stop).
    pub stopped: u32,
    /// Restarts since the process started.
    pub restarts: u64,
}

/// The supervised tasks of a process by name, as they start, die and stop.
#[derive(Debug, Default)]
pub struct Tasks {
    counts: Mutex<BTreeMap<&'static str, TaskCount>>,
}

impl Tasks {
    fn change(&self, name: &'static str, f: impl FnOnce(&mut TaskCount)) {
        if let Ok(mut counts) = self.counts.lock() {
            f(counts.entry(name).or_default());
        }
    }

    /// Every task name with its counts.
    pub fn snapshot(&self) -> BTreeMap<&'static str, TaskCount> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// What keeps the tasks of `counts` from being ready: a name with a task restarting or stopped.
pub fn problems(counts: &BTreeMap<&'static str, TaskCount>) -> Vec<String> {
    counts
        .iter()
        .filter_map(|(name, c)| {
            let total = c.running + c.restarting + c.stopped;
            if c.restarting > 0 {
                Some(format!(
                    "{name}: {} of {total} restarting after a failure",
                    c.restarting
                ))
            } else if c.stopped > 0 {
                Some(format!("{name}: {} of {total} stopped", c.stopped))
            } else {
                None
            }
        })
        .collect()
}

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
    supervised(None, name, make)
}

/// [`supervise`], counted in `tasks`.
pub fn supervise_in<F, Fut>(
    tasks: &'static Tasks,
    name: &'static str,
    make: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Ended> + Send + 'static,
{
    supervised(Some(tasks), name, make)
}

fn supervised<F, Fut>(
    tasks: Option<&'static Tasks>,
    name: &'static str,
    make: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Ended> + Send + 'static,
{
    let change = move |f: fn(&mut TaskCount)| {
        if let Some(t) = tasks {
            t.change(name, f);
        }
    };
    change(|c| c.running += 1);
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        let mut restarts: u64 = 0;
        loop {
            let started = Instant::now();
            let ended = tokio::spawn(make()).await;
            if matches!(ended, Ok(Ended::Finished)) || matches!(&ended, Err(e) if e.is_cancelled())
            {
                change(|c| {
                    c.running -= 1;
                    c.stopped += 1;
                });
            } else {
                change(|c| {
                    c.running -= 1;
                    c.restarting += 1;
                    c.restarts += 1;
                });
            }
            match ended {
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
            change(|c| {
                c.restarting -= 1;
                c.running += 1;
            });
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

    #[tokio::test]
    async fn a_dead_or_stopped_task_is_a_problem_until_it_runs_again() {
        let tasks: &'static Tasks = Box::leak(Box::default());
        let (go, ready) = tokio::sync::watch::channel(0u32);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let handle = supervise_in(tasks, "job worker", move || {
            let (runs, mut ready) = (counted.clone(), ready.clone());
            async move {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                // Each run waits for its turn, then dies once and finishes the second time.
                let _ = ready.wait_for(|n| *n as usize > run).await;
                if run == 0 {
                    Ended::Unexpectedly
                } else {
                    Ended::Finished
                }
            }
        });
        let wait_for = |want: TaskCount| async move {
            for _ in 0..300 {
                if tasks.snapshot().get("job worker") == Some(&want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("never {want:?}: {:?}", tasks.snapshot());
        };
        let running = TaskCount {
            running: 1,
            ..TaskCount::default()
        };
        wait_for(running).await;
        assert!(problems(&tasks.snapshot()).is_empty());
        // The first run dies: restarting until the back-off ends, then running again.
        let _ = go.send(1);
        wait_for(TaskCount {
            running: 1,
            restarts: 1,
            ..TaskCount::default()
        })
        .await;
        // Told to stop: stopped, and a problem for readiness.
        let _ = go.send(2);
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("finished")
            .expect("no panic");
        let stopped = TaskCount {
            stopped: 1,
            restarts: 1,
            ..TaskCount::default()
        };
        assert_eq!(tasks.snapshot().get("job worker"), Some(&stopped));
        assert_eq!(
            problems(&tasks.snapshot()),
            vec!["job worker: 1 of 1 stopped".to_string()]
        );
    }

    #[test]
    fn a_restarting_task_is_named() {
        let tasks = Tasks::default();
        tasks.change("receipt writer", |c| c.restarting = 1);
        tasks.change("job worker", |c| c.running = 4);
        assert_eq!(
            problems(&tasks.snapshot()),
            vec!["receipt writer: 1 of 1 restarting after a failure".to_string()]
        );
    }
}
