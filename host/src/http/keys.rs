//! API keys: list, create (with an optional expiry) and revoke a tenant's keys and a partner's
//! keys, and rotate a partner's key (a new key now, the old one until an overlap ends).
//!
//! Tenant keys are managed by the tenant's owners and admins (only an owner makes or revokes
//! owner keys), its partner and the operator; partner keys by the partner and the operator.
//! Lists never show a key or its hash: the key's id is the beginning of the key itself
//! (`key_….<secret>`), which is what a person recognises it by. This module does not
//! authenticate: that is [`crate::tenancy::auth`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Auth, Tenant};
use super::json::{ApiJson, ApiQuery, PageQuery, page};
use super::tenants::checked_name;
use crate::error::ApiError;
use crate::store::{KeyInfo, KeyOwner, Mode, Page, now_ms};
use crate::tenancy::{Actor, Principal, Role, Scope, auth};

/// The latest expiry a key may be given (2100-01-01, Unix ms): beyond it, leave it unset.
const LATEST_EXPIRY_MS: i64 = 4_102_444_800_000;
/// The longest overlap of a partner key's rotation (30 days).
const MAX_OVERLAP_SECONDS: u32 = 30 * 24 * 3600;

/// A key's expiry, checked: in the future and before 2100.
fn checked_expiry(at: Option<i64>) -> Result<Option<i64>, ApiError> {
    match at {
        Some(at) if at <= now_ms() || at > LATEST_EXPIRY_MS => Err(ApiError::unprocessable(
            "invalid_expiry",
            "expires_at must be a future time in Unix milliseconds, before 2100",
        )),
        other => Ok(other),
    }
}

fn checked_label(label: Option<&str>) -> Result<Option<&str>, ApiError> {
    label.map(checked_name).transpose()
}

/// `POST /api/v1/tenants/{tenant}/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `owner`, `admin`, `agent` or `viewer`.
    pub role: Role,
    /// A note to recognise it by.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$(?!\\n)"
    )]
    pub label: Option<String>,
    /// When it stops working (Unix ms), in the future and before 2100 (else 422
    /// `invalid_expiry`); never when absent.
    #[schema(minimum = 0, maximum = 4_102_444_800_000_i64)]
    pub expires_at: Option<i64>,
}

/// A created key (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// `key_…`.
    pub id: String,
    /// Its role (tenant keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// When it stops working (Unix ms), if it expires.
    pub expires_at: Option<i64>,
    /// The key; store it now, it is not shown again.
    pub api_key: String,
}

#[derive(Deserialize)]
pub(super) struct TenantKeyPath {
    #[allow(dead_code)]
    tenant: String,
    key: String,
}

#[derive(Deserialize)]
pub(super) struct PartnerKeyPath {
    partner: String,
    key: String,
}

/// Whether the actor may hand out or take away a key of `role`: only an owner (or the tenant's
/// partner's owners, or the operator) touches owner keys.
fn may_touch(actor: &Actor, role: Option<&str>) -> bool {
    role != Some(Role::Owner.as_str()) || actor.owner_powers()
}

/// The tenant's API keys, oldest first (owner/admin, its partner, the operator).
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/keys",
    tag = "keys",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), PageQuery),
    responses(
        (status = 200, description = "OK (never a key or its hash)", body = Page<KeyInfo>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_tenant_keys(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<KeyInfo>>, ApiError> {
    let limit = q.limit()?;
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let rows = tx
        .keys(
            KeyOwner::Tenant(tenant.access.scope.id()),
            q.cursor()?,
            limit + 1,
        )
        .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |k| k.id.clone())))
}

