//! The job queue's workers: claim a due job (a lease that expires, so a crashed worker's jobs
//! are taken up again), run it, and record the outcome — done, retried with exponential back-off
//! and jitter, or dead-lettered after [`MAX_ATTEMPTS`] for an operator to list and replay.
//!
//! `process-receipt` parses an accepted webhook with its connector, routes each event by
//! `(endpoint, channel address)` to a tenant's connection, and writes it in that tenant's scope:
//! messages are deduplicated on `(connection, provider message id)`, contacts and conversations
//! upserted and the 24-hour window opened; status events move outbound messages forward only.
//! Every write is idempotent, so a job run twice (a lost lease) changes nothing the second time.
//! Each event of a receipt is applied on its own: one that fails does not stop the others, and a
//! status that may be early (its send is still in flight) waits as its own `apply-status` job,
//! bounded by one job lease, then is dropped with a log line.
//!
//! Every job carries a fairness key (its tenant; its endpoint for `process-receipt`), and claims
//! are fair between keys (see [`crate::store::Tx::claim_job`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::catalog::Catalog;
use crate::ingress::{EndpointCache, PROCESS_RECEIPT};
use crate::runtime::types::{
    AccountChange, AccountEvent, DeliveryState, ErrorKind, HttpRequest, InboundEvent, MessageKind,
    Pricing, Referral, TemplateStatus,
};
use crate::store::{
    ConnectionRecord, Job, MessagePricing, Mode, NewMessage, Receipt, ReferralRecord, Store,
    StoreError, Tx, now_ms,
};
use crate::tenancy::{Scope, TenantScope, auth};
use crate::vault::Vault;

/// Attempts before a job is dead-lettered.
pub const MAX_ATTEMPTS: i64 = 8;

/// The job that runs a tenant's reply policy on one inbound message.
pub const DECIDE: &str = "decide";
/// The job that sends one reply through its connector.
pub const SEND: &str = "send";
/// Every kind of job the host queues.
pub const KINDS: [&str; 5] = [
    crate::ingress::PROCESS_RECEIPT,
    DECIDE,
    SEND,
    crate::media::FETCH_MEDIA,
    APPLY_STATUS,
];
/// How long a suspended tenant's job waits before it looks again (reinstatement wakes it
/// at once; this only bounds a reinstatement that raced with the job's deferral).
pub const SUSPENDED_RECHECK_MS: i64 = 5 * 60 * 1000;
/// The customer-service window: free-form replies only this long after the last inbound message.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Payload of `decide` and `send` jobs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct MessageJob {
    /// The tenant.
    pub tenant: String,
    /// The message.
    pub message: String,
}

/// What a worker needs.
#[derive(Clone)]
pub struct Workers {
    /// The database.
    pub store: Store,
    /// The loaded plugins.
    pub plugins: Arc<Catalog>,
    /// The vault.
    pub vault: Vault,
    /// Woken when a job is queued.
    pub notify: Arc<Notify>,
    /// Provider base URLs and the operator's connector settings.
    pub providers: Arc<crate::connector::Providers>,
    /// Public base URL (webhook URLs for status callbacks).
    pub public_url: String,
    /// How long a claim holds before another worker may take the job (ms).
    pub lease_ms: i64,
    /// Sends per second per connection, across every host on the database.
    pub send_rate: u32,
    /// Endpoints and their opened secrets (shared with ingress).
    pub endpoints: EndpointCache,
    /// Largest inbound media download kept, in bytes.
    pub media_max_bytes: usize,
    /// Mails the customers' `/login` codes.
    pub mailer: Arc<crate::mail::Mailer>,
}

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    /// Worth another attempt later.
    #[error("{0}")]
    Retry(String),
    /// Will not get better by retrying: dead-letter it.
    #[error("{0}")]
    Permanent(String),
    /// Not a failure: run it again at this time (Unix ms) without counting the attempt.
    #[error("deferred: {1}")]
    Defer(i64, String),
    /// A failure worth another attempt at this time (Unix ms), counted like [`JobError::Retry`]
    /// (a provider's `retry_after`).
    #[error("{1}")]
    RetryAt(i64, String),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Retry(e.to_string())
    }
}

impl From<crate::vault::VaultError> for JobError {
    fn from(e: crate::vault::VaultError) -> Self {
        JobError::Retry(e.to_string())
    }
}

/// Why a job's grouped write was undone: its work was already recorded by an earlier run (a
/// unique row exists), or it failed.
#[derive(Debug)]
pub(crate) enum Undone {
    /// The row this write creates exists: an earlier run did it; nothing more to do.
    Already,
    /// The write failed.
    Failed(JobError),
}

impl Undone {
    /// A refused unique row is [`Undone::Already`]; any other failure is [`Undone::Failed`].
    pub(crate) fn unless_exists(e: StoreError) -> Undone {
        match e {
            StoreError::Conflict(_) => Undone::Already,
            e => Undone::Failed(e.into()),
        }
    }
}

impl From<StoreError> for Undone {
    fn from(e: StoreError) -> Self {
        Undone::Failed(e.into())
    }
}

impl From<JobError> for Undone {
    fn from(e: JobError) -> Self {
        Undone::Failed(e)
    }
}

/// What a worker runs next: jobs it queued already claimed for itself, in order after the job
/// that queued them; and the job that recorded its own completion in its last transaction.
#[derive(Default)]
pub(crate) struct Chain {
    next: std::collections::VecDeque<Job>,
    completed: Option<String>,
}

