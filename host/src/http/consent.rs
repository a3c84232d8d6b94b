//! `/api/v1/tenants/{tenant}/consent`: the tenant's own ledger, grants and revocations of
//! scopes (e.g. `marketing`) without disconnecting, and an export for auditors.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Client, Tenant};
use super::json::{ApiJson, ApiQuery};
use crate::consent::{self, Action, Break, Entry};
use crate::error::ApiError;
use crate::store::{LedgerRow, Mode, Page};

/// The tenant's ledger rows, oldest first (cursor: the last `seq` seen).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/consent",
    tag = "consent",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), LedgerQuery),
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
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<Json<Page<LedgerRow>>, ApiError> {
    let limit = q.limit()?;
    let after = q.after()?;
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx.ledger(after, limit + 1).await?;
    tx.commit().await?;
    Ok(Json(super::json::page(rows, limit, |r| r.seq.to_string())))
}

/// `GET …/consent` query: a page of the ledger.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Items per page, 1–200 (default 50); another number → 400 `bad_request`.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page: a ledger position (another shape → 400
    /// `bad_request`).
    #[param(pattern = "^(-?[0-9]{1,18})?$(?!\\n)")]
    pub cursor: Option<String>,
}

impl LedgerQuery {
    /// The position after which to list (0: from the start).
    fn after(&self) -> Result<i64, ApiError> {
        match self.cursor.as_deref() {
            None | Some("") => Ok(0),
            Some(c) => super::json::number_cursor(c),
        }
    }

    fn limit(&self) -> Result<i64, ApiError> {
        super::json::LimitQuery { limit: self.limit }.limit()
    }
}

/// `POST …/consent` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeConsent {
    /// `grant` or `revoke` (another → 422 `invalid_consent`).
    #[schema(pattern = "^(grant|revoke)$(?!\\n)", example = "grant")]
    pub action: String,
    /// Scopes, at least one, e.g. `["marketing"]` (else 422 `invalid_consent`).
    #[schema(min_items = 1, value_type = Vec<ConsentScope>)]
    pub scopes: Vec<String>,
    /// The consent document version, 1 to 100 characters, not blank (required to grant: else
    /// 422 `invalid_consent`).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub document_version: Option<String>,
    /// Limit it to one connection (default: the whole tenant).
    pub connection_id: Option<String>,
}

/// A consent scope (another → 422 `invalid_consent`); the document's name for the strings of
/// [`consent::SCOPES`].
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ConsentScope {
    /// Service messages.
    Messaging,
    /// Marketing messages.
    Marketing,
}

/// A consent document version as given: 1 to 100 characters as sent, trimmed, not blank.
pub fn checked_version(given: &str) -> Option<&str> {
    let trimmed = given.trim();
    (!trimmed.is_empty() && given.chars().count() <= 100).then_some(trimmed)
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
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_consent` (an unknown scope or action; granting without a `document_version`)", body = crate::http::openapi::ErrorBody),
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
    let version = match body.document_version.as_deref() {
        None => None,
        Some(v) => Some(checked_version(v).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_consent",
                "document_version is 1 to 100 characters, not blank",
            )
        })?),
    };
    if action == Action::Granted && version.is_none() {
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
