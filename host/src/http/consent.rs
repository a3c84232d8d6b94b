//! `/api/v1/tenants/{tenant}/consent`: the tenant's own ledger, grants and revocations of
//! scopes (e.g. `marketing`) without disconnecting, and an export for auditors.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Client, Tenant};
use super::json::{ApiJson, ApiQuery, PageQuery};
use crate::consent::{self, Action, Break, Entry};
use crate::error::ApiError;
use crate::store::{LedgerRow, Mode, Page};

/// The tenant's ledger rows, oldest first (cursor: the last `seq` seen).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/consent",
    tag = "consent",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), PageQuery),
    responses(
        (status = 200, description = "OK", body = Page<LedgerRow>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<LedgerRow>>, ApiError> {
    let limit = q.limit()?;
    let after = match q.cursor()? {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest("cursor is not valid".into()))?,
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx.ledger(after, limit + 1).await?;
    tx.commit().await?;
    Ok(Json(super::json::page(rows, limit, |r| r.seq.to_string())))
}

/// `POST …/consent` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeConsent {
    /// `grant` or `revoke` (another → 422 `invalid_consent`).
    #[schema(pattern = "^(grant|revoke)$", example = "grant")]
    pub action: String,
    /// Scopes, at least one, e.g. `["marketing"]` (else 422 `invalid_consent`).
    #[schema(min_items = 1)]
    pub scopes: Vec<String>,
    /// The consent document version, 1 to 100 characters (required to grant).
    #[schema(min_length = 1, max_length = 100)]
    pub document_version: Option<String>,
    /// Limit it to one connection (default: the whole tenant).
    pub connection_id: Option<String>,
}

/// The scopes active after a change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsentState {
    /// The ledger row written.
    pub row: LedgerRow,
    /// Tenant-wide scopes now active.
    pub active_scopes: Vec<String>,
}

/// Grant or revoke scopes (owner/admin).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/consent",
    tag = "consent",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = ChangeConsent,
    responses(
        (status = 201, description = "Created", body = ConsentState),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn change(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    ApiJson(body): ApiJson<ChangeConsent>,
) -> Result<(StatusCode, Json<ConsentState>), ApiError> {
    let action = match body.action.as_str() {
        "grant" => Action::Granted,
        "revoke" => Action::Revoked,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_consent",
                "action must be \"grant\" or \"revoke\"",
            ));
        }
    };
    if body.scopes.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_consent",
            "scopes must not be empty",
        ));
    }
    if let Some(bad) = body
        .scopes
        .iter()
        .find(|s| !consent::SCOPES.contains(&s.as_str()))
    {
        return Err(ApiError::unprocessable(
            "invalid_consent",
            format!(
                "unknown scope {bad:?} (expected one of: {})",
                consent::SCOPES.join(", ")
            ),
        ));
    }
    let version = body.document_version.as_deref().map(str::trim);
    if action == Action::Granted && version.is_none_or(|v| v.is_empty() || v.len() > 100) {
        return Err(ApiError::unprocessable(
            "invalid_consent",
            "document_version is required to grant (1 to 100 characters)",
        ));
    }
    let access = &tenant.access;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    if let Some(c) = &body.connection_id
        && tx.connection(c).await?.is_none()
    {
        return Err(ApiError::NotFound("connection"));
    }
    let row = consent::append(
        &mut tx,
        &client.origin(access.actor.ledger_name()),
        &Entry {
            connection_id: body.connection_id.as_deref(),
            action,
            document_version: version,
            scopes: &body.scopes,
        },
    )
    .await?;
    let active_scopes = tx.consent_tenant_scopes().await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(ConsentState { row, active_scopes }),
    ))
}

/// The export a business hands to an auditor.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Export {
    /// The tenant.
    pub tenant_id: String,
    /// When it was made (Unix ms).
    pub exported_at: i64,
    /// How the chain is built.
    pub hash_algorithm: &'static str,
    /// The last row's hash: the value that commits to the whole history.
    pub head_hash: String,
    /// Whether the chain verified when exported.
    pub verified: bool,
    /// The first broken row, if any.
    pub first_break: Option<Break>,
    /// Every row, with `prev_hash` and `hash`.
    pub rows: Vec<LedgerRow>,
}

/// The whole ledger with its chain hashes, verified (owner/admin).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/consent/export",
    tag = "consent",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "OK", body = Export),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<Export>, ApiError> {
    let rows = consent::read_all(&state.store, &tenant.access.scope).await?;
    let first_break = consent::check_chain(&rows);
    Ok(Json(Export {
        tenant_id: tenant.access.scope.id().to_string(),
        exported_at: crate::store::now_ms(),
        hash_algorithm: "sha256 over switchyard-consent-v1 length-prefixed fields, chained by prev_hash",
        head_hash: rows
            .last()
            .map_or_else(|| consent::GENESIS.to_string(), |r| r.hash.clone()),
        verified: first_break.is_none(),
        first_break,
        rows,
    }))
}