impl Chain {
    /// Run `job` after the current one.
    pub(crate) fn then(&mut self, job: Job) {
        self.next.push_back(job);
    }

    /// Note that `job` was marked done by its own last write ([`complete_in`]), now committed.
    pub(crate) fn completed(&mut self, job: &Job) {
        self.completed = Some(job.id.clone());
    }

    /// Whether `job` was marked done by its own last write (once).
    fn take_completed(&mut self, job: &Job) -> bool {
        self.completed.take_if(|id| *id == job.id).is_some()
    }
}

/// Claim `receipt`'s body's first delivery on its endpoint (a grouped write): a provider's
/// redelivery of a body already applied (our 200 did not reach it) is stored but not applied
/// again, so a replayed `PARTNER_REMOVED` cannot end a number reconnected meanwhile. The id of
/// the first delivery.
async fn claim_first_delivery(store: &Store, receipt: &Receipt) -> Result<String, StoreError> {
    let digest: [u8; 32] =
        <sha2::Sha256 as sha2::Digest>::digest(receipt.body.as_deref().unwrap_or_default()).into();
    let (endpoint, id, at) = (
        receipt.endpoint_id.clone(),
        receipt.id.clone(),
        receipt.received_at,
    );
    store
        .grouped(Scope::Host, move |tx| {
            Box::pin(async move {
                tx.first_delivery(
                    &endpoint,
                    &digest,
                    &id,
                    at,
                    crate::store::REDELIVERY_WINDOW_MS,
                )
                .await
            })
        })
        .await
}

/// Mark `job` done in `tx`, the job's last write, so the worker needs no transaction of its own
/// for it; once that commits, tell the chain ([`Chain::completed`]).
pub(crate) async fn complete_in(tx: &mut Tx, job: &Job) -> Result<(), StoreError> {
    if !tx.complete_job(job).await? {
        tracing::warn!(job = %job.id, "job finished after its lease was taken over");
    }
    Ok(())
}

/// How long an idle worker of `n` waits for a wake-up before it looks for due jobs itself
/// (deferred jobs coming due, other hosts' jobs): each at most every 250 ms, and together
/// about 16 times a second however many they are (past 4).
fn idle_poll(n: usize) -> Duration {
    Duration::from_millis((250 * n.max(4) as u64 / 4).min(5_000))
}

/// Back-off before attempt `attempts + 1`: 1 s doubling to at most 10 min, ±25 % jitter.
pub fn backoff_ms(attempts: i64) -> i64 {
    let base = 1000i64
        .saturating_mul(1 << attempts.clamp(0, 10))
        .min(600_000);
    let mut r = [0u8; 2];
    crate::tenancy::ids::fill_random(&mut r);
    let jitter = (i64::from(u16::from_le_bytes(r)) % 501) - 250; // -250..=250 per mille
    base + base * jitter / 1000
}

