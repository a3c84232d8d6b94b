//! The tenant's inbox: conversations by latest message and a conversation's messages,
//! paginated. Tenant users only: partners and the operator never see contact-level data.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::AppState;
use super::auth::Tenant;
use super::json::{ApiQuery, PageQuery, page};
use crate::error::ApiError;
use crate::store::{ConversationRecord, MessageRecord, Mode, Page};

/// Conversations, newest activity first. The cursor is `<last_message_at>:<id>`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/conversations",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), PageQuery),
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
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ConversationRecord>>, ApiError> {
    let limit = q.limit()?;
    let after = match q.cursor()? {
        None => None,
        Some(c) => {
            let (at, id) = c
                .split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .ok_or_else(|| ApiError::BadRequest("cursor is not valid".into()))?;
            Some((at, id))
        }
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx.conversations(after, limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |c| {
        format!("{}:{}", c.last_message_at, c.id)
    })))
}

#[derive(Deserialize)]
pub(super) struct ConversationPath {
    #[allow(dead_code)]
    tenant: String,
    conversation: String,
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
    Ok(Json(page(rows, limit, |m| m.id.clone())))
}
