//! The desk: people answer their tenant's conversations. A person's reply is judged by the
//! host's rules exactly as a policy's is (the channel's limits, the customer-service window,
//! marketing consent, the plan's allowance), recorded with who sent it, and sent by the same
//! `send` job at the number's rate; it gives the conversation to people (DECISIONS C4). A
//! conversation people leave idle longer than the tenant allows goes back to its policy.
//!
//! Media people send is kept by the host; providers fetch it through a link the send job mints
//! ([`crate::media::media_link`]).

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::jobs::{MessageJob, SEND};
use crate::media::MEDIA_SCHEME;
use crate::plans::PlanError;
use crate::replies::{Refusal, Rules, describe, host_rules, template_sendable, window};
use crate::runtime::manifest::ChannelRules;
use crate::runtime::types::{Content, MediaRef, Reply, Template, TemplateCategory};
use crate::store::{MessageRecord, Mode, Store, StoreError, TemplateRecord, now_ms};
use crate::supervise::{Ended, supervise};
use crate::tenancy::{Scope, TenantAccess, ids::new_id};

/// The MIME types people may send (WhatsApp's supported types); the number's connector
/// declares which kinds (image, audio, video, document) its channel sends.
const SENDABLE: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "video/mp4",
    "video/3gpp",
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// Whether `body` begins as a file of the sendable type `mime` does (its signature), so a
/// file cannot travel under a type it is not. A table beside [`SENDABLE`], not a crate:
/// sixteen fixed signatures, the ones WhatsApp's types are recognised by.
fn looks_like(mime: &str, body: &[u8]) -> bool {
    let at = |offset: usize, signature: &[u8]| {
        body.get(offset..offset + signature.len()) == Some(signature)
    };
    let frame_sync = |mask: u8, bits: u8| {
        body.first() == Some(&0xFF) && body.get(1).is_some_and(|b| b & mask == bits)
    };
    match mime {
        "image/jpeg" => at(0, &[0xFF, 0xD8, 0xFF]),
        "image/png" => at(0, b"\x89PNG\r\n\x1a\n"),
        "image/webp" => at(0, b"RIFF") && at(8, b"WEBP"),
        // ADTS frames (sync word 0xFFF, layer 0) or an ADIF header.
        "audio/aac" => frame_sync(0xF6, 0xF0) || at(0, b"ADIF"),
        "audio/amr" => at(0, b"#!AMR"),
        "audio/mpeg" => at(0, b"ID3") || frame_sync(0xE0, 0xE0),
        // ISO base media files: a `ftyp` box first.
        "audio/mp4" | "video/mp4" | "video/3gpp" => at(4, b"ftyp"),
        "audio/ogg" => at(0, b"OggS"),
        "application/pdf" => at(0, b"%PDF-"),
        "text/plain" => std::str::from_utf8(body).is_ok_and(|t| !t.contains('\0')),
        // Office 97–2003: a compound file.
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => {
            at(0, &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
        }
        // Office Open XML: a zip.
        m if m.starts_with("application/vnd.openxmlformats-officedocument.") => {
            at(0, b"PK\x03\x04")
        }
        _ => false,
    }
}

/// Why the desk refused something.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No such conversation or message for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The number cannot send now (409).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What to do.
        message: String,
    },
    /// The reply breaks a rule (422).
    #[error("{message}")]
    Refused {
        /// Stable code, e.g. `window_closed`.
        code: &'static str,
        /// Why, in words an agent can act on.
        message: String,
    },
    /// The plan's allowance is used up.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The number's connector is not loaded.
    #[error("connector {0} is not loaded")]
    ConnectorMissing(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: what the host wrote could not be encoded.
    #[error("{0}")]
    Internal(String),
}

fn refused(code: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::Refused {
        code,
        message: message.into(),
    }
}

/// A template people may send, as the reply options list it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateChoice {
    /// Template name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// `marketing`, `utility` or `authentication`.
    pub category: String,
    /// A name for people when `name` is an id (a Twilio content SID); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// What a person may send in a conversation now, before they type.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplyOptions {
    /// `free-form` (text, media, reactions, templates), `template` (the window is closed: only
    /// one of `templates`) or `none` (nothing can be sent; `reason` says why).
    pub mode: &'static str,
    /// When the customer-service window closes (Unix ms), while it is open on a channel with one.
    pub window_closes_at: Option<i64>,
    /// Why not free-form, in words.
    pub reason: Option<String>,
    /// The number's approved templates this contact may receive.
    pub templates: Vec<TemplateChoice>,
    /// What the number's channel allows (its connector declares it).
    #[schema(value_type = Object)]
    pub channel: Option<ChannelRules>,
}

