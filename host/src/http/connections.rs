//! `/api/v1/tenants/{tenant}/connections`: connect a number (credentials proven by the
//! connector's `check-credentials` before it goes live), list and show them (status and
//! identifiers, never secrets), and disconnect (crypto-shred, ledger `revoked` + `shredded`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Client, Tenant};
use super::endpoints::checked_secrets;
use super::json::{ApiJson, ApiQuery, PageQuery, page};
use crate::consent::{self, Action, Entry};
use crate::error::ApiError;
use crate::runtime::types::ErrorKind;
use crate::store::{
    ConnectionRecord, EndpointRecord, Mode, NewConnection, Page, StoreError, now_ms,
};
use crate::tenancy::{Scope, TenantAccess, ids};
use crate::vault::{Secret, Vault};

/// Consent given while connecting.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// The version of the consent document the business accepted (1 to 100 characters, not
    /// blank; else 422 `invalid_consent`).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub document_version: String,
    /// Scopes granted (default `["messaging"]`).
    #[serde(default)]
    #[schema(value_type = Vec<super::consent::ConsentScope>)]
    pub scopes: Vec<String>,
}

/// `POST /api/v1/tenants/{tenant}/connections` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// A loaded connector plugin's name.
    pub connector: String,
    /// The shared endpoint (Meta app) it receives on; not for per-connection endpoints.
    pub endpoint: Option<String>,
    /// Non-secret settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Credentials: sealed in the vault, never shown again.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, Secret>,
    /// The business's consent.
    pub consent: ConsentInput,
}

/// A connection as the API shows it: status and identifiers, never secrets.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// `con_…`.
    pub id: String,
    /// Connector plugin.
    pub connector: String,
    /// `connecting`, `live`, `expired`, `disconnected` or `error`.
    pub status: String,
    /// Why, for `error`/`expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Business address.
    pub channel_address: String,
    /// Provider account.
    pub account_id: Option<String>,
    /// Display number.
    pub display_name: Option<String>,
    /// Endpoint.
    pub endpoint_id: String,
    /// Where the provider must send webhooks.
    pub webhook_url: String,
    /// Non-secret settings.
    pub settings: serde_json::Value,
    /// Whether the number is switched on.
    pub active: bool,
    /// When the token expires (Unix ms), when known.
    pub token_expires_at: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Disconnection time (Unix ms).
    pub disconnected_at: Option<i64>,
    /// What the business calls the number (e.g. "Sales Support").
    pub name: Option<String>,
    /// The reply policy chosen for this number; `null`: the tenant's applies.
    pub policy: Option<NumberPolicy>,
    /// What stops the provider reaching this number's webhook URL, e.g. a public URL that is
    /// not https.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A reply policy chosen for one number.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberPolicy {
    /// A loaded reply-policy plugin's name.
    pub plugin: String,
    /// Its configuration (a JSON object, at most 64 KiB).
    #[serde(default)]
    pub config: serde_json::Value,
}

/// What of a view the caller sees: a number's policy configuration (a business's prompts and
/// rules) is for the tenant's members, not its partner or the operator.
fn for_caller(mut v: ConnectionView, actor: &crate::tenancy::Actor) -> ConnectionView {
    if actor.role().is_none()
        && let Some(p) = &mut v.policy
    {
        p.config = serde_json::Value::Null;
    }
    v
}

pub(crate) fn view(state: &AppState, c: ConnectionRecord) -> ConnectionView {
    ConnectionView {
        name: c.name,
        policy: c.policy_plugin.map(|plugin| NumberPolicy {
            plugin,
            config: c
                .policy_config
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_else(|| serde_json::json!({})),
        }),
        webhook_url: state.webhook_url(&c.endpoint_id),
        warnings: crate::connector::public_url_warning(&state.public_url)
            .into_iter()
            .collect(),
        settings: serde_json::from_str(&c.settings).unwrap_or(serde_json::Value::Null),
        id: c.id,
        connector: c.connector,
        status: c.status,
        status_reason: c.status_reason,
        channel_address: c.channel_address,
        account_id: c.account_id,
        display_name: c.display_name,
        endpoint_id: c.endpoint_id,
        active: c.active != 0,
        token_expires_at: c.token_expires_at,
        created_at: c.created_at,
        updated_at: c.updated_at,
        disconnected_at: c.disconnected_at,
    }
}

