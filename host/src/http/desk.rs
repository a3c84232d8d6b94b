//! The desk's API: a conversation with what may be sent in it now, people's replies (text,
//! templates, reactions, media), the tenant's idle hand-back, and the links providers fetch
//! people's media through.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::inbox::ConversationPath;
use super::json::{ApiJson, ApiQuery};
use crate::desk::{Draft, ReplyOptions, Upload};
use crate::error::ApiError;
use crate::store::{ConversationRecord, InsightRecord, MessageRecord, Mode, TenantRecord};

/// A conversation and what may be sent in it now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    /// The conversation.
    pub conversation: ConversationRecord,
    /// What a person may send now: free-form, a template only, or nothing (and why).
    pub reply: ReplyOptions,
    /// What the number's policy last made of it (sentiment, summary), if anyone asked.
    pub insights: Option<InsightRecord>,
}

/// One conversation, with what may be sent in it now (free-form inside the window, else one of
/// the number's approved templates), so the agent knows before typing.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "OK", body = ConversationView),
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
) -> Result<Json<ConversationView>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let conversation = tx
        .conversation(&p.conversation)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let insights = tx.insight(&p.conversation).await?;
    tx.commit().await?;
    let reply = crate::desk::options(
        &state.store,
        &state.plugins,
        &tenant.access,
        &p.conversation,
    )
    .await?;
    Ok(Json(ConversationView {
        conversation,
        reply,
        insights,
    }))
}

/// Ask the number's reply policy how the conversation is going (sentiment and a summary of its
/// last 200 messages) and keep the answer; the conversation view shows it until the next ask.
/// The policy must report insights (409 `no_insights`) and the plan allow AI policies; counts
/// against the tenant's concurrent plugin calls (429 `too_many_plugin_calls`).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}/insights",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The new insights", body = InsightRecord),
        crate::http::openapi::Conflict,
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::BadGateway,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn insights(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
) -> Result<Json<InsightRecord>, ApiError> {
    let _permit = state.plugin_calls.acquire(tenant.access.scope.id())?;
    Ok(Json(
        crate::insights::recompute(
            &state.store,
            &state.plugins,
            &tenant.access,
            &p.conversation,
        )
        .await?,
    ))
}

/// A template to send, by name and language, with its body parameters.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDraft {
    /// Template name, as the number lists it: 1 to 512 visible ASCII characters.
    #[schema(pattern = "^[!-~]{1,512}$(?!\\n)")]
    pub name: String,
    /// Language code, e.g. `en_US`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,16}$(?!\\n)", example = "en_US")]
    pub language: String,
    /// `{{1}}`, `{{2}}`, … in order (at most 20, each at most 1,024 characters).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub parameters: Vec<String>,
}

/// A reaction to one of the conversation's messages.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionDraft {
    /// The message reacted to (`msg_…`).
    #[schema(pattern = "^msg_[A-Za-z0-9_]{0,60}$(?!\\n)")]
    pub message: String,
    /// One emoji (up to 8 code points with its modifiers and joiners; no letters, digits,
    /// spaces or control characters); empty removes the reaction.
    #[schema(
        max_length = 8,
        pattern = "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000A-Za-z0-9]*$(?!\\n)",
        example = "👍"
    )]
    pub emoji: String,
}

/// `POST …/messages`: exactly one of `text`, `template` and `reaction`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanReply {
    /// Free-form text (inside the customer-service window), 1 to 4,096 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub text: Option<String>,
    /// One of the number's approved templates (the only thing sendable outside the window).
    pub template: Option<TemplateDraft>,
    /// A reaction.
    pub reaction: Option<ReactionDraft>,
    /// The conversation's message this replies to (`msg_…`), quoted where the channel can.
    #[schema(pattern = "^msg_[A-Za-z0-9_]{0,60}$(?!\\n)")]
    pub reply_to: Option<String>,
}

fn invalid(message: &str) -> ApiError {
    ApiError::unprocessable("invalid_reply", message.to_string())
}

/// A message id as people name it: `msg_…`.
fn message_id(id: &str) -> Result<&str, ApiError> {
    let ok = id.starts_with("msg_")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(id)
        .ok_or_else(|| invalid("message ids look like msg_…"))
}

