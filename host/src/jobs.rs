//! The job queue's workers: claim a due job (a lease that expires, so a crashed worker's jobs
//! are taken up again), run it, and record the outcome — done, retried with exponential back-off
//! and jitter, or dead-lettered after [`MAX_ATTEMPTS`] for an operator to list and replay.
//!
//! `process-receipt` parses an accepted webhook with its connector, routes each event by
//! `(endpoint, channel address)` to a tenant's connection, and writes it in that tenant's scope:
//! messages are deduplicated on `(connection, provider message id)`, contacts and conversations
//! upserted and the 24-hour window opened; status events move outbound messages forward only.
//! Every write is idempotent, so a job run twice (a lost lease) changes nothing the second time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::ingress::{PROCESS_RECEIPT, secret_scope};
use crate::runtime::Registry;
use crate::runtime::types::{
    Action, ConnectionInfo, Content, ConversationContext, DeliveryState, ErrorKind, HttpRequest,
    InboundEvent, InboundMessage, MessageKind, OutboundMessage, Party, Reply, TemplateCategory,
    Turn,
};
use crate::store::{
    ConnectionRecord, Job, MessageContext, Mode, NewMessage, Store, StoreError, now_ms,
};
use crate::tenancy::{Scope, auth};
use crate::vault::Vault;

/// Attempts before a job is dead-lettered.
pub const MAX_ATTEMPTS: i64 = 8;

/// The job that runs a tenant's reply policy on one inbound message.
pub const DECIDE: &str = "decide";
/// The job that sends one reply through its connector.
pub const SEND: &str = "send";
/// The customer-service window: free-form replies only this long after the last inbound message.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Payload of `decide` and `send` jobs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct MessageJob {
    tenant: String,
    message: String,
}