/// The endpoint a new connection receives on, checked against the tenant's partner.
pub(crate) async fn shared_endpoint(
    state: &AppState,
    access: &TenantAccess,
    connector: &str,
    endpoint: Option<&str>,
) -> Result<EndpointRecord, ApiError> {
    let id = endpoint.ok_or_else(|| {
        ApiError::unprocessable(
            "endpoint_required",
            "\"endpoint\" must name the connector installation (POST /api/v1/endpoints)",
        )
    })?;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let endpoint = tx.endpoint(id).await?;
    tx.commit().await?;
    let unknown = || ApiError::unprocessable("unknown_endpoint", "no such endpoint");
    let endpoint = endpoint.ok_or_else(unknown)?;
    let usable = match (&endpoint.partner_id, &endpoint.tenant_id) {
        (_, Some(_)) => false, // another connection's own endpoint
        (None, None) => true,  // the operator's: any tenant
        (Some(p), None) => access.tenant.partner_id.as_deref() == Some(p.as_str()),
    };
    if !usable {
        return Err(unknown());
    }
    if endpoint.connector != connector {
        return Err(ApiError::unprocessable(
            "unknown_endpoint",
            format!(
                "endpoint {id} belongs to connector {:?}",
                endpoint.connector
            ),
        ));
    }
    Ok(endpoint)
}

