//! Replies: a tenant's reply policy runs once per inbound message, the host's rules decide what
//! of its answer may go out, and the connector sends it at the connection's shared rate.
//!
//! Exactly one decision per inbound message: replies carry the key `<message>:<n>`, unique per
//! tenant, so a decision recorded once is never recorded again. Sends are at least once (DECISIONS
//! A8): each attempt is recorded before the provider is called, and an attempt whose outcome
//! never came back (a crash, a lost lease, a plugin that died mid-call) makes the next one a
//! possible duplicate, marked on the message.

use std::time::Duration;

use crate::commands::{self, CodeMail, Command, Visitor};
use crate::jobs::{
    JobError, MessageJob, SEND, Undone, WINDOW_MS, Workers, complete_in, error_kind_name,
    kind_from_name,
};
use crate::runtime::manifest::ChannelRules;
use crate::runtime::types::{
    Action, Content, ConversationContext, ConversationOwner, ErrorKind, InboundMessage, MediaRef,
    OutboundMessage, Party, ProviderError, Referral, Reply, Template, TemplateCategory, Turn,
};
use crate::store::{
    Attempt, ConnectionRecord, HistoryRow, Job, MessageContext, Mode, NewMessage, Slot,
    TenantRecord, Tx, now_ms,
};
use crate::tenancy::{Scope, TenantScope, auth};
use crate::vault::Vault;

/// How far ahead a send may book its connection's next slot; beyond it the job waits queued.
const SLOT_HORIZON_US: i64 = 1_000_000;
/// Sends of one reply a provider accepted and then failed (rate limit, transient) before it
/// stays failed.
const MAX_RESENDS: i64 = 5;
/// How long a reply waits for a connection that cannot send (expired, error) before it fails.
const PAUSE_LIMIT_MS: i64 = WINDOW_MS;
/// How often a reply waiting on such a connection looks again.
const PAUSE_RECHECK_MS: i64 = 60_000;

/// What the host knows when it judges a proposed reply.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// What the connection's channel allows (its connector declares it).
    pub channel: &'a ChannelRules,
    /// Free-form replies are allowed now (the channel's window is open, or it has none).
    pub window_open: bool,
    /// The tenant holds active marketing consent for this connection.
    pub marketing_allowed: bool,
    /// The contact has written to the business at least once.
    pub contact_wrote_first: bool,
    /// The contact stopped marketing messages from this business (provider-reported).
    pub contact_stopped_marketing: bool,
}

/// Whether free-form replies are allowed at `now` (Unix ms) on `channel` for a contact who last
/// wrote at `last_inbound_at`, and when the window closes if it is open and the channel has one.
/// A contact who never wrote gets nothing free-form, on any channel (inbound first).
pub fn window(
    channel: &ChannelRules,
    last_inbound_at: Option<i64>,
    now: i64,
) -> (bool, Option<i64>) {
    match (channel.window_seconds, last_inbound_at) {
        (_, None) => (false, None),
        (None, Some(_)) => (true, None),
        (Some(seconds), Some(at)) => {
            let ms = i64::try_from(seconds)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000);
            let closes = at.saturating_add(ms);
            (closes > now, (closes > now).then_some(closes))
        }
    }
}

/// Stored messages as a plugin sees them (oldest first, as given).
pub fn turns(history: impl IntoIterator<Item = HistoryRow>) -> Vec<Turn> {
    history
        .into_iter()
        .map(|h| Turn {
            inbound: h.direction == "in",
            kind: kind_from_name(&h.kind),
            text: h.body,
            provider_message_id: h.provider_message_id,
            timestamp: (h.created_at / 1000) as u64,
        })
        .collect()
}

/// A conversation's stored owner (`policy` or `people`) as plugins see it.
pub fn owner_from_name(owner: &str) -> ConversationOwner {
    if owner == "people" {
        ConversationOwner::People
    } else {
        ConversationOwner::Policy
    }
}

/// Why the host refuses a reply: a stable code and the reason in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code, e.g. `window_closed`.
    pub code: &'static str,
    /// Why, in words.
    pub reason: &'static str,
}

const fn refusal(code: &'static str, reason: &'static str) -> Refusal {
    Refusal { code, reason }
}

/// Why `content` cannot go out on `channel` at all, if it cannot.
fn beyond_channel(content: &Content, channel: &ChannelRules) -> Option<Refusal> {
    let beyond = |reason| Some(refusal("beyond_channel", reason));
    match content {
        Content::Template(_) if !channel.templates => beyond("the channel has no templates"),
        Content::Text(t) if t.chars().count() > channel.text_limit as usize => {
            beyond("the text is longer than the channel allows")
        }
        Content::Media(m) if !channel.media.iter().any(|k| k == media_kind(m)) => {
            beyond("the channel cannot send this kind of media")
        }
        Content::Reaction(_) if !channel.reactions => beyond("the channel has no reactions"),
        _ => None,
    }
}

