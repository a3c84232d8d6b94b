//! The tenant's inbox: conversations by latest message (filtered) and a conversation's
//! messages, paginated; the desk's actions on a conversation (close, archive, reopen, who owns
//! it, who it is assigned to, delete). Tenant members only: partners and the operator never see
//! contact-level data.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::AppState;
use super::auth::Tenant;
use super::json::{ApiJson, ApiQuery, PageQuery, page};
use crate::error::ApiError;
use crate::store::{ConversationFilter, ConversationRecord, MessageRecord, Mode, Org, Page};
use crate::tenancy::{Actor, Role};

/// `GET …/conversations` query: a page, and what to keep.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Items per page, 1–200 (default 50); another number → 400 `bad_request`.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page, `<last_message_at>:<id>` (at most 200
    /// characters; another shape → 400 `bad_request`).
    #[param(max_length = 200, pattern = "^(-?[0-9]{1,18}:|$(?!\\n))")]
    pub cursor: Option<String>,
    /// `open`, `closed` or `archived`.
    #[param(pattern = "^(open|closed|archived)$(?!\\n)")]
    pub state: Option<String>,
    /// `policy` or `people`.
    #[param(pattern = "^(policy|people)$(?!\\n)")]
    pub owner: Option<String>,
    /// `me` (the signed-in person; a key gets 403 `person_only`), `none` (unassigned) or a
    /// person's id (`usr_…`).
    #[param(pattern = "^(me|none|usr_[\\s\\S]*)$(?!\\n)", max_length = 64)]
    pub assignee: Option<String>,
    /// One number (`con_…`).
    #[param(max_length = 64)]
    pub connection: Option<String>,
    /// Text in the contact's name, phone or user id (1 to 100 characters).
    #[param(min_length = 1, max_length = 100)]
    pub q: Option<String>,
}

const STATES: [&str; 3] = ["open", "closed", "archived"];
const OWNERS: [&str; 2] = ["policy", "people"];

/// The person acting, when a person acts (a key has no one to assign to).
fn person(actor: &Actor) -> Option<&str> {
    match actor {
        Actor::User { by, .. } => by.user_id(),
        _ => None,
    }
}

/// Conversations, newest activity first. The cursor is `<last_message_at>:<id>`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/conversations",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), InboxQuery),
    responses(
        (status = 200, description = "OK", body = Page<ConversationRecord>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn conversations(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Page<ConversationRecord>>, ApiError> {
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = paging.limit()?;
    let bad = |what: &str| ApiError::BadRequest(what.to_string());
    if q.state.as_deref().is_some_and(|s| !STATES.contains(&s)) {
        return Err(bad("state must be open, closed or archived"));
    }
    if q.owner.as_deref().is_some_and(|s| !OWNERS.contains(&s)) {
        return Err(bad("owner must be policy or people"));
    }
    if q.q
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.chars().count() > 100)
        || q.connection
            .as_deref()
            .is_some_and(|c| c.chars().count() > 64)
    {
        return Err(bad("q must be 1 to 100 characters, connection an id"));
    }
    let assignee = match q.assignee.as_deref() {
        None => None,
        Some("none") => Some("-"),
        Some("me") => Some(
            person(&tenant.access.actor).ok_or_else(|| ApiError::Refused {
                code: "person_only",
                message: "assignee=me needs a signed-in person, not a key".into(),
            })?,
        ),
        Some(id) if id.starts_with("usr_") && id.chars().count() <= 64 => Some(id),
        Some(_) => return Err(bad("assignee must be me, none or a person's id")),
    };
    let filter = ConversationFilter {
        state: q.state.as_deref(),
        owner: q.owner.as_deref(),
        assignee,
        connection: q.connection.as_deref(),
        text: q.q.as_deref(),
    };
    let after = match paging.cursor()? {
        None => None,
        Some(c) => {
            let (at, id) = c
                .split_once(':')
                .ok_or_else(|| ApiError::BadRequest("cursor is not valid".into()))?;
            Some((super::json::number_cursor(at)?, id))
        }
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx.conversations(after, limit + 1, &filter).await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |c| {
        format!("{}:{}", c.last_message_at, c.id)
    })))
}

#[derive(Deserialize)]
pub(super) struct ConversationPath {
    #[allow(dead_code)]
    pub(super) tenant: String,
    pub(super) conversation: String,
}