impl HumanReply {
    /// The draft it asks for, checked for shape.
    fn draft(self) -> Result<(Draft, Option<String>), ApiError> {
        if let Some(r) = &self.reply_to {
            message_id(r)?;
        }
        let draft = match (self.text, self.template, self.reaction) {
            (Some(text), None, None) => {
                let n = text.chars().count();
                if text.trim().is_empty() || n > 4096 {
                    return Err(invalid("text must be 1 to 4,096 characters"));
                }
                Draft::Text(text)
            }
            (None, Some(t), None) => {
                let name_ok = !t.name.is_empty()
                    && t.name.len() <= 512
                    && t.name.bytes().all(|b| b.is_ascii_graphic());
                let language_ok = !t.language.is_empty()
                    && t.language.len() <= 16
                    && t.language
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !name_ok || !language_ok {
                    return Err(invalid(
                        "template.name must be 1 to 512 visible characters and template.language a code like en_US",
                    ));
                }
                if t.parameters.len() > 20 || t.parameters.iter().any(|p| p.chars().count() > 1024)
                {
                    return Err(invalid(
                        "template.parameters: at most 20, each at most 1,024 characters",
                    ));
                }
                Draft::Template {
                    name: t.name,
                    language: t.language,
                    parameters: t.parameters,
                }
            }
            (None, None, Some(r)) => {
                message_id(&r.message)?;
                // One emoji (up to 8 code points with its modifiers and joiners), never text.
                if r.emoji.chars().count() > 8
                    || r.emoji
                        .chars()
                        .any(|c| c.is_control() || c.is_alphanumeric() && c.is_ascii())
                    || r.emoji.chars().any(char::is_whitespace)
                {
                    return Err(invalid("reaction.emoji must be one emoji, or empty"));
                }
                if self.reply_to.is_some() {
                    return Err(invalid(
                        "a reaction names its message; it takes no reply_to",
                    ));
                }
                Draft::Reaction {
                    message: r.message,
                    emoji: r.emoji,
                }
            }
            _ => {
                return Err(invalid(
                    "give exactly one of text, template and reaction (media: POST …/media)",
                ));
            }
        };
        Ok((draft, self.reply_to))
    }
}