impl Workers {
    /// Start `n` workers on the plugin threads (their plugin calls run in place, with no hop
    /// from the HTTP runtime); they stop when `shutdown` fires.
    pub fn spawn(
        &self,
        n: usize,
        shutdown: tokio::sync::watch::Receiver<bool>,
        tasks: &'static crate::supervise::Tasks,
    ) {
        let threads = self.plugins.plugin_threads();
        let _on_plugin_threads = threads.enter();
        let idle = idle_poll(n);
        for _ in 0..n {
            let w = self.clone();
            let shutdown = shutdown.clone();
            // Supervised: a worker that panics (a bug in one job) is restarted.
            crate::supervise::supervise_in(tasks, "job worker", move || {
                let (w, mut shutdown) = (w.clone(), shutdown.clone());
                async move {
                    loop {
                        if *shutdown.borrow() || shutdown.has_changed().is_err() {
                            break;
                        }
                        match w.run_one().await {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "job queue unavailable"),
                        }
                        tokio::select! {
                            () = w.notify.notified() => {}
                            () = tokio::time::sleep(idle) => {}
                            // Stopped, or the host that would stop them is gone (the workers
                            // live on the plugin threads, not on the host's runtime).
                            changed = shutdown.changed() => if changed.is_err() { break },
                        }
                    }
                    crate::supervise::Ended::Finished
                }
            });
        }
    }

    /// Claim and run one job, then the jobs it queued already claimed for this worker (a
    /// message's decision, a decision's sends); `Ok(false)` when none is due.
    pub async fn run_one(&self) -> Result<bool, StoreError> {
        let lease_ms = self.lease_ms;
        let job = self
            .store
            .grouped(Scope::Host, move |tx| {
                Box::pin(async move { tx.claim_job(lease_ms).await })
            })
            .await?;
        let Some(job) = job else {
            return Ok(false);
        };
        let mut chain = Chain::default();
        chain.then(job);
        while let Some(job) = chain.next.pop_front() {
            self.run_claimed(job, &mut chain).await?;
        }
        Ok(true)
    }

    /// Run a job this worker holds and record its outcome.
    async fn run_claimed(&self, job: Job, chain: &mut Chain) -> Result<(), StoreError> {
        use tracing::Instrument as _;
        let span =
            tracing::info_span!("job", kind = %job.kind, job = %job.id, attempt = job.attempts);
        crate::telemetry::continue_trace(&span, job.trace.as_deref());
        self.run_traced(job, chain).instrument(span).await
    }

    /// [`Workers::run_claimed`] inside the job's span.
    async fn run_traced(&self, job: Job, chain: &mut Chain) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let outcome = match self.held_for(&job).await {
            Ok(Some(why)) => Err(JobError::Defer(now_ms() + SUSPENDED_RECHECK_MS, why)),
            Ok(None) => match job.kind.as_str() {
                PROCESS_RECEIPT => self.process_receipt(&job, chain).await,
                DECIDE => self.decide(&job, chain).await,
                SEND => self.send(&job, chain).await,
                crate::media::FETCH_MEDIA => self.fetch_media(&job).await,
                APPLY_STATUS => self.apply_status_job(&job).await,
                other => Err(JobError::Permanent(format!("unknown job kind {other:?}"))),
            },
            Err(e) => Err(JobError::Retry(e.to_string())),
        };
        // What giving up means for the job's message or media is written first, in its own
        // tenant transaction, never inside the job's: a task holds one write at a time (the
        // store refuses a second). Should the outcome below then fail, the job runs again and
        // finds its reply already failed.
        let gives_up = matches!(&outcome, Err(JobError::Permanent(_)))
            || (matches!(&outcome, Err(JobError::Retry(_) | JobError::RetryAt(..)))
                && job.attempts >= MAX_ATTEMPTS);
        if let (true, Err(e)) = (gives_up, &outcome) {
            let consequence = match job.kind.as_str() {
                SEND => Some(self.send_gave_up(&job, &e.to_string()).await),
                crate::media::FETCH_MEDIA => Some(self.media_gave_up(&job, &e.to_string()).await),
                _ => None,
            };
            if let Some(Err(e2)) = consequence {
                tracing::warn!(job = %job.id, kind = %job.kind, error = %e2, "could not record that the job gave up");
            }
        }
        let label = match &outcome {
            Ok(()) => "ok",
            Err(JobError::Defer(..)) => "deferred",
            Err(_) if gives_up => "dead",
            Err(_) => "retry",
        };
        crate::metrics::job(&job.kind, label, started.elapsed());
        // A completion written by the job itself only counts when the job succeeded (a failure
        // rolled that transaction back).
        let completed = chain.take_completed(&job);
        if completed && outcome.is_ok() {
            return Ok(());
        }
        self.store
            .grouped(Scope::Host, move |tx| {
                Box::pin(async move {
                    match outcome {
                        Err(JobError::Defer(at, why)) => tx.defer_job(&job, at, &why).await,
                        Ok(()) => complete_in(tx, &job).await,
                        Err(JobError::Retry(e)) if job.attempts < MAX_ATTEMPTS => {
                            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed; will retry");
                            let at = now_ms() + backoff_ms(job.attempts);
                            tx.fail_job(&job, &e, Some(at)).await
                        }
                        Err(JobError::RetryAt(at, e)) if job.attempts < MAX_ATTEMPTS => {
                            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed; will retry when the provider asked");
                            tx.fail_job(&job, &e, Some(at.max(now_ms() + 1000))).await
                        }
                        Err(e) => {
                            tracing::error!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job dead-lettered");
                            tx.fail_job(&job, &e.to_string(), None).await
                        }
                    }
                })
            })
            .await
    }

    /// Why a tenant's media download must wait: its tenant is suspended (`decide` and `send`
    /// check it in their own first read). Receipts are processed regardless, so what arrived is
    /// stored; the tenant's replies wait.
    async fn held_for(&self, job: &Job) -> Result<Option<String>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Of {
            tenant: String,
        }
        if job.kind != crate::media::FETCH_MEDIA {
            return Ok(None);
        }
        let Ok(Of { tenant }) = serde_json::from_str::<Of>(&job.payload) else {
            return Ok(None);
        };
        Ok(auth::is_suspended(&self.store, &tenant)
            .await?
            .then(|| auth::suspended_reason(&tenant)))
    }

    async fn process_receipt(&self, job: &Job, chain: &mut Chain) -> Result<(), JobError> {
        let id = job
            .receipt_id
            .as_deref()
            .ok_or_else(|| JobError::Permanent("job has no receipt".into()))?;
        // Not in the claim's own write: a failure here must count as an attempt of the job.
        // The receipt is read outside the writer's turn.
        let mut tx = self.store.begin(Scope::Host, Mode::Read).await?;
        let receipt = tx.receipt(id).await?;
        tx.commit().await?;
        let receipt =
            receipt.ok_or_else(|| JobError::Permanent(format!("receipt {id} is gone")))?;
        let first = claim_first_delivery(&self.store, &receipt).await?;
        if first != id {
            tracing::info!(receipt = %id, first = %first, "the provider delivered an identical body again: not applied twice");
            return Ok(());
        }
        let cached = self
            .endpoints
            .get(&self.store, &self.vault, &receipt.endpoint_id)
            .await?
            .ok_or_else(|| JobError::Permanent("the receipt's endpoint is gone".into()))?;
        let endpoint = &cached.endpoint;
        let plugin = self
            .plugins
            .connector(&endpoint.connector, Some(&endpoint.id))
            .ok_or_else(|| {
                JobError::Retry(format!("connector {} is not loaded", endpoint.connector))
            })?;
        let scope = cached.scope.clone();
        let request = HttpRequest {
            method: receipt.method,
            url: receipt.url,
            headers: serde_json::from_str(&receipt.headers).unwrap_or_default(),
            body: receipt.body.unwrap_or_default(),
        };
        // A per-connection endpoint tells the connector whose it is (Telegram's updates do not
        // name the bot they are for).
        let connection = cached
            .connection
            .as_ref()
            .map(|c| self.providers.connection_info(c, &plugin, &self.public_url));
        let events = match plugin.parse(scope, &request, connection.as_ref()).await {
            Ok(Ok(events)) => events,
            // An authentic body the connector cannot read: keep it dead-lettered for a replay
            // once the plugin is fixed.
            Ok(Err(malformed)) => {
                return Err(JobError::Permanent(format!("malformed: {malformed}")));
            }
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        // Each event on its own: one that fails neither blocks nor undoes the others (a body
        // may carry several tenants' events). A failed event makes the whole receipt run again
        // later; every write below is idempotent, so the others change nothing the second time.
        let mut failed: Option<JobError> = None;
        // The receipt records whose data it holds (retention, disconnect and deletion).
        let mut noted = None;
        // A receipt of one message is marked done in that message's transaction.
        let complete = (events.len() == 1).then_some(job);
        for event in events {
            if let Err(e) = self
                .apply_event(&endpoint.id, id, &mut noted, event, chain, complete)
                .await
            {
                tracing::warn!(receipt = %id, error = %e, "an event of the receipt failed; the others were applied");
                failed = Some(match (failed, e) {
                    (Some(JobError::Retry(r)), _) | (_, JobError::Retry(r)) => JobError::Retry(r),
                    (_, e) => e,
                });
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Apply one event of a receipt of `endpoint_id`.
    async fn apply_event(
        &self,
        endpoint_id: &str,
        id: &str,
        noted: &mut Option<(String, String)>,
        event: InboundEvent,
        chain: &mut Chain,
        complete: Option<&Job>,
    ) -> Result<(), JobError> {
        match event {
            event @ (InboundEvent::Message(_) | InboundEvent::Echo(_)) => {
                let (m, echo) = match event {
                    InboundEvent::Echo(m) => (m, true),
                    InboundEvent::Message(m) => (m, false),
                    _ => return Ok(()),
                };
                let Some((tenant, connection)) =
                    auth::routed(&self.store, endpoint_id, &m.channel_address).await?
                else {
                    tracing::warn!(receipt = %id, address = %m.channel_address, "message for an address no connection owns");
                    return Ok(());
                };
                // The receipt's route is noted with the message (see `note_route`).
                let pair = (tenant.id().to_string(), connection.clone());
                let receipt = Received {
                    id: id.to_string(),
                    note_route: noted.as_ref() != Some(&pair),
                    job: complete.cloned(),
                };
                let (tenant_id, lease_ms) = (pair.0.clone(), self.lease_ms);
                let stored = self
                    .store
                    .grouped(Scope::Tenant(tenant), move |tx| {
                        Box::pin(store_message(
                            tx, tenant_id, connection, m, echo, receipt, lease_ms,
                        ))
                    })
                    .await;
                let decide = match stored {
                    Ok(decide) => decide,
                    // Already stored (a provider retry or a second run): nothing to do but
                    // note whose data this receipt holds.
                    Err(Undone::Already) => {
                        return self.note_route(id, noted, &pair.0, &pair.1).await;
                    }
                    // The receipt still says whose data it holds (disconnect and deletion
                    // find it by that), whatever becomes of the message.
                    Err(Undone::Failed(e)) => {
                        if let Err(note) = self.note_route(id, noted, &pair.0, &pair.1).await {
                            tracing::warn!(receipt = %id, error = %note, "could not note the receipt's route");
                        }
                        return Err(e);
                    }
                };
                *noted = Some(pair);
                if let Some(job) = complete {
                    chain.completed(job);
                }
                if let Some(job) = decide {
                    chain.then(job);
                }
                self.notify.notify_one();
            }
            InboundEvent::Status(s) => {
                let Some((tenant, connection)) =
                    auth::routed(&self.store, endpoint_id, &s.channel_address).await?
                else {
                    tracing::warn!(receipt = %id, address = %s.channel_address, "status for an address no connection owns");
                    return Ok(());
                };
                self.note_route(id, noted, tenant.id(), &connection).await?;
                let status = StatusJob {
                    tenant: tenant.id().to_string(),
                    connection,
                    provider_message_id: s.provider_message_id.clone(),
                    state: state_name(s.state).to_string(),
                    error: s.error.as_ref().map(|e| {
                        (
                            error_kind_name(e.kind).to_string(),
                            e.code.clone(),
                            e.message.clone(),
                        )
                    }),
                    first_seen: now_ms(),
                    pricing: s.pricing.as_ref().and_then(checked_pricing),
                };
                // A status that may belong to a send not recorded yet waits on its own, as a
                // small job, instead of holding up the rest of the receipt.
                if self.apply_status(tenant, &status).await? == StatusOutcome::MayBeEarly {
                    let payload = serde_json::to_string(&status)
                        .map_err(|e| JobError::Permanent(e.to_string()))?;
                    let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
                    tx.enqueue(APPLY_STATUS, None, &payload, &status.tenant)
                        .await?;
                    tx.commit().await?;
                    tracing::info!(receipt = %id, provider_message_id = %status.provider_message_id, "a status arrived before its send was recorded; it waits on its own");
                }
            }
            InboundEvent::Account(a) => self.account_event(endpoint_id, &a).await?,
            InboundEvent::TemplateStatus(t) => self.template_status(endpoint_id, &t).await?,
            InboundEvent::ContactChanged(c) => {
                let Some((tenant, connection)) =
                    auth::routed(&self.store, endpoint_id, &c.channel_address).await?
                else {
                    return Ok(());
                };
                self.note_route(id, noted, tenant.id(), &connection).await?;
                let mut tx = self.store.begin(Scope::Tenant(tenant), Mode::Write).await?;
                let changed = tx
                    .change_contact_identity(
                        &connection,
                        (c.previous.phone.as_deref(), c.previous.user_id.as_deref()),
                        (c.current.phone.as_deref(), c.current.user_id.as_deref()),
                    )
                    .await;
                match changed {
                    Ok(_) => tx.commit().await?,
                    // Both identities already have contacts (the new one wrote first):
                    // both are kept, as they are.
                    Err(StoreError::Conflict(_)) => {
                        tracing::warn!(receipt = %id, "contact identity change onto an existing contact; kept both");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            InboundEvent::MarketingPreference(p) => {
                let Some((tenant, connection)) =
                    auth::routed(&self.store, endpoint_id, &p.channel_address).await?
                else {
                    return Ok(());
                };
                self.note_route(id, noted, tenant.id(), &connection).await?;
                let mut tx = self.store.begin(Scope::Tenant(tenant), Mode::Write).await?;
                tx.set_marketing_preference(
                    &connection,
                    p.contact.phone.as_deref(),
                    p.contact.user_id.as_deref(),
                    p.stopped,
                )
                .await?;
                tx.commit().await?;
            }
            InboundEvent::Ignored(what) => {
                tracing::debug!(receipt = %id, what = %what, "event ignored");
            }
        }
        Ok(())
    }
}

/// `From` between two referral types of the same fields: the plugin interface's and the kept
/// record.
macro_rules! referral_from {
    ($from:ty => $to:ty) => {
        impl From<$from> for $to {
            fn from(r: $from) -> Self {
                Self {
                    source_url: r.source_url,
                    source_type: r.source_type,
                    source_id: r.source_id,
                    headline: r.headline,
                    body: r.body,
                    click_id: r.click_id,
                }
            }
        }
    };
}
referral_from!(Referral => ReferralRecord);
referral_from!(ReferralRecord => Referral);

/// The receipt a message came in, as [`store_message`] records it.
struct Received {
    /// The receipt.
    id: String,
    /// Note on the receipt whose data it holds (the first event of this tenant and connection).
    note_route: bool,
    /// The receipt's job, marked done with the message when it is all the receipt carries.
    job: Option<Job>,
}

/// Store one inbound message of `tenant` on `connection` (a grouped write in the tenant's
/// scope): its contact, conversation, row and media, and, when the connection is live and on,
/// its `decide` job claimed for the caller (returned), which runs it next. An `echo` (the
/// business wrote from another tool; `m.sender` is the customer) is stored as a person's sent
/// reply: it gives the conversation to people, opens no window and is decided on by no one.
async fn store_message(
    tx: &mut Tx,
    tenant_id: String,
    connection: String,
    m: crate::runtime::types::InboundMessage,
    echo: bool,
    receipt: Received,
    lease_ms: i64,
) -> Result<Option<Job>, Undone> {
    let tenant_id = tenant_id.as_str();
    if receipt.note_route {
        tx.note_receipt_route(&receipt.id, tenant_id, &connection)
            .await?;
    }
    let contact = tx
        .upsert_contact(
            &connection,
            m.sender.phone.as_deref(),
            m.sender.user_id.as_deref(),
            m.sender.name.as_deref().filter(|_| !echo),
        )
        .await?;
    let conversation = tx.upsert_conversation(&connection, &contact).await?;
    let body = m
        .text
        .clone()
        .or_else(|| m.media.iter().find_map(|r| r.caption.clone()));
    // The whole message, for the policy's decision (media, location, replies…).
    let whole = serde_json::to_string(&m).ok();
    // The ad that started the chat: customers' messages only, bounded (provider input).
    let referral = m
        .referral
        .clone()
        .filter(|_| !echo)
        .and_then(|r| ReferralRecord::from(r).bounded());
    let message = tx
        .insert_message(&NewMessage {
            conversation_id: &conversation,
            connection_id: &connection,
            direction: if echo { "out" } else { "in" },
            provider_message_id: Some(&m.provider_message_id),
            kind: kind_name(m.kind),
            body: body.as_deref(),
            status: if echo { "sent" } else { "received" },
            idempotency_key: None,
            reply_to: m.reply_to.as_deref(),
            content: whole.as_deref(),
            sent_at: Some((m.timestamp as i64).saturating_mul(1000)),
            author: echo.then_some("echo"),
            referral: referral.as_ref(),
        })
        .await
        .map_err(Undone::unless_exists)?;
    if echo {
        tx.people_worked(&conversation).await?;
    }
    // One decision per inbound message: its job is queued with the message.
    let live = !echo
        && tx
            .connection(&connection)
            .await?
            .is_some_and(|c| c.status == "live" && c.active != 0);
    let mut decide = None;
    if live {
        let payload = serde_json::to_string(&MessageJob {
            tenant: tenant_id.to_string(),
            message: message.clone(),
        })
        .map_err(|e| JobError::Permanent(e.to_string()))?;
        decide = Some(
            tx.enqueue_claimed(DECIDE, &payload, tenant_id, lease_ms)
                .await?,
        );
    }
    for media in &m.media {
        let media_id = tx
            .insert_inbound_media(
                &message,
                media.provider_media_id.as_deref(),
                media.mime_type.as_deref(),
                media.caption.as_deref(),
                media.sha256.as_deref(),
                media.url.as_deref(),
            )
            .await?;
        // The download is a job of its own: it retries without this message being processed
        // again.
        let fetchable = [&media.provider_media_id, &media.url]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()));
        if fetchable {
            let payload = serde_json::to_string(&crate::media::MediaJob {
                tenant: tenant_id.to_string(),
                media: media_id,
            })
            .map_err(|e| JobError::Permanent(e.to_string()))?;
            tx.enqueue(crate::media::FETCH_MEDIA, None, &payload, tenant_id)
                .await?;
        }
    }
    if let Some(job) = &receipt.job {
        complete_in(tx, job).await?;
    }
    Ok(decide)
}

/// The job that applies one delivery status that arrived before its send was recorded.
pub const APPLY_STATUS: &str = "apply-status";

/// One delivery status, as its own job carries it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct StatusJob {
    /// The tenant.
    pub tenant: String,
    /// The connection it arrived for.
    pub connection: String,
    /// The provider's id of the outbound message.
    pub provider_message_id: String,
    /// The stored name of the delivery state.
    pub state: String,
    /// `(error kind, provider code, provider message)` of a failure.
    pub error: Option<(String, String, String)>,
    /// When the host first saw it (Unix ms).
    pub first_seen: i64,
    /// What the provider charges for the message, when the status says.
    #[serde(default)]
    pub pricing: Option<MessagePricing>,
}

/// The longest pricing word the host keeps (Meta's longest, `authentication_international`,
/// has 28 characters).
const PRICING_WORD_MAX: usize = 40;

/// A connector's pricing, if the host can keep it: a category and optional model and type of
/// 1–40 ASCII letters, digits or `_` (the category lower-cased); a bad optional word is dropped,
/// a bad category drops the pricing.
fn checked_pricing(p: &Pricing) -> Option<MessagePricing> {
    let word = |w: &str| {
        (!w.is_empty()
            && w.len() <= PRICING_WORD_MAX
            && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| w.to_string())
    };
    Some(MessagePricing {
        category: word(&p.category)?.to_ascii_lowercase(),
        billable: p.billable,
        model: p.model.as_deref().and_then(word),
        pricing_type: p.pricing_type.as_deref().and_then(word),
    })
}

/// What applying a status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusOutcome {
    /// Applied, or known and older than the message's state: nothing more to do.
    Done,
    /// It matched no message, and a send is in flight on its connection: it may be early.
    MayBeEarly,
    /// It matched no message and none can match later.
    Unknown,
}

impl Workers {
    /// Apply one status in its tenant's scope (forward only; a `failed` one acts as a send
    /// error would, DECISIONS pipeline).
    async fn apply_status(
        &self,
        tenant: crate::tenancy::TenantScope,
        s: &StatusJob,
    ) -> Result<StatusOutcome, JobError> {
        let error = s
            .error
            .as_ref()
            .map(|(k, c, m)| (k.as_str(), c.as_str(), m.as_str()));
        let mut tx = self.store.begin(Scope::Tenant(tenant), Mode::Write).await?;
        // Pricing is kept whatever the order statuses arrive in (Meta repeats it on later ones).
        let priced = match &s.pricing {
            Some(p) => {
                tx.record_pricing(&s.connection, &s.provider_message_id, p)
                    .await?
            }
            None => false,
        };
        let changed = tx
            .advance_status(&s.connection, &s.provider_message_id, &s.state, error)
            .await?;
        let Some(message) = changed else {
            if priced {
                // Known, and older than the message's state: only its pricing was new.
                tx.commit().await?;
                return Ok(StatusOutcome::Done);
            }
            let early = tx
                .status_may_be_early(&s.connection, &s.provider_message_id)
                .await?;
            return Ok(if early {
                StatusOutcome::MayBeEarly
            } else {
                StatusOutcome::Unknown
            });
        };
        if let (Some((kind, code, text)), "failed") = (&s.error, s.state.as_str()) {
            let e = crate::runtime::types::ProviderError {
                kind: error_kind_from_name(kind),
                code: code.clone(),
                message: text.clone(),
                retry_after: None,
            };
            self.after_failed_status(&mut tx, &s.tenant, &message, &e)
                .await?;
        }
        tx.commit().await?;
        self.notify.notify_one();
        Ok(StatusOutcome::Done)
    }

    /// An `apply-status` job: apply the status now, or wait again while its send may still be
    /// in flight — at most one job lease after it arrived (a send in flight is recorded or
    /// loses its lease within one) — then drop it with a log line.
    pub(crate) async fn apply_status_job(&self, job: &Job) -> Result<(), JobError> {
        let s: StatusJob = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let tenant = auth::one_tenant(&self.store, &s.tenant)
            .await
            .map_err(|e| JobError::Permanent(format!("tenant {}: {e}", s.tenant)))?;
        let now = now_ms();
        match self.apply_status(tenant, &s).await? {
            StatusOutcome::Done => Ok(()),
            StatusOutcome::MayBeEarly if now - s.first_seen < self.lease_ms => {
                Err(JobError::Defer(
                    now + early_status_recheck_ms(self.lease_ms),
                    "the status may be early; its send is in flight".into(),
                ))
            }
            outcome => {
                tracing::warn!(
                    provider_message_id = %s.provider_message_id,
                    connection = %s.connection,
                    state = %s.state,
                    waited_ms = now - s.first_seen,
                    still_in_flight = (outcome == StatusOutcome::MayBeEarly),
                    "a delivery status matched no message; dropped"
                );
                Ok(())
            }
        }
    }
}

/// How often an early status looks again for its send.
fn early_status_recheck_ms(lease_ms: i64) -> i64 {
    (lease_ms / 8).clamp(250, 5_000)
}

/// The error kind a stored name stands for.
pub(crate) fn error_kind_from_name(name: &str) -> ErrorKind {
    [
        ErrorKind::WindowClosed,
        ErrorKind::RateLimited,
        ErrorKind::AuthExpired,
        ErrorKind::PermissionMissing,
        ErrorKind::InvalidRecipient,
        ErrorKind::MarketingLimited,
        ErrorKind::MarketingStopped,
        ErrorKind::AccountBlocked,
        ErrorKind::InvalidRequest,
        ErrorKind::Transient,
    ]
    .into_iter()
    .find(|k| error_kind_name(*k) == name)
    .unwrap_or(ErrorKind::Permanent)
}

impl Workers {
    /// Record on receipt `id` that it routed to `(tenant, connection)`, once per pair, in a
    /// host-scope write of its own (a message notes it in its own write instead).
    async fn note_route(
        &self,
        id: &str,
        noted: &mut Option<(String, String)>,
        tenant: &str,
        connection: &str,
    ) -> Result<(), JobError> {
        let pair = (tenant.to_string(), connection.to_string());
        if noted.as_ref() == Some(&pair) {
            return Ok(());
        }
        let (id, route) = (id.to_string(), pair.clone());
        self.store
            .grouped(Scope::Host, move |tx| {
                Box::pin(async move { tx.note_receipt_route(&id, &route.0, &route.1).await })
            })
            .await?;
        *noted = Some(pair);
        Ok(())
    }

    /// The `(tenant, connection)` of every connection of this endpoint on provider account
    /// `account_id`, as read now.
    async fn on_account(
        &self,
        endpoint_id: &str,
        account_id: &str,
    ) -> Result<Vec<(crate::tenancy::TenantScope, ConnectionRecord)>, JobError> {
        let mut tx = self.store.begin(Scope::Host, Mode::Read).await?;
        let routes = tx.routes_of_endpoint(endpoint_id).await?;
        tx.commit().await?;
        let mut out = Vec::new();
        for (tenant, connection_id) in routes {
            let scope = auth::one_tenant(&self.store, &tenant)
                .await
                .map_err(|e| JobError::Retry(format!("tenant {tenant}: {e}")))?;
            let mut tx = self
                .store
                .begin(Scope::Tenant(scope.clone()), Mode::Read)
                .await?;
            let c = tx.connection(&connection_id).await?;
            tx.commit().await?;
            if let Some(c) = c.filter(|c| c.account_id.as_deref() == Some(account_id)) {
                out.push((scope, c));
            }
        }
        Ok(out)
    }

    /// A template's review status changed at the provider: every connection on that account
    /// records it, so a paused or disabled template is refused before any send.
    async fn template_status(&self, endpoint_id: &str, t: &TemplateStatus) -> Result<(), JobError> {
        for (scope, c) in self.on_account(endpoint_id, &t.account_id).await? {
            let connection_id = c.id;
            let mut tx = self.store.begin(Scope::Tenant(scope), Mode::Write).await?;
            tx.set_template_status(&connection_id, &t.name, &t.language, &t.status)
                .await?;
            tx.commit().await?;
        }
        tracing::info!(template = %t.name, language = %t.language, status = %t.status, reason = ?t.reason, "template status changed at the provider");
        Ok(())
    }

    /// A provider account event: every connection of this endpoint on that account is ended
    /// (access removed: shredded, ledger `revoked-at-provider`), paused (`error`) or resumed.
    /// Idempotent: a connection already in the target state is left alone, and one
    /// (re)connected after the event happened is not touched.
    async fn account_event(&self, endpoint_id: &str, a: &AccountEvent) -> Result<(), JobError> {
        let on_account = self.on_account(endpoint_id, &a.account_id).await?;
        let matched = on_account.len();
        for (scope, c) in on_account {
            let connection_id = c.id;
            // An event from before the connection was (re)connected describes an earlier
            // connection of the number (providers give seconds: the same second counts as after).
            let since = c.connected_at.unwrap_or(c.created_at) / 1000;
            if a.occurred_at
                .is_some_and(|at| i64::try_from(at).unwrap_or(i64::MAX) < since)
            {
                tracing::info!(connection = %connection_id, details = %a.details, "account event from before the connection was made: ignored");
                continue;
            }
            if a.change == AccountChange::AccessRemoved
                && self.credentials_work(&scope, &connection_id).await?
            {
                // The provider still honours the credentials: access was not removed, or was
                // granted again since (a stale or replayed event). Nothing is destroyed.
                tracing::warn!(connection = %connection_id, details = %a.details, "access-removed event, but the provider still accepts the connection's credentials: ignored as stale");
                continue;
            }
            let mut tx = self.store.begin(Scope::Tenant(scope), Mode::Write).await?;
            let Some(c) = tx.connection(&connection_id).await? else {
                continue;
            };
            let reason = format!("the provider reported {}", a.details);
            match a.change {
                AccountChange::AccessRemoved => {
                    let origin = crate::consent::Origin {
                        actor: "provider".into(),
                        ip: None,
                        user_agent: None,
                    };
                    crate::lifecycle::end_connection(
                        &mut tx,
                        &self.vault,
                        &c.id,
                        &origin,
                        crate::consent::Action::RevokedAtProvider,
                        Some(&reason),
                    )
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                    tracing::warn!(connection = %c.id, details = %a.details, "the business removed access at the provider: connection ended and shredded");
                }
                AccountChange::Restricted if c.status == "live" => {
                    tx.set_connection_status(&c.id, "error", Some(&reason))
                        .await?;
                }
                AccountChange::Reinstated if c.status == "error" => {
                    tx.set_connection_status(&c.id, "live", Some(&reason))
                        .await?;
                }
                _ => {}
            }
            tx.commit().await?;
        }
        self.endpoints.evict(endpoint_id);
        if matched == 0 {
            tracing::info!(endpoint = %endpoint_id, account = %a.account_id, details = %a.details, "account event for an account no connection uses");
        }
        Ok(())
    }
}

impl Workers {
    /// Whether the provider still accepts a live connection's credentials (its connector's
    /// `check-credentials` passes); a provider that does not answer retries the job.
    async fn credentials_work(
        &self,
        tenant: &TenantScope,
        connection_id: &str,
    ) -> Result<bool, JobError> {
        let mut tx = self
            .store
            .begin(Scope::Tenant(tenant.clone()), Mode::Read)
            .await?;
        let c = tx.connection(connection_id).await?;
        tx.commit().await?;
        let Some(c) = c.filter(|c| c.status != "disconnected") else {
            return Ok(false);
        };
        let asked = crate::lifecycle::ask_provider(
            &self.store,
            &self.vault,
            &self.plugins,
            &self.providers,
            &self.public_url,
            tenant,
            &c,
        )
        .await
        .map_err(JobError::Retry)?;
        match asked {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind, ErrorKind::Transient | ErrorKind::RateLimited) => Err(
                JobError::Retry(format!("credential check: {} {}", e.code, e.message)),
            ),
            Err(_) => Ok(false),
        }
    }
}

/// The message kind a stored name stands for.
pub(crate) fn kind_from_name(name: &str) -> MessageKind {
    [
        MessageKind::Text,
        MessageKind::Image,
        MessageKind::Audio,
        MessageKind::Video,
        MessageKind::Document,
        MessageKind::Sticker,
        MessageKind::Location,
        MessageKind::Contacts,
        MessageKind::Interactive,
        MessageKind::Button,
        MessageKind::Reaction,
        MessageKind::Order,
        MessageKind::System,
        MessageKind::RequestWelcome,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
    .unwrap_or(MessageKind::Unsupported)
}

/// The stored name of a message kind.
pub fn kind_name(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
        MessageKind::Audio => "audio",
        MessageKind::Video => "video",
        MessageKind::Document => "document",
        MessageKind::Sticker => "sticker",
        MessageKind::Location => "location",
        MessageKind::Contacts => "contacts",
        MessageKind::Interactive => "interactive",
        MessageKind::Button => "button",
        MessageKind::Reaction => "reaction",
        MessageKind::Order => "order",
        MessageKind::System => "system",
        MessageKind::RequestWelcome => "request-welcome",
        MessageKind::Unsupported => "unsupported",
    }
}

fn state_name(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Accepted => "accepted",
        DeliveryState::Sent => "sent",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Read => "read",
        DeliveryState::Played => "played",
        DeliveryState::Failed => "failed",
    }
}

