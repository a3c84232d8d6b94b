//! `/api/v1/plugins`: the operator and partners ship plugin versions to a running host, list
//! them, promote one, roll back, and delete what nothing uses; `PUT /api/v1/endpoints/{id}/plugin`
//! pins an endpoint's connector version. Partners act only in their own namespace and see only
//! their own plugins beside the operator's and the bundled ones.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Auth, Operator};
use super::json::ApiJson;
use crate::catalog::{FailurePolicyView, PinKind, PluginInfo, Publisher, VersionInfo, Viewer};
use crate::error::ApiError;
use crate::store::{Mode, PublisherKey};
use crate::tenancy::{Principal, Scope};

/// An uploaded version, as stored.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadedPlugin {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the packed component (hex).
    pub sha256: String,
    /// `connector` or `reply-policy`.
    pub world: String,
    /// Interface package it was built against.
    pub interface: String,
    /// `switchyard`, `operator` or `partner:<id>`.
    pub publisher: String,
    /// Whether it is the name's promoted version now (a new name's first version is).
    pub promoted: bool,
}

/// `POST …/plugins/{name}/promote` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// The version to promote (loaded on this host).
    pub version: String,
    /// Why, for the record: at most 200 characters, not blank (else 422 `invalid_reason`).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub reason: Option<String>,
}

/// A packed component's bytes, as they are (the upload's body).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ComponentBytes(Vec<u8>);

/// `POST …/plugins/{name}/rollback` body (`{}` when no reason is given).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollBack {
    /// Why, for the record: at most 200 characters, not blank (else 422 `invalid_reason`).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub reason: Option<String>,
}

/// `PUT /api/v1/endpoints/{endpoint}/plugin` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPin {
    /// The connector version this endpoint runs; `null` follows the promoted version.
    pub version: Option<String>,
}

/// The plugins the caller sees.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PluginList {
    /// One entry per name.
    pub data: Vec<PluginInfo>,
}

#[derive(Deserialize)]
pub(super) struct NamePath {
    name: String,
}

#[derive(Deserialize)]
pub(super) struct VersionPath {
    name: String,
    version: String,
}

/// Who is publishing: the operator, or a partner with its namespace.
async fn publisher(state: &AppState, principal: &Principal) -> Result<Publisher, ApiError> {
    match principal {
        Principal::Operator => Ok(Publisher::Operator),
        Principal::Partner { partner_id, .. } => {
            let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
            let namespace = tx.partner_namespace(partner_id).await?;
            tx.commit().await?;
            Ok(Publisher::Partner {
                id: partner_id.clone(),
                namespace,
            })
        }
        Principal::Tenant { .. } => Err(ApiError::Forbidden),
    }
}

/// Whose view the caller gets: `None` the operator's (everything); else the partner whose
/// plugins (or plans) it sees beside the public ones (a tenant: its partner's, `Some(None)`
/// for none).
pub(super) async fn viewer_of(
    state: &AppState,
    principal: &Principal,
) -> Result<Option<Option<String>>, ApiError> {
    Ok(match principal {
        Principal::Operator => None,
        Principal::Partner { partner_id, .. } => Some(Some(partner_id.clone())),
        Principal::Tenant { tenant_id, .. } => {
            let access = crate::tenancy::auth::access(&state.store, principal, tenant_id).await?;
            Some(access.tenant.partner_id)
        }
    })
}

fn as_viewer(v: &Option<Option<String>>) -> Viewer<'_> {
    match v {
        None => Viewer::Operator,
        Some(partner) => Viewer::PartnerOf(partner.as_deref()),
    }
}

/// The plugins the caller sees: the operator everything; a partner, and a tenant, the public
/// plugins and its (or its partner's) own.
async fn list_for(state: &AppState, principal: &Principal) -> Result<Vec<PluginInfo>, ApiError> {
    let viewer = viewer_of(state, principal).await?;
    Ok(state.plugins.list(as_viewer(&viewer)))
}

