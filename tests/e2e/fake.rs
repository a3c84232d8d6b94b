//! A fake HTTP peer on 127.0.0.1 that records what it received and answers as told.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::any;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A running fake server.
pub struct Fake {
    pub origin: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Fake {
    /// Start a fake that answers every request with `status` and `body`.
    pub async fn start(status: u16, body: &'static str) -> Fake {
        Fake::start_slow(status, body, std::time::Duration::ZERO).await
    }

    /// Like [`Fake::start`], but every answer waits `delay` first.
    pub async fn start_slow(status: u16, body: &'static str, delay: std::time::Duration) -> Fake {
        Fake::serve(move |_| (status, body.to_string()), delay).await
    }

    /// A fake whose answer `respond` computes from the request (e.g. echoing a header back).
    pub async fn start_with(
        respond: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) -> Fake {
        Fake::serve(respond, std::time::Duration::ZERO).await
    }

    /// A fake whose answer `respond` computes from the request, with extra headers (a
    /// redirect's `location`, a media type replacing the default `application/json`).
    pub async fn start_with_headers(
        respond: impl Fn(&Received) -> (u16, Vec<(&'static str, String)>, String)
        + Send
        + Sync
        + 'static,
    ) -> Fake {
        let (_, open) = tokio::sync::watch::channel(true);
        Fake::serve_full(respond, |_| false, open, std::time::Duration::ZERO).await
    }

    /// A fake that answers `status` with one extra header (e.g. a redirect's `location`).
    pub async fn start_with_header(status: u16, name: &'static str, value: String) -> Fake {
        let (_, open) = tokio::sync::watch::channel(true);
        Fake::serve_full(
            move |_| (status, vec![(name, value.clone())], String::new()),
            |_| false,
            open,
            std::time::Duration::ZERO,
        )
        .await
    }

    async fn serve(
        respond: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
        delay: std::time::Duration,
    ) -> Fake {
        let (_, open) = tokio::sync::watch::channel(true);
        Fake::serve_full(
            move |r| {
                let (status, body) = respond(r);
                (status, Vec::new(), body)
            },
            |_| false,
            open,
            delay,
        )
        .await
    }

    /// A fake whose answers to requests `held` picks wait until `gate` holds `true`.
    pub async fn start_held(
        respond: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
        held: impl Fn(&Received) -> bool + Send + Sync + 'static,
        gate: tokio::sync::watch::Receiver<bool>,
    ) -> Fake {
        Fake::serve_full(
            move |r| {
                let (status, body) = respond(r);
                (status, Vec::new(), body)
            },
            held,
            gate,
            std::time::Duration::ZERO,
        )
        .await
    }

    async fn serve_full(
        respond: impl Fn(&Received) -> (u16, Vec<(&'static str, String)>, String)
        + Send
        + Sync
        + 'static,
        held: impl Fn(&Received) -> bool + Send + Sync + 'static,
        gate: tokio::sync::watch::Receiver<bool>,
        delay: std::time::Duration,
    ) -> Fake {
        let respond = Arc::new(respond);
        let held = Arc::new(held);
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = Router::new().fallback(any(
            move |method: Method, uri: Uri, headers: HeaderMap, bytes: Bytes| {
                let log = log.clone();
                let respond = respond.clone();
                let held = held.clone();
                let mut gate = gate.clone();
                async move {
                    let req = Received {
                        method: method.to_string(),
                        path: uri.to_string(),
                        headers,
                        body: bytes.to_vec(),
                    };
                    let (status, extra, body) = respond(&req);
                    let hold = held(&req);
                    log.lock().expect("lock").push(req);
                    if hold {
                        let _ = gate.wait_for(|open| *open).await;
                    }
                    tokio::time::sleep(delay).await;
                    let mut headers = HeaderMap::new();
                    headers.insert("content-type", "application/json".parse().expect("value"));
                    for (name, value) in extra {
                        headers.insert(name, value.parse().expect("header value"));
                    }
                    (StatusCode::from_u16(status).expect("status"), headers, body)
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake server");
        });
        Fake { origin, received }
    }

    /// What it received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}
