//! What a tenant can connect: each connector its plan and partner allow, the shared endpoints
//! it may connect through (with what Meta's sign-in needs), and the settings and credentials a
//! connection takes, as the connector declares them. Forms (the console's among them) are
//! built from this, so a partner's own connector needs no console change.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::auth::Tenant;
use crate::catalog::Viewer;
use crate::error::ApiError;
use crate::runtime::manifest::{SecretOn, SetBy, SettingRole};
use crate::store::Mode;

/// One connector a tenant may connect numbers through.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Channel {
    /// The connector plugin's name.
    pub connector: String,
    /// Whether the tenant's plan includes it (connecting is refused otherwise).
    pub in_plan: bool,
    /// Each connection gets its own webhook endpoint (no shared endpoint is needed).
    pub own_endpoint: bool,
    /// The shared endpoints to connect through (`endpoint` of a connect).
    pub endpoints: Vec<SharedEndpoint>,
    /// The settings a connection takes from the tenant.
    pub settings: Vec<ChannelSetting>,
    /// The credentials a connection takes (sealed in the vault, never shown again).
    pub secrets: Vec<ChannelSecret>,
}

/// A shared endpoint (a connector installation of the operator or the tenant's partner).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SharedEndpoint {
    /// `end_…`.
    pub id: String,
    /// Meta's sign-in (Embedded Signup and the redirect flow), when this is a Meta app set up
    /// for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_signup: Option<MetaSignup>,
}

/// What a browser needs to run Meta's sign-in for an endpoint.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MetaSignup {
    /// The Meta app's id.
    pub app_id: String,
    /// The Embedded Signup configuration's id, when the endpoint has one.
    pub config_id: Option<String>,
    /// Whether the redirect flow is set up (the endpoint has a `return_url`).
    pub redirect: bool,
    /// Facebook's dialog base URL, with the Graph version (`https://www.facebook.com/v26.0`).
    pub dialog_url: String,
    /// The Graph API version for Meta's JavaScript SDK.
    pub graph_version: String,
}

/// A setting a connection takes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelSetting {
    /// Its name.
    pub name: String,
    /// The pattern the whole value must match.
    pub pattern: String,
    /// Whether a connection needs it.
    pub required: bool,
    /// `address` (the business's channel address), `account`, `display`, or none.
    pub role: Option<&'static str>,
}

/// A credential a connection takes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelSecret {
    /// Its name.
    pub name: String,
    /// Whether a connection needs it.
    pub required: bool,
}

/// The connectors a tenant may connect.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Channels {
    /// By connector name.
    pub data: Vec<Channel>,
}

/// What this tenant can connect (owner/admin): connectors, shared endpoints and the fields
/// a connection takes.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/channels",
    tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id (`ten_…`)")),
    responses(
        (status = 200, description = "The connectors", body = Channels),
        crate::http::openapi::Unauthorized,
        crate::http::openapi::Forbidden,
        crate::http::openapi::NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
) -> Result<Json<Channels>, ApiError> {
    let access = &tenant.access;
    let partner = access.tenant.partner_id.as_deref();
    let mut tx = access.begin(&state.store, Mode::Read).await?;
    let endpoints = tx.shared_endpoints(partner).await?;
    let mut data = Vec::new();
    for info in state.plugins.list(Viewer::PartnerOf(partner)) {
        let Some(plugin) = state.plugins.connector(&info.name, None) else {
            continue;
        };
        if !state.plugins.usable_by(&info.name, partner) {
            continue;
        }
        let in_plan = crate::plans::check_channel(&mut tx, &info.name)
            .await
            .is_ok();
        let shape = plugin.shape();
        data.push(Channel {
            in_plan,
            own_endpoint: shape.own_endpoint,
            endpoints: endpoints
                .iter()
                .filter(|e| e.connector == info.name)
                .map(|e| SharedEndpoint {
                    id: e.id.clone(),
                    meta_signup: (e.connector == "meta-cloud")
                        .then(|| meta_signup(&state, &e.settings))
                        .flatten(),
                })
                .collect(),
            settings: shape
                .settings
                .iter()
                .filter(|s| s.set_by == SetBy::Tenant)
                .map(|s| ChannelSetting {
                    name: s.name.clone(),
                    pattern: s.pattern.clone(),
                    required: s.required,
                    role: s.role.map(|r| match r {
                        SettingRole::Address => "address",
                        SettingRole::Account => "account",
                        SettingRole::Display => "display",
                    }),
                })
                .collect(),
            secrets: shape
                .secrets
                .iter()
                .filter(|s| s.on == SecretOn::Connection && !s.generated)
                .map(|s| ChannelSecret {
                    name: s.name.clone(),
                    required: s.required,
                })
                .collect(),
            connector: info.name,
        });
    }
    tx.commit().await?;
    Ok(Json(Channels { data }))
}

/// Meta's sign-in for an endpoint whose settings name an app.
fn meta_signup(state: &AppState, settings: &str) -> Option<MetaSignup> {
    let settings: serde_json::Value = serde_json::from_str(settings).ok()?;
    let text = |k: &str| super::onboarding::endpoint_setting(&settings, k);
    Some(MetaSignup {
        app_id: text("app_id")?,
        config_id: text("config_id"),
        redirect: text("return_url").is_some(),
        dialog_url: format!("{}/{}", state.meta.dialog(), state.meta.version()),
        graph_version: state.meta.version().to_string(),
    })
}