/// The stored name of a provider-error kind.
pub(crate) fn error_kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::WindowClosed => "window-closed",
        ErrorKind::RateLimited => "rate-limited",
        ErrorKind::AuthExpired => "auth-expired",
        ErrorKind::PermissionMissing => "permission-missing",
        ErrorKind::InvalidRecipient => "invalid-recipient",
        ErrorKind::MarketingLimited => "marketing-limited",
        ErrorKind::MarketingStopped => "marketing-stopped",
        ErrorKind::AccountBlocked => "account-blocked",
        ErrorKind::InvalidRequest => "invalid-request",
        ErrorKind::Transient => "transient",
        ErrorKind::Permanent => "permanent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector's pricing is kept only as bounded words: a bad category drops it, a bad
    /// optional word drops that word; an old queued payload without pricing still reads.
    #[test]
    fn pricing_is_checked_before_it_is_kept() {
        let p = |category: &str, model: Option<&str>| Pricing {
            category: category.into(),
            billable: Some(true),
            model: model.map(str::to_string),
            pricing_type: Some("regular".into()),
        };
        assert_eq!(
            checked_pricing(&p("Marketing_Lite", Some("PMP"))),
            Some(MessagePricing {
                category: "marketing_lite".into(),
                billable: Some(true),
                model: Some("PMP".into()),
                pricing_type: Some("regular".into()),
            })
        );
        for bad in [
            "",
            "a b",
            "x'; DROP TABLE messages;--",
            "é",
            &"a".repeat(41),
        ] {
            assert_eq!(checked_pricing(&p(bad, None)), None, "{bad:?}");
        }
        let kept = checked_pricing(&p("utility", Some("P M P"))).expect("category is fine");
        assert_eq!(kept.model, None);
        let old = r#"{"tenant":"ten_1","connection":"con_1","provider_message_id":"w","state":"sent","error":null,"first_seen":1}"#;
        let job: StatusJob = serde_json::from_str(old).expect("a payload queued before pricing");
        assert_eq!(job.pricing, None);
    }

    #[test]
    fn idle_workers_look_about_16_times_a_second_together() {
        for n in [4, 32, 64] {
            let together = n as f64 / idle_poll(n).as_secs_f64();
            assert!(
                (15.9..=16.1).contains(&together),
                "{n} workers: {together}/s"
            );
        }
        assert_eq!(idle_poll(1), Duration::from_millis(250));
        assert_eq!(idle_poll(256), Duration::from_secs(5));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        for attempts in 0..20 {
            let base = (1000i64 << attempts.min(10)).min(600_000);
            for _ in 0..50 {
                let b = backoff_ms(attempts);
                assert!(b >= base * 3 / 4 && b <= base * 5 / 4, "{attempts}: {b}");
            }
        }
    }
}
