//! `/api/v1/endpoints`: connector installations that own a webhook URL (a Meta app shared by
//! many tenants). The operator and partners create them; their secrets go to the vault.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Auth;
use super::json::ApiJson;
use crate::error::ApiError;
use crate::store::{EndpointRecord, Mode, now_ms};
use crate::tenancy::{Principal, Scope, ids};
use crate::vault::Secret;

/// `POST /api/v1/endpoints` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// A loaded connector plugin's name.
    pub connector: String,
    /// Non-secret settings (e.g. `app_id`).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secrets (e.g. `app_secret`, `verify_token`): sealed in the vault, never shown again.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, Secret>,
}

/// A created endpoint.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    /// `end_…`.
    pub id: String,
    /// The connector.
    pub connector: String,
    /// The URL to give the provider.
    pub webhook_url: String,
    /// Names of the secrets stored (never their values).
    pub secrets: Vec<String>,
}

/// Check that secret names and values are sane; which names a connector accepts, and on which
/// side, is checked against its declaration ([`crate::connector`]).
pub fn checked_secrets(
    secrets: BTreeMap<String, Secret>,
) -> Result<Vec<(String, Secret)>, ApiError> {
    let mut out = Vec::with_capacity(secrets.len());
    for (field, value) in secrets {
        if !crate::runtime::manifest::field_name_ok(&field) {
            return Err(ApiError::unprocessable(
                "invalid_secrets",
                format!(
                    "secret name {:?} is not valid (1-64 lower-case letters, digits and '_')",
                    field.chars().take(64).collect::<String>()
                ),
            ));
        }
        if value.expose().is_empty() || value.expose().len() > 4096 {
            return Err(ApiError::unprocessable(
                "invalid_secrets",
                format!("secret {field:?} must be 1 to 4096 bytes"),
            ));
        }
        out.push((field, value));
    }
    Ok(out)
}

/// Create an endpoint (operator or partner).
#[utoipa::path(
    post,
    path = "/api/v1/endpoints",
    tag = "endpoints",
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Created", body = CreatedEndpoint),
        crate::http::openapi::BadRequest,
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::Conflict,
        crate::http::openapi::TooLarge,
        (status = 422, description = "the body is well-formed but cannot be used: `unknown_connector` (no connector plugin of that name is loaded), or settings or secrets the connector refuses", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let (owner, partner_id) = match &principal {
        Principal::Operator => ("operator".to_string(), None),
        Principal::Partner { partner_id, .. } => {
            (format!("partner:{partner_id}"), Some(partner_id.clone()))
        }
        Principal::Tenant { .. } => return Err(ApiError::Forbidden),
    };
    // A partner's connector serves that partner only.
    let usable = state
        .plugins
        .usable_by(&body.connector, partner_id.as_deref())
        || partner_id.is_none();
    let plugin = state
        .plugins
        .connector(&body.connector, None)
        .filter(|_| usable)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_connector",
                format!("no connector plugin named {:?} is loaded", body.connector),
            )
        })?;
    let secrets = checked_secrets(body.secrets)?;
    let settings = crate::connector::check_endpoint(
        &body.connector,
        plugin.shape(),
        &body.settings,
        &secrets,
    )?;
    let record = EndpointRecord {
        id: ids::new_id("end"),
        connector: body.connector,
        owner,
        partner_id,
        tenant_id: None,
        settings: serde_json::to_string(&settings).map_err(|e| ApiError::Internal(e.into()))?,
        created_at: now_ms(),
    };
    let mut tx = state.store.begin(Scope::Host, Mode::Write).await?;
    tx.insert_endpoint(&record).await?;
    state
        .vault
        .seal_endpoint(&mut tx, &record, &secrets)
        .await?;
    tx.commit().await?;
    tracing::info!(endpoint = %record.id, connector = %record.connector, "endpoint created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            webhook_url: state.webhook_url(&record.id),
            id: record.id,
            connector: record.connector,
            secrets: secrets.into_iter().map(|(f, _)| f).collect(),
        }),
    ))
}

/// The endpoint `id` when `principal` owns it (the operator, or the partner it belongs to);
/// 404 otherwise, as for an endpoint that does not exist.
pub(super) async fn owned(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<EndpointRecord, ApiError> {
    let mut tx = state.store.begin(Scope::Host, Mode::Read).await?;
    let endpoint = tx
        .endpoint(id)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?;
    tx.commit().await?;
    let owner_ok = match principal {
        Principal::Operator => true,
        Principal::Partner { partner_id, .. } => endpoint.owner == format!("partner:{partner_id}"),
        Principal::Tenant { .. } => false,
    };
    if !owner_ok {
        return Err(ApiError::NotFound("endpoint"));
    }
    Ok(endpoint)
}

/// The path of one endpoint.
#[derive(Deserialize)]
pub(super) struct EndpointPath {
    pub(super) endpoint: String,
}

/// Route self-test of an endpoint (its owner: the operator, or its partner's owners): the host
/// calls the endpoint's webhook URL at its public URL with a signed self-test header and says
/// whether the request reached ingress, and if not what answered (a proxy's 404, a redirect, no
/// connection).
#[utoipa::path(
    post,
    path = "/api/v1/endpoints/{endpoint}/self-test",
    tag = "endpoints",
    params(("endpoint" = String, Path, description = "Endpoint id (`end_…`)")),
    responses(
        (status = 200, description = "What the self-test found (`reached` false with `problems` when it did not reach ingress)", body = crate::ingress::self_test::SelfTest),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
        crate::http::openapi::Unavailable,
    ),
    security(("bearer" = []))
)]
pub async fn self_test(
    State(state): State<AppState>,
    Auth(principal): Auth,
    axum::extract::Path(p): axum::extract::Path<EndpointPath>,
) -> Result<Json<crate::ingress::self_test::SelfTest>, ApiError> {
    let endpoint = owned(&state, &principal, &p.endpoint).await?;
    Ok(Json(
        crate::ingress::self_test::probe(&state.vault, &state.public_url, &endpoint.id).await,
    ))
}