/// Connect a number (owner/admin).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connections",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    request_body = Connect,
    responses(
        (status = 201, description = "Created", body = ConnectionView),
        (status = 200, description = "Reconnected: the tenant's earlier connection of this address renewed in place (same id, contacts and history kept)", body = ConnectionView),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_connector`, `unknown_endpoint` (no such connector plugin or endpoint), `invalid_consent`, or settings or secrets the connector refuses", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::BadGateway,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    ApiJson(body): ApiJson<Connect>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    let access = &tenant.access;
    let secrets = checked_secrets(body.secrets)?;
    let Some(document_version) = super::consent::checked_version(&body.consent.document_version)
    else {
        return Err(ApiError::unprocessable(
            "invalid_consent",
            "consent.document_version is required (1 to 100 characters)",
        ));
    };
    let record = connect(
        &state,
        access,
        &client.origin(access.actor.ledger_name()),
        NewConnect {
            connector: body.connector,
            endpoint: body.endpoint,
            settings: body.settings,
            secrets,
            host_secrets: Vec::new(),
            document_version: Some(document_version.to_string()),
            scopes: body.consent.scopes,
            token_expires_at: None,
        },
    )
    .await?;
    // A reconnect renews the tenant's earlier connection of the address: 200, same id.
    let status = match record.renewed {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok((status, Json(view(&state, record.record))))
}

/// A connection to make, once the caller has checked who may make it and which secrets it
/// brings: the manual connect and Meta onboarding both come through [`connect`].
pub(crate) struct NewConnect {
    /// A loaded connector plugin's name.
    pub connector: String,
    /// The shared endpoint (Meta app); not for per-connection endpoints.
    pub endpoint: Option<String>,
    /// Non-secret settings.
    pub settings: BTreeMap<String, String>,
    /// The secrets the caller gave, checked against the connector's declaration.
    pub secrets: Vec<(String, Secret)>,
    /// Secrets the host made itself (Meta's two-step PIN): sealed with the others, never
    /// checked against the connector and never given to a plugin call.
    pub host_secrets: Vec<(String, Secret)>,
    /// Consent document version (1 to 100 characters), when the business gave one.
    pub document_version: Option<String>,
    /// Scopes granted (default `["messaging"]`).
    pub scopes: Vec<String>,
    /// Token expiry the caller already knows (Unix ms), e.g. from Meta's code exchange.
    pub token_expires_at: Option<i64>,
}

/// Make a connection: credentials proven by the connector's `check-credentials` (A9), then the
/// connection, its route, its sealed secrets and the consent ledger's `granted` in one tenant
/// transaction. 409 `number_already_connected` when the number is live elsewhere.
pub(crate) async fn connect(
    state: &AppState,
    access: &TenantAccess,
    origin: &consent::Origin,
    req: NewConnect,
) -> Result<Connected, ApiError> {
    // A partner's connector serves that partner's tenants only (also with its own endpoints).
    let usable = state
        .plugins
        .usable_by(&req.connector, access.tenant.partner_id.as_deref());
    let plugin = state
        .plugins
        .connector(&req.connector, req.endpoint.as_deref())
        .filter(|_| usable)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_connector",
                format!("no connector plugin named {:?} is loaded", req.connector),
            )
        })?;
    let checked = crate::connector::check_connection(
        &req.connector,
        plugin.shape(),
        &req.settings,
        &req.secrets,
    )?;
    let mut secrets = req.secrets;
    // Secrets the host makes for the connector (Telegram's webhook secret): 32 random bytes as
    // 43 characters of base64url, which every provider's token alphabet takes.
    for spec in plugin.shape().secrets.iter().filter(|s| s.generated) {
        use base64::Engine as _;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        ids::fill_random(bytes.as_mut());
        let text = zeroize::Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()),
        );
        secrets.push((spec.name.clone(), Secret::new(text.as_bytes().to_vec())));
    }
    let document_version = match req.document_version.as_deref() {
        None => None,
        Some(v) => Some(super::consent::checked_version(v).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_consent",
                "consent.document_version is required (1 to 100 characters)",
            )
        })?),
    };
    let mut scopes = req.scopes.clone();
    if scopes.is_empty() {
        scopes.push("messaging".into());
    }
    if let Some(bad) = scopes
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
    let address = checked.address.clone();
    let account = checked.account.clone();
    let display = Some(checked.display.clone());

    // The tenant's earlier connection of this address, whatever its state, is renewed in
    // place: the address keeps its id, contacts, conversations and history (page 000). The
    // plan is checked first: its channels and numbers (a renewal is not another number).
    let previous = {
        let mut tx = access.begin(&state.store, Mode::Read).await?;
        crate::plans::check_connect(&mut tx, &req.connector, &address).await?;
        let p = tx.connection_by_address(&req.connector, &address).await?;
        tx.commit().await?;
        p
    };
    let id = previous
        .as_ref()
        .map_or_else(|| ids::new_id("con"), |p| p.id.clone());
    let own_endpoint = plugin.shape().own_endpoint;
    let endpoint = if own_endpoint {
        EndpointRecord {
            id: previous
                .as_ref()
                .map_or_else(|| ids::new_id("end"), |p| p.endpoint_id.clone()),
            connector: req.connector.clone(),
            owner: format!("tenant:{}", access.scope.id()),
            partner_id: None,
            tenant_id: Some(access.scope.id().to_string()),
            settings: "{}".into(),
            created_at: now_ms(),
        }
    } else {
        shared_endpoint(state, access, &req.connector, req.endpoint.as_deref()).await?
    };
    let taken = || ApiError::Conflict {
        code: "number_already_connected",
        message: format!("{address} is already connected (to this or another business)"),
    };

    // Prove the credentials before anything is stored or any other tenant's number is looked
    // at (A9): the connector proves the token can use this very address, so a 409 below only
    // ever answers someone who controls the number — it is no oracle for who connected what.
    let settings = &checked.settings;
    let settings_json =
        serde_json::to_string(&settings).map_err(|e| ApiError::Internal(e.into()))?;
    let draft = ConnectionRecord {
        id: id.clone(),
        tenant_id: access.scope.id().to_string(),
        connector: req.connector.clone(),
        endpoint_id: endpoint.id.clone(),
        channel_address: address.clone(),
        account_id: account.clone(),
        display_name: display.clone(),
        settings: settings_json.clone(),
        status: "connecting".into(),
        status_reason: None,
        active: 1,
        token_expires_at: None,
        created_at: 0,
        updated_at: 0,
        disconnected_at: None,
        connected_at: None,
        name: None,
        policy_plugin: None,
        policy_config: None,
    };
    let info = state
        .providers
        .connection_info(&draft, &plugin, &state.public_url);
    let scope = Vault::call_scope(None, Some((&draft, secrets.clone())));
    let _permit = state.plugin_calls.acquire(access.scope.id())?;
    let refused = |step: &str, e: crate::runtime::types::ProviderError| match e.kind {
        ErrorKind::RateLimited | ErrorKind::Transient => ApiError::BadGateway {
            code: "provider_unavailable",
            message: format!(
                "the provider did not answer the {step}: {} {}",
                e.code, e.message
            ),
        },
        _ => ApiError::unprocessable(
            "invalid_credentials",
            format!("the provider refused the {step}: {} {}", e.code, e.message),
        ),
    };
    let failed = |step: &str, e: crate::runtime::CallError| {
        tracing::warn!(connector = %req.connector, error = %e, "{step} failed");
        ApiError::BadGateway {
            code: "connector_failed",
            message: format!("the connector failed during the {step}: {e}"),
        }
    };
    let health = match plugin.check_credentials(scope.clone(), &info).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err(refused("credential check", e)),
        Err(e) => return Err(failed("credential check", e)),
    };
    let warning = crate::lifecycle::warning_reason(&health.warnings);
    let undo_scope = scope.clone();
    // A connector that sets the provider up (Telegram's setWebhook) does so once the
    // credentials are proven and the address is known to be free: it points the provider's
    // webhooks at this connection's endpoint.
    if plugin.has_lifecycle() {
        let mut host = state.store.begin(Scope::Host, Mode::Read).await?;
        let elsewhere = host
            .route_taken(&req.connector, &address, access.scope.id())
            .await?;
        host.commit().await?;
        if elsewhere {
            return Err(taken());
        }
        match plugin.connect(scope.clone(), &info).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(refused("webhook set-up", e)),
            Err(e) => return Err(failed("webhook set-up", e)),
        }
    }
    let expires_at = health
        .expires_at
        .and_then(|s| i64::try_from(s).ok())
        .map(|s| s.saturating_mul(1000))
        .or(req.token_expires_at);

    // Everything stored in one transaction; should it fail after the provider was set up,
    // the set-up is undone (unless the address was taken meanwhile: that set-up is theirs).
    let stored: Result<ConnectionRecord, ApiError> = async {
        let mut tx = access.begin(&state.store, Mode::Write).await?;
        // The plan again, in the write: connects racing each other cannot all pass its count
        // (on PostgreSQL the tenant's row is locked for it).
        tx.lock_tenant().await?;
        crate::plans::check_connect(&mut tx, &req.connector, &address).await?;
        if own_endpoint && previous.is_none() {
            tx.insert_endpoint(&endpoint).await?;
        }
        let new = NewConnection {
            id: &id,
            connector: &req.connector,
            endpoint_id: &endpoint.id,
            channel_address: &address,
            account_id: account.as_deref(),
            display_name: display.as_deref(),
            settings: &settings_json,
            status: "live",
            // What the connector warns about at once (a sandbox sender, no webhook subscription).
            status_reason: warning.as_deref(),
            token_expires_at: expires_at,
        };
        let written = match &previous {
            Some(_) => {
                tx.delete_route(&id).await?;
                state.vault.shred_connection(&mut tx, &id).await?;
                tx.renew_connection(&new).await
            }
            None => tx.insert_connection(&new).await,
        };
        written.map_err(|e| match e {
            StoreError::Conflict(_) => taken(),
            other => other.into(),
        })?;
        tx.insert_route(&crate::store::NewRoute {
            endpoint_id: &endpoint.id,
            connector: &req.connector,
            channel_address: &address,
            account_id: account.as_deref(),
            connection_id: &id,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => taken(),
            other => other.into(),
        })?;
        let mut sealed = secrets;
        sealed.extend(req.host_secrets);
        state
            .vault
            .seal_connection(&mut tx, &id, &sealed, expires_at)
            .await?;
        consent::append(
            &mut tx,
            origin,
            &Entry {
                connection_id: Some(&id),
                action: Action::Granted,
                document_version,
                scopes: &scopes,
            },
        )
        .await?;
        let record = tx
            .connection(&id)
            .await?
            .ok_or(ApiError::NotFound("connection"))?;
        tx.commit().await?;
        Ok(record)
    }
    .await;
    let record = match stored {
        Ok(record) => record,
        Err(e) => {
            if plugin.has_lifecycle() && !matches!(e, ApiError::Conflict { .. }) {
                let undone = plugin.disconnect(undo_scope, &info).await;
                tracing::warn!(connection = %id, error = %e, undone = ?undone.map(|r| r.is_ok()), "connecting failed after the provider was set up");
            }
            return Err(e);
        }
    };
    state.endpoints.evict(&endpoint.id);
    if let Some(p) = &previous {
        state.endpoints.evict(&p.endpoint_id);
    }
    let renewed = previous.is_some();
    tracing::info!(tenant = %access.scope.id(), connection = %id, connector = %req.connector, renewed, "number connected");
    Ok(Connected { record, renewed })
}

/// What [`connect`] made.
pub(crate) struct Connected {
    /// The connection, live.
    pub record: ConnectionRecord,
    /// The tenant's earlier connection of the address was renewed in place (a reconnect).
    pub renewed: bool,
}

/// The tenant's connections, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connections",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), PageQuery),
    responses(
        (status = 200, description = "OK", body = Page<ConnectionView>),
        crate::http::openapi::BadRequest,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ConnectionView>>, ApiError> {
    let limit = q.limit()?;
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let rows = tx.connections(q.cursor()?, limit + 1).await?;
    tx.commit().await?;
    let p = page(rows, limit, |c| c.id.clone());
    Ok(Json(Page {
        data: p
            .data
            .into_iter()
            .map(|c| for_caller(view(&state, c), &tenant.access.actor))
            .collect(),
        next_cursor: p.next_cursor,
    }))
}

#[derive(Deserialize)]
pub(super) struct ConnectionPath {
    #[allow(dead_code)]
    tenant: String,
    pub(super) connection: String,
}

/// One connection.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/connections/{connection}",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "OK", body = ConnectionView),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<ConnectionView>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let c = tx
        .connection(&p.connection)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    tx.commit().await?;
    Ok(Json(for_caller(view(&state, c), &tenant.access.actor)))
}

/// `PATCH …/connections/{connection}` body: what to change (absent fields stay).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditNumber {
    /// What the business calls the number (1 to 200 characters).
    #[schema(max_length = 200, example = "Sales Support")]
    pub name: Option<String>,
    /// Switch the number on or off. Off: its webhooks are acknowledged and stored, but no
    /// policy runs and nothing is sent. On needs a reply policy (the number's or the tenant's).
    pub active: Option<bool>,
    /// The number's own reply policy; `null` falls back to the tenant's.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable)]
    pub policy: Option<Option<NumberPolicy>>,
}

/// A field that is present (even `null`) becomes `Some`, so absent and `null` differ.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Edit a number: its name, active toggle and reply policy (owner/admin).
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/connections/{connection}",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    request_body = EditNumber,
    responses(
        (status = 200, description = "Changed", body = ConnectionView),
        crate::http::openapi::TenantErrors,
        crate::http::openapi::BadRequest,
        crate::http::openapi::Conflict,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_policy` (no reply-policy plugin of that name is loaded), `invalid_name`", body = crate::http::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn edit(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
    ApiJson(body): ApiJson<EditNumber>,
) -> Result<Json<ConnectionView>, ApiError> {
    let name = body
        .name
        .as_deref()
        .map(super::tenants::checked_name)
        .transpose()?;
    let policy = match body.policy {
        None => None,
        Some(None) => Some(None),
        Some(Some(choice)) => Some(Some((
            super::tenants::checked_policy(&state, &tenant, &choice.plugin, choice.config).await?,
            choice.plugin,
        ))),
    };
    let mut tx = tenant.access.begin(&state.store, Mode::Write).await?;
    let c = tx
        .connection(&p.connection)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    if c.status == "disconnected" {
        return Err(ApiError::Conflict {
            code: "connection_ended",
            message: "this number was disconnected; connect it again to change it".into(),
        });
    }
    tx.edit_connection(
        &c.id,
        name,
        body.active,
        policy.as_ref().map(|p| {
            p.as_ref()
                .map(|(config, plugin)| (plugin.as_str(), config.as_str()))
        }),
    )
    .await?;
    // Switched on, a number needs a policy to answer with: its own or the tenant's.
    let active = body.active.unwrap_or(c.active != 0);
    if active && tx.policy_for(&c.id).await?.is_none() {
        return Err(ApiError::unprocessable(
            "policy_required",
            "choose a reply policy for this number or for the tenant before switching it on",
        ));
    }
    let c = tx
        .connection(&c.id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    tx.commit().await?;
    tracing::info!(connection = %c.id, by = %tenant.access.actor.ledger_name(), active, "number edited");
    Ok(Json(view(&state, c)))
}

/// Undo at the provider what connecting set up, best effort (a failure is reported in the
/// status reason, the disconnect goes on): a connector's own `disconnect` (Telegram's
/// deleteWebhook); for Meta, unsubscribing the app from the connection's WABA when no other
/// live number still uses it. `None` when there was nothing to do.
pub(super) async fn unsubscribe_at_provider(
    state: &AppState,
    access: &crate::tenancy::TenantAccess,
    connection_id: &str,
) -> Result<Option<String>, ApiError> {
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let c = tx.connection(connection_id).await?;
    tx.commit().await?;
    let Some(c) = c else {
        return Ok(None);
    };
    let lifecycle = state
        .plugins
        .connector(&c.connector, Some(&c.endpoint_id))
        .is_some_and(|p| p.has_lifecycle());
    let mut undone = None;
    if lifecycle && matches!(c.status.as_str(), "live" | "expired" | "error") {
        let (_, plugin, info, scope, _permit) = provider_call(state, access, connection_id).await?;
        undone = match plugin.disconnect(scope, &info).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!(
                "the provider did not confirm it stopped this connection's webhooks ({} {})",
                e.code, e.message
            )),
            Err(e) => Some(format!(
                "the connector failed to stop this connection's webhooks ({e})"
            )),
        };
    }
    let (Some(waba), "meta-cloud", "live" | "expired" | "error") = (
        c.account_id.clone(),
        c.connector.as_str(),
        c.status.as_str(),
    ) else {
        return Ok(undone);
    };
    let shared = {
        // Every tenant's connections, not only this one's: the host-wide routes table.
        let mut host = state.store.begin(Scope::Host, Mode::Read).await?;
        let shared = host.account_in_use(&c.connector, &waba, &c.id).await?;
        host.commit().await?;
        shared
    };
    if shared {
        return Ok(Some(format!(
            "the app stays subscribed to WhatsApp Business Account {waba}: another number uses it"
        )));
    }
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let secrets = state.vault.open_connection(&mut tx, &c.id).await?;
    tx.commit().await?;
    let Some((_, token)) = secrets.iter().find(|(k, _)| k == "access_token") else {
        return Ok(undone);
    };
    Ok(Some(match state.meta.unsubscribe(&waba, token).await {
        Ok(()) => format!("unsubscribed the app from WhatsApp Business Account {waba}"),
        Err(e) => {
            tracing::warn!(connection = %c.id, error = %e.summary(), "unsubscribing at Meta failed");
            format!(
                "could not unsubscribe at Meta ({}); remove the app in WhatsApp Manager",
                e.summary()
            )
        }
    }))
}