/// A conversation's messages, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}/messages",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id"), PageQuery),
    responses(
        (status = 200, description = "OK", body = Page<MessageRecord>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn messages(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<MessageRecord>>, ApiError> {
    let limit = q.limit()?;
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    if !tx.conversation_exists(&p.conversation).await? {
        return Err(ApiError::NotFound("conversation"));
    }
    let mut rows = tx.messages(&p.conversation, q.cursor()?, limit + 1).await?;
    if let (Some(newest), Some(oldest)) = (rows.first(), rows.last()) {
        let (newest, oldest) = (newest.id.clone(), oldest.id.clone());
        for media in tx
            .media_of_messages(&p.conversation, &oldest, &newest)
            .await?
        {
            if let Some(m) = rows.iter_mut().find(|m| m.id == media.message_id) {
                m.media.push(media);
            }
        }
    }
    tx.commit().await?;
    for m in rows.iter_mut().filter(|m| m.status == "failed") {
        m.failure = Some(crate::desk::failure_words(
            m.error_kind.as_deref(),
            m.error_code.as_deref(),
            m.error_message.as_deref(),
        ));
    }
    Ok(Json(page(rows, limit, |m| m.id.clone())))
}

/// `POST …/conversations/{conversation}` body: what to change (absent fields stay).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeConversation {
    /// `open` (reopen), `closed` or `archived` (another → 422 `invalid_state`).
    #[schema(pattern = "^(open|closed|archived)$(?!\\n)")]
    pub state: Option<String>,
    /// `people` (the policy stops answering: the AI toggle off) or `policy` (it answers again;
    /// another → 422 `invalid_owner`).
    #[schema(pattern = "^(policy|people)$(?!\\n)")]
    pub owner: Option<String>,
    /// A member to assign it to (`usr_…`; an agent only themself, else 403 `assign_self_only`;
    /// not a member: 422 `unknown_member`), or `null` to unassign.
    #[serde(default, deserialize_with = "super::connections::present")]
    #[schema(nullable)]
    pub assignee: Option<Option<String>>,
}

/// Work a conversation (agents and up): close, archive or reopen it; give it to people (the
/// policy stops answering) or back to its policy; assign it (an agent to themself, an admin or
/// owner to any member) or unassign it.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id")),
    request_body = ChangeConversation,
    responses(
        (status = 200, description = "Changed", body = ConversationRecord),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_state`, `invalid_owner`, `unknown_member` (the assignee is not a member of the tenant)", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
    ApiJson(body): ApiJson<ChangeConversation>,
) -> Result<Json<ConversationRecord>, ApiError> {
    let invalid = |code: &'static str, what: &str| ApiError::unprocessable(code, what.to_string());
    if body.state.as_deref().is_some_and(|s| !STATES.contains(&s)) {
        return Err(invalid(
            "invalid_state",
            "state must be open, closed or archived",
        ));
    }
    if body.owner.as_deref().is_some_and(|s| !OWNERS.contains(&s)) {
        return Err(invalid("invalid_owner", "owner must be policy or people"));
    }
    let actor = &tenant.access.actor;
    if let Some(Some(who)) = &body.assignee {
        let admin = actor.role().is_some_and(|r| r.at_least(Role::Admin));
        if !admin && person(actor) != Some(who.as_str()) {
            return Err(ApiError::Refused {
                code: "assign_self_only",
                message: "an agent assigns conversations to themself; admins assign to anyone"
                    .into(),
            });
        }
        let mut tx = state
            .store
            .begin(crate::tenancy::Scope::Host, Mode::Read)
            .await?;
        let member = tx
            .member_role(Org::Tenant(tenant.access.scope.id()), who)
            .await?;
        tx.commit().await?;
        if member.is_none() {
            return Err(invalid(
                "unknown_member",
                "assign to a member of this tenant",
            ));
        }
    }
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    tx.change_conversation(
        &p.conversation,
        body.state.as_deref(),
        body.owner.as_deref(),
        body.assignee.as_ref().map(|a| a.as_deref()),
    )
    .await
    .map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::NotFound("conversation"),
        other => other.into(),
    })?;
    let c = tx
        .conversation(&p.conversation)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    tx.commit().await?;
    tracing::info!(conversation = %c.id, by = %actor.ledger_name(), state = %c.state, owner = %c.owner, "conversation changed");
    Ok(Json(c))
}

/// Delete a conversation and its history (admins and owners); the contact and the consent
/// ledger stay.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/conversations/{conversation}",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("conversation" = String, Path, description = "Conversation id")),
    responses(
        (status = 204, description = "Deleted"),
        crate::http::openapi::TenantErrors,
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConversationPath>,
) -> Result<axum::http::StatusCode, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let messages = tx
        .delete_conversation(&p.conversation)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("conversation"),
            other => other.into(),
        })?;
    tx.commit().await?;
    state.store.checkpoint().await;
    tracing::info!(conversation = %p.conversation, messages, by = %tenant.access.actor.ledger_name(), "conversation deleted");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