/// The host's verdict on a reply, whoever proposed it (a policy or a person): the reply to send
/// (its template fallback instead, when the window is closed) or why nothing may go out.
pub fn host_rules(reply: Reply, rules: Rules) -> Result<Reply, Refusal> {
    if !rules.contact_wrote_first {
        return Err(refusal("never_wrote", "the contact never wrote first"));
    }
    if let Some(why) = beyond_channel(&reply.content, rules.channel) {
        return Err(why);
    }
    // A channel without templates keeps no fallback.
    let reply = Reply {
        fallback: reply.fallback.filter(|_| rules.channel.templates),
        ..reply
    };
    // Why a template may not go out, if it may not: (as the reply, as a fallback).
    let refused = |t: &Template| match t.category {
        TemplateCategory::Marketing if rules.contact_stopped_marketing => Some((
            refusal(
                "marketing_stopped",
                "the contact stopped marketing messages",
            ),
            refusal(
                "marketing_stopped",
                "window closed; the fallback is a marketing template and the contact stopped marketing messages",
            ),
        )),
        TemplateCategory::Marketing if !rules.marketing_allowed => Some((
            refusal(
                "marketing_not_consented",
                "marketing template without active marketing consent",
            ),
            refusal(
                "marketing_not_consented",
                "window closed; the fallback is a marketing template and marketing consent is not active",
            ),
        )),
        _ => None,
    };
    match reply.content {
        Content::Template(t) => match refused(&t) {
            Some((why, _)) => Err(why),
            None => Ok(Reply {
                content: Content::Template(t),
                fallback: None,
            }),
        },
        // Free-form content: inside the window as it is, keeping only a fallback it may use.
        content if rules.window_open => Ok(Reply {
            content,
            fallback: reply.fallback.filter(|t| refused(t).is_none()),
        }),
        _ => match reply.fallback {
            Some(t) => match refused(&t) {
                Some((_, as_fallback)) => Err(as_fallback),
                None => Ok(Reply {
                    content: Content::Template(t),
                    fallback: None,
                }),
            },
            None => Err(refusal(
                "window_closed",
                "window closed and the policy gave no template fallback",
            )),
        },
    }
}

/// What a provider error does to the connection: `(status, what to do)` when the connection
/// cannot send until someone acts (its sends pause meanwhile).
pub fn connection_effect(kind: ErrorKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ErrorKind::AuthExpired => Some(("expired", "reconnect the number with new credentials")),
        ErrorKind::PermissionMissing => Some((
            "error",
            "the credentials lack a permission; reconnect granting messaging permissions",
        )),
        ErrorKind::AccountBlocked => Some((
            "error",
            "the provider account cannot send; resolve it with the provider, then verify",
        )),
        _ => None,
    }
}

/// Whether a template may be sent given its status as last listed for the connection
/// (`None`: never listed). Only `APPROVED` is sendable; an unknown template goes out and the
/// provider judges it.
pub fn template_sendable(stored_status: Option<&str>) -> Result<(), String> {
    match stored_status {
        None => Ok(()),
        Some(s) if s.eq_ignore_ascii_case("APPROVED") => Ok(()),
        Some(s) => Err(format!(
            "the template's status is {s}; only APPROVED templates are sent"
        )),
    }
}

/// The template status a provider's send error reveals: Meta 132015 (paused) and 132016
/// (disabled).
pub fn template_status_from_error(code: &str) -> Option<&'static str> {
    match code {
        "132015" => Some("PAUSED"),
        "132016" => Some("DISABLED"),
        _ => None,
    }
}

/// The stored kind and body (text, template name, caption or emoji) of what a reply sends.
pub fn describe(content: &Content) -> (&'static str, Option<String>) {
    match content {
        Content::Text(t) => ("text", Some(t.clone())),
        Content::Template(t) => ("template", Some(t.name.clone())),
        Content::Media(m) => (media_kind(m), m.caption.clone()),
        Content::Reaction(r) => ("reaction", Some(r.emoji.clone())),
    }
}

/// The kind of media a reference is, by its MIME type (`document` when unknown).
fn media_kind(m: &MediaRef) -> &'static str {
    match m.mime_type.as_deref().and_then(|t| t.split('/').next()) {
        Some("image") => "image",
        Some("audio") => "audio",
        Some("video") => "video",
        _ => "document",
    }
}

/// Whether a reply can send a marketing template (as its content or as its fallback).
fn may_send_marketing(reply: &Reply) -> bool {
    let marketing = |t: &Template| t.category == TemplateCategory::Marketing;
    matches!(&reply.content, Content::Template(t) if marketing(t))
        || reply.fallback.as_ref().is_some_and(marketing)
}

/// A reply's template fallback in its place, when it is free-form content that has one.
fn fallback_of(reply: &Reply) -> Option<Reply> {
    match (&reply.content, &reply.fallback) {
        (Content::Template(_), _) | (_, None) => None,
        (_, Some(t)) => Some(Reply {
            content: Content::Template(t.clone()),
            fallback: None,
        }),
    }
}

fn to_json(reply: &Reply) -> Result<String, JobError> {
    serde_json::to_string(reply).map_err(|e| JobError::Permanent(e.to_string()))
}

/// What a queued reply sends: as decided, or its text for replies stored before decisions kept
/// their content.
fn stored_reply(m: &MessageContext) -> Result<Reply, JobError> {
    match &m.content {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| JobError::Permanent(format!("stored reply unreadable: {e}"))),
        None => Ok(Reply {
            content: Content::Text(m.body.clone().unwrap_or_default()),
            fallback: None,
        }),
    }
}

/// One action of a policy's answer as the host will record it.
enum Planned {
    /// Give the conversation to people.
    HandOff(String),
    /// A reply: its idempotency key, kind and text, its content when allowed, else why not.
    Reply {
        key: String,
        kind: &'static str,
        body: Option<String>,
        content: Option<String>,
        blocked: Option<&'static str>,
    },
}

/// Record a decision on inbound message `m` (a grouped write in its tenant's scope): hand-offs,
/// each reply (blocked ones failed at once) and a `send` job per allowed one, claimed for the
/// caller (returned); `decided` (the `decide` job) is marked done with it.
async fn record_decision(
    tx: &mut Tx,
    tenant: String,
    m: MessageContext,
    plans: Vec<Planned>,
    decided: Job,
    lease_ms: i64,
) -> Result<Vec<Job>, Undone> {
    let mut sends = Vec::new();
    for plan in plans {
        let (key, kind, body, content, blocked) = match plan {
            Planned::HandOff(reason) => {
                tx.hand_off(&m.conversation_id, &reason).await?;
                tracing::info!(message = %m.id, "the policy handed the conversation off");
                continue;
            }
            Planned::Reply {
                key,
                kind,
                body,
                content,
                blocked,
            } => (key, kind, body, content, blocked),
        };
        let queued = Queued {
            key: &key,
            kind,
            body: body.as_deref(),
            content: content.as_deref(),
            blocked,
            author: "policy",
        };
        sends.extend(queue_reply(tx, &tenant, &m, queued, lease_ms).await?);
    }
    complete_in(tx, &decided).await?;
    Ok(sends)
}