/// Create a key for one of the tenant's users (owner/admin, its partner, the operator; only an
/// owner among the tenant's users makes owner keys), optionally expiring.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys",
    tag = "keys",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_expiry` (`expires_at` not ahead of now, or past 2100), `invalid_name`", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create_tenant_key(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    if !may_touch(&tenant.access.actor, Some(body.role.as_str())) {
        return Err(ApiError::Forbidden);
    }
    let label = checked_label(body.label.as_deref())?;
    let expires_at = checked_expiry(body.expires_at)?;
    let key = auth::new_key();
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_api_key(
        &key.id,
        &key.secret_hash,
        None,
        Some(tenant.access.scope.id()),
        Some(body.role.as_str()),
        label,
        &tenant.access.actor.ledger_name(),
        expires_at,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %tenant.access.scope.id(), key = %key.id, by = %tenant.access.actor.ledger_name(), "tenant key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: key.id.clone(),
            role: Some(body.role),
            expires_at,
            api_key: key.token.to_string(),
        }),
    ))
}

/// Revoke one of the tenant's keys now (owner/admin, its partner, the operator; only an owner
/// among the tenant's users revokes owner keys). It answers 401 `key_revoked` from then on.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/keys/{key}",
    tag = "keys",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("key" = String, Path, description = "Key id (`key_…`)")),
    responses(
        (status = 200, description = "Revoked (revoking again changes nothing)", body = KeyInfo),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_tenant_key(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<TenantKeyPath>,
) -> Result<Json<KeyInfo>, ApiError> {
    let owner = KeyOwner::Tenant(tenant.access.scope.id());
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    let key = tx
        .key_info(owner, &p.key)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    if !may_touch(&tenant.access.actor, key.role.as_deref()) {
        return Err(ApiError::Forbidden);
    }
    tx.revoke_key(owner, &p.key).await?;
    let key = tx
        .key_info(owner, &p.key)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    tx.commit().await?;
    tracing::info!(tenant = %tenant.access.scope.id(), key = %key.id, by = %tenant.access.actor.ledger_name(), "tenant key revoked");
    Ok(Json(key))
}

/// Who manages `partner_id`'s keys: the partner itself and the operator (a partner asking about
/// another partner gets 404, a tenant 403). Returns the creator name for `created_by`.
async fn partner_keys_access(
    state: &AppState,
    principal: &Principal,
    partner_id: &str,
) -> Result<String, ApiError> {
    let by = match principal {
        Principal::Operator => "operator".to_string(),
        Principal::Partner {
            partner_id: own, ..
        } if own == partner_id => principal.name(),
        Principal::Partner { .. } => return Err(ApiError::NotFound("partner")),
        Principal::Tenant { .. } => return Err(ApiError::Forbidden),
    };
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let exists = tx.partner_exists(partner_id).await?;
    tx.commit().await?;
    if !exists {
        return Err(ApiError::NotFound("partner"));
    }
    Ok(by)
}

/// `POST /api/v1/partners/{partner}/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePartnerKey {
    /// A note to recognise it by.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$(?!\\n)"
    )]
    pub label: Option<String>,
    /// When it stops working (Unix ms), in the future and before 2100 (else 422
    /// `invalid_expiry`); never when absent.
    #[schema(minimum = 0, maximum = 4_102_444_800_000_i64)]
    pub expires_at: Option<i64>,
}

/// The partner's API keys, oldest first (the partner, the operator).
#[utoipa::path(
    get,
    path = "/api/v1/partners/{partner}/keys",
    tag = "keys",
    params(("partner" = String, Path, description = "Partner id (`par_…`)"), PageQuery),
    responses(
        (status = 200, description = "OK (never a key or its hash)", body = Page<KeyInfo>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_partner_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(partner_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<KeyInfo>>, ApiError> {
    partner_keys_access(&state, &principal, &partner_id).await?;
    let limit = q.limit()?;
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let rows = tx
        .keys(KeyOwner::Partner(&partner_id), q.cursor()?, limit + 1)
        .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |k| k.id.clone())))
}

