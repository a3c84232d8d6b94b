//! The CPU time a guest call has used, for its CPU deadline.
//!
//! A call's future runs the guest only while it is being polled, on one OS thread for the length
//! of each poll. [`Timed`] adds the CPU time of that thread during each poll to the call's
//! [`GuestClock`]; the epoch callback reads it mid-poll. Time spent waiting to be polled (queued
//! behind other tasks, waiting on egress) or descheduled by the OS is not the guest's and is not
//! counted, so a loaded host does not fail calls that did little work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Sentinel for "not inside a poll".
const IDLE: u64 = u64::MAX;

/// CPU time one call's guest has used so far.
#[derive(Debug)]
pub(crate) struct GuestClock {
    /// Nanoseconds used in finished polls.
    used: AtomicU64,
    /// Thread CPU time at the start of the poll in progress, or [`IDLE`].
    poll_started: AtomicU64,
}

impl Default for GuestClock {
    fn default() -> Self {
        GuestClock {
            used: AtomicU64::new(0),
            poll_started: AtomicU64::new(IDLE),
        }
    }
}

impl GuestClock {
    /// CPU time used so far, including the poll in progress (read on the polling thread).
    pub(crate) fn used(&self) -> Duration {
        let mut ns = self.used.load(Ordering::Relaxed);
        let started = self.poll_started.load(Ordering::Relaxed);
        if started != IDLE {
            ns = ns.saturating_add(thread_cpu_ns().saturating_sub(started));
        }
        Duration::from_nanos(ns)
    }
}

/// A future whose polls are charged to a [`GuestClock`].
pub(crate) struct Timed<F> {
    inner: Pin<Box<F>>,
    clock: Arc<GuestClock>,
}

impl<F> Timed<F> {
    /// Charge every poll of `inner` to `clock`.
    pub(crate) fn new(clock: Arc<GuestClock>, inner: F) -> Self {
        Timed {
            inner: Box::pin(inner),
            clock,
        }
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let start = thread_cpu_ns();
        this.clock.poll_started.store(start, Ordering::Relaxed);
        let out = this.inner.as_mut().poll(cx);
        let spent = thread_cpu_ns().saturating_sub(start);
        this.clock.poll_started.store(IDLE, Ordering::Relaxed);
        this.clock.used.fetch_add(spent, Ordering::Relaxed);
        out
    }
}

/// CPU time of the calling thread, in nanoseconds.
#[cfg(unix)]
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Without a thread CPU clock: wall time since the first call (only time inside polls counts).
#[cfg(not(unix))]
fn thread_cpu_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(d: Duration) {
        let start = thread_cpu_ns();
        while thread_cpu_ns().saturating_sub(start) < d.as_nanos() as u64 {
            std::hint::black_box(0u64);
        }
    }

    #[tokio::test]
    async fn only_time_inside_polls_is_charged() {
        let clock = Arc::new(GuestClock::default());
        let timed = Timed::new(clock.clone(), async {
            burn(Duration::from_millis(20));
            // Waiting is not the guest's time.
            tokio::time::sleep(Duration::from_millis(200)).await;
            burn(Duration::from_millis(20));
        });
        timed.await;
        let used = clock.used();
        assert!(used >= Duration::from_millis(40), "{used:?}");
        assert!(
            used < Duration::from_millis(200),
            "sleep not charged: {used:?}"
        );
    }
}