/// One reply to record for an inbound message.
struct Queued<'a> {
    key: &'a str,
    kind: &'static str,
    body: Option<&'a str>,
    content: Option<&'a str>,
    blocked: Option<&'static str>,
    author: &'static str,
}

/// Record a reply to inbound message `m` (failed at once when blocked) and, when allowed, its
/// `send` job claimed for the caller.
async fn queue_reply(
    tx: &mut Tx,
    tenant: &str,
    m: &MessageContext,
    r: Queued<'_>,
    lease_ms: i64,
) -> Result<Option<Job>, Undone> {
    let reply_id = tx
        .insert_message(&NewMessage {
            conversation_id: &m.conversation_id,
            connection_id: &m.connection_id,
            direction: "out",
            provider_message_id: None,
            kind: r.kind,
            body: r.body,
            status: "queued",
            idempotency_key: Some(r.key),
            reply_to: m.provider_message_id.as_deref(),
            content: r.content,
            sent_at: None,
            author: Some(r.author),
            referral: None,
        })
        .await
        .map_err(Undone::unless_exists)?;
    match r.blocked {
        Some(reason) => {
            tx.record_send(&reply_id, None, Some(("blocked", "host-policy", reason)))
                .await?;
            tracing::info!(message = %m.id, reason, "reply blocked by the host");
            Ok(None)
        }
        None => {
            let payload = send_job(tenant, &reply_id)?;
            Ok(Some(
                tx.enqueue_claimed(SEND, &payload, tenant, lease_ms).await?,
            ))
        }
    }
}

/// What the host answers itself, before any policy.
enum Door {
    /// A command the customer sent.
    Command(Command),
    /// The number's access policy keeps the customer from its policy.
    Refuse,
}

/// Record the host's answer at the door (a command's effects, or a refusal and its access
/// request) with its replies (author `host`) and their `send` jobs, claimed for the caller; the
/// code to mail once committed.
#[allow(clippy::too_many_arguments)]
async fn record_door(
    tx: &mut Tx,
    tenant: String,
    m: MessageContext,
    who: Visitor,
    door: Door,
    channel: ChannelRules,
    window_open: bool,
    decided: Job,
    lease_ms: i64,
) -> Result<(Vec<Job>, Option<CodeMail>), Undone> {
    let answer = match &door {
        Door::Command(command) => {
            // The code never stays in the conversation, nor in the parsed message.
            if let Some(text) = commands::redacted(command) {
                tx.redact_message(&m.id, text).await?;
            }
            commands::run(tx, &who, command).await?
        }
        Door::Refuse => commands::refuse(tx, &who).await?,
    };
    let rules = Rules {
        channel: &channel,
        window_open,
        marketing_allowed: false,
        contact_wrote_first: true,
        contact_stopped_marketing: false,
    };
    let mut sends = Vec::new();
    for (i, text) in answer.replies.into_iter().enumerate() {
        let verdict = host_rules(
            Reply {
                content: Content::Text(text.clone()),
                fallback: None,
            },
            rules,
        );
        let content = match &verdict {
            Ok(r) => Some(to_json(r)?),
            Err(_) => None,
        };
        let queued = Queued {
            key: &format!("{}:door{i}", m.id),
            kind: "text",
            body: Some(&text),
            content: content.as_deref(),
            blocked: verdict.err().map(|r| r.reason),
            author: "host",
        };
        sends.extend(queue_reply(tx, &tenant, &m, queued, lease_ms).await?);
    }
    complete_in(tx, &decided).await?;
    Ok((sends, answer.mail))
}

