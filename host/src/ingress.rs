//! Webhook ingress: `GET|POST /hooks/{endpoint}`.
//!
//! Rate limits per client address and per endpoint come first (429, counted, nothing stored;
//! [`guard`]). The body is capped before anything is hashed (413); the endpoint's connector
//! decides with `verify` whether the request is authentic, a handshake to answer, or to be
//! refused; an accepted request's raw body and its processing job are written in one
//! transaction, and only then is the provider answered 2xx. When the database or the plugin
//! cannot do its part the answer is 503, so the provider retries: an acknowledged event is never
//! lost. Every outcome is counted; a refused request leaves a receipt only within a small sample
//! per endpoint per minute, with capped headers. No receipt keeps a secret: secret-named query
//! parameters and headers are redacted before anything is stored.

pub mod backlog;
pub mod guard;
pub mod retention;
pub mod self_test;

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::metrics::{self, IngressOutcome as Outcome};
use crate::runtime::types::{HttpRequest, HttpResponse, Verdict};
use crate::store::{ConnectionRecord, EndpointRecord, Mode, NewReceipt, Store, StoreError};
use crate::tenancy::{Scope, auth};
use crate::vault::{Secret, SecretScope, Vault, VaultError};

/// The job that parses and routes an accepted receipt.
pub const PROCESS_RECEIPT: &str = "process-receipt";

fn plain(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// 429 for a request a rate limit turned away (counted by the guard, never stored).
fn too_many(limited: guard::Limited) -> Response {
    let mut resp = plain(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &limited.to_string(),
    );
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("1"),
    );
    resp
}

/// 503 while the job queue is at its bound: the provider retries later.
fn backlogged() -> Response {
    let mut resp = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "backlog_full",
        "the host's work queue is full; retry later",
    );
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("5"),
    );
    resp
}

fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

fn unavailable() -> Response {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the request could not be recorded; retry later",
    )
}

/// What the receipt records about a request before the body is read (secrets redacted).
struct Seen {
    endpoint_id: String,
    method: String,
    /// Secret-free: query parameters and headers redacted.
    url: String,
    /// Redacted headers.
    headers: Vec<(String, String)>,
}

impl Seen {
    async fn record(
        &self,
        state: &AppState,
        outcome: &str,
        status: u16,
        reason: Option<&str>,
        body_sha256: Option<&str>,
    ) -> Result<(), StoreError> {
        state.ingress.count(match outcome {
            "responded" => guard::Outcome::Responded,
            "rejected" => guard::Outcome::Rejected,
            "too-large" => guard::Outcome::TooLarge,
            _ => guard::Outcome::Failed,
        });
        // Refusals are unauthenticated: only a sample of them reaches the write gate.
        if !state.ingress.sample_refusal(&self.endpoint_id) {
            return Ok(());
        }
        let headers = serde_json::to_string(&guard::cap_headers(self.headers.clone()))
            .unwrap_or_else(|_| "[]".into());
        let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
        tx.insert_receipt(&NewReceipt {
            endpoint_id: &self.endpoint_id,
            method: &self.method,
            url: &self.url,
            headers: &headers,
            body_sha256,
            body: None,
            outcome,
            status,
            reason,
            trace: None,
        })
        .await?;
        tx.commit().await
    }
}

/// `GET|POST /hooks/{endpoint}`, counted in the metrics by connector and outcome.
pub async fn hook(
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Body,
) -> Response {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let mut connector = None;
    let span = tracing::info_span!(
        "webhook",
        endpoint = %endpoint_id,
        connector = tracing::field::Empty,
        outcome = tracing::field::Empty
    );
    let request = (endpoint_id, method, uri, headers, extensions, body);
    let (outcome, response) = receive(&state, request, &mut connector)
        .instrument(span.clone())
        .await;
    span.record("connector", connector.as_deref().unwrap_or("none"));
    span.record("outcome", outcome.as_str());
    metrics::ingress(connector.as_deref(), outcome, started.elapsed());
    response
}

/// A webhook request's parts as the router hands them over.
type Request = (String, Method, Uri, HeaderMap, axum::http::Extensions, Body);