/// Media a person sends: the bytes as uploaded.
#[derive(Debug)]
pub struct Upload {
    /// The bytes.
    pub body: Vec<u8>,
    /// Their MIME type (one of the sendable ones).
    pub mime_type: String,
    /// A document's file name.
    pub filename: Option<String>,
    /// Caption.
    pub caption: Option<String>,
}

/// What a person asks to send.
#[derive(Debug)]
pub enum Draft {
    /// Free-form text.
    Text(String),
    /// A template of the number, by name and language, with its body parameters.
    Template {
        /// Name.
        name: String,
        /// Language code.
        language: String,
        /// `{{1}}`, `{{2}}`, … in order.
        parameters: Vec<String>,
    },
    /// A reaction to one of the conversation's messages (`msg_…`); an empty emoji removes it.
    Reaction {
        /// The message reacted to.
        message: String,
        /// The emoji.
        emoji: String,
    },
    /// Media the host keeps and the provider fetches.
    Media(Upload),
}

/// Everything a reply in a conversation is judged on.
struct Situation {
    target: crate::store::DeskTarget,
    connection: crate::store::ConnectionRecord,
    channel: Option<ChannelRules>,
    window_open: bool,
    window_closes_at: Option<i64>,
    templates: Vec<TemplateRecord>,
    marketing_allowed: bool,
    used_up: Option<(String, crate::store::PlanRecord)>,
}

impl Situation {
    async fn read(
        store: &Store,
        plugins: &Catalog,
        access: &TenantAccess,
        conversation: &str,
    ) -> Result<Situation, DeskError> {
        let mut tx = access.begin(store, Mode::Read).await?;
        let target = tx
            .desk_target(conversation)
            .await?
            .ok_or(DeskError::NotFound("conversation"))?;
        let connection = tx
            .connection(&target.connection_id)
            .await?
            .ok_or(DeskError::NotFound("connection"))?;
        let templates = tx.templates(&connection.id).await?;
        let marketing_allowed = tx.consent_active(&connection.id, "marketing").await?;
        let plan = tx.tenant_plan().await?;
        let used_up = crate::plans::allowance_used_up(&mut tx, plan.as_ref()).await?;
        tx.commit().await?;
        let channel = plugins
            .connector(&connection.connector, Some(&connection.endpoint_id))
            .map(|p| p.channel_rules().clone());
        let (window_open, window_closes_at) = match &channel {
            Some(c) => window(c, target.last_inbound_at, now_ms()),
            None => (false, None),
        };
        Ok(Situation {
            target,
            connection,
            channel,
            window_open,
            window_closes_at,
            templates,
            marketing_allowed,
            used_up: used_up.zip(plan),
        })
    }

    /// Why nothing at all can be sent now, if nothing can.
    fn blocked(&self) -> Option<DeskError> {
        let c = &self.connection;
        if c.status != "live" {
            return Some(DeskError::Conflict {
                code: "connection_not_live",
                message: format!(
                    "the number is {}; reconnect or verify it before replying",
                    c.status
                ),
            });
        }
        if c.active == 0 {
            return Some(DeskError::Conflict {
                code: "number_inactive",
                message: "this number is switched off; switch it on to send from it".into(),
            });
        }
        if self.channel.is_none() {
            return Some(DeskError::ConnectorMissing(c.connector.clone()));
        }
        if let Some((reason, plan)) = &self.used_up {
            return Some(crate::plans::refusal(plan, format!("a reply ({reason})")).into());
        }
        if self.target.last_inbound_at.is_none() {
            return Some(refused(
                "never_wrote",
                "the contact never wrote to this number; a business may only answer",
            ));
        }
        None
    }

    /// Whether the contact may receive this template now.
    fn template_allowed(&self, t: &TemplateRecord) -> bool {
        template_sendable(Some(&t.status)).is_ok()
            && (t.category != "marketing"
                || (self.marketing_allowed && self.target.marketing_stopped_at.is_none()))
    }

    fn rules(&self) -> Option<Rules<'_>> {
        Some(Rules {
            channel: self.channel.as_ref()?,
            window_open: self.window_open,
            marketing_allowed: self.marketing_allowed,
            contact_wrote_first: self.target.last_inbound_at.is_some(),
            contact_stopped_marketing: self.target.marketing_stopped_at.is_some(),
        })
    }
}