/// The name as the caller sees it; 404 when it does not exist or belongs to another partner.
async fn visible(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<PluginInfo, ApiError> {
    let viewer = viewer_of(state, principal).await?;
    state
        .plugins
        .info(as_viewer(&viewer), name)
        .ok_or(ApiError::NotFound("plugin"))
}

/// Changing a name (promote, roll back, delete) is for its publisher or the operator.
fn may_change(principal: &Principal, info: &PluginInfo) -> Result<(), ApiError> {
    match principal {
        Principal::Operator => Ok(()),
        Principal::Partner { partner_id, .. }
            if info.publisher == format!("partner:{partner_id}") =>
        {
            Ok(())
        }
        _ => Err(ApiError::Forbidden),
    }
}

fn reason(given: Option<String>, default: &str) -> Result<String, ApiError> {
    let r = given.unwrap_or_else(|| default.to_string());
    if r.trim().is_empty() || r.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_reason",
            "reason must be 1 to 200 characters",
        ));
    }
    Ok(r)
}

/// Upload a packed component (operator; a partner in its namespace). It is checked, compiled
/// and linked before it is stored; every host can call it within a second, with no restart.
#[utoipa::path(
    post,
    path = "/api/v1/plugins",
    tag = "plugins",
    request_body(content = ComponentBytes, content_type = "application/wasm", description = "A component packed by `switchyard plugin pack` (other bytes: 422 `not_a_component`)"),
    responses(
        (status = 201, description = "Stored and callable", body = UploadedPlugin),
        (status = 200, description = "These exact bytes were already uploaded", body = UploadedPlugin),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `not_a_component` (not a component packed by `switchyard plugin pack`), or a component this host refuses (signature, namespace, manifest)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    Auth(principal): Auth,
    body: Body,
) -> Result<(StatusCode, Json<UploadedPlugin>), ApiError> {
    let publisher = publisher(&state, &principal).await?;
    let max = state.plugins.max_upload();
    let bytes = axum::body::to_bytes(body, max.saturating_add(1))
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    if bytes.is_empty() {
        // Like any other bytes that are no component (the document's body is any bytes).
        return Err(ApiError::unprocessable(
            "not_a_component",
            "the body is empty: send the packed component's bytes",
        ));
    }
    let actor = actor(&principal);
    let (row, new) = state
        .plugins
        .upload(bytes.to_vec(), &publisher, &actor)
        .await?;
    let promoted = state
        .plugins
        .info(Viewer::Operator, &row.name)
        .is_some_and(|p| p.promoted.as_deref() == Some(row.version.as_str()));
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(UploadedPlugin {
            name: row.name,
            version: row.version,
            sha256: row.sha256,
            world: row.world,
            interface: row.interface,
            publisher: row.publisher,
            promoted,
        }),
    ))
}

/// The plugins the caller may use: every name with its versions, promotion and pins.
#[utoipa::path(
    get,
    path = "/api/v1/plugins",
    tag = "plugins",
    responses(
        (status = 200, description = "OK", body = PluginList),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<PluginList>, ApiError> {
    Ok(Json(PluginList {
        data: list_for(&state, &principal).await?,
    }))
}

/// One plugin name.
#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "OK", body = PluginInfo),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<NamePath>,
) -> Result<Json<PluginInfo>, ApiError> {
    Ok(Json(visible(&state, &principal, &p.name).await?))
}