/// Answer one webhook request; `connector` is set once the endpoint is known.
async fn receive(
    state: &AppState,
    (endpoint_id, method, uri, headers, extensions, body): Request,
    connector: &mut Option<String>,
) -> (Outcome, Response) {
    if let Some(ConnectInfo(client)) = extensions.get::<ConnectInfo<SocketAddr>>()
        && let Err(limited) = state.ingress.admit_client(client.ip())
    {
        return (Outcome::RateLimited, too_many(limited));
    }
    if endpoint_id.len() > 64 {
        return (Outcome::NotFound, not_found());
    }
    let cached = match state
        .endpoints
        .get(&state.store, &state.vault, &endpoint_id)
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::warn!(endpoint = %endpoint_id, "webhook for an unknown endpoint");
            return (Outcome::NotFound, not_found());
        }
        Err(e) => {
            tracing::error!(error = %e, "ingress: database unavailable");
            return (Outcome::Failed, unavailable());
        }
    };
    let endpoint = &cached.endpoint;
    *connector = Some(endpoint.connector.clone());
    if let Err(limited) = state.ingress.admit_endpoint(&endpoint.id) {
        return (Outcome::RateLimited, too_many(limited));
    }
    // The host's own route self-test: answered here, never stored nor shown to a connector.
    if let Some(token) = headers.get(self_test::HEADER) {
        let token = token.to_str().unwrap_or_default();
        if !self_test::valid(&state.vault, &endpoint.id, token, crate::store::now_ms()) {
            return (
                Outcome::Rejected,
                plain(StatusCode::FORBIDDEN, "rejected", "invalid self-test token"),
            );
        }
        let body = serde_json::json!({"self_test": self_test::ANSWER, "endpoint": endpoint.id});
        return (Outcome::SelfTest, axum::Json(body).into_response());
    }
    if !state.ingress.admit_backlog() {
        return (Outcome::Backlogged, backlogged());
    }
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let url = format!(
        "{}{}",
        state.public_url,
        uri.path_and_query().map_or("", |p| p.as_str())
    );
    let seen = Seen {
        url: guard::redact_url(&url),
        method: method.as_str().to_string(),
        headers: guard::redact_headers(&pairs),
        endpoint_id: endpoint.id.clone(),
    };

    // The cap comes before any hashing: by the declared length, then while reading.
    let limit = state.ingress_max_body;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match declared {
        Some(n) if n > limit as u64 => None,
        _ => axum::body::to_bytes(body, limit).await.ok(),
    };
    let Some(body) = body else {
        let _ = seen
            .record(
                state,
                "too-large",
                413,
                Some("body over the ingress limit"),
                None,
            )
            .await;
        let response = plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        );
        return (Outcome::TooLarge, response);
    };
    let sha256 = hex::encode(Sha256::digest(&body));

    let Some(plugin) = state
        .plugins
        .connector(&endpoint.connector, Some(&endpoint.id))
    else {
        tracing::error!(endpoint = %endpoint.id, connector = %endpoint.connector, "connector not loaded");
        let _ = seen
            .record(
                state,
                "failed",
                503,
                Some("connector not loaded"),
                Some(&sha256),
            )
            .await;
        return (Outcome::Failed, unavailable());
    };
    let scope = cached.scope.clone();
    // The connector verifies the request as it came; only the stored copy is redacted.
    let request = HttpRequest {
        method: seen.method.clone(),
        url,
        headers: pairs,
        body: body.to_vec(),
    };
    let verdict = match plugin.verify(scope, &request).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(endpoint = %endpoint.id, error = %e, "connector verify failed");
            let _ = seen
                .record(state, "failed", 503, Some(&e.to_string()), Some(&sha256))
                .await;
            return (Outcome::Failed, unavailable());
        }
    };
    match verdict {
        Verdict::Accept | Verdict::AcceptWithResponse(_) => {
            if let Err(e) = accept(state, &seen, &sha256, &body).await {
                state.ingress.count(guard::Outcome::Failed);
                tracing::error!(endpoint = %endpoint.id, error = %e, "ingress: receipt not stored");
                return (Outcome::Failed, unavailable());
            }
            state.ingress.count(guard::Outcome::Accepted);
            state.ingress.backlog().accepted();
            let response = match verdict {
                Verdict::AcceptWithResponse(r) => respond(r),
                _ => StatusCode::OK.into_response(),
            };
            (Outcome::Accepted, response)
        }
        Verdict::Respond(r) => {
            if let Err(e) = seen
                .record(state, "responded", r.status, None, Some(&sha256))
                .await
            {
                tracing::error!(error = %e, "ingress: receipt not stored");
            }
            (Outcome::Responded, respond(r))
        }
        Verdict::Reject(r) => {
            let status = match r.status {
                400..=499 => r.status,
                _ => 403,
            };
            let reason: String = r.reason.chars().take(200).collect();
            if let Err(e) = seen
                .record(state, "rejected", status, Some(&reason), Some(&sha256))
                .await
            {
                tracing::error!(error = %e, "ingress: receipt not stored");
            }
            tracing::info!(endpoint = %endpoint.id, status, reason = %reason, "webhook refused");
            let response = plain(
                StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                "rejected",
                &reason,
            );
            (Outcome::Rejected, response)
        }
    }
}