/// What a person may send in `conversation` now.
pub async fn options(
    store: &Store,
    plugins: &Catalog,
    access: &TenantAccess,
    conversation: &str,
) -> Result<ReplyOptions, DeskError> {
    let s = Situation::read(store, plugins, access, conversation).await?;
    let templates: Vec<TemplateChoice> = s
        .templates
        .iter()
        .filter(|t| s.template_allowed(t))
        .map(|t| TemplateChoice {
            name: t.name.clone(),
            language: t.language.clone(),
            category: t.category.clone(),
            display_name: t.display_name.clone(),
        })
        .collect();
    let has_templates = s.channel.as_ref().is_some_and(|c| c.templates);
    let (mode, reason) = match s.blocked() {
        Some(why) => ("none", Some(why.to_string())),
        None if s.window_open => ("free-form", None),
        None if has_templates => (
            "template",
            Some("the customer-service window is closed: only an approved template can be sent until the customer writes again".to_string()),
        ),
        None => (
            "none",
            Some("the customer-service window is closed and this channel has no templates: wait for the customer to write".to_string()),
        ),
    };
    Ok(ReplyOptions {
        mode,
        window_closes_at: s.window_closes_at,
        reason,
        templates: if has_templates { templates } else { Vec::new() },
        channel: s.channel,
    })
}