/// What a worker needs.
#[derive(Clone)]
pub struct Workers {
    /// The database.
    pub store: Store,
    /// The loaded plugins.
    pub plugins: Arc<Registry>,
    /// The vault.
    pub vault: Vault,
    /// Woken when a job is queued.
    pub notify: Arc<Notify>,
    /// Provider API base URLs by connector name.
    pub provider_urls: Arc<std::collections::HashMap<String, String>>,
    /// Public base URL (webhook URLs for status callbacks).
    pub public_url: String,
    /// How long a claim holds before another worker may take the job (ms).
    pub lease_ms: i64,
    /// Sends per second per connection, across every host on the database.
    pub send_rate: u32,
}

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
enum JobError {
    /// Worth another attempt later.
    #[error("{0}")]
    Retry(String),
    /// Will not get better by retrying: dead-letter it.
    #[error("{0}")]
    Permanent(String),
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
    /// Start `n` workers; they stop when `shutdown` fires.
    pub fn spawn(&self, n: usize, shutdown: tokio::sync::watch::Receiver<bool>) {
        for _ in 0..n {
            let w = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    if *shutdown.borrow() {
                        break;
                    }
                    match w.run_one().await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "job queue unavailable"),
                    }
                    tokio::select! {
                        () = w.notify.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            });
        }
    }

    /// Claim and run one job; `Ok(false)` when none is due.
    pub async fn run_one(&self) -> Result<bool, StoreError> {
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        let job = tx.claim_job(self.lease_ms).await?;
        tx.commit().await?;
        let Some(job) = job else {
            return Ok(false);
        };
        let outcome = match job.kind.as_str() {
            PROCESS_RECEIPT => self.process_receipt(&job).await,
            DECIDE => self.decide(&job).await,
            SEND => self.send(&job).await,
            other => Err(JobError::Permanent(format!("unknown job kind {other:?}"))),
        };
        let mut tx = self.store.begin(Scope::Host, Mode::Write).await?;
        match outcome {
            Ok(()) => {
                if !tx.complete_job(&job).await? {
                    tracing::warn!(job = %job.id, "job finished after its lease was taken over");
                }
            }
            Err(JobError::Retry(e)) if job.attempts < MAX_ATTEMPTS => {
                tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed; will retry");
                tx.fail_job(&job, &e, Some(now_ms() + backoff_ms(job.attempts)))
                    .await?;
            }
            Err(e) => {
                tracing::error!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job dead-lettered");
                tx.fail_job(&job, &e.to_string(), None).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn process_receipt(&self, job: &Job) -> Result<(), JobError> {
        let id = job
            .receipt_id
            .as_deref()
            .ok_or_else(|| JobError::Permanent("job has no receipt".into()))?;
        let mut tx = self.store.begin(Scope::Host, Mode::Read).await?;
        let receipt = tx
            .receipt(id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("receipt {id} is gone")))?;
        let endpoint = tx
            .endpoint(&receipt.endpoint_id)
            .await?
            .ok_or_else(|| JobError::Permanent("the receipt's endpoint is gone".into()))?;
        let endpoint_secrets = self.vault.open_endpoint(&mut tx, &endpoint).await?;
        tx.commit().await?;
        let plugin = self
            .plugins
            .connector(&endpoint.connector)
            .cloned()
            .ok_or_else(|| {
                JobError::Retry(format!("connector {} is not loaded", endpoint.connector))
            })?;
        let scope = secret_scope(&self.store, &self.vault, &endpoint, endpoint_secrets).await?;
        let request = HttpRequest {
            method: receipt.method,
            url: receipt.url,
            headers: serde_json::from_str(&receipt.headers).unwrap_or_default(),
            body: receipt.body.unwrap_or_default(),
        };
        let events = match plugin.parse(scope, &request).await {
            Ok(Ok(events)) => events,
            // An authentic body the connector cannot read: keep it dead-lettered for a replay
            // once the plugin is fixed.
            Ok(Err(malformed)) => {
                return Err(JobError::Permanent(format!("malformed: {malformed}")));
            }
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        for event in events {
            match event {
                InboundEvent::Message(m) => {
                    let Some((tenant, connection)) =
                        auth::routed(&self.store, &endpoint.id, &m.channel_address).await?
                    else {
                        tracing::warn!(receipt = %id, address = %m.channel_address, "message for an address no connection owns");
                        continue;
                    };
                    let tenant_id = tenant.id().to_string();
                    let mut tx = self.store.begin(Scope::Tenant(tenant), Mode::Write).await?;
                    let contact = tx
                        .upsert_contact(
                            &connection,
                            m.sender.phone.as_deref(),
                            m.sender.user_id.as_deref(),
                            m.sender.name.as_deref(),
                        )
                        .await?;
                    let conversation = tx.upsert_conversation(&connection, &contact).await?;
                    let body = m
                        .text
                        .clone()
                        .or_else(|| m.media.iter().find_map(|r| r.caption.clone()));
                    let inserted = tx
                        .insert_message(&NewMessage {
                            conversation_id: &conversation,
                            connection_id: &connection,
                            direction: "in",
                            provider_message_id: Some(&m.provider_message_id),
                            kind: kind_name(m.kind),
                            body: body.as_deref(),
                            status: "received",
                            idempotency_key: None,
                            reply_to: None,
                        })
                        .await;
                    let message = match inserted {
                        Ok(message) => message,
                        // Already stored (a provider retry or a second run): nothing to do.
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    // One decision per inbound message: its job is queued with the message.
                    let live = tx
                        .connection(&connection)
                        .await?
                        .is_some_and(|c| c.status == "live" && c.active != 0);
                    if live {
                        let payload = serde_json::to_string(&MessageJob {
                            tenant: tenant_id.clone(),
                            message: message.clone(),
                        })
                        .map_err(|e| JobError::Permanent(e.to_string()))?;
                        tx.enqueue(DECIDE, None, &payload).await?;
                    }
                    for media in &m.media {
                        tx.insert_media(
                            &message,
                            media.provider_media_id.as_deref(),
                            media.mime_type.as_deref(),
                            media.caption.as_deref(),
                        )
                        .await?;
                    }
                    tx.commit().await?;
                    self.notify.notify_one();
                }
                InboundEvent::Status(s) => {
                    let Some((tenant, connection)) =
                        auth::routed(&self.store, &endpoint.id, &s.channel_address).await?
                    else {
                        tracing::warn!(receipt = %id, address = %s.channel_address, "status for an address no connection owns");
                        continue;
                    };
                    let error = s
                        .error
                        .as_ref()
                        .map(|e| (error_kind_name(e.kind), e.code.as_str(), e.message.as_str()));
                    let mut tx = self.store.begin(Scope::Tenant(tenant), Mode::Write).await?;
                    tx.advance_status(
                        &connection,
                        &s.provider_message_id,
                        state_name(s.state),
                        error,
                    )
                    .await?;
                    tx.commit().await?;
                }
                InboundEvent::Ignored(what) => {
                    tracing::debug!(receipt = %id, what = %what, "event ignored");
                }
            }
        }
        Ok(())
    }
}

impl Workers {
    /// The tenant and message a `decide` or `send` job names, and a read transaction in that
    /// tenant's scope to go on reading with.
    async fn job_message(
        &self,
        job: &Job,
    ) -> Result<
        (
            MessageJob,
            crate::tenancy::TenantScope,
            crate::store::Tx,
            MessageContext,
        ),
        JobError,
    > {
        let p: MessageJob = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let scope = auth::one_tenant(&self.store, &p.tenant)
            .await
            .map_err(|e| JobError::Permanent(format!("tenant {}: {e}", p.tenant)))?;
        let mut tx = self
            .store
            .begin(Scope::Tenant(scope.clone()), Mode::Read)
            .await?;
        let m = tx
            .message_context(&p.message)
            .await?
            .ok_or_else(|| JobError::Permanent("the message is gone".into()))?;
        Ok((p, scope, tx, m))
    }

    /// Run the tenant's reply policy on one inbound message and record what the host allows of
    /// its answer. Replies carry the key `<message>:<n>`, unique per tenant, so a decision
    /// recorded once is never recorded again, whatever the retries.
    async fn decide(&self, job: &Job) -> Result<(), JobError> {
        let (p, scope, mut tx, m) = self.job_message(job).await?;
        let connection = tx.connection(&m.connection_id).await?;
        let policy = tx.policy().await?;
        let history = tx.history(&m.conversation_id, 20).await?;
        tx.commit().await?;
        let Some(policy) = policy else {
            return Ok(()); // no reply policy chosen: nothing to decide
        };
        // The policy never sees a conversation whose number is not live and switched on, nor a
        // closed one or one with AI replies off.
        let Some(connection) = connection.filter(|c| c.status == "live" && c.active != 0) else {
            tracing::info!(message = %m.id, "no decision: the connection is not live");
            return Ok(());
        };
        if m.state != "open" || m.ai_enabled == 0 {
            tracing::info!(message = %m.id, state = %m.state, "no decision: conversation closed or AI off");
            return Ok(());
        }
        let plugin = self
            .plugins
            .policy(&policy.plugin)
            .cloned()
            .ok_or_else(|| JobError::Retry(format!("policy {} is not loaded", policy.plugin)))?;
        let now = now_ms();
        let window_closes = m.last_inbound_at.map(|t| t + WINDOW_MS);
        let window_open = window_closes.is_some_and(|t| t > now);
        let party = Party {
            phone: m.contact_phone.clone(),
            user_id: m.contact_user_id.clone(),
            name: m.contact_name.clone(),
        };
        let ctx = ConversationContext {
            tenant_id: p.tenant.clone(),
            conversation_id: m.conversation_id.clone(),
            contact: party.clone(),
            window_open,
            window_closes_at: window_closes.map(|t| (t / 1000) as u64),
            history: history
                .into_iter()
                .map(|(direction, text, at)| Turn {
                    inbound: direction == "in",
                    text,
                    timestamp: (at / 1000) as u64,
                })
                .collect(),
            config: policy.config.clone(),
        };
        let msg = InboundMessage {
            provider_message_id: m.provider_message_id.clone().unwrap_or_default(),
            channel_address: connection.channel_address.clone(),
            sender: party,
            timestamp: (m.created_at / 1000) as u64,
            kind: kind_from_name(&m.kind),
            text: m.body.clone(),
            media: Vec::new(),
            location: None,
            interactive: None,
            reply_to: None,
            referral: None,
            details: None,
        };
        let actions = plugin
            .decide(&ctx, &msg)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let marketing =
            crate::consent::marketing_allowed(&self.store, &scope, &m.connection_id).await?;
        let mut tx = self.store.begin(Scope::Tenant(scope), Mode::Write).await?;
        for (i, action) in actions.into_iter().enumerate() {
            let key = format!("{}:{i}", m.id);
            let Action::Reply(reply) = action else {
                tracing::info!(message = %m.id, "the policy handed the conversation off");
                continue;
            };
            // The host decides what may go out, whatever the policy proposed.
            let (kind, body, blocked) = host_rules(reply, window_open, marketing);
            let inserted = tx
                .insert_message(&NewMessage {
                    conversation_id: &m.conversation_id,
                    connection_id: &m.connection_id,
                    direction: "out",
                    provider_message_id: None,
                    kind,
                    body: body.as_deref(),
                    status: "queued",
                    idempotency_key: Some(&key),
                    reply_to: m.provider_message_id.as_deref(),
                })
                .await;
            let reply_id = match inserted {
                Ok(id) => id,
                // This decision was recorded by an earlier run: nothing more to do.
                Err(StoreError::Conflict(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if let Some(reason) = blocked {
                tx.record_send(&reply_id, None, Some(("blocked", "host-policy", reason)))
                    .await?;
                tracing::info!(message = %m.id, reason, "reply blocked by the host");
            } else {
                let payload = serde_json::to_string(&MessageJob {
                    tenant: p.tenant.clone(),
                    message: reply_id,
                })
                .map_err(|e| JobError::Permanent(e.to_string()))?;
                tx.enqueue(SEND, None, &payload).await?;
            }
        }
        tx.commit().await?;
        self.notify.notify_one();
        Ok(())
    }

    /// Send one queued reply through its connector and record the provider's answer.
    async fn send(&self, job: &Job) -> Result<(), JobError> {
        let (_, scope, mut tx, m) = self.job_message(job).await?;
        if m.status != "queued" {
            return Ok(()); // already sent or failed
        }
        let connection = tx
            .connection(&m.connection_id)
            .await?
            .ok_or_else(|| JobError::Permanent("the connection is gone".into()))?;
        let secrets = if connection.status == "live" {
            self.vault.open_connection(&mut tx, &connection.id).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        let mut tx = self
            .store
            .begin(Scope::Tenant(scope.clone()), Mode::Write)
            .await?;
        if connection.status != "live" {
            tx.record_send(
                &m.id,
                None,
                Some(("connection-inactive", "host", "the connection is not live")),
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        drop(tx);
        let plugin = self
            .plugins
            .connector(&connection.connector)
            .cloned()
            .ok_or_else(|| {
                JobError::Retry(format!("connector {} is not loaded", connection.connector))
            })?;
        let info = connection_info(
            &connection,
            self.provider_urls
                .get(&connection.connector)
                .cloned()
                .unwrap_or_default(),
            format!("{}/hooks/{}", self.public_url, connection.endpoint_id),
        );
        let out = OutboundMessage {
            to: Party {
                phone: m.contact_phone.clone(),
                user_id: m.contact_user_id.clone(),
                name: None,
            },
            content: Content::Text(m.body.clone().unwrap_or_default()),
            reply_to: m.reply_to.clone(),
            idempotency_key: m.idempotency_key.clone().unwrap_or_else(|| m.id.clone()),
        };
        let call_scope = Vault::call_scope(None, Some((&connection, secrets)));
        let result = plugin
            .send(call_scope, &info, &out)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let mut tx = self.store.begin(Scope::Tenant(scope), Mode::Write).await?;
        match result {
            Ok(provider_id) => tx.record_send(&m.id, Some(&provider_id), None).await?,
            Err(e) if matches!(e.kind, ErrorKind::RateLimited | ErrorKind::Transient) => {
                return Err(JobError::Retry(format!("{} {}", e.code, e.message)));
            }
            Err(e) => {
                if e.kind == ErrorKind::AuthExpired {
                    // Sends pause for this connection until its credentials are renewed.
                    tx.set_connection_status(
                        &connection.id,
                        "expired",
                        Some(&format!("{} {}", e.code, e.message)),
                    )
                    .await?;
                }
                tx.record_send(
                    &m.id,
                    None,
                    Some((error_kind_name(e.kind), &e.code, &e.message)),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// What the host lets out of a proposed reply: `(kind, body, reason it is blocked)`.
/// Free-form content only inside the 24-hour window; marketing templates only with active
/// marketing consent; template and media sends are not implemented yet and say so.
fn host_rules(
    reply: Reply,
    window_open: bool,
    marketing_allowed: bool,
) -> (&'static str, Option<String>, Option<&'static str>) {
    match reply.content {
        Content::Text(text) if window_open => ("text", Some(text), None),
        Content::Text(text) => (
            "text",
            Some(text),
            Some(match reply.fallback {
                Some(t) if t.category == TemplateCategory::Marketing && !marketing_allowed => {
                    "window closed; the fallback is a marketing template and marketing consent is not active"
                }
                Some(_) => "window closed; template fallbacks are not sent yet",
                None => "window closed and the policy gave no template fallback",
            }),
        ),
        Content::Template(t) if t.category == TemplateCategory::Marketing && !marketing_allowed => {
            (
                "template",
                Some(t.name),
                Some("marketing template without active marketing consent"),
            )
        }
        Content::Template(t) => (
            "template",
            Some(t.name),
            Some("template replies are not sent yet"),
        ),
        _ if !window_open => ("other", None, Some("window closed")),
        _ => ("other", None, Some("only text replies are sent yet")),
    }
}

/// A stored connection as a connector sees it.
pub fn connection_info(
    c: &ConnectionRecord,
    api_base_url: String,
    callback_url: String,
) -> ConnectionInfo {
    let settings: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&c.settings).unwrap_or_default();
    ConnectionInfo {
        connection_id: c.id.clone(),
        channel_address: c.channel_address.clone(),
        account_id: c.account_id.clone(),
        api_base_url,
        settings: settings.into_iter().collect(),
        callback_url: Some(callback_url),
    }
}

fn kind_from_name(name: &str) -> MessageKind {
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

fn error_kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::WindowClosed => "window-closed",
        ErrorKind::RateLimited => "rate-limited",
        ErrorKind::AuthExpired => "auth-expired",
        ErrorKind::PermissionMissing => "permission-missing",
        ErrorKind::InvalidRecipient => "invalid-recipient",
        ErrorKind::MarketingLimited => "marketing-limited",
        ErrorKind::InvalidRequest => "invalid-request",
        ErrorKind::Transient => "transient",
        ErrorKind::Permanent => "permanent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::Template;

    fn template(category: TemplateCategory) -> Template {
        Template {
            name: "spring_sale".into(),
            language: "en_US".into(),
            category,
            parameters: Vec::new(),
        }
    }

    #[test]
    fn the_host_blocks_what_the_rules_forbid_with_a_reason() {
        let text = |fallback| Reply {
            content: Content::Text("hi".into()),
            fallback,
        };
        assert_eq!(host_rules(text(None), true, false).2, None);
        let closed = host_rules(text(None), false, true).2.expect("blocked");
        assert!(closed.contains("window closed"), "{closed}");
        let mkt = host_rules(
            text(Some(template(TemplateCategory::Marketing))),
            false,
            false,
        );
        assert!(mkt.2.expect("blocked").contains("marketing consent"));
        let t = |c| Reply {
            content: Content::Template(template(c)),
            fallback: None,
        };
        assert!(
            host_rules(t(TemplateCategory::Marketing), true, false)
                .2
                .expect("blocked")
                .contains("marketing consent")
        );
        // With consent the marketing rule passes (templates themselves are not sent yet).
        assert!(
            !host_rules(t(TemplateCategory::Marketing), true, true)
                .2
                .expect("blocked")
                .contains("consent")
        );
        assert!(
            !host_rules(t(TemplateCategory::Utility), true, false)
                .2
                .expect("blocked")
                .contains("consent")
        );
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