fn send_job(tenant: &str, message: &str) -> Result<String, JobError> {
    serde_json::to_string(&MessageJob {
        tenant: tenant.to_string(),
        message: message.to_string(),
    })
    .map_err(|e| JobError::Permanent(e.to_string()))
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Workers {
    /// `connection`'s loaded connector (its channel rules, its calls); retried until loaded.
    fn connector_of(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<std::sync::Arc<crate::runtime::ConnectorPlugin>, JobError> {
        self.plugins
            .connector(&connection.connector, Some(&connection.endpoint_id))
            .ok_or_else(|| {
                JobError::Retry(format!("connector {} is not loaded", connection.connector))
            })
    }

    /// The tenant and message a `decide` or `send` job names, and a read transaction in that
    /// tenant's scope to go on reading with. `hold`: a suspended tenant's job waits (deferred
    /// with the reason reinstatement looks for).
    async fn job_message(
        &self,
        job: &Job,
        hold: bool,
    ) -> Result<(MessageJob, TenantScope, Tx, MessageContext, TenantRecord), JobError> {
        let p: MessageJob = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        let (scope, mut tx, tenant) = auth::job_tenant(&self.store, &p.tenant)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("tenant {} is gone", p.tenant)))?;
        if hold && tenant.status == auth::SUSPENDED {
            return Err(JobError::Defer(
                now_ms() + crate::jobs::SUSPENDED_RECHECK_MS,
                auth::suspended_reason(&p.tenant),
            ));
        }
        let m = tx
            .message_context(&p.message)
            .await?
            .ok_or_else(|| JobError::Permanent("the message is gone".into()))?;
        Ok((p, scope, tx, m, tenant))
    }

    /// Answer at the door: record what the host says itself, run its sends next, and mail a
    /// `/login` code once it is committed.
    #[allow(clippy::too_many_arguments)]
    async fn answer_at_door(
        &self,
        job: &Job,
        chain: &mut crate::jobs::Chain,
        (tenant, scope): (String, TenantScope),
        m: MessageContext,
        connection: &ConnectionRecord,
        who: Visitor,
        door: Door,
    ) -> Result<(), JobError> {
        let channel = self.connector_of(connection)?.channel_rules().clone();
        let (window_open, _) = window(&channel, m.last_inbound_at, now_ms());
        let (lease_ms, decided) = (self.lease_ms, job.clone());
        let recorded = self
            .store
            .grouped(Scope::Tenant(scope), move |tx| {
                Box::pin(record_door(
                    tx,
                    tenant,
                    m,
                    who,
                    door,
                    channel,
                    window_open,
                    decided,
                    lease_ms,
                ))
            })
            .await;
        let (sends, mail) = match recorded {
            Ok(done) => done,
            Err(Undone::Already) => return Ok(()),
            Err(Undone::Failed(e)) => return Err(e),
        };
        chain.completed(job);
        for job in sends {
            chain.then(job);
        }
        if let Some(mail) = mail {
            let mailer = self.mailer.clone();
            tokio::spawn(async move {
                let (subject, text) = mail.compose();
                if let Err(e) = mailer.send(&mail.to, &subject, text).await {
                    tracing::warn!(error = %e, "a /login code could not be mailed");
                }
            });
        }
        Ok(())
    }

    /// Run the tenant's reply policy on one inbound message and record what the host allows of
    /// its answer, with the send jobs, in one transaction.
    pub(crate) async fn decide(
        &self,
        job: &Job,
        chain: &mut crate::jobs::Chain,
    ) -> Result<(), JobError> {
        let (p, scope, mut tx, m, tenant) = self.job_message(job, true).await?;
        let plan_id = tenant.plan_id.clone();
        let connection = tx.connection(&m.connection_id).await?;
        let policy = tx.policy_for(&m.connection_id).await?;
        // The tenant's row was read with the job: a plan is looked up only when it has one.
        let plan = match &plan_id {
            Some(id) => tx.plan(id).await?,
            None => None,
        };
        let history = tx.history(&m.conversation_id, 20).await?;
        let marketing_allowed = tx.consent_active(&m.connection_id, "marketing").await?;
        // The door: the customer's own commands, and the number's access policy.
        let who = Visitor {
            connection_id: m.connection_id.clone(),
            contact_id: m.contact_id.clone(),
            conversation_id: m.conversation_id.clone(),
            // Named in the code's mail: printable, and short.
            business: tenant
                .name
                .chars()
                .filter(|c| !c.is_control())
                .take(60)
                .collect(),
        };
        let gate = commands::gate(
            &mut tx,
            &m.connection_id,
            &m.access_policy,
            m.contact_email.clone(),
        )
        .await?;
        tx.commit().await?;
        let command = match m.kind.as_str() {
            "text" => m.body.as_deref().and_then(commands::parse),
            _ => None,
        };
        // Nothing is answered on a number that is not live and switched on; a code sent to it
        // still does not stay in the conversation.
        let Some(connection) = connection.filter(|c| c.status == "live" && c.active != 0) else {
            tracing::info!(message = %m.id, "no decision: the connection is not live");
            if let Some(text) = command.as_ref().and_then(commands::redacted) {
                let mut tx = self.store.begin(Scope::Tenant(scope), Mode::Write).await?;
                tx.redact_message(&m.id, text).await?;
                tx.commit().await?;
            }
            return Ok(());
        };
        // The policy never sees a closed conversation or one people own.
        let for_policy = policy.is_some() && m.state == "open" && m.owner == "policy";
        let door = match command {
            Some(c) => Some(Door::Command(c)),
            None if for_policy && !gate.admitted => Some(Door::Refuse),
            None => None,
        };
        if let Some(door) = door {
            return self
                .answer_at_door(job, chain, (p.tenant, scope), m, &connection, who, door)
                .await;
        }
        let Some(policy) = policy.filter(|_| for_policy) else {
            tracing::info!(message = %m.id, state = %m.state, owner = %m.owner, "no decision: no policy, conversation closed or owned by people");
            return Ok(());
        };
        let plugin = self
            .plugins
            .policy(&policy.plugin, &p.tenant)
            .ok_or_else(|| JobError::Retry(format!("policy {} is not loaded", policy.plugin)))?;
        // A plan changed after the policy was chosen still holds: no AI policy runs without it.
        if let Err(e) = crate::plans::policy_allowed(plan.as_ref(), &plugin) {
            tracing::info!(message = %m.id, reason = %e, "no decision: the plan does not allow this policy");
            return Ok(());
        }
        let connector = self.connector_of(&connection)?;
        let channel = connector.channel_rules();
        let now = now_ms();
        let (window_open, window_closes) = window(channel, m.last_inbound_at, now);
        let party = Party {
            phone: m.contact_phone.clone(),
            user_id: m.contact_user_id.clone(),
            name: m.contact_name.clone(),
        };
        let ctx = ConversationContext {
            tenant_id: p.tenant.clone(),
            conversation_id: m.conversation_id.clone(),
            channel: connection.connector.clone(),
            rules: channel.to_wit(),
            contact: party.clone(),
            window_open,
            window_closes_at: window_closes.map(|t| (t / 1000) as u64),
            history: turns(
                history
                    .into_iter()
                    // The message being decided on is the message, not its history.
                    .filter(|h| {
                        h.provider_message_id != m.provider_message_id || h.direction != "in"
                    }),
            ),
            config: policy.config.clone(),
            owner: owner_from_name(&m.owner),
            assignee: m.assignee.clone(),
            contact_email: gate.email,
        };
        // The whole message as the connector parsed it; rows stored before messages kept it
        // give what they have.
        let stored = m
            .content
            .as_deref()
            .and_then(|json| serde_json::from_str::<InboundMessage>(json).ok());
        let mut msg = stored.unwrap_or_else(|| InboundMessage {
            provider_message_id: m.provider_message_id.clone().unwrap_or_default(),
            channel_address: connection.channel_address.clone(),
            sender: party,
            timestamp: (m.created_at / 1000) as u64,
            kind: kind_from_name(&m.kind),
            text: m.body.clone(),
            media: Vec::new(),
            location: None,
            interactive: None,
            reply_to: m.reply_to.clone(),
            referral: None,
            details: None,
            edits: None,
        });
        // The ad that started the chat as the host kept it (bounded), so a policy can report
        // the click.
        msg.referral = m.referral.clone().map(Referral::from);
        let actions = plugin
            .decide(&ctx, &msg)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let rules = Rules {
            channel,
            window_open,
            marketing_allowed,
            contact_wrote_first: m.last_inbound_at.is_some(),
            contact_stopped_marketing: m.contact_marketing_stopped_at.is_some(),
        };
        // What the host allows of each action, judged before the write.
        let mut plans = Vec::new();
        for (i, action) in actions.into_iter().enumerate() {
            let reply = match action {
                Action::Reply(reply) => reply,
                Action::HandOff(reason) => {
                    plans.push(Planned::HandOff(reason));
                    continue;
                }
            };
            let proposed = describe(&reply.content);
            let verdict = host_rules(reply, rules);
            let ((kind, body), content) = match &verdict {
                Ok(r) => (describe(&r.content), Some(to_json(r)?)),
                Err(_) => (proposed, None),
            };
            plans.push(Planned::Reply {
                key: format!("{}:{i}", m.id),
                kind,
                body,
                content,
                blocked: verdict.err().map(|r| r.reason),
            });
        }
        let (tenant, lease_ms, decided) = (p.tenant, self.lease_ms, job.clone());
        let recorded = self
            .store
            .grouped(Scope::Tenant(scope), move |tx| {
                Box::pin(record_decision(tx, tenant, m, plans, decided, lease_ms))
            })
            .await;
        let sends = match recorded {
            Ok(sends) => sends,
            // This decision was recorded by an earlier run: nothing more to do.
            Err(Undone::Already) => return Ok(()),
            Err(Undone::Failed(e)) => return Err(e),
        };
        chain.completed(job);
        // The sends are claimed by this worker, which runs them next.
        for job in sends {
            chain.then(job);
        }
        Ok(())
    }

    /// Send one queued reply through its connector and act on the provider's answer.
    pub(crate) async fn send(
        &self,
        job: &Job,
        chain: &mut crate::jobs::Chain,
    ) -> Result<(), JobError> {
        let (_, scope, mut tx, m, tenant) = self.job_message(job, true).await?;
        let plan_id = tenant.plan_id;
        if m.status != "queued" {
            return Ok(()); // already sent or failed
        }
        let connection = tx
            .connection(&m.connection_id)
            .await?
            .ok_or_else(|| JobError::Permanent("the connection is gone".into()))?;
        let live = connection.status == "live" && connection.active != 0;
        let secrets = if live {
            self.vault.open_connection(&mut tx, &connection.id).await?
        } else {
            Vec::new()
        };
        // The plan's monthly allowance (a plan is looked up only when the tenant has one).
        let used_up = match &plan_id {
            Some(id) => {
                let plan = tx.plan(id).await?;
                crate::plans::allowance_used_up(&mut tx, plan.as_ref()).await?
            }
            None => None,
        };
        // Consent can be revoked between the decision and the send: read it again, here, for
        // a reply that may send a marketing template (one indexed read, in this transaction).
        let marketing_allowed = if may_send_marketing(&stored_reply(&m)?) {
            tx.consent_active(&m.connection_id, "marketing").await?
        } else {
            true
        };
        tx.commit().await?;
        let now = now_ms();
        let tenant = Scope::Tenant(scope.clone());
        if !live {
            // Sends pause while a connection's credentials are expired; a reply that waited
            // longer than a window fails, as does one for a number no longer connected.
            if matches!(connection.status.as_str(), "expired" | "error")
                && now - m.created_at < PAUSE_LIMIT_MS
            {
                return Err(JobError::Defer(
                    now + PAUSE_RECHECK_MS,
                    format!("sends paused: the connection is {}", connection.status),
                ));
            }
            let mut tx = self.store.begin(tenant, Mode::Write).await?;
            tx.record_send(
                &m.id,
                None,
                Some(("connection-inactive", "host", "the connection is not live")),
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        if let Some(reason) = used_up {
            let mut tx = self.store.begin(tenant, Mode::Write).await?;
            tx.record_send(&m.id, None, Some(("blocked", "plan-limit", &reason)))
                .await?;
            tx.commit().await?;
            tracing::info!(message = %m.id, reason, "reply refused: the plan's allowance is used up");
            return Ok(());
        }
        let mut reply = stored_reply(&m)?;
        let plugin = self.connector_of(&connection)?;
        let channel = plugin.channel_rules();
        // The window may have closed while the reply waited: its fallback, or nothing.
        let (window_open, _) = window(channel, m.last_inbound_at, now);
        if !window_open && !matches!(reply.content, Content::Template(_)) {
            let mut tx = self.store.begin(tenant.clone(), Mode::Write).await?;
            let next = self
                .fall_back(
                    &mut tx,
                    &m.id,
                    &reply,
                    (
                        "host",
                        "the customer-service window closed before the reply was sent",
                    ),
                )
                .await?;
            tx.commit().await?;
            match next {
                Some(r) => reply = r,
                None => return Ok(()),
            }
        }
        // The host's rules again, with what may have changed since the decision: marketing
        // consent, the contact stopping marketing, the window (handled just above).
        let rules = Rules {
            channel,
            window_open,
            marketing_allowed,
            contact_wrote_first: m.last_inbound_at.is_some(),
            contact_stopped_marketing: m.contact_marketing_stopped_at.is_some(),
        };
        reply = match host_rules(reply, rules) {
            Ok(r) => r,
            Err(Refusal { reason, .. }) => {
                let mut tx = self.store.begin(tenant.clone(), Mode::Write).await?;
                tx.record_send(&m.id, None, Some(("blocked", "host-policy", reason)))
                    .await?;
                tx.commit().await?;
                tracing::info!(message = %m.id, reason, "reply refused by the host at send time");
                return Ok(());
            }
        };
        // A template the connection's account lists as not approved is never sent.
        if let Content::Template(t) = &reply.content {
            let mut tx = self.store.begin(tenant.clone(), Mode::Write).await?;
            let status = tx
                .template_status(&connection.id, &t.name, &t.language)
                .await?;
            if let Err(why) = template_sendable(status.as_deref()) {
                tx.record_send(&m.id, None, Some(("template-not-approved", "host", &why)))
                    .await?;
                tx.commit().await?;
                tracing::info!(message = %m.id, template = %t.name, "template not approved; not sent");
                return Ok(());
            }
        }
        // Record the attempt and book a rate slot in one write; a slot too far ahead undoes
        // both and waits in the queue.
        let (id, connection_id) = (m.id.clone(), connection.id.clone());
        let (lease_ms, interval) = (self.lease_ms, 1_000_000 / i64::from(self.send_rate.max(1)));
        let connector = plugin.manifest().name.clone();
        let booked = self
            .store
            .grouped(tenant.clone(), move |tx| {
                Box::pin(async move {
                    let possible_duplicate =
                        match tx.begin_send_attempt(&id, now + lease_ms).await? {
                            Attempt::Settled => return Ok(None),
                            Attempt::InFlight(until) => {
                                return Err(JobError::Defer(
                                    until + 1,
                                    "another attempt is in flight".into(),
                                ));
                            }
                            Attempt::Started { possible_duplicate } => possible_duplicate,
                        };
                    match tx
                        .reserve_send_slot(&connection_id, now_us(), interval, SLOT_HORIZON_US)
                        .await?
                    {
                        Slot::At(at) => Ok(Some((at, possible_duplicate))),
                        // An error undoes the attempt too.
                        Slot::Busy(at) => {
                            crate::metrics::send_rate_deferred(&connector);
                            Err(JobError::Defer(
                                at / 1000 + 1,
                                "the connection's send rate is booked".into(),
                            ))
                        }
                    }
                })
            })
            .await?;
        let Some((slot, possible_duplicate)) = booked else {
            return Ok(());
        };
        if possible_duplicate {
            tracing::warn!(message = %m.id, "an earlier send's outcome is unknown; this one may be a duplicate");
        }
        let wait = Duration::from_micros((slot - now_us()).max(0) as u64);
        crate::metrics::send_rate_wait(&plugin.manifest().name, wait);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        // Media people sent is fetched by the provider through a link minted for this attempt
        // (only now that it is this run's: a rerun never cancels a link in use).
        if let Content::Media(r) = &mut reply.content
            && let Some(named) = r.url.clone()
        {
            match crate::media::media_link(&self.store, &tenant, &self.public_url, &named, &m.id)
                .await
            {
                Ok(Some(link)) => r.url = Some(link),
                Ok(None) => {}
                Err(e) => {
                    // The attempt was recorded: end it unsettled, so the retry is not delayed.
                    let mut tx = self.store.begin(tenant.clone(), Mode::Write).await?;
                    tx.end_send_attempt(&m.id, true).await?;
                    tx.commit().await?;
                    return Err(e.into());
                }
            }
        }

        let info = self
            .providers
            .connection_info(&connection, &plugin, &self.public_url);
        let out = OutboundMessage {
            to: Party {
                phone: m.contact_phone.clone(),
                user_id: m.contact_user_id.clone(),
                name: None,
            },
            content: reply.content.clone(),
            reply_to: m.reply_to.clone().filter(|_| channel.reply_context),
            idempotency_key: m.idempotency_key.clone().unwrap_or_else(|| m.id.clone()),
        };
        let call_scope = Vault::call_scope(None, Some((&connection, secrets)));
        let result = plugin
            .send(call_scope, &info, &out)
            .await
            .map_err(|e| e.to_string());
        crate::metrics::send(
            &plugin.manifest().name,
            match &result {
                Ok(Ok(_)) => "ok",
                Ok(Err(e)) => crate::jobs::error_kind_name(e.kind),
                Err(_) => "plugin-failed",
            },
        );
        let (w, sent) = (self.clone(), job.clone());
        let (outcome, completed) = self
            .store
            .grouped(tenant, move |tx| {
                Box::pin(async move {
                    Ok::<_, JobError>(match result {
                        // The plugin failed mid-call: the provider may have the message.
                        Err(e) => {
                            tx.end_send_attempt(&m.id, false).await?;
                            (Err(JobError::Retry(e)), false)
                        }
                        Ok(Ok(provider_id)) => {
                            tx.record_send(&m.id, Some(&provider_id), None).await?;
                            complete_in(tx, &sent).await?;
                            (Ok(()), true)
                        }
                        // What the provider's refusal changes is kept, whatever the job's
                        // outcome.
                        Ok(Err(e)) => (w.on_send_error(tx, &m, &reply, &e).await?, false),
                    })
                })
            })
            .await?;
        if completed {
            chain.completed(job);
        }
        outcome
    }

    /// Act on a provider's refusal of a send; the caller commits. The inner result is the job's
    /// outcome (its writes are kept either way); the outer error, a write that failed (the
    /// caller must undo them all).
    async fn on_send_error(
        &self,
        tx: &mut Tx,
        m: &MessageContext,
        reply: &Reply,
        e: &ProviderError,
    ) -> Result<Result<(), JobError>, JobError> {
        let what = format!("{} {}", e.code, e.message);
        if self.side_effects(tx, m, e).await? {
            tx.end_send_attempt(&m.id, true).await?;
            return Ok(Err(JobError::Defer(
                now_ms() + PAUSE_RECHECK_MS,
                format!("sends paused: {what}"),
            )));
        }
        Ok(match e.kind {
            ErrorKind::RateLimited => {
                tx.end_send_attempt(&m.id, true).await?;
                // As long as the provider asks (Telegram's `retry_after`), within reason; each
                // such wait counts as an attempt, so a provider asking forever is not obeyed
                // forever.
                match e.retry_after {
                    Some(s) => Err(JobError::RetryAt(
                        now_ms() + i64::from(s.clamp(1, 3600)) * 1000,
                        what,
                    )),
                    None => Err(JobError::Retry(what)),
                }
            }
            // A 5xx or a timeout: the provider may have taken it.
            ErrorKind::Transient => {
                tx.end_send_attempt(&m.id, false).await?;
                Err(JobError::Retry(what))
            }
            ErrorKind::WindowClosed => {
                if self
                    .fall_back(tx, &m.id, reply, (&e.code, &e.message))
                    .await?
                    .is_some()
                {
                    tx.end_send_attempt(&m.id, true).await?;
                    return Ok(Err(JobError::Defer(
                        now_ms(),
                        "sending the template fallback".into(),
                    )));
                }
                Ok(())
            }
            _ => {
                // Meta paused or disabled the template after approval: remember it, so the
                // next reply with it is refused here until the templates are listed again.
                if let (Content::Template(t), Some(status)) =
                    (&reply.content, template_status_from_error(&e.code))
                {
                    tx.set_template_status(&m.connection_id, &t.name, &t.language, status)
                        .await?;
                }
                tx.record_send(
                    &m.id,
                    None,
                    Some((error_kind_name(e.kind), &e.code, &e.message)),
                )
                .await?;
                Ok(())
            }
        })
    }

    /// What a provider error does beyond failing its message: a connection that cannot send is
    /// marked (see [`connection_effect`]), a contact who stopped marketing is remembered.
    /// `true` when the connection's sends pause.
    async fn side_effects(
        &self,
        tx: &mut Tx,
        m: &MessageContext,
        e: &ProviderError,
    ) -> Result<bool, JobError> {
        if let Some((status, hint)) = connection_effect(e.kind) {
            let reason = format!("{} {} ({hint})", e.code, e.message);
            tx.set_connection_status(&m.connection_id, status, Some(&reason))
                .await?;
            return Ok(true);
        }
        if e.kind == ErrorKind::MarketingStopped {
            tx.stop_marketing(&m.contact_id).await?;
        }
        Ok(false)
    }

    /// The window is closed for free-form `reply`: make its template fallback what the message
    /// sends, or fail the message as `window-closed` with `(code, message)` when it has none.
    async fn fall_back(
        &self,
        tx: &mut Tx,
        id: &str,
        reply: &Reply,
        (code, message): (&str, &str),
    ) -> Result<Option<Reply>, JobError> {
        let Some(next) = fallback_of(reply) else {
            tx.record_send(id, None, Some(("window-closed", code, message)))
                .await?;
            return Ok(None);
        };
        let (kind, body) = describe(&next.content);
        tx.replace_reply(id, kind, body.as_deref(), &to_json(&next)?)
            .await?;
        Ok(Some(next))
    }

    /// A provider failed a send it had accepted (a `failed` status): the error acts as a send
    /// error would. Runs in the status event's transaction.
    pub(crate) async fn after_failed_status(
        &self,
        tx: &mut Tx,
        tenant: &str,
        message_id: &str,
        e: &ProviderError,
    ) -> Result<(), JobError> {
        let Some(m) = tx.message_context(message_id).await? else {
            return Ok(());
        };
        // Not the host's send (an echo of the business's other tool): nothing to resend.
        if m.idempotency_key.is_none() {
            return Ok(());
        }
        // A connection that cannot send: the reply waits (queued) until it can again.
        let paused = self.side_effects(tx, &m, e).await?;
        let resend = match e.kind {
            _ if paused => m.send_attempts < MAX_RESENDS,
            ErrorKind::WindowClosed => match fallback_of(&stored_reply(&m)?) {
                Some(next) => {
                    let (kind, body) = describe(&next.content);
                    tx.replace_reply(&m.id, kind, body.as_deref(), &to_json(&next)?)
                        .await?;
                    true
                }
                None => false,
            },
            ErrorKind::RateLimited | ErrorKind::Transient => m.send_attempts < MAX_RESENDS,
            _ => false,
        };
        if resend && tx.requeue_reply(&m.id).await? {
            tx.enqueue(SEND, None, &send_job(tenant, &m.id)?, tenant)
                .await?;
        }
        Ok(())
    }

    /// A send job was dead-lettered: the reply is failed, not left queued for ever.
    pub(crate) async fn send_gave_up(&self, job: &Job, error: &str) -> Result<(), JobError> {
        let (_, scope, tx, m, _) = self.job_message(job, false).await?;
        drop(tx);
        let mut tx = self.store.begin(Scope::Tenant(scope), Mode::Write).await?;
        if m.status == "queued" {
            tx.record_send(&m.id, None, Some(("gave-up", "host", error)))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(category: TemplateCategory) -> Template {
        Template {
            name: "spring_sale".into(),
            language: "en_US".into(),
            category,
            parameters: vec!["Ana".into()],
        }
    }

    static WHATSAPP: std::sync::LazyLock<ChannelRules> =
        std::sync::LazyLock::new(ChannelRules::whatsapp);

    fn rules(window_open: bool, marketing_allowed: bool) -> Rules<'static> {
        Rules {
            channel: &WHATSAPP,
            window_open,
            marketing_allowed,
            contact_wrote_first: true,
            contact_stopped_marketing: false,
        }
    }

    fn text(fallback: Option<Template>) -> Reply {
        Reply {
            content: Content::Text("hi".into()),
            fallback,
        }
    }

    #[test]
    fn free_form_goes_out_only_inside_the_window() {
        let sent = host_rules(text(None), rules(true, false)).expect("inside");
        assert!(matches!(sent.content, Content::Text(ref t) if t == "hi"));
        let closed = host_rules(text(None), rules(false, true)).expect_err("outside");
        assert_eq!(closed.code, "window_closed");
        assert!(closed.reason.contains("window closed"), "{closed:?}");
        let image = Reply {
            content: Content::Media(MediaRef {
                provider_media_id: Some("1".into()),
                url: None,
                mime_type: Some("image/jpeg".into()),
                sha256: None,
                caption: Some("look".into()),
                filename: None,
            }),
            fallback: None,
        };
        assert_eq!(describe(&image.content), ("image", Some("look".into())));
        assert!(host_rules(image, rules(false, true)).is_err());
    }

    #[test]
    fn outside_the_window_the_fallback_template_is_sent_instead() {
        let r = host_rules(
            text(Some(template(TemplateCategory::Utility))),
            rules(false, false),
        )
        .expect("fallback");
        assert!(matches!(r.content, Content::Template(ref t) if t.name == "spring_sale"));
        assert!(r.fallback.is_none());
        // A marketing fallback needs marketing consent.
        let e = host_rules(
            text(Some(template(TemplateCategory::Marketing))),
            rules(false, false),
        )
        .expect_err("no consent");
        assert!(e.reason.contains("marketing consent"), "{e:?}");
        assert!(
            host_rules(
                text(Some(template(TemplateCategory::Marketing))),
                rules(false, true)
            )
            .is_ok()
        );
        // Inside the window a fallback it may not use is dropped, not kept for later.
        let kept = host_rules(
            text(Some(template(TemplateCategory::Marketing))),
            rules(true, false),
        )
        .expect("inside");
        assert!(kept.fallback.is_none());
    }

    #[test]
    fn marketing_templates_need_consent_and_nobody_gets_an_unsolicited_message() {
        let t = |c| Reply {
            content: Content::Template(template(c)),
            fallback: None,
        };
        let e = host_rules(t(TemplateCategory::Marketing), rules(true, false)).expect_err("mkt");
        assert_eq!(e.code, "marketing_not_consented");
        assert!(e.reason.contains("marketing consent"), "{e:?}");
        assert!(host_rules(t(TemplateCategory::Marketing), rules(false, true)).is_ok());
        assert!(host_rules(t(TemplateCategory::Utility), rules(false, false)).is_ok());
        let never = Rules {
            contact_wrote_first: false,
            ..rules(true, true)
        };
        let e = host_rules(t(TemplateCategory::Utility), never).expect_err("unsolicited");
        assert_eq!(e.reason, "the contact never wrote first");
        // A contact who stopped marketing gets none, consent or not; utility still goes out.
        let stopped = Rules {
            contact_stopped_marketing: true,
            ..rules(true, true)
        };
        let e = host_rules(t(TemplateCategory::Marketing), stopped).expect_err("stopped");
        assert_eq!(e.reason, "the contact stopped marketing messages");
        assert!(host_rules(t(TemplateCategory::Utility), stopped).is_ok());
    }

    #[test]
    fn errors_that_stop_a_connection_pause_its_sends() {
        assert_eq!(
            connection_effect(ErrorKind::AuthExpired).map(|e| e.0),
            Some("expired")
        );
        assert_eq!(
            connection_effect(ErrorKind::AccountBlocked).map(|e| e.0),
            Some("error")
        );
        assert_eq!(
            connection_effect(ErrorKind::PermissionMissing).map(|e| e.0),
            Some("error")
        );
        for k in [
            ErrorKind::WindowClosed,
            ErrorKind::RateLimited,
            ErrorKind::MarketingStopped,
            ErrorKind::InvalidRecipient,
            ErrorKind::Transient,
            ErrorKind::Permanent,
        ] {
            assert!(connection_effect(k).is_none());
        }
    }

    #[test]
    fn only_approved_or_never_listed_templates_are_sent() {
        assert!(template_sendable(None).is_ok());
        assert!(template_sendable(Some("APPROVED")).is_ok());
        assert!(template_sendable(Some("approved")).is_ok());
        for s in ["PAUSED", "REJECTED", "PENDING", "DISABLED", ""] {
            let e = template_sendable(Some(s)).expect_err(s);
            assert!(e.contains("only APPROVED"), "{e}");
        }
        // Meta's paused/disabled send errors make the template unsendable until listed again.
        for code in ["132015", "132016"] {
            let status = template_status_from_error(code).expect(code);
            assert!(template_sendable(Some(status)).is_err());
        }
        assert_eq!(template_status_from_error("132001"), None);
    }

    #[test]
    fn a_decided_reply_round_trips_through_its_stored_form() {
        let r = text(Some(template(TemplateCategory::Utility)));
        let json = to_json(&r).expect("json");
        let back: Reply = serde_json::from_str(&json).expect("parse");
        assert_eq!(to_json(&back).expect("json"), json);
        let fb = fallback_of(&back).expect("fallback");
        assert_eq!(
            describe(&fb.content),
            ("template", Some("spring_sale".into()))
        );
        assert!(fallback_of(&fb).is_none());
    }
}