/// Send a person's reply in `conversation` (replying to its message `reply_to`, if given):
/// judged, recorded with `author`, queued for the `send` job, and the conversation given to
/// people. The recorded message, and whether this call made it: with the client's
/// `idempotency_key`, a request made again (a retry after a lost answer) gets the message the
/// first one made, and nothing is sent twice.
#[allow(clippy::too_many_arguments)]
pub async fn reply(
    store: &Store,
    plugins: &Catalog,
    jobs: &tokio::sync::Notify,
    access: &TenantAccess,
    conversation: &str,
    draft: Draft,
    reply_to: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<(MessageRecord, bool), DeskError> {
    // The client's key, per author (another key or person never collides with it).
    let key = match idempotency_key {
        Some(k) => format!(
            "hum:{}:{}",
            access.actor.author(),
            hex::encode(Sha256::digest(k.as_bytes()))
        ),
        None => new_id("hum"),
    };
    if idempotency_key.is_some()
        && let Some(done) = made_before(store, access, conversation, &key).await?
    {
        return Ok((done, false));
    }
    let s = Situation::read(store, plugins, access, conversation).await?;
    if let Some(why) = s.blocked() {
        return Err(why);
    }
    let rules = s.rules().ok_or(DeskError::NotFound("connector"))?;
    // Message ids people name are the conversation's, turned into the provider's ids.
    let mut tx = access.begin(store, Mode::Read).await?;
    let mut provider_id = async |message: &str, what: &'static str| match tx
        .provider_id_in(conversation, message)
        .await?
    {
        None => Err(refused(
            "unknown_message",
            format!("{what} must be a message of this conversation"),
        )),
        Some(None) => Err(refused(
            "message_not_sent",
            format!("{what} was never delivered to the provider; pick a delivered message"),
        )),
        Some(Some(id)) => Ok(id),
    };
    let reply_to_provider = match reply_to {
        Some(m) => Some(provider_id(m, "reply_to").await?),
        None => None,
    };
    let (content, upload) = match draft {
        Draft::Text(t) => (Content::Text(t), None),
        Draft::Reaction { message, emoji } => (
            Content::Reaction(crate::runtime::types::Reaction {
                message_id: provider_id(&message, "the reaction's message").await?,
                emoji,
            }),
            None,
        ),
        Draft::Template {
            name,
            language,
            parameters,
        } => {
            let listed = s
                .templates
                .iter()
                .find(|t| t.name == name && t.language == language)
                .ok_or_else(|| {
                    refused(
                        "unknown_template",
                        format!("the number has no template {name} in {language}; sync its templates or pick a listed one"),
                    )
                })?;
            template_sendable(Some(&listed.status))
                .map_err(|why| refused("template_not_approved", why))?;
            let category = match listed.category.as_str() {
                "marketing" => TemplateCategory::Marketing,
                "authentication" => TemplateCategory::Authentication,
                _ => TemplateCategory::Utility,
            };
            (
                Content::Template(Template {
                    name,
                    language,
                    category,
                    parameters,
                }),
                None,
            )
        }
        Draft::Media(upload) => {
            // The connector's channel rules judge the kind (below); this, the type itself.
            if !SENDABLE.contains(&upload.mime_type.as_str()) {
                return Err(refused(
                    "unsupported_media",
                    format!(
                        "{} cannot be sent; send one of: {}",
                        upload.mime_type,
                        SENDABLE.join(", ")
                    ),
                ));
            }
            if !looks_like(&upload.mime_type, &upload.body) {
                return Err(refused(
                    "media_mismatch",
                    format!(
                        "the file's content is not {}: send it with its real type",
                        upload.mime_type
                    ),
                ));
            }
            (
                Content::Media(MediaRef {
                    provider_media_id: None,
                    url: None,
                    mime_type: Some(upload.mime_type.clone()),
                    sha256: None,
                    caption: upload.caption.clone(),
                    filename: upload.filename.clone(),
                }),
                Some(upload),
            )
        }
    };
    tx.commit().await?;
    let reply = host_rules(
        Reply {
            content,
            fallback: None,
        },
        rules,
    )
    .map_err(|r| people_refusal(r, s.channel.as_ref().is_some_and(|c| c.templates)))?;
    let (kind, body) = describe(&reply.content);
    let author = access.actor.author().to_string();
    let tenant = access.scope.id().to_string();
    let mut tx = access.begin(store, Mode::Write).await?;
    // The message first: its media row refers to it, and the stored reply names the media.
    let inserted = tx
        .insert_message(&crate::store::NewMessage {
            conversation_id: conversation,
            connection_id: &s.connection.id,
            direction: "out",
            provider_message_id: None,
            kind,
            body: body.as_deref(),
            status: "queued",
            idempotency_key: Some(&key),
            reply_to: reply_to_provider.as_deref(),
            content: None,
            sent_at: None,
            author: Some(&author),
            referral: None,
        })
        .await;
    let message = match inserted {
        Ok(m) => m,
        // The same request, made at the same moment, got there first.
        Err(StoreError::Conflict(_)) if idempotency_key.is_some() => {
            drop(tx);
            return made_before(store, access, conversation, &key)
                .await?
                .map(|m| (m, false))
                .ok_or(DeskError::NotFound("message"));
        }
        Err(e) => return Err(e.into()),
    };
    let mut reply = reply;
    if let (Some(upload), Content::Media(m)) = (&upload, &mut reply.content) {
        let media = tx
            .insert_outbound_media(
                &message,
                &upload.mime_type,
                upload.caption.as_deref(),
                upload.filename.as_deref(),
                &upload.body,
            )
            .await?;
        m.url = Some(format!("{MEDIA_SCHEME}{media}"));
    }
    let json = serde_json::to_string(&reply).map_err(|e| DeskError::Internal(e.to_string()))?;
    tx.set_reply_content(&message, &json).await?;
    tx.people_worked(conversation).await?;
    let payload = serde_json::to_string(&MessageJob {
        tenant: tenant.clone(),
        message: message.clone(),
    })
    .map_err(|e| DeskError::Internal(e.to_string()))?;
    tx.enqueue(SEND, None, &payload, &tenant).await?;
    let record = tx
        .message_record(&message)
        .await?
        .ok_or(DeskError::NotFound("message"))?;
    tx.commit().await?;
    jobs.notify_one();
    tracing::info!(conversation, message = %record.id, author = %author, "a person replied");
    Ok((record, true))
}

/// The reply an earlier request with this idempotency key made, if one did; a key used in
/// another conversation is refused.
async fn made_before(
    store: &Store,
    access: &TenantAccess,
    conversation: &str,
    key: &str,
) -> Result<Option<MessageRecord>, DeskError> {
    let mut tx = access.begin(store, Mode::Read).await?;
    let found = tx.message_by_key(key).await?;
    tx.commit().await?;
    match found {
        Some(m) if m.conversation_id != conversation => Err(DeskError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used for a reply in another conversation".into(),
        }),
        found => Ok(found),
    }
}

/// A refusal of the host's rules, worded for the person who typed the reply.
fn people_refusal(r: Refusal, channel_has_templates: bool) -> DeskError {
    match r.code {
        "window_closed" if channel_has_templates => refused(
            "window_closed",
            "the customer-service window is closed: send one of the number's approved templates, or wait for the customer to write",
        ),
        "window_closed" => refused(
            "window_closed",
            "the customer-service window is closed and this channel has no templates: wait for the customer to write",
        ),
        code => refused(code, r.reason),
    }
}

