//! A tenant's downloaded media (`GET /tenants/{tenant}/media/{media}`) and a connection's
//! templates: `GET …/templates` reads the stored list (never the provider), `POST
//! …/templates/sync` (connection managers) lists them through the connector and stores them for
//! the send path.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use crate::error::ApiError;
use crate::runtime::types::{ErrorKind, TemplateCategory};
use crate::store::{Mode, TemplateRecord, now_ms};

#[derive(Deserialize)]
pub(super) struct MediaPath {
    #[allow(dead_code)]
    tenant: String,
    media: String,
}

/// The bytes of a downloaded inbound media (any tenant role). `409 media_not_downloaded` while
/// its download is pending or after it failed (the message's `media[].status` says which).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/media/{media}",
    tag = "inbox",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("media" = String, Path, description = "Media id (`med_…`)")),
    responses(
        (status = 200, description = "The media bytes, with their MIME type as Content-Type", content_type = "application/octet-stream"),
        crate::http::openapi::Conflict,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn media(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<MediaPath>,
) -> Result<Response, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let media = tx
        .media(&p.media)
        .await?
        .ok_or(ApiError::NotFound("media"))?;
    let body = if media.status == "stored" {
        tx.media_content(&p.media).await?
    } else {
        None
    };
    tx.commit().await?;
    let Some(body) = body else {
        return Err(ApiError::Conflict {
            code: "media_not_downloaded",
            message: match media.error {
                Some(e) => format!("the media could not be downloaded: {e}"),
                None => "the media is not downloaded yet; try again shortly".into(),
            },
        });
    };
    let mime = media
        .mime_type
        .filter(|m| header::HeaderValue::from_str(m).is_ok())
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            // Content from strangers: never rendered as a page of this origin.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".into(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", media.id),
            ),
        ],
        Body::from(body),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct ConnectionPath {
    #[allow(dead_code)]
    tenant: String,
    connection: String,
}

/// One template of a connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    /// The template as stored.
    #[serde(flatten)]
    pub template: TemplateRecord,
    /// True when the host will send it (status `APPROVED`).
    pub sendable: bool,
}

fn category_name(c: TemplateCategory) -> &'static str {
    match c {
        TemplateCategory::Marketing => "marketing",
        TemplateCategory::Utility => "utility",
        TemplateCategory::Authentication => "authentication",
    }
}

/// The connection's templates as last synced (any tenant role; the provider is not called).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/templates",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "OK", body = Vec<TemplateView>),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn templates(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<Vec<TemplateView>>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    if tx.connection(&p.connection).await?.is_none() {
        return Err(ApiError::NotFound("connection"));
    }
    let stored = tx.templates(&p.connection).await?;
    tx.commit().await?;
    Ok(Json(views(stored)))
}

/// The longest template display name kept, in characters; a longer one is cut.
const DISPLAY_NAME_CHARS: usize = 200;

/// A connector's display name for a template as kept: trimmed, control characters, the
/// invisible ones that reorder or hide text and anything past [`DISPLAY_NAME_CHARS`] dropped,
/// nothing when empty.
fn display_name(name: &str) -> Option<String> {
    let kept: String = name
        .chars()
        .filter(|c| !c.is_control() && !crate::insights::invisible(*c))
        .take(DISPLAY_NAME_CHARS)
        .collect();
    Some(kept.trim().to_string()).filter(|n| !n.is_empty())
}

fn views(stored: Vec<TemplateRecord>) -> Vec<TemplateView> {
    stored
        .into_iter()
        .map(|t| TemplateView {
            sendable: crate::replies::template_sendable(Some(&t.status)).is_ok(),
            template: t,
        })
        .collect()
}

/// Refresh the connection's templates from the provider through its connector and store them,
/// so the send path refuses a template whose status is not `APPROVED` (owner/admin; counts
/// against the tenant's concurrent provider calls: 429 `too_many_plugin_calls` over the cap).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/templates/sync",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "OK", body = Vec<TemplateView>),
        crate::http::openapi::Conflict,
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::BadGateway,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn sync_templates(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<Vec<TemplateView>>, ApiError> {
    let (connection, plugin, info, scope, _permit) =
        super::connections::provider_call(&state, &tenant.access, &p.connection).await?;
    let listed = match plugin.list_templates(scope, &info).await {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => {
            let code = match e.kind {
                ErrorKind::AuthExpired => "credentials_expired",
                ErrorKind::PermissionMissing => "permission_missing",
                _ => "provider_unavailable",
            };
            return Err(ApiError::BadGateway {
                code,
                message: format!(
                    "the provider did not list templates: {} {}",
                    e.code, e.message
                ),
            });
        }
        Err(e) => {
            tracing::warn!(connection = %connection.id, error = %e, "list-templates failed");
            return Err(ApiError::BadGateway {
                code: "connector_failed",
                message: format!("the connector failed while listing templates: {e}"),
            });
        }
    };
    let now = now_ms();
    let records: Vec<TemplateRecord> = listed
        .into_iter()
        .map(|t| TemplateRecord {
            name: t.name,
            language: t.language,
            category: category_name(t.category).into(),
            status: t.status.to_ascii_uppercase(),
            provider_id: Some(t.id).filter(|i| !i.is_empty()),
            updated_at: now,
            display_name: t.display_name.as_deref().and_then(display_name),
        })
        .collect();
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    tx.replace_templates(&connection.id, &records).await?;
    let stored = tx.templates(&connection.id).await?;
    tx.commit().await?;
    Ok(Json(views(stored)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider's display name is kept trimmed, without control characters, cut at its cap;
    /// an empty one is none.
    #[test]
    fn display_names_are_bounded() {
        assert_eq!(
            display_name("  Order update\u{0}\n ").as_deref(),
            Some("Order update")
        );
        assert_eq!(
            display_name(&"é".repeat(300)).map(|n| n.chars().count()),
            Some(DISPLAY_NAME_CHARS)
        );
        assert_eq!(display_name(" \u{7}\t "), None);
        assert_eq!(
            display_name("pay \u{202E}321\u{202C}\u{200B}").as_deref(),
            Some("pay 321")
        );
    }
}