/// One version of a plugin.
#[utoipa::path(
    get,
    path = "/api/v1/plugins/{name}/{version}",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Version")),
    responses(
        (status = 200, description = "OK", body = VersionInfo),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn show_version(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<VersionPath>,
) -> Result<Json<VersionInfo>, ApiError> {
    visible(&state, &principal, &p.name)
        .await?
        .versions
        .into_iter()
        .find(|v| v.version == p.version)
        .map(Json)
        .ok_or(ApiError::NotFound("plugin version"))
}

/// Delete an uploaded version that nothing pins and that is not promoted.
#[utoipa::path(
    delete,
    path = "/api/v1/plugins/{name}/{version}",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Version")),
    responses(
        (status = 204, description = "Deleted"),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<VersionPath>,
) -> Result<StatusCode, ApiError> {
    let info = visible(&state, &principal, &p.name).await?;
    may_change(&principal, &info)?;
    state.plugins.delete(&p.name, &p.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a version the one every unpinned call of this name runs, on every host.
#[utoipa::path(
    post,
    path = "/api/v1/plugins/{name}/promote",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = Promote,
    responses(
        (status = 200, description = "Promoted", body = PluginInfo),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_version` (not a version this host can run), `invalid_reason`", body = crate::http::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn promote(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<NamePath>,
    ApiJson(body): ApiJson<Promote>,
) -> Result<Json<PluginInfo>, ApiError> {
    let info = visible(&state, &principal, &p.name).await?;
    may_change(&principal, &info)?;
    let why = reason(body.reason, "promoted")?;
    let actor = actor(&principal);
    state
        .plugins
        .promote(&p.name, &body.version, &why, &actor)
        .await?;
    Ok(Json(visible(&state, &principal, &p.name).await?))
}

/// Return to the version promoted before the current one.
#[utoipa::path(
    post,
    path = "/api/v1/plugins/{name}/rollback",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = RollBack,
    responses(
        (status = 200, description = "Rolled back", body = PluginInfo),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn roll_back(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<NamePath>,
    ApiJson(body): ApiJson<RollBack>,
) -> Result<Json<PluginInfo>, ApiError> {
    let info = visible(&state, &principal, &p.name).await?;
    may_change(&principal, &info)?;
    let why = reason(body.reason, "by request")?;
    let actor = actor(&principal);
    state.plugins.roll_back(&p.name, &why, &actor).await?;
    Ok(Json(visible(&state, &principal, &p.name).await?))
}

/// Pin the connector version an endpoint runs, or (`null`) follow the promoted one (the
/// endpoint's owner: the operator or its partner).
#[utoipa::path(
    put,
    path = "/api/v1/endpoints/{endpoint}/plugin",
    tag = "plugins",
    params(("endpoint" = String, Path, description = "Endpoint id (`end_…`)")),
    request_body = PutPin,
    responses(
        (status = 200, description = "Pinned", body = PluginInfo),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn pin_endpoint(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<super::endpoints::EndpointPath>,
    ApiJson(body): ApiJson<PutPin>,
) -> Result<Json<PluginInfo>, ApiError> {
    let endpoint = super::endpoints::owned(&state, &principal, &p.endpoint).await?;
    state
        .plugins
        .pin(
            PinKind::Endpoint,
            &endpoint.id,
            &endpoint.connector,
            body.version.as_deref(),
        )
        .await?;
    Ok(Json(
        visible(&state, &principal, &endpoint.connector).await?,
    ))
}

fn actor(principal: &Principal) -> String {
    match principal {
        Principal::Partner { partner_id, .. } => format!("partner:{partner_id}"),
        _ => "operator".to_string(),
    }
}

/// `POST /api/v1/publisher-keys` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// Whose key: `operator`, or a partner id (`par_…`) whose namespace it may sign (else 422
    /// `invalid_publisher`; 404 for a partner that does not exist).
    #[schema(pattern = "^(operator|par_[0-9a-f]{32})$(?!\\n)", example = "operator")]
    pub publisher: String,
    /// `ed25519:<base64 of 32 bytes>`, as `switchyard plugin keygen` prints it (else 422
    /// `invalid_key`, also for 32 bytes that are no Ed25519 point).
    #[schema(
        pattern = "^ed25519:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$(?!\\n)",
        example = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    )]
    pub public_key: String,
    /// A label for people (at most 100 characters; else 422 `invalid_label`).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub label: Option<String>,
}

/// The registered publisher keys.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Every key, revoked ones included.
    pub data: Vec<PublisherKey>,
}

#[derive(Deserialize)]
pub(super) struct KeyPath {
    key: String,
}

/// Trust a publisher's Ed25519 key for plugin signatures (operator only).
#[utoipa::path(
    post,
    path = "/api/v1/publisher-keys",
    tag = "plugins",
    request_body = AddKey,
    responses(
        (status = 201, description = "Registered", body = PublisherKey),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Conflict,
        (status = 422, description = "the body is well-formed but cannot be used: `invalid_key` (not `ed25519:` and 32 bytes of base64 that are an Ed25519 point), `invalid_publisher`, `invalid_label`", body = crate::http::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_key(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(body): ApiJson<AddKey>,
) -> Result<(StatusCode, Json<PublisherKey>), ApiError> {
    // Exactly the documented shape: the parser would also take it with spaces around.
    if body.public_key.trim() != body.public_key {
        return Err(ApiError::unprocessable(
            "invalid_key",
            "malformed key: no spaces around it",
        ));
    }
    let key = crate::runtime::signature::PublicKey::parse(&body.public_key)
        .map_err(|e| ApiError::unprocessable("invalid_key", e.to_string()))?;
    if body.label.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(ApiError::unprocessable(
            "invalid_label",
            "label is at most 100 characters",
        ));
    }
    let publisher = match body.publisher.as_str() {
        "operator" => "operator".to_string(),
        p if p.starts_with("par_") && p.len() <= 64 => {
            let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
            let exists = tx.partner_exists(p).await?;
            tx.commit().await?;
            if !exists {
                return Err(ApiError::NotFound("partner"));
            }
            format!("partner:{p}")
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_publisher",
                "publisher is \"operator\" or a partner id (par_…)",
            ));
        }
    };
    let record = state
        .plugins
        .add_key(&publisher, &key, body.label)
        .await
        .map_err(|e| match e {
            crate::catalog::CatalogError::VersionExists { .. } => ApiError::Conflict {
                code: "key_exists",
                message: format!("the key {} is registered already", key.id()),
            },
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// The registered publisher keys (operator only).
#[utoipa::path(
    get,
    path = "/api/v1/publisher-keys",
    tag = "plugins",
    responses(
        (status = 200, description = "OK", body = KeyList),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(State(state): State<AppState>, _: Operator) -> Json<KeyList> {
    Json(KeyList {
        data: state.plugins.keys(),
    })
}

/// Revoke a publisher key: versions it signed are untrusted from now on (operator only).
#[utoipa::path(
    delete,
    path = "/api/v1/publisher-keys/{key}",
    tag = "plugins",
    params(("key" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    _: Operator,
    Path(p): Path<KeyPath>,
) -> Result<StatusCode, ApiError> {
    state.plugins.revoke_key(&p.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT …/plugins/{name}/{version}/grants` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGrants {
    /// The egress hosts this version may reach: each one its manifest requests (at most 64).
    pub hosts: Vec<String>,
}

/// Grant a partner's plugin version the egress hosts it requests (operator only); calls to a
/// host not granted fail with an error naming it.
#[utoipa::path(
    put,
    path = "/api/v1/plugins/{name}/{version}/grants",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Version")),
    request_body = PutGrants,
    responses(
        (status = 200, description = "Granted", body = VersionInfo),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn grant(
    State(state): State<AppState>,
    _: Operator,
    Path(p): Path<VersionPath>,
    ApiJson(body): ApiJson<PutGrants>,
) -> Result<Json<VersionInfo>, ApiError> {
    if body.hosts.len() > 64 {
        return Err(ApiError::unprocessable(
            "too_many_hosts",
            "at most 64 hosts per grant",
        ));
    }
    state
        .plugins
        .grant(&p.name, &p.version, &body.hosts, "operator")
        .await?;
    visible(&state, &Principal::Operator, &p.name)
        .await?
        .versions
        .into_iter()
        .find(|v| v.version == p.version)
        .map(Json)
        .ok_or(ApiError::NotFound("plugin version"))
}

/// Set when a plugin's promoted version is rolled back by the host itself (its publisher or the
/// operator).
#[utoipa::path(
    put,
    path = "/api/v1/plugins/{name}/failure-policy",
    tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = FailurePolicyView,
    responses(
        (status = 200, description = "Set", body = PluginInfo),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Unprocessable,
    ),
    security(("bearer" = []))
)]
pub async fn put_failure_policy(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(p): Path<NamePath>,
    ApiJson(body): ApiJson<FailurePolicyView>,
) -> Result<Json<PluginInfo>, ApiError> {
    let info = visible(&state, &principal, &p.name).await?;
    may_change(&principal, &info)?;
    let policy = body.for_name(&p.name).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_failure_policy",
            "max_fault_pct is 1-100, min_calls 1-100000, window_secs 5-3600",
        )
    })?;
    state.plugins.set_failure_policy(&policy).await?;
    Ok(Json(visible(&state, &principal, &p.name).await?))
}