/// Disconnect (owner/admin): Meta numbers first unsubscribe the app from their WABA (when no
/// other live number uses it; best effort, said in `status_reason`); then status
/// `disconnected`, route removed, secrets crypto-shredded and ledger `revoked` + `shredded`, all
/// in one transaction. History stays.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/connections/{connection}",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "OK", body = ConnectionView),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn disconnect(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<ConnectionView>, ApiError> {
    let access = &tenant.access;
    // At the provider first, outside any write transaction (a network call must not hold the
    // database): Meta stops sending this WABA's webhooks to the app.
    let note = unsubscribe_at_provider(&state, access, &p.connection).await?;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let c = tx
        .connection(&p.connection)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    if c.status == "disconnected" {
        tx.commit().await?;
        return Ok(Json(view(&state, c)));
    }
    let origin = client.origin(access.actor.ledger_name());
    crate::lifecycle::end_connection(
        &mut tx,
        &state.vault,
        &c.id,
        &origin,
        Action::Revoked,
        note.as_deref(),
    )
    .await?;
    let c = tx
        .connection(&c.id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    tx.commit().await?;
    state.endpoints.evict(&c.endpoint_id);
    // Push the shredded pages out of SQLite's WAL as well (best effort).
    state.store.checkpoint().await;
    tracing::info!(tenant = %access.scope.id(), connection = %c.id, "number disconnected and shredded");
    Ok(Json(view(&state, c)))
}