/// Create another key for the partner (the partner, the operator), optionally expiring.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{partner}/keys",
    tag = "keys",
    params(("partner" = String, Path, description = "Partner id (`par_…`)")),
    request_body = CreatePartnerKey,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_expiry` (`expires_at` not ahead of now, or past 2100), `invalid_name`", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create_partner_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(partner_id): Path<String>,
    ApiJson(body): ApiJson<CreatePartnerKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let by = partner_keys_access(&state, &principal, &partner_id).await?;
    let label = checked_label(body.label.as_deref())?;
    let expires_at = checked_expiry(body.expires_at)?;
    let key = auth::new_key();
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_api_key(
        &key.id,
        &key.secret_hash,
        Some(&partner_id),
        None,
        None,
        label,
        &by,
        expires_at,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(partner = %partner_id, key = %key.id, by = %by, "partner key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: key.id.clone(),
            role: None,
            expires_at,
            api_key: key.token.to_string(),
        }),
    ))
}

/// Revoke one of the partner's keys now (the partner, the operator).
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{partner}/keys/{key}",
    tag = "keys",
    params(("partner" = String, Path, description = "Partner id (`par_…`)"), ("key" = String, Path, description = "Key id (`key_…`)")),
    responses(
        (status = 200, description = "Revoked (revoking again changes nothing)", body = KeyInfo),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_partner_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<PartnerKeyPath>,
) -> Result<Json<KeyInfo>, ApiError> {
    let by = partner_keys_access(&state, &principal, &p.partner).await?;
    let owner = KeyOwner::Partner(&p.partner);
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.revoke_key(owner, &p.key).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::NotFound("key"),
        other => other.into(),
    })?;
    let key = tx
        .key_info(owner, &p.key)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    tx.commit().await?;
    tracing::info!(partner = %p.partner, key = %key.id, by = %by, "partner key revoked");
    Ok(Json(key))
}

/// `POST /api/v1/partners/{partner}/keys/{key}/rotate` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps working, in seconds (at most 30 days); 0 or absent: it is
    /// revoked now (above 30 days: 422 `invalid_overlap`).
    #[serde(default)]
    #[schema(maximum = 2_592_000)]
    pub overlap_seconds: u32,
    /// When the new key stops working (Unix ms); never when absent.
    pub expires_at: Option<i64>,
}

/// A rotation: the new key (shown once) and the old one as it is now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    /// The new key.
    #[serde(flatten)]
    pub key: CreatedKey,
    /// The old key, with its new `expires_at` (an overlap) or `revoked_at`.
    pub replaced: KeyInfo,
}

/// Rotate a partner key (the partner, the operator): a new key with the old one's label; the
/// old key works until the overlap ends, then answers 401 `key_expired`.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{partner}/keys/{key}/rotate",
    tag = "keys",
    params(("partner" = String, Path, description = "Partner id (`par_…`)"), ("key" = String, Path, description = "Key id (`key_…`)")),
    request_body = RotateKey,
    responses(
        (status = 201, description = "Rotated", body = RotatedKey),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_expiry` (`expires_at` not ahead of now, or past 2100), `invalid_overlap`", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn rotate_partner_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<PartnerKeyPath>,
    ApiJson(body): ApiJson<RotateKey>,
) -> Result<(StatusCode, Json<RotatedKey>), ApiError> {
    let by = partner_keys_access(&state, &principal, &p.partner).await?;
    if body.overlap_seconds > MAX_OVERLAP_SECONDS {
        return Err(ApiError::unprocessable(
            "invalid_overlap",
            format!("overlap_seconds must be at most {MAX_OVERLAP_SECONDS}"),
        ));
    }
    let expires_at = checked_expiry(body.expires_at)?;
    let owner = KeyOwner::Partner(&p.partner);
    let now = now_ms();
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    let old = tx
        .key_info(owner, &p.key)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    if old.revoked_at.is_some() || old.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::Conflict {
            code: "key_not_active",
            message: "this key is already revoked or expired; create a new key instead".into(),
        });
    }
    let key = auth::new_key();
    tx.insert_api_key(
        &key.id,
        &key.secret_hash,
        Some(&p.partner),
        None,
        None,
        old.label.as_deref(),
        &by,
        expires_at,
    )
    .await?;
    if body.overlap_seconds == 0 {
        tx.revoke_key(owner, &p.key).await?;
    } else {
        let until = now.saturating_add(i64::from(body.overlap_seconds) * 1000);
        tx.expire_key(owner, &p.key, until).await?;
    }
    let replaced = tx
        .key_info(owner, &p.key)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    tx.commit().await?;
    tracing::info!(partner = %p.partner, old = %replaced.id, new = %key.id, overlap_s = body.overlap_seconds, by = %by, "partner key rotated");
    Ok((
        StatusCode::CREATED,
        Json(RotatedKey {
            key: CreatedKey {
                id: key.id.clone(),
                role: None,
                expires_at,
                api_key: key.token.to_string(),
            },
            replaced,
        }),
    ))
}
