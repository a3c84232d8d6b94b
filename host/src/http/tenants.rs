//! `/api/v1/tenants`: create, list and show tenants; suspend and reinstate them; the reply
//! policy. (A tenant's API keys: [`super::keys`].)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Auth, Client, Tenant};
use super::json::{ApiJson, ApiQuery, PageQuery, page};
use crate::catalog::PinKind;
use crate::consent;
use crate::error::ApiError;
use crate::store::{Mode, Page, PolicyRecord, TenantRecord};
use crate::tenancy::{Principal, Role, Scope, auth, ids};

/// A display name: 1–200 characters, no control characters.
pub fn checked_name(name: &str) -> Result<&str, ApiError> {
    // At most 200 as sent (the document's maxLength), and not blank once trimmed.
    let long = name.chars().count() > 200;
    let name = name.trim();
    if name.is_empty() || long || name.chars().any(char::is_control) {
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
    /// Display name: 1–200 characters (after trimming spaces), no control characters
    /// (else 422 `invalid_name`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$(?!\\n)",
        example = "Acme"
    )]
    pub name: String,
    /// The partner that owns it (operator only; a partner's tenants are its own).
    pub partner_id: Option<String>,
    /// Mint an `owner` API key with it (default `true`); `false` when its people will sign in
    /// instead (invite an owner next), so no unused key exists.
    #[serde(default = "minted")]
    pub owner_key: bool,
}

pub(super) fn minted() -> bool {
    true
}