/// The connection, its secrets opened, and the connector and call context to reach the
/// provider with (the connection must not be disconnected).
/// Also takes the tenant's place among its API plugin calls (429 when it has too many
/// running); the place is held until the returned permit is dropped.
pub(super) async fn provider_call(
    state: &AppState,
    access: &crate::tenancy::TenantAccess,
    connection_id: &str,
) -> Result<
    (
        ConnectionRecord,
        std::sync::Arc<crate::runtime::ConnectorPlugin>,
        crate::runtime::types::ConnectionInfo,
        crate::vault::SecretScope,
        super::PluginCallPermit,
    ),
    ApiError,
> {
    let permit = state.plugin_calls.acquire(access.scope.id())?;
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let c = tx
        .connection(connection_id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    if c.status == "disconnected" {
        return Err(ApiError::Conflict {
            code: "connection_disconnected",
            message: "the connection is disconnected; connect the number again".into(),
        });
    }
    let secrets = state.vault.open_connection(&mut tx, &c.id).await?;
    tx.commit().await?;
    let plugin = state
        .plugins
        .connector(&c.connector, Some(&c.endpoint_id))
        .ok_or_else(|| ApiError::BadGateway {
            code: "connector_failed",
            message: format!("connector {} is not loaded", c.connector),
        })?;
    let info = state
        .providers
        .connection_info(&c, &plugin, &state.public_url);
    let scope = Vault::call_scope(None, Some((&c, secrets)));
    Ok((c, plugin, info, scope, permit))
}

/// A provider's refusal as the API answers it.
fn provider_refusal(e: &crate::runtime::types::ProviderError) -> ApiError {
    let message = format!("{} {}", e.code, e.message);
    match e.kind {
        ErrorKind::RateLimited | ErrorKind::Transient => ApiError::BadGateway {
            code: "provider_unavailable",
            message,
        },
        ErrorKind::AuthExpired | ErrorKind::PermissionMissing | ErrorKind::AccountBlocked => {
            ApiError::unprocessable("invalid_credentials", message)
        }
        ErrorKind::WindowClosed => ApiError::unprocessable("window_closed", message),
        ErrorKind::InvalidRecipient => ApiError::unprocessable("invalid_recipient", message),
        ErrorKind::InvalidRequest => ApiError::unprocessable("invalid_request", message),
        _ => ApiError::unprocessable("send_refused", message),
    }
}

/// Route self-test of a connection's webhook URL (owner/admin): the host calls it at its public
/// URL with a signed self-test header and says whether the request reached ingress, and if not
/// what answered (a proxy's 404, a redirect, no connection).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/self-test",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "What the self-test found (`reached` false with `problems` when it did not reach ingress)", body = crate::ingress::self_test::SelfTest),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn self_test(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<crate::ingress::self_test::SelfTest>, ApiError> {
    let mut tx = tenant.access.begin(&state.store, Mode::Read).await?;
    let c = tx
        .connection(&p.connection)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    tx.commit().await?;
    Ok(Json(
        crate::ingress::self_test::probe(&state.vault, &state.public_url, &c.endpoint_id).await,
    ))
}