/// Reply as a person (agents and up): text inside the window, one of the number's approved
/// templates outside it, or a reaction. The host's rules hold as for policies (window, consent,
/// plan, the number's rate); the reply records who sent it, is queued for sending (its delivery
/// states follow on the message), and gives the conversation to people: its policy stops
/// answering until it is given back.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}/messages",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id"), ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,255}$(?!\\n)", description = "Makes a retried request safe: the same key (per caller) gets the first request's message, 1–255 visible ASCII characters")),
    request_body = HumanReply,
    responses(
        (status = 202, description = "Queued for sending", body = MessageRecord),
        (status = 200, description = "What an earlier request with the same Idempotency-Key made (nothing sent again)", body = MessageRecord),
        crate::http::openapi::Conflict,
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_reply` (not exactly one of `text`, `template` and `reaction`, a reaction with `reply_to`, or a field out of shape)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn reply(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<HumanReply>,
) -> Result<(StatusCode, Json<MessageRecord>), ApiError> {
    let (draft, reply_to) = body.draft()?;
    queue(
        &state,
        &tenant,
        &p.conversation,
        draft,
        reply_to.as_deref(),
        &headers,
    )
    .await
}

/// Send a person's draft through the desk: 202 with the queued message, or 200 with the one
/// an earlier request with the same `Idempotency-Key` made.
async fn queue(
    state: &AppState,
    tenant: &Tenant,
    conversation: &str,
    draft: Draft,
    reply_to: Option<&str>,
    headers: &HeaderMap,
) -> Result<(StatusCode, Json<MessageRecord>), ApiError> {
    let key = idempotency_key(headers)?;
    let (sent, new) = crate::desk::reply(
        &state.store,
        &state.plugins,
        &state.jobs,
        &tenant.access,
        conversation,
        draft,
        reply_to,
        key,
    )
    .await?;
    let status = if new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sent)))
}

/// The client's `Idempotency-Key`: 1 to 255 visible ASCII characters, if sent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k))
        }
        _ => Err(ApiError::BadRequest(
            "Idempotency-Key: 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// `POST …/media` query: what goes with the file.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MediaQuery {
    /// Caption (images, videos, documents), at most 1,024 characters.
    #[param(max_length = 1024)]
    pub caption: Option<String>,
    /// A document's file name, 1 to 240 characters, no slashes or control characters.
    #[param(
        min_length = 1,
        max_length = 240,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f/]*$(?!\\n)"
    )]
    pub filename: Option<String>,
    /// The conversation's message this replies to (`msg_…`).
    #[param(pattern = "^msg_[A-Za-z0-9_]{0,60}$(?!\\n)")]
    pub reply_to: Option<String>,
}

/// Send a file as a person (agents and up): the request body is the file, its `Content-Type`
/// one of WhatsApp's media types (JPEG, PNG, WebP, AAC, AMR, MP3, M4A, OGG, MP4, 3GP, PDF, text,
/// Office documents), at most the host's media cap. Inside the window only; the provider
/// fetches it from the host through a link valid for a day.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}/media",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id"), MediaQuery, ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,255}$(?!\\n)", description = "Makes a retried upload safe (as for text replies)")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses(
        (status = 202, description = "Queued for sending", body = MessageRecord),
        (status = 200, description = "What an earlier request with the same Idempotency-Key made (nothing sent again)", body = MessageRecord),
        crate::http::openapi::Conflict,
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        (status = 422, description = "the request is well-formed but cannot be used: `invalid_reply` (an empty file, a `Content-Type` that is not one of WhatsApp's media types, a query value out of shape)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn send_media(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
    ApiQuery(q): ApiQuery<MediaQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<MessageRecord>), ApiError> {
    if state.public_url.is_empty() {
        return Err(ApiError::Conflict {
            code: "public_url_required",
            message: "providers fetch media from the host: set SWITCHYARD_PUBLIC_URL".into(),
        });
    }
    let mime_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("send the file's Content-Type"))?;
    if body.is_empty() {
        return Err(invalid("the file is empty"));
    }
    if body.len() > state.media_max_bytes {
        return Err(ApiError::PayloadTooLarge);
    }
    if q.caption.as_ref().is_some_and(|c| c.chars().count() > 1024) {
        return Err(invalid("caption: at most 1,024 characters"));
    }
    if q.filename.as_ref().is_some_and(|f| {
        f.is_empty() || f.chars().count() > 240 || f.chars().any(|c| c.is_control() || c == '/')
    }) {
        return Err(invalid(
            "filename: 1 to 240 characters, no slashes or control characters",
        ));
    }
    if let Some(r) = &q.reply_to {
        message_id(r)?;
    }
    let upload = Upload {
        body: body.to_vec(),
        mime_type,
        filename: q.filename,
        caption: q.caption,
    };
    queue(
        &state,
        &tenant,
        &p.conversation,
        Draft::Media(upload),
        q.reply_to.as_deref(),
        &headers,
    )
    .await
}

/// `PATCH /tenants/{tenant}` body: the desk's settings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Minutes a conversation people own may sit idle (no reply, no take-over) before its
    /// policy takes it back, 1 to 43,200 (30 days); `null`: people keep it until they give it
    /// back.
    #[serde(default, deserialize_with = "super::connections::present")]
    #[schema(nullable)]
    pub hand_back_minutes: Option<Option<i64>>,
}

/// Change the tenant's desk settings (admins and owners).
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = TenantSettings,
    responses(
        (status = 200, description = "Changed", body = TenantRecord),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unprocessable,
    )
)]
pub async fn settings(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<TenantSettings>,
) -> Result<Json<TenantRecord>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    if let Some(minutes) = body.hand_back_minutes {
        if minutes.is_some_and(|m| !(1..=43_200).contains(&m)) {
            return Err(ApiError::unprocessable(
                "invalid_hand_back",
                "hand_back_minutes must be 1 to 43,200, or null",
            ));
        }
        tx.set_hand_back(minutes).await?;
    }
    let rec = tx
        .tenant(tenant.access.scope.id())
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    tx.commit().await?;
    Ok(Json(rec))
}

/// Media people sent, for the provider delivering it: the link's secret is the credential;
/// anything unknown, wrong or expired is 404 alike.
pub async fn linked_media(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let (mime, filename, body) = crate::media::fetch_linked(&state.store, &token)
        .await?
        .ok_or(ApiError::NotFound("media"))?;
    let mime = header::HeaderValue::from_str(&mime)
        .unwrap_or(header::HeaderValue::from_static("application/octet-stream"));
    let mut response = (
        [
            (header::CONTENT_TYPE, mime),
            (
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("private, no-store"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            ),
            // Never a page of the host's origin: a download, sandboxed.
            (
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
        ],
        body,
    )
        .into_response();
    // Always an attachment; a document keeps its (ASCII-safe) name.
    let name: String = filename
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = match name.trim() {
        "" => header::HeaderValue::from_static("attachment"),
        n => header::HeaderValue::from_str(&format!("attachment; filename=\"{n}\""))
            .unwrap_or(header::HeaderValue::from_static("attachment")),
    };
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}