/// A created tenant with its owner key (shown once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantRecord,
    /// An `owner` API key; store it now, it is not shown again (absent with `owner_key: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
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
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_partner` (no such partner), `invalid_name`", body = crate::http::openapi::ErrorBody),
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
        Principal::Partner { partner_id, .. } => {
            if body.partner_id.as_ref().is_some_and(|p| p != partner_id) {
                return Err(ApiError::Forbidden);
            }
            (
                principal.listing_scope(),
                Some(partner_id.clone()),
                principal.name(),
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
    if body.owner_key {
        tx.insert_api_key(
            &key.id,
            &key.secret_hash,
            None,
            Some(&id),
            Some(Role::Owner.as_str()),
            Some("initial owner"),
            &creator,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(tenant = %id, partner = ?partner_id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant,
            api_key: body.owner_key.then(|| key.token.to_string()),
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
    // A tenant's own key lists only itself, and not while it is suspended.
    if let Principal::Tenant { tenant_id, .. } = &principal {
        auth::access(&state.store, &principal, tenant_id).await?;
    }
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
    Ok(Json(tenant.access.tenant))
}

/// Suspend the tenant (its partner, the operator): its own keys get 403 `tenant_suspended`;
/// its webhooks are still acknowledged and stored, and its replies, sends and media downloads
/// wait until it is reinstated.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/suspend",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "Suspended (suspending again changes nothing)", body = TenantRecord),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn suspend(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
) -> Result<Json<TenantRecord>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let was = tx.tenant(tenant.access.scope.id()).await?;
    let rec = tx.set_tenant_status(auth::SUSPENDED).await?;
    if was.is_some_and(|t| t.status != auth::SUSPENDED) {
        status_entry(&mut tx, &tenant, &client, consent::Action::Suspended).await?;
    }
    tx.commit().await?;
    tracing::warn!(tenant = %rec.id, by = %tenant.access.actor.ledger_name(), "tenant suspended");
    Ok(Json(rec))
}

/// Reinstate a suspended tenant (its partner, the operator): its keys work again and the work
/// that waited runs now.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/reinstate",
    tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "Active (reinstating an active tenant changes nothing)", body = TenantRecord),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn reinstate(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
) -> Result<Json<TenantRecord>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let was = tx.tenant(tenant.access.scope.id()).await?;
    let rec = tx.set_tenant_status("active").await?;
    if was.is_some_and(|t| t.status == auth::SUSPENDED) {
        status_entry(&mut tx, &tenant, &client, consent::Action::Reinstated).await?;
    }
    let woken = tx
        .wake_deferred_jobs(&auth::suspended_reason(&rec.id))
        .await?;
    tx.commit().await?;
    state.jobs.notify_waiters();
    tracing::info!(tenant = %rec.id, by = %tenant.access.actor.ledger_name(), jobs = woken, "tenant reinstated");
    Ok(Json(rec))
}

/// The ledger row of a status change, in the change's transaction.
async fn status_entry(
    tx: &mut crate::store::Tx,
    tenant: &Tenant,
    client: &Client,
    action: consent::Action,
) -> Result<(), ApiError> {
    consent::append(
        tx,
        &client.origin(tenant.access.actor.ledger_name()),
        &consent::Entry {
            connection_id: None,
            action,
            document_version: None,
            scopes: &[],
        },
    )
    .await?;
    Ok(())
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
    /// The plugin version this tenant runs; absent or `null` follows the promoted version.
    #[serde(default)]
    pub version: Option<String>,
}

/// The reply policy as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// Plugin name.
    pub plugin: String,
    /// Configuration.
    pub config: serde_json::Value,
    /// The version this tenant is pinned to (`null`: the promoted version).
    pub version: Option<String>,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

impl PolicyView {
    fn new(state: &AppState, tenant: &str, p: PolicyRecord) -> Self {
        PolicyView {
            version: state.plugins.pinned(PinKind::Tenant, tenant, &p.plugin),
            plugin: p.plugin,
            config: serde_json::from_str(&p.config).unwrap_or(serde_json::Value::Null),
            updated_at: p.updated_at,
        }
    }
}

/// Largest policy configuration accepted, as compact JSON (64 KiB).
pub const MAX_POLICY_CONFIG_BYTES: usize = 64 << 10;

/// A reply policy the tenant may choose, with its configuration as compact JSON: the plugin is
/// loaded, serves this tenant (a partner's plugin serves that partner's tenants only), its plan
/// allows it (AI policies), and the configuration is an object of at most
/// [`MAX_POLICY_CONFIG_BYTES`].
pub(super) async fn checked_policy(
    state: &AppState,
    tenant: &Tenant,
    plugin: &str,
    config: serde_json::Value,
) -> Result<String, ApiError> {
    let usable = state
        .plugins
        .usable_by(plugin, tenant.access.tenant.partner_id.as_deref());
    let Some(loaded) = state
        .plugins
        .policy(plugin, tenant.access.scope.id())
        .filter(|_| usable)
    else {
        return Err(ApiError::unprocessable(
            "unknown_policy",
            format!("no reply-policy plugin named {plugin:?} is loaded"),
        ));
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    crate::plans::check_policy(&mut tx, &loaded).await?;
    tx.commit().await?;
    let config = if config.is_null() {
        serde_json::json!({})
    } else {
        config
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
    Ok(config)
}

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
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_policy` (no reply-policy plugin or version of that name is loaded), or a config it refuses", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn put_policy(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(body): ApiJson<PutPolicy>,
) -> Result<Json<PolicyView>, ApiError> {
    let tenant_id = tenant.access.scope.id();
    let config = checked_policy(&state, &tenant, &body.plugin, body.config).await?;
    // A pin on the plugin the tenant leaves would block its publisher's deletes for nothing.
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let before = tx.policy().await?;
    tx.commit().await?;
    if let Some(old) = before.filter(|p| p.plugin != body.plugin) {
        state
            .plugins
            .pin(PinKind::Tenant, tenant_id, &old.plugin, None)
            .await?;
    }
    state
        .plugins
        .pin(
            PinKind::Tenant,
            tenant_id,
            &body.plugin,
            body.version.as_deref(),
        )
        .await?;
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let rec = tx.put_policy(&body.plugin, &config).await?;
    tx.commit().await?;
    Ok(Json(PolicyView::new(&state, tenant_id, rec)))
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
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rec = tx.policy().await?.ok_or(ApiError::NotFound("policy"))?;
    tx.commit().await?;
    Ok(Json(PolicyView::new(&state, tenant.access.scope.id(), rec)))
}
