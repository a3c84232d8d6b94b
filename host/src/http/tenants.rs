//! `/api/v1/tenants`: create, list and show tenants; tenant API keys; the reply policy.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Auth, Tenant};
use super::json::{ApiJson, ApiQuery, PageQuery, page};
use crate::error::ApiError;
use crate::store::{Mode, Page, PolicyRecord, TenantRecord};
use crate::tenancy::{Actor, Capability, Principal, Role, Scope, auth, ids};

/// A display name: 1–200 characters, no control characters.
pub fn checked_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1 to 200 characters without control characters",
        ));
    }
    Ok(name)
}

/// `POST /api/v1/tenants` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Display name.
    pub name: String,
    /// The partner that owns it (operator only; a partner's tenants are its own).
    pub partner_id: Option<String>,
}

/// A created tenant with its owner key (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantRecord,
    /// An `owner` API key; store it now, it is not shown again.
    pub api_key: String,
}

/// Create a tenant (operator, or a partner for itself) and its first owner key.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = CreatedTenant),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let name = checked_name(&body.name)?;
    let (scope, partner_id, creator) = match &principal {
        Principal::Operator => (
            Scope::Operator,
            body.partner_id.clone(),
            "operator".to_string(),
        ),
        Principal::Partner { partner_id, key_id } => {
            if body.partner_id.as_ref().is_some_and(|p| p != partner_id) {
                return Err(ApiError::Forbidden);
            }
            (
                principal.listing_scope(),
                Some(partner_id.clone()),
                format!("{partner_id} via {key_id}"),
            )
        }
        Principal::Tenant { .. } => return Err(ApiError::Forbidden),
    };
    let id = ids::new_id("ten");
    let key = auth::new_key();
    let mut tx = state.store.begin(scope, Mode::Write).await?;
    if let Some(p) = &partner_id
        && !tx.partner_exists(p).await?
    {
        return Err(ApiError::unprocessable(
            "unknown_partner",
            "no such partner",
        ));
    }
    let tenant = tx.insert_tenant(&id, partner_id.as_deref(), name).await?;
    tx.insert_api_key(
        &key.id,
        &key.secret_hash,
        None,
        Some(&id),
        Some(Role::Owner.as_str()),
        Some("initial owner"),
        &creator,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %id, partner = ?partner_id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant,
            api_key: key.token.to_string(),
        }),
    ))
}

/// The tenants the caller may see: all (operator), its own (partner), itself (tenant).
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    params(PageQuery),
    responses(
        (status = 200, description = "OK", body = Page<TenantRecord>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<TenantRecord>>, ApiError> {
    let limit = q.limit()?;
    let mut tx = state
        .store
        .begin(principal.listing_scope(), Mode::Read)
        .await?;
    let rows = tx.tenants(q.cursor()?, limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |t| t.id.clone())))
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "OK", body = TenantRecord),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn show(tenant: Tenant) -> Result<Json<TenantRecord>, ApiError> {
    tenant.require(Capability::ReadTenant)?;
    Ok(Json(tenant.access.tenant))
}

/// `POST /api/v1/tenants/{tenant}/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `owner`, `admin`, `agent` or `viewer`.
    pub role: Role,
    /// A note to recognise it by.
    pub label: Option<String>,
}

/// A created key (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// `key_…`.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// The key; store it now, it is not shown again.
    pub api_key: String,
}

/// Create a key for one of the tenant's users (owner/admin; only an owner makes owner keys).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys",
    tag = "tenants",
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
        crate::http::openapi::Unprocessable,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    tenant.require(Capability::ManageKeys)?;
    if body.role == Role::Owner
        && !matches!(
            tenant.access.actor,
            Actor::User {
                role: Role::Owner,
                ..
            }
        )
    {
        return Err(ApiError::Forbidden);
    }
    let label = match body.label.as_deref() {
        Some(l) => Some(checked_name(l)?),
        None => None,
    };
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
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: key.id.clone(),
            role: body.role,
            api_key: key.token.to_string(),
        }),
    ))
}

/// `PUT /api/v1/tenants/{tenant}/policy` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    /// A loaded reply-policy plugin's name.
    pub plugin: String,
    /// Its configuration, handed to `decide`.
    #[serde(default)]
    pub config: serde_json::Value,
}

/// The reply policy as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// Plugin name.
    pub plugin: String,
    /// Configuration.
    pub config: serde_json::Value,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

impl From<PolicyRecord> for PolicyView {
    fn from(p: PolicyRecord) -> Self {
        PolicyView {
            plugin: p.plugin,
            config: serde_json::from_str(&p.config).unwrap_or(serde_json::Value::Null),
            updated_at: p.updated_at,
        }
    }
}

/// Largest policy configuration accepted, as compact JSON (64 KiB).
pub const MAX_POLICY_CONFIG_BYTES: usize = 64 << 10;

/// Choose the tenant's reply policy (owner/admin).
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/policy",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = PutPolicy,
    responses(
        (status = 200, description = "OK", body = PolicyView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::TooLarge,
        crate::http::openapi::Unprocessable,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn put_policy(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<PutPolicy>,
) -> Result<Json<PolicyView>, ApiError> {
    tenant.require(Capability::ManageConnections)?;
    if state.plugins.policy(&body.plugin).is_none() {
        return Err(ApiError::unprocessable(
            "unknown_policy",
            format!("no reply-policy plugin named {:?} is loaded", body.plugin),
        ));
    }
    let config = if body.config.is_null() {
        serde_json::json!({})
    } else {
        body.config
    };
    if !config.is_object() {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "config must be a JSON object",
        ));
    }
    // Every decision hands the config to the policy: a large one costs CPU on every message.
    let config = config.to_string();
    if config.len() > MAX_POLICY_CONFIG_BYTES {
        return Err(ApiError::unprocessable(
            "policy_config_too_large",
            format!(
                "config is {} bytes as JSON; at most {MAX_POLICY_CONFIG_BYTES} are allowed",
                config.len()
            ),
        ));
    }
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let rec = tx.put_policy(&body.plugin, &config).await?;
    tx.commit().await?;
    Ok(Json(rec.into()))
}

/// The tenant's reply policy.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/policy",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "OK", body = PolicyView),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn policy(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<PolicyView>, ApiError> {
    tenant.require(Capability::ReadInbox)?;
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rec = tx.policy().await?.ok_or(ApiError::NotFound("policy"))?;
    tx.commit().await?;
    Ok(Json(rec.into()))
}