/// Verify (owner/admin): check the stored credentials with the provider again. Accepted → the
/// connection is `live` (a warning the connector reports stays in `status_reason`); refused →
/// `expired`/`error` with the provider's code and message, and 422 `invalid_credentials`.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/verify",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    responses(
        (status = 200, description = "The credentials work", body = ConnectionView),
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn verify(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(p): Path<ConnectionPath>,
) -> Result<Json<ConnectionView>, ApiError> {
    let access = &tenant.access;
    let (c, plugin, info, scope, _permit) = provider_call(&state, access, &p.connection).await?;
    let result = plugin.check_credentials(scope, &info).await;
    let (status, reason, refusal) = match result {
        Ok(Ok(health)) => (
            "live",
            crate::lifecycle::warning_reason(&health.warnings),
            None,
        ),
        Ok(Err(e)) => match crate::replies::connection_effect(e.kind) {
            Some((status, hint)) => (
                status,
                Some(format!("{} {} ({hint})", e.code, e.message)),
                Some(provider_refusal(&e)),
            ),
            None => return Err(provider_refusal(&e)),
        },
        Err(e) => {
            return Err(ApiError::BadGateway {
                code: "connector_failed",
                message: format!("the connector failed while checking credentials: {e}"),
            });
        }
    };
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    tx.set_connection_status(&c.id, status, reason.as_deref())
        .await?;
    let c = tx
        .connection(&c.id)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    tx.commit().await?;
    state.endpoints.evict(&c.endpoint_id);
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(Json(view(&state, c))),
    }
}