/// How long ingress keeps an endpoint and its opened secrets: changes made through another
/// host process take effect after at most this long (this process forgets at once).
const ENDPOINT_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// An endpoint with the secrets its connector's `verify` may use.
pub struct CachedEndpoint {
    /// The endpoint.
    pub endpoint: EndpointRecord,
    /// Its secrets (and a per-connection endpoint's connection's), opened.
    pub scope: SecretScope,
    /// A per-connection endpoint's connection.
    pub connection: Option<ConnectionRecord>,
}

/// Cached endpoints by id, with when they were read.
type CacheMap =
    std::collections::HashMap<String, (std::time::Instant, std::sync::Arc<CachedEndpoint>)>;

/// Endpoints and their opened secrets, kept for [`ENDPOINT_TTL`] so a webhook does not read and
/// decrypt them on every request. Unknown endpoints are never kept.
#[derive(Clone, Default)]
pub struct EndpointCache {
    entries: std::sync::Arc<std::sync::RwLock<CacheMap>>,
}

impl EndpointCache {
    /// The endpoint `id` with its secrets, from memory or the database.
    pub async fn get(
        &self,
        store: &Store,
        vault: &Vault,
        id: &str,
    ) -> Result<Option<std::sync::Arc<CachedEndpoint>>, VaultError> {
        if let Ok(entries) = self.entries.read()
            && let Some((at, e)) = entries.get(id)
            && at.elapsed() < ENDPOINT_TTL
        {
            return Ok(Some(e.clone()));
        }
        let mut tx = store.begin(Scope::Host, Mode::Read).await?;
        let Some(endpoint) = tx.endpoint(id).await? else {
            return Ok(None);
        };
        let own = vault.open_endpoint(&mut tx, &endpoint).await?;
        tx.commit().await?;
        let (scope, connection) = secret_scope(store, vault, &endpoint, own).await?;
        let entry = std::sync::Arc::new(CachedEndpoint {
            endpoint,
            scope,
            connection,
        });
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (at, _)| at.elapsed() < ENDPOINT_TTL);
            entries.insert(id.to_string(), (std::time::Instant::now(), entry.clone()));
        }
        Ok(Some(entry))
    }

    /// Forget endpoint `id` (it, or a connection on it, changed through this process); the
    /// others stay warm.
    pub fn evict(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(id);
        }
    }
}

/// The secrets `verify` and `parse` may use: the endpoint's own (`own`, opened by the caller
/// with the endpoint), and for a per-connection endpoint (Twilio, Telegram) its connection's;
/// with that connection.
async fn secret_scope(
    store: &Store,
    vault: &Vault,
    endpoint: &EndpointRecord,
    own: Vec<(String, Secret)>,
) -> Result<(SecretScope, Option<ConnectionRecord>), VaultError> {
    let mut connection = None;
    if endpoint.tenant_id.is_some()
        && let Some((scope, connection_id)) = auth::route_of(store, &endpoint.id).await?
    {
        let mut tx = store.begin(Scope::Tenant(scope), Mode::Read).await?;
        if let Some(c) = tx.connection(&connection_id).await? {
            let secrets = vault.open_connection(&mut tx, &c.id).await?;
            connection = Some((c, secrets));
        }
        tx.commit().await?;
    }
    let scope = Vault::call_scope(
        Some((endpoint, own)),
        connection.as_ref().map(|(c, s)| (c, s.clone())),
    );
    Ok((scope, connection.map(|(c, _)| c)))
}

/// Store the receipt with its body and queue its processing, in one transaction shared with
/// the other requests waiting at that moment (group commit); answered after that commit.
async fn accept(state: &AppState, seen: &Seen, sha256: &str, body: &[u8]) -> Result<(), String> {
    let accepted = Accepted {
        endpoint_id: seen.endpoint_id.clone(),
        method: seen.method.clone(),
        url: seen.url.clone(),
        headers: serde_json::to_string(&seen.headers).unwrap_or_else(|_| "[]".into()),
        sha256: sha256.to_string(),
        body: body.to_vec(),
        trace: crate::telemetry::current_traceparent(),
    };
    let (done, committed) = tokio::sync::oneshot::channel();
    state
        .receipts
        .send((accepted, done))
        .await
        .map_err(|_| "the receipt writer has stopped".to_string())?;
    committed
        .await
        .map_err(|_| "the receipt writer has stopped".to_string())?
}

