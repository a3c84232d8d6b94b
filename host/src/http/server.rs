//! The HTTP server under the router: accepts TCP connections, serves HTTP/1.1 on each through
//! hyper-util with a header-read timeout (which also reaps idle keep-alive connections), a
//! request-body read timeout and a handler timeout, and caps open connections: at the cap, the
//! longest-idle connection (no request in flight) is closed to make room, so idle or slow-loris
//! connections cannot lock out a provider. Owns nothing else: routes and handlers live in
//! [`super::router`]. TLS and HTTP/2 are the reverse proxy's job.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// Limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Longest wait for a request's complete header block, from the connection's start or the
    /// end of its previous response (so it also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// Longest wait between two chunks of a request body.
    pub body_timeout: Duration,
    /// Longest a handler may take to answer (503 after it).
    pub handler_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// One open connection as the cap sees it.
struct Conn {
    /// Requests being handled on it now.
    in_flight: AtomicUsize,
    /// When it last started or finished a request (ms since the server started).
    last_active: AtomicU64,
    /// Told to close (gracefully: an in-flight request still gets its answer).
    close: tokio::sync::Notify,
}

/// The open connections, by accept order.
#[derive(Default)]
struct Conns {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl Conns {
    /// Register a new connection; at `max`, close the longest-idle one first. `None` when every
    /// open connection has a request in flight (the new one is refused).
    fn admit(&self, max: usize, now: u64) -> Option<(u64, Arc<Conn>)> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= max {
            let idle = open
                .iter()
                .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, c)| c.last_active.load(Ordering::Acquire))
                .map(|(id, _)| *id)?;
            if let Some(c) = open.remove(&idle) {
                c.close.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(now),
            close: tokio::sync::Notify::new(),
        });
        open.insert(id, conn.clone());
        Some((id, conn))
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn close_all(&self) {
        for c in self.open.lock().unwrap_or_else(|p| p.into_inner()).values() {
            c.close.notify_one();
        }
    }

    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Counts a request in flight on a connection while it lives.
struct InFlight(Arc<Conn>, Instant);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .last_active
            .store(self.1.elapsed().as_millis() as u64, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serve `router` on `listener` until `shutdown` completes, then let open requests finish (for
/// at most the handler timeout) and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(
        tower::ServiceBuilder::new()
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                limits.handler_timeout,
            ))
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                limits.body_timeout,
            )),
    );
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder.http1_only());
    let conns = Arc::new(Conns::default());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let now = started.elapsed().as_millis() as u64;
        let Some((id, conn)) = conns.admit(limits.max_connections, now) else {
            tracing::warn!(%remote, open = conns.len(), "connection refused: every connection is busy");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let router = router.clone();
        let conns = conns.clone();
        tasks.spawn(async move {
            let on_conn = conn.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    on_conn.in_flight.fetch_add(1, Ordering::AcqRel);
                    let guard = InFlight(on_conn.clone(), started);
                    req.extensions_mut().insert(ConnectInfo(remote));
                    let router = router.clone();
                    async move {
                        let resp = router.oneshot(req.map(axum::body::Body::new)).await;
                        drop(guard);
                        Ok::<_, Infallible>(match resp {
                            Ok(r) => r,
                            Err(never) => match never {},
                        })
                    }
                },
            );
            let served = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(served);
            let result = tokio::select! {
                r = served.as_mut() => r,
                () = conn.close.notified() => {
                    served.as_mut().graceful_shutdown();
                    served.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
            conns.remove(id);
        });
    }
    drop(listener);
    conns.close_all();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.handler_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!("connections still open at shutdown were closed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let conns = Conns::default();
        let (a, ca) = conns.admit(2, 10).expect("a");
        let (b, cb) = conns.admit(2, 5).expect("b");
        // `b` is idle longest; `a` stays.
        let (_c, _) = conns.admit(2, 20).expect("c");
        assert_eq!(conns.len(), 2);
        assert!(conns.open.lock().expect("lock").contains_key(&a));
        assert!(!conns.open.lock().expect("lock").contains_key(&b));
        drop(cb);
        // Both open ones busy: a new connection is refused.
        ca.in_flight.store(1, Ordering::Release);
        for c in conns.open.lock().expect("lock").values() {
            c.in_flight.store(1, Ordering::Release);
        }
        assert!(conns.admit(2, 30).is_none());
    }
}