/// How long a test send counts as in flight (its statuses may arrive before it is recorded).
const TEST_SEND_IN_FLIGHT_MS: i64 = 120_000;

/// A test message to send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    /// The recipient's phone number in E.164 (`+14155550123`, or digits, maybe after
    /// `whatsapp:`); give exactly this or `to_user_id` (else 422 `invalid_recipient`).
    #[serde(default)]
    #[schema(
        pattern = "^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(whatsapp:)*\\+*[0-9]{6,15}[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$(?!\\n)",
        example = "+14155550123"
    )]
    pub to: Option<String>,
    /// A recipient without a phone number: the channel's user id (a Telegram chat id, a
    /// business-scoped user id), 1 to 128 visible ASCII characters; give exactly this or `to`.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,128}$(?!\\n)")]
    pub to_user_id: Option<String>,
    /// The text: 1 to 4,096 characters, not blank (else 422 `invalid_body`).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub message: String,
}

/// What the provider said about a test message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestSent {
    /// The provider's id for the message (wamid, MessageSid).
    pub provider_message_id: String,
}

/// Test send (owner/admin): one text message through the connection, recorded in the consent
/// ledger as `test-send` with who sent it. The one exception to "the contact writes first"; the
/// provider's own rules (the 24-hour window) still apply and come back as errors.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/connections/{connection}/test",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)"), ("connection" = String, Path, description = "Connection id (`con_…`)")),
    request_body = TestSend,
    responses(
        (status = 200, description = "Accepted by the provider", body = TestSent),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Conflict,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_recipient` (not exactly one of `to` and `to_user_id`, or one out of shape), `invalid_body`", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::TooManyRequests,
        crate::http::openapi::BadGateway,
        crate::http::openapi::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn test_send(
    State(state): State<AppState>,
    tenant: Tenant,
    client: Client,
    Path(p): Path<ConnectionPath>,
    ApiJson(body): ApiJson<TestSend>,
) -> Result<Json<TestSent>, ApiError> {
    let (phone, user_id) = match (&body.to, &body.to_user_id) {
        (Some(to), None) => {
            let to = to
                .trim()
                .trim_start_matches("whatsapp:")
                .trim_start_matches('+');
            if to.len() < 6 || to.len() > 15 || !to.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::unprocessable(
                    "invalid_recipient",
                    "`to` must be a phone number in E.164 (+ and 6 to 15 digits)",
                ));
            }
            (Some(to.to_string()), None)
        }
        (None, Some(id)) => {
            if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::unprocessable(
                    "invalid_recipient",
                    "`to_user_id` must be 1 to 128 visible ASCII characters",
                ));
            }
            (None, Some(id.clone()))
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_recipient",
                "give exactly one of `to` (a phone number) and `to_user_id`",
            ));
        }
    };
    if body.message.trim().is_empty() || body.message.chars().count() > 4096 {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "`message` must be 1 to 4096 characters of text",
        ));
    }
    let access = &tenant.access;
    let (c, plugin, info, scope, _permit) = provider_call(&state, access, &p.connection).await?;
    if c.active == 0 {
        return Err(ApiError::Conflict {
            code: "number_inactive",
            message: "this number is switched off; switch it on to send from it".into(),
        });
    }
    {
        let mut tx = access.begin(&state.store, Mode::Read).await?;
        let plan = tx.tenant_plan().await?;
        let used_up = crate::plans::allowance_used_up(&mut tx, plan.as_ref()).await?;
        tx.commit().await?;
        if let (Some(reason), Some(plan)) = (used_up, plan) {
            return Err(crate::plans::refusal(&plan, format!("a test send ({reason})")).into());
        }
    }
    let key = crate::tenancy::ids::new_id("tst");
    // Recorded as an outbound message of its own conversation before the provider is called
    // (an attempt in flight), so the provider's statuses for it find it.
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let contact = tx
        .upsert_contact(&c.id, phone.as_deref(), user_id.as_deref(), None)
        .await?;
    let conversation = tx.upsert_conversation(&c.id, &contact).await?;
    let message = tx
        .insert_message(&crate::store::NewMessage {
            conversation_id: &conversation,
            connection_id: &c.id,
            direction: "out",
            provider_message_id: None,
            kind: "text",
            body: Some(&body.message),
            status: "queued",
            idempotency_key: Some(&key),
            reply_to: None,
            content: None,
            sent_at: None,
            author: Some(access.actor.author()),
            referral: None,
        })
        .await?;
    tx.begin_send_attempt(&message, crate::store::now_ms() + TEST_SEND_IN_FLIGHT_MS)
        .await?;
    tx.commit().await?;
    let out = crate::runtime::types::OutboundMessage {
        to: crate::runtime::types::Party {
            phone,
            user_id,
            name: None,
        },
        content: crate::runtime::types::Content::Text(body.message.clone()),
        reply_to: None,
        idempotency_key: key,
    };
    let result = plugin.send(scope, &info, &out).await;
    let mut tx = access.begin(&state.store, Mode::Write).await?;
    let provider_message_id = match result {
        Ok(Ok(id)) => {
            tx.record_send(&message, Some(&id), None).await?;
            id
        }
        Ok(Err(e)) => {
            let kind = crate::jobs::error_kind_name(e.kind);
            tx.record_send(&message, None, Some((kind, &e.code, &e.message)))
                .await?;
            tx.commit().await?;
            return Err(provider_refusal(&e));
        }
        Err(e) => {
            tx.record_send(
                &message,
                None,
                Some((
                    "connector-failed",
                    "host",
                    "the connector failed while sending",
                )),
            )
            .await?;
            tx.commit().await?;
            return Err(ApiError::BadGateway {
                code: "connector_failed",
                message: format!("the connector failed while sending: {e}"),
            });
        }
    };
    consent::append(
        &mut tx,
        &client.origin(access.actor.ledger_name()),
        &Entry {
            connection_id: Some(&c.id),
            action: Action::TestSend,
            document_version: None,
            scopes: &[],
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant = %access.scope.id(), connection = %c.id, "test message sent");
    Ok(Json(TestSent {
        provider_message_id,
    }))
}