/// An accepted request on its way to the database.
pub struct Accepted {
    endpoint_id: String,
    method: String,
    url: String,
    headers: String,
    sha256: String,
    body: Vec<u8>,
    /// The webhook's trace, which its processing job continues.
    trace: Option<String>,
}

/// A request waiting for its commit, and where to say how it went.
pub type Pending = (Accepted, tokio::sync::oneshot::Sender<Result<(), String>>);

/// Most requests one commit carries.
const GROUP_MAX: usize = 256;

/// Start the writer that commits accepted receipts and their jobs in groups: it takes every
/// request waiting when the previous commit ends (at most [`GROUP_MAX`]), writes them in one
/// transaction, and only then answers each. A failed group fails every request in it (503).
pub fn start_writer(
    store: Store,
    jobs: std::sync::Arc<tokio::sync::Notify>,
    tasks: &'static crate::supervise::Tasks,
) -> tokio::sync::mpsc::Sender<Pending> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Pending>(4 * GROUP_MAX);
    // Supervised: a writer that dies is restarted on the same queue (the requests of the group
    // it held get 503 and are retried by their provider).
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    crate::supervise::supervise_in(tasks, "receipt writer", move || {
        write_groups(store.clone(), jobs.clone(), rx.clone())
    });
    tx
}

/// The writer's loop: ends (finished) when every sender is gone.
async fn write_groups(
    store: Store,
    jobs: std::sync::Arc<tokio::sync::Notify>,
    rx: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Pending>>>,
) -> crate::supervise::Ended {
    let mut rx = rx.lock().await;
    {
        while let Some(group) = crate::store::next_group(&mut rx, GROUP_MAX).await {
            let (accepted, waiting): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            let requests = accepted.len();
            metrics::receipt_group(requests);
            let result = write_group(&store, accepted).await.map_err(|e| {
                tracing::error!(error = %e, requests, "ingress: receipts not stored");
                e.to_string()
            });
            for done in waiting {
                let _ = done.send(result.clone());
            }
            jobs.notify_waiters();
            jobs.notify_one();
        }
    }
    crate::supervise::Ended::Finished
}

/// Store a group of accepted requests as one unit of the store's grouped writes (on SQLite the
/// one connection that writes, so no other connection's commit empties its page cache).
async fn write_group(store: &Store, accepted: Vec<Accepted>) -> Result<(), StoreError> {
    store
        .grouped(Scope::Host, move |tx| {
            Box::pin(async move {
                let receipts: Vec<NewReceipt<'_>> = accepted
                    .iter()
                    .map(|a| NewReceipt {
                        endpoint_id: &a.endpoint_id,
                        method: &a.method,
                        url: &a.url,
                        headers: &a.headers,
                        body_sha256: Some(&a.sha256),
                        body: Some(&a.body),
                        outcome: "accepted",
                        status: 200,
                        reason: None,
                        trace: a.trace.as_deref(),
                    })
                    .collect();
                tx.insert_accepted(&receipts, PROCESS_RECEIPT).await
            })
        })
        .await
}

/// The plugin's answer, minus headers the server itself owns.
fn respond(r: HttpResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    for (k, v) in r.headers {
        let name = k.to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "content-length"
                | "transfer-encoding"
                | "connection"
                | "set-cookie"
                | "date"
                | "server"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(v)) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(id: &str) -> std::sync::Arc<CachedEndpoint> {
        std::sync::Arc::new(CachedEndpoint {
            endpoint: EndpointRecord {
                id: id.into(),
                connector: "meta-cloud".into(),
                owner: "operator".into(),
                partner_id: None,
                tenant_id: None,
                settings: "{}".into(),
                created_at: 0,
            },
            scope: SecretScope::default(),
            connection: None,
        })
    }

    #[test]
    fn evicting_one_endpoint_keeps_the_others_warm() {
        let cache = EndpointCache::default();
        if let Ok(mut entries) = cache.entries.write() {
            for id in ["end_a", "end_b"] {
                entries.insert(id.into(), (std::time::Instant::now(), cached(id)));
            }
        }
        cache.evict("end_a");
        let entries = cache.entries.read().expect("lock");
        assert!(!entries.contains_key("end_a"));
        assert!(
            entries.contains_key("end_b"),
            "a change to one endpoint kept the other"
        );
    }
}