/// Give conversations people left idle back to their policies, for every tenant with an idle
/// hand-back; how many.
pub async fn hand_back_once(store: &Store) -> Result<usize, StoreError> {
    let mut tx = store.begin(Scope::Operator, Mode::Read).await?;
    let tenants = tx.tenants_handing_back().await?;
    tx.commit().await?;
    let mut total = 0;
    for (tenant, minutes) in tenants {
        let Ok(scope) = crate::tenancy::auth::one_tenant(store, &tenant).await else {
            continue;
        };
        // One tenant's failure does not hold up the others.
        let handed = async {
            let mut tx = store.begin(Scope::Tenant(scope), Mode::Write).await?;
            let back = tx
                .hand_back_idle(now_ms() - minutes.saturating_mul(60_000))
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(back)
        };
        let back = match handed.await {
            Ok(back) => back,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "idle hand-back failed for a tenant");
                continue;
            }
        };
        for id in &back {
            tracing::info!(tenant = %tenant, conversation = %id, "idle conversation handed back to its policy");
        }
        total += back.len();
    }
    Ok(total)
}

/// Run the idle hand-back every `every` (supervised) until `shutdown` fires.
pub fn spawn_hand_back(
    store: Store,
    every: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    supervise("idle hand-back", move || {
        let (store, mut stop) = (store.clone(), shutdown.clone());
        async move {
            loop {
                if *stop.borrow() {
                    return Ended::Finished;
                }
                if let Err(e) = hand_back_once(&store).await {
                    tracing::warn!(error = %e, "idle hand-back failed");
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    });
}

/// Why a message failed, in words an agent can act on, from its stored error kind, code and
/// the provider's message.
pub fn failure_words(kind: Option<&str>, code: Option<&str>, message: Option<&str>) -> String {
    let said = message.unwrap_or("no reason given");
    let code = code.unwrap_or("");
    match kind.unwrap_or("") {
        "window-closed" => "The customer-service window had closed. Send an approved template, or wait for the customer to write.".into(),
        "rate-limited" => "The provider kept asking the host to slow down, and it gave up. Send it again in a few minutes.".into(),
        "auth-expired" => "The number's access had expired. An admin must reconnect the number; then send it again.".into(),
        "permission-missing" => "The number's credentials lack a messaging permission. An admin must reconnect it, granting messaging permissions.".into(),
        "invalid-recipient" => "This customer cannot receive messages from this number (no account on the channel, or they blocked the business).".into(),
        "marketing-limited" => "The provider limits marketing messages to this customer for now. Try again later, or send a utility message.".into(),
        "marketing-stopped" => "The customer stopped marketing messages from this business. Send them none.".into(),
        "account-blocked" => "The provider account cannot send (payment, policy or a restriction). Resolve it with the provider, then verify the number.".into(),
        "connection-inactive" => "The number was not live when the message was due. Reconnect it or switch it on, then send it again.".into(),
        "template-not-approved" => format!("{said}. Pick an approved template."),
        "invalid-request" => format!("The provider refused the message as malformed ({code}: {said}). Check the template's parameters or the media."),
        "transient" | "gave-up" => "The provider did not take it after several attempts. Send it again.".into(),
        "blocked" if code == "plan-limit" => format!("The plan's monthly allowance was used up ({said}). Ask the account owner to change the plan."),
        "blocked" => format!("The host did not send it: {said}."),
        _ => format!("The provider refused it ({code}: {said})."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_must_be_what_they_say() {
        let cases: &[(&str, &[u8], bool)] = &[
            ("image/png", b"\x89PNG\r\n\x1a\n....", true),
            ("image/jpeg", b"\x89PNG\r\n\x1a\n....", false),
            ("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0], true),
            ("image/webp", b"RIFF\0\0\0\0WEBPVP8 ", true),
            ("image/webp", b"RIFF\0\0\0\0WAVE", false),
            ("audio/aac", &[0xFF, 0xF1, 0x50], true),
            ("audio/mpeg", b"ID3\x04", true),
            ("audio/mpeg", &[0xFF, 0xFB, 0x90], true),
            ("audio/ogg", b"OggS\0", true),
            ("audio/amr", b"#!AMR\n", true),
            ("video/mp4", b"\0\0\0\x18ftypmp42", true),
            ("video/mp4", b"MZ\x90\0", false),
            ("application/pdf", b"%PDF-1.7", true),
            ("application/pdf", b"<html>", false),
            ("text/plain", "hola, ¿qué tal?".as_bytes(), true),
            ("text/plain", b"\xFF\xFE\0", false),
            (
                "application/msword",
                &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1],
                true,
            ),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                b"PK\x03\x04",
                true,
            ),
            ("application/x-msdownload", b"MZ", false),
            ("image/png", b"", false),
            ("image/png", b"\x89P", false),
        ];
        for (mime, body, ok) in cases {
            assert_eq!(looks_like(mime, body), *ok, "{mime} {body:?}");
        }
        // Every sendable type has a signature.
        assert!(
            SENDABLE
                .iter()
                .all(|m| *m == "text/plain" || !looks_like(m, b""))
        );
    }
}
